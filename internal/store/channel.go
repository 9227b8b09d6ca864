package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xueliang/xueliang/internal/model"
)

// ChannelFilter selects channels for ListChannels. Zero fields select all;
// set fields combine with AND.
type ChannelFilter struct {
	// DivisionCode keeps channels in this division or any division below
	// it (by parent_code, so any coding scheme works). An unknown code
	// selects nothing.
	DivisionCode string
	Status       model.ChannelStatus
	// Query keeps channels whose name or code contains it; ASCII letters
	// match case-insensitively, '%' and '_' are literal.
	Query    string
	DeviceID int64
	// Limit caps the number of channels returned (<= 0: no cap); Offset
	// skips that many first. Channels are ordered by ID.
	Limit, Offset int
}

const channelColumns = `id, code, name, COALESCE(device_id, 0), division_code, source_url, transport,
	lat, lng, heading, fov, range_m, parent_code, ptz_type, catalog_status,
	status, last_error, reason, status_changed_at, created_at, updated_at`

func scanChannel(sc scanner) (model.Channel, error) {
	var c model.Channel
	var status string
	var changed, created, updated int64
	err := sc.Scan(&c.ID, &c.Code, &c.Name, &c.DeviceID, &c.DivisionCode, &c.SourceURL, &c.Transport,
		&c.Lat, &c.Lng, &c.Heading, &c.FOV, &c.Range, &c.ParentCode, &c.PTZType, &c.CatalogStatus,
		&status, &c.LastError, &c.Reason,
		&changed, &created, &updated)
	c.Status = model.ChannelStatus(status)
	c.StatusChangedAt, c.CreatedAt, c.UpdatedAt = fromMillis(changed), fromMillis(created), fromMillis(updated)
	return c, err
}

// CreateChannel validates c, inserts it and sets c.ID, c.CreatedAt and
// c.UpdatedAt. An empty Transport is stored as "auto" and an empty Status as
// "offline", and written back into c; StatusChangedAt is set to the creation
// time.
//
// Errors: a wrapped *model.FieldError, ErrConflict when the code is taken,
// ErrUnknownDivision, ErrUnknownDevice.
func (s *Store) CreateChannel(ctx context.Context, c *model.Channel) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("store: create channel %q: %w", c.Code, err)
	}
	if c.Transport == "" {
		c.Transport = model.TransportAuto
	}
	if c.Status == "" {
		c.Status = model.ChannelStatusOffline
	}
	now := s.nowMillis()
	var id int64
	err := s.w.QueryRowContext(ctx, `
INSERT INTO channels (code, name, device_id, division_code, source_url, transport,
	lat, lng, heading, fov, range_m, status, last_error, reason, status_changed_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $15)
RETURNING id`,
		c.Code, c.Name, nullID(c.DeviceID), c.DivisionCode, c.SourceURL, c.Transport,
		c.Lat, c.Lng, c.Heading, c.FOV, c.Range, string(c.Status), c.LastError, c.Reason,
		toMillis(now)).Scan(&id)
	if err != nil {
		return fmt.Errorf("store: create channel %q: %w", c.Code, s.writeErr(ctx, err, c.DivisionCode, c.DeviceID))
	}
	c.ID, c.StatusChangedAt, c.CreatedAt, c.UpdatedAt = id, now, now, now
	return nil
}

// GetChannel returns the channel with the given ID, or ErrNotFound.
func (s *Store) GetChannel(ctx context.Context, id int64) (*model.Channel, error) {
	c, err := scanChannel(s.r.QueryRowContext(ctx, `SELECT `+channelColumns+` FROM channels WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get channel %d: %w", id, err)
	}
	return &c, nil
}

// GetChannelByCode returns the channel with the given 20-digit code, or
// ErrNotFound.
func (s *Store) GetChannelByCode(ctx context.Context, code string) (*model.Channel, error) {
	c, err := scanChannel(s.r.QueryRowContext(ctx, `SELECT `+channelColumns+` FROM channels WHERE code = $1`, code))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get channel %q: %w", code, err)
	}
	return &c, nil
}

// likeEscaper makes a string match itself literally in LIKE … ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListChannels returns the channels that f selects, ordered by ID.
func (s *Store) ListChannels(ctx context.Context, f ChannelFilter) ([]model.Channel, error) {
	var a args
	q := ""
	where := " WHERE 1 = 1"
	if f.DivisionCode != "" {
		q = subtreeCTE(a.add(f.DivisionCode))
		where += " AND division_code IN (SELECT code FROM subtree)"
	}
	if f.Status != "" {
		where += " AND status = " + a.add(string(f.Status))
	}
	if f.DeviceID != 0 {
		where += " AND device_id = " + a.add(f.DeviceID)
	}
	if f.Query != "" {
		p := a.add("%" + likeEscaper.Replace(strings.ToLower(f.Query)) + "%")
		where += ` AND (lower(name) LIKE ` + p + ` ESCAPE '\' OR code LIKE ` + p + ` ESCAPE '\')`
	}
	q += `SELECT ` + channelColumns + ` FROM channels` + where + ` ORDER BY id` +
		s.dialect.limitOffset(&a, f.Limit, f.Offset)

	return queryAll(ctx, s, "list channels", q, a, scanChannel)
}

// CountChannelsByDivision returns, for every division that directly holds
// channels, how many it holds. Divisions without channels are absent. Use
// model.FillChannelCounts for totals per subtree.
func (s *Store) CountChannelsByDivision(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT division_code, COUNT(*) FROM channels GROUP BY division_code`)
	if err != nil {
		return nil, fmt.Errorf("store: count channels by division: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var code string
		var n int
		if err := rows.Scan(&code, &n); err != nil {
			return nil, fmt.Errorf("store: count channels by division: %w", err)
		}
		out[code] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count channels by division: %w", err)
	}
	return out, nil
}

// UpdateChannel validates c and overwrites the configuration of the stored
// channel c.ID: code, name, device, division, source URL, transport and
// position. It does not write the status fields (Status, Reason, LastError,
// StatusChangedAt), which belong to SetChannelStatus, so an edit cannot undo
// a concurrent status change; it reads them back into c instead, together
// with CreatedAt, and sets c.UpdatedAt. An empty Transport is stored as
// "auto".
//
// Errors: a wrapped *model.FieldError, ErrNotFound, ErrConflict,
// ErrUnknownDivision, ErrUnknownDevice.
func (s *Store) UpdateChannel(ctx context.Context, c *model.Channel) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("store: update channel %d: %w", c.ID, err)
	}
	if c.Transport == "" {
		c.Transport = model.TransportAuto
	}
	now := s.nowMillis()
	var status string
	var changed, created int64
	err := s.w.QueryRowContext(ctx, `
UPDATE channels SET code = $2, name = $3, device_id = $4, division_code = $5, source_url = $6,
	transport = $7, lat = $8, lng = $9, heading = $10, fov = $11, range_m = $12, updated_at = $13
WHERE id = $1
RETURNING status, last_error, reason, status_changed_at, created_at`,
		c.ID, c.Code, c.Name, nullID(c.DeviceID), c.DivisionCode, c.SourceURL,
		c.Transport, c.Lat, c.Lng, c.Heading, c.FOV, c.Range, toMillis(now),
	).Scan(&status, &c.LastError, &c.Reason, &changed, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: update channel %d: %w", c.ID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: update channel %d: %w", c.ID, s.writeErr(ctx, err, c.DivisionCode, c.DeviceID))
	}
	c.Status = model.ChannelStatus(status)
	c.StatusChangedAt, c.CreatedAt, c.UpdatedAt = fromMillis(changed), fromMillis(created), now
	return nil
}

// DeleteChannel deletes the channel with the given ID, or returns
// ErrNotFound.
func (s *Store) DeleteChannel(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM channels WHERE id = $1`, id)
	if err == nil {
		err = affectedOne(res)
	}
	if err != nil {
		return fmt.Errorf("store: delete channel %d: %w", id, err)
	}
	return nil
}

// SetChannelStatus records the streaming state of channel id as observed at
// time at (the zero time means now). It is meant to be called often, from
// many goroutines: it is one UPDATE that writes nothing when status, reason
// and lastError are already stored, and it leaves UpdatedAt alone.
//
// StatusChangedAt moves to at only when status differs from the stored
// one; a change of reason or lastError alone keeps it. A report older than
// the stored StatusChangedAt is ignored, so reports that overtake each other
// cannot roll the status back. lastError longer than model.MaxLastErrorLen
// bytes is truncated.
//
// Errors: a wrapped *model.FieldError for an invalid status or reason,
// ErrNotFound.
func (s *Store) SetChannelStatus(ctx context.Context, id int64, status model.ChannelStatus, reason, lastError string, at time.Time) error {
	if !status.Valid() {
		return fmt.Errorf("store: set channel %d status: %w", id, &model.FieldError{
			Field: "status", Message: fmt.Sprintf("must be offline, connecting, online, idle or error, got %q", string(status))})
	}
	if !model.ValidReason(reason) {
		return fmt.Errorf("store: set channel %d status: %w", id, &model.FieldError{
			Field: "reason", Message: fmt.Sprintf("must be a lowercase code like %q, got %q", model.ReasonUnreachable, reason)})
	}
	lastError = truncateUTF8(lastError, model.MaxLastErrorLen)
	if at.IsZero() {
		at = s.now()
	}
	res, err := s.w.ExecContext(ctx, `
UPDATE channels SET
	status_changed_at = CASE WHEN status <> $2 THEN $5 ELSE status_changed_at END,
	status = $2, reason = $3, last_error = $4
WHERE id = $1 AND (status <> $2 OR reason <> $3 OR last_error <> $4) AND status_changed_at <= $5`,
		id, string(status), reason, lastError, toMillis(at))
	if err == nil {
		err = affectedOne(res)
	}
	if errors.Is(err, ErrNotFound) {
		// Unchanged, stale, or missing: only missing is an error.
		var ok bool
		ok, err = rowExists(ctx, s.r, `SELECT 1 FROM channels WHERE id = $1`, id)
		if err == nil && !ok {
			err = ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("store: set channel %d status: %w", id, err)
	}
	return nil
}

// truncateUTF8 shortens s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/xueliang/xueliang/internal/model"
)

// DeviceFilter selects devices for ListDevices. Zero fields select all.
type DeviceFilter struct {
	// DivisionCode keeps devices placed in this division or any division
	// below it. An unknown code selects nothing.
	DivisionCode string
	Kind         model.DeviceKind
	// Limit caps the number of devices returned (<= 0: no cap); Offset
	// skips that many first. Devices are ordered by ID.
	Limit, Offset int
}

const deviceColumns = `id, COALESCE(code, ''), name, kind, COALESCE(division_code, ''),
	manufacturer, model, status, transport, remote_addr, status_reason, firmware, last_seen,
	registered_at, clock_offset_ms, clock_checked_at, created_at, updated_at`

func scanDevice(sc scanner) (model.Device, error) {
	var d model.Device
	var kind string
	var created, updated, seen, registered, checked int64
	var offset sql.NullInt64
	err := sc.Scan(&d.ID, &d.Code, &d.Name, &kind, &d.DivisionCode,
		&d.Manufacturer, &d.Model, &d.Status, &d.Transport, &d.RemoteAddr, &d.StatusReason, &d.Firmware,
		&seen, &registered, &offset, &checked, &created, &updated)
	d.Kind = model.DeviceKind(kind)
	d.CreatedAt, d.UpdatedAt = fromMillis(created), fromMillis(updated)
	d.LastSeen, d.RegisteredAt, d.ClockCheckedAt = fromMillis(seen), fromMillis(registered), fromMillis(checked)
	if offset.Valid {
		d.ClockOffsetMS = &offset.Int64
	}
	return d, err
}

// deviceLabel names a device in errors: its code, or its name if it has none.
func deviceLabel(d *model.Device) string {
	if d.Code != "" {
		return d.Code
	}
	return d.Name
}

// CreateDevice validates d, inserts it, and sets d.ID, d.CreatedAt and
// d.UpdatedAt.
//
// Errors: a wrapped *model.FieldError, ErrConflict when the code is taken,
// ErrUnknownDivision.
func (s *Store) CreateDevice(ctx context.Context, d *model.Device) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("store: create device %q: %w", deviceLabel(d), err)
	}
	now := s.nowMillis()
	var id int64
	err := s.w.QueryRowContext(ctx, `
INSERT INTO devices (code, name, kind, division_code, manufacturer, model, status, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
RETURNING id`,
		nullString(d.Code), d.Name, string(d.Kind), nullString(d.DivisionCode),
		d.Manufacturer, d.Model, d.Status, toMillis(now)).Scan(&id)
	if err != nil {
		return fmt.Errorf("store: create device %q: %w", deviceLabel(d), s.writeErr(ctx, err, d.DivisionCode, 0))
	}
	d.ID, d.CreatedAt, d.UpdatedAt = id, now, now
	return nil
}

// GetDevice returns the device with the given ID, or ErrNotFound.
func (s *Store) GetDevice(ctx context.Context, id int64) (*model.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get device %d: %w", id, err)
	}
	return &d, nil
}

// ListDevices returns the devices that f selects, ordered by ID.
func (s *Store) ListDevices(ctx context.Context, f DeviceFilter) ([]model.Device, error) {
	var a args
	q := ""
	where := " WHERE 1 = 1"
	if f.DivisionCode != "" {
		q = subtreeCTE(a.add(f.DivisionCode))
		where += " AND division_code IN (SELECT code FROM subtree)"
	}
	if f.Kind != "" {
		where += " AND kind = " + a.add(string(f.Kind))
	}
	q += `SELECT ` + deviceColumns + ` FROM devices` + where + ` ORDER BY id` +
		s.dialect.limitOffset(&a, f.Limit, f.Offset)

	return queryAll(ctx, s, "list devices", q, a, scanDevice)
}

// UpdateDevice validates d and overwrites every field of the stored device
// d.ID except CreatedAt. It sets d.UpdatedAt, and d.CreatedAt from the
// database.
//
// Errors: a wrapped *model.FieldError, ErrNotFound, ErrConflict,
// ErrUnknownDivision.
func (s *Store) UpdateDevice(ctx context.Context, d *model.Device) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("store: update device %d: %w", d.ID, err)
	}
	now := s.nowMillis()
	var created int64
	err := s.w.QueryRowContext(ctx, `
UPDATE devices SET code = $2, name = $3, kind = $4, division_code = $5,
	manufacturer = $6, model = $7, status = $8, updated_at = $9
WHERE id = $1
RETURNING created_at`,
		d.ID, nullString(d.Code), d.Name, string(d.Kind), nullString(d.DivisionCode),
		d.Manufacturer, d.Model, d.Status, toMillis(now)).Scan(&created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: update device %d: %w", d.ID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: update device %d: %w", d.ID, s.writeErr(ctx, err, d.DivisionCode, 0))
	}
	d.CreatedAt, d.UpdatedAt = fromMillis(created), now
	return nil
}

// DeleteDevice deletes the device with the given ID, or returns ErrNotFound.
// Its channels stay, with DeviceID set to 0.
func (s *Store) DeleteDevice(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM devices WHERE id = $1`, id)
	if err == nil {
		err = affectedOne(res)
	}
	if err != nil {
		return fmt.Errorf("store: delete device %d: %w", id, err)
	}
	return nil
}

// affectedOne returns ErrNotFound when res affected no row.
func affectedOne(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

// MaxSegmentDuration bounds the length of one segment. Range queries rely
// on it: a segment that overlaps [from, to) starts after from minus this,
// so the (channel_id, start_ms) index answers them without scanning the
// channel's history.
const MaxSegmentDuration = time.Hour

// ErrLocked: a segment is locked by an evidence export and may not be
// deleted until the export is released.
var ErrLocked = errors.New("locked by an export")

const segmentColumns = `id, channel_id, start_ms, end_ms, bytes, blob_key, location, sha256, codec, run`

func scanSegment(sc scanner) (model.Segment, error) {
	var g model.Segment
	var start, end int64
	var loc string
	err := sc.Scan(&g.ID, &g.ChannelID, &start, &end, &g.Bytes, &g.Key, &loc, &g.SHA256, &g.Codec, &g.Run)
	g.Start, g.End, g.Location = fromMillis(start), fromMillis(end), model.Location(loc)
	return g, err
}

// AddSegment indexes a finished segment and sets g.ID.
func (s *Store) AddSegment(ctx context.Context, g *model.Segment) error {
	if err := checkSegment(g); err != nil {
		return fmt.Errorf("store: add segment %s: %w", g.Key, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO segments (channel_id, start_ms, end_ms, bytes, blob_key, location, sha256, codec, run)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		g.ChannelID, toMillis(g.Start), toMillis(g.End), g.Bytes, g.Key, string(g.Location), g.SHA256, g.Codec, g.Run)
	if err != nil {
		return fmt.Errorf("store: add segment %s: %w", g.Key, err)
	}
	g.ID, err = res.LastInsertId()
	if err != nil {
		return fmt.Errorf("store: add segment %s: %w", g.Key, err)
	}
	return nil
}

func checkSegment(g *model.Segment) error {
	switch {
	case g.ChannelID <= 0:
		return &model.FieldError{Field: "channel_id", Message: "must be set"}
	case g.Key == "":
		return &model.FieldError{Field: "key", Message: "must be set"}
	case g.Start.IsZero() || g.End.Before(g.Start):
		return &model.FieldError{Field: "end", Message: "must not be before start"}
	case g.End.Sub(g.Start) > MaxSegmentDuration:
		return &model.FieldError{Field: "end", Message: fmt.Sprintf("a segment lasts at most %v, got %v", MaxSegmentDuration, g.End.Sub(g.Start))}
	case g.Location != model.LocationDisk && g.Location != model.LocationS3:
		return &model.FieldError{Field: "location", Message: fmt.Sprintf("must be disk or s3, got %q", g.Location)}
	}
	return nil
}

// Segments returns the segments of a channel that overlap [from, to),
// ordered by start.
func (s *Store) Segments(ctx context.Context, channelID int64, from, to time.Time) ([]model.Segment, error) {
	f, t := toMillis(from), toMillis(to)
	return queryAll(ctx, s, "list segments", `SELECT `+segmentColumns+` FROM segments
WHERE channel_id = $1 AND start_ms > $2 AND start_ms < $3 AND end_ms > $4
ORDER BY start_ms`, []any{channelID, f - MaxSegmentDuration.Milliseconds(), t, f}, scanSegment)
}

// Segment returns the segment with the given id.
func (s *Store) Segment(ctx context.Context, id int64) (model.Segment, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+segmentColumns+` FROM segments WHERE id = $1`, id)
	g, err := scanSegment(row)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("store: segment %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("store: segment %d: %w", id, err)
	}
	return g, nil
}

// SegmentIndexed reports whether a segment of the channel with the given
// start and key is in the index. The start-up scan asks it of every file.
func (s *Store) SegmentIndexed(ctx context.Context, channelID int64, start time.Time, key string) (bool, error) {
	ok, err := rowExists(ctx, s.r, `SELECT 1 FROM segments WHERE channel_id = $1 AND start_ms = $2 AND blob_key = $3`,
		channelID, toMillis(start), key)
	if err != nil {
		return false, fmt.Errorf("store: segment indexed %s: %w", key, err)
	}
	return ok, nil
}

// SegmentsAt returns up to limit segments held at loc, oldest first: the
// upload backlog when loc is the disk and the platform records to S3.
func (s *Store) SegmentsAt(ctx context.Context, loc model.Location, limit int) ([]model.Segment, error) {
	q, err := locationQuery(`SELECT `+segmentColumns+` FROM segments WHERE location = ? ORDER BY start_ms LIMIT $1`, loc)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "list segments at "+string(loc), q, []any{limit}, scanSegment)
}

// locationQuery puts loc into query as a literal in place of "?": a
// partial index (segments_disk_start_idx) is used only for a literal.
func locationQuery(query string, loc model.Location) (string, error) {
	if loc != model.LocationDisk && loc != model.LocationS3 {
		return "", fmt.Errorf("store: unknown segment location %q", loc)
	}
	return strings.Replace(query, "?", "'"+string(loc)+"'", 1), nil
}

// CountSegmentsAt returns how many segments, and how many bytes, are held at
// loc, from running totals (triggers keep them), not by summing the index.
func (s *Store) CountSegmentsAt(ctx context.Context, loc model.Location) (n, bytes int64, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT segments, bytes FROM segment_totals WHERE location = $1`, string(loc)).Scan(&n, &bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: count segments at %s: %w", loc, err)
	}
	return n, bytes, nil
}

// SegmentSpans returns the start, end and bytes of the segments of a
// channel that overlap [from, to), ordered by start: what a timeline needs,
// read from the index alone.
func (s *Store) SegmentSpans(ctx context.Context, channelID int64, from, to time.Time) ([]model.Segment, error) {
	f, t := toMillis(from), toMillis(to)
	return queryAll(ctx, s, "list segment spans", `SELECT start_ms, end_ms, bytes FROM segments
WHERE channel_id = $1 AND start_ms > $2 AND start_ms < $3 AND end_ms > $4
ORDER BY start_ms`, []any{channelID, f - MaxSegmentDuration.Milliseconds(), t, f}, func(sc scanner) (model.Segment, error) {
		var g model.Segment
		var start, end int64
		err := sc.Scan(&start, &end, &g.Bytes)
		g.ChannelID, g.Start, g.End = channelID, fromMillis(start), fromMillis(end)
		return g, err
	})
}

// SetSegmentLocation records that the segment moved to loc.
func (s *Store) SetSegmentLocation(ctx context.Context, id int64, loc model.Location) error {
	res, err := s.w.ExecContext(ctx, `UPDATE segments SET location = $1 WHERE id = $2`, string(loc), id)
	if err != nil {
		return fmt.Errorf("store: set segment %d location: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: set segment %d location: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteSegment removes a segment held at loc from the index unless an
// export locks it (ErrLocked). It returns ErrNotFound when no such row is
// at loc: deleted meanwhile, or moved (uploaded to S3) since it was read.
func (s *Store) DeleteSegment(ctx context.Context, id int64, loc model.Location) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		locked, err := rowExists(ctx, tx, `SELECT 1 FROM segment_locks WHERE segment_id = $1`, id)
		if err != nil {
			return err
		}
		if locked {
			return ErrLocked
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM segments WHERE id = $1 AND location = $2`, id, string(loc))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete segment %d at %s: %w", id, loc, err)
	}
	return nil
}

// SegmentLocked reports whether an export locks a segment.
func (s *Store) SegmentLocked(ctx context.Context, id int64) (bool, error) {
	ok, err := rowExists(ctx, s.r, `SELECT 1 FROM segment_locks WHERE segment_id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("store: segment %d locked: %w", id, err)
	}
	return ok, nil
}

// ExpiredSegments returns up to limit unlocked segments of a channel that
// ended before cutoff, oldest first.
func (s *Store) ExpiredSegments(ctx context.Context, channelID int64, cutoff time.Time, limit int) ([]model.Segment, error) {
	return queryAll(ctx, s, "list expired segments", `SELECT `+segmentColumns+` FROM segments
WHERE channel_id = $1 AND start_ms < $2 AND end_ms < $2
AND NOT EXISTS (SELECT 1 FROM segment_locks l WHERE l.segment_id = segments.id)
ORDER BY start_ms LIMIT $3`, []any{channelID, toMillis(cutoff), limit}, scanSegment)
}

// OldestSegments returns up to limit unlocked segments of every channel,
// oldest first: what the disk guard deletes when space runs out.
func (s *Store) OldestSegments(ctx context.Context, loc model.Location, limit int) ([]model.Segment, error) {
	q, err := locationQuery(`SELECT `+segmentColumns+` FROM segments
WHERE location = ? AND NOT EXISTS (SELECT 1 FROM segment_locks l WHERE l.segment_id = segments.id)
ORDER BY start_ms LIMIT $1`, loc)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "list oldest segments", q, []any{limit}, scanSegment)
}

// RecordedChannels returns the ids of the channels that have segments. It
// hops from one channel to the next through the index (a skip scan)
// rather than reading every row.
func (s *Store) RecordedChannels(ctx context.Context) ([]int64, error) {
	return queryAll(ctx, s, "list recorded channels", `WITH RECURSIVE c(id) AS (
	SELECT MIN(channel_id) FROM segments
	UNION ALL
	SELECT (SELECT MIN(channel_id) FROM segments WHERE channel_id > c.id) FROM c WHERE c.id IS NOT NULL
)
SELECT id FROM c WHERE id IS NOT NULL`, nil,
		func(sc scanner) (int64, error) {
			var id int64
			return id, sc.Scan(&id)
		})
}

// PutRecordPlan validates p and stores it as the plan of its channel,
// replacing any previous one. Errors: a wrapped *model.FieldError,
// ErrNotFound when the channel does not exist.
func (s *Store) PutRecordPlan(ctx context.Context, p *model.RecordPlan) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("store: put recording plan of channel %d: %w", p.ChannelID, err)
	}
	sched := p.Schedule
	if sched == nil {
		sched = []model.WeeklyRange{}
	}
	js, err := json.Marshal(sched)
	if err != nil {
		return fmt.Errorf("store: put recording plan of channel %d: %w", p.ChannelID, err)
	}
	p.UpdatedAt = s.nowMillis()
	_, err = s.w.ExecContext(ctx, `INSERT INTO recording_plans (channel_id, mode, schedule, retention_days, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (channel_id) DO UPDATE SET mode = excluded.mode, schedule = excluded.schedule,
	retention_days = excluded.retention_days, updated_at = excluded.updated_at`,
		p.ChannelID, string(p.Mode), string(js), p.RetentionDays, toMillis(p.UpdatedAt))
	if err != nil {
		if s.dialect.classify(err) == errForeignKey {
			return fmt.Errorf("store: put recording plan: channel %d: %w", p.ChannelID, ErrNotFound)
		}
		return fmt.Errorf("store: put recording plan of channel %d: %w", p.ChannelID, err)
	}
	return nil
}

const planColumns = `channel_id, mode, schedule, retention_days, updated_at`

func scanPlan(sc scanner) (model.RecordPlan, error) {
	var p model.RecordPlan
	var mode, sched string
	var updated int64
	if err := sc.Scan(&p.ChannelID, &mode, &sched, &p.RetentionDays, &updated); err != nil {
		return p, err
	}
	p.Mode, p.UpdatedAt = model.RecordMode(mode), fromMillis(updated)
	if err := json.Unmarshal([]byte(sched), &p.Schedule); err != nil {
		return p, fmt.Errorf("schedule of channel %d: %w", p.ChannelID, err)
	}
	return p, nil
}

// RecordPlan returns the plan of a channel; a channel without one has the
// plan {Mode: off}.
func (s *Store) RecordPlan(ctx context.Context, channelID int64) (model.RecordPlan, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+planColumns+` FROM recording_plans WHERE channel_id = $1`, channelID)
	p, err := scanPlan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return model.RecordPlan{ChannelID: channelID, Mode: model.RecordOff}, nil
	}
	if err != nil {
		return p, fmt.Errorf("store: recording plan of channel %d: %w", channelID, err)
	}
	return p, nil
}

// RecordPlans returns every stored plan, ordered by channel.
func (s *Store) RecordPlans(ctx context.Context) ([]model.RecordPlan, error) {
	return queryAll(ctx, s, "list recording plans", `SELECT `+planColumns+` FROM recording_plans ORDER BY channel_id`, nil, scanPlan)
}

const exportColumns = `id, requested_by, requested_at, start_ms, end_ms, channels, state, progress, error, bytes, finished_at, released_at`

func scanExport(sc scanner) (model.Export, error) {
	var e model.Export
	var req, start, end, fin, rel int64
	var chans, state string
	if err := sc.Scan(&e.ID, &e.RequestedBy, &req, &start, &end, &chans, &state, &e.Progress, &e.Error, &e.Bytes, &fin, &rel); err != nil {
		return e, err
	}
	e.RequestedAt, e.Start, e.End, e.FinishedAt, e.ReleasedAt = fromMillis(req), fromMillis(start), fromMillis(end), fromMillis(fin), fromMillis(rel)
	e.State = model.ExportState(state)
	if err := json.Unmarshal([]byte(chans), &e.ChannelIDs); err != nil {
		return e, fmt.Errorf("channels of export %d: %w", e.ID, err)
	}
	return e, nil
}

// CreateExport stores a new export and sets e.ID and e.RequestedAt.
func (s *Store) CreateExport(ctx context.Context, e *model.Export) error {
	if len(e.ChannelIDs) == 0 {
		return fmt.Errorf("store: create export: %w", &model.FieldError{Field: "channel_ids", Message: "at least one channel is required"})
	}
	chans, err := json.Marshal(e.ChannelIDs)
	if err != nil {
		return fmt.Errorf("store: create export: %w", err)
	}
	if e.State == "" {
		e.State = model.ExportQueued
	}
	e.RequestedAt = s.nowMillis()
	res, err := s.w.ExecContext(ctx, `INSERT INTO exports (requested_by, requested_at, start_ms, end_ms, channels, state)
VALUES ($1, $2, $3, $4, $5, $6)`, e.RequestedBy, toMillis(e.RequestedAt), toMillis(e.Start), toMillis(e.End), string(chans), string(e.State))
	if err != nil {
		return fmt.Errorf("store: create export: %w", err)
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("store: create export: %w", err)
	}
	return nil
}

// UpdateExport stores the state, progress, error, size and times of e.
func (s *Store) UpdateExport(ctx context.Context, e *model.Export) error {
	res, err := s.w.ExecContext(ctx, `UPDATE exports SET state = $1, progress = $2, error = $3, bytes = $4, finished_at = $5, released_at = $6
WHERE id = $7`, string(e.State), e.Progress, e.Error, e.Bytes, toMillis(e.FinishedAt), toMillis(e.ReleasedAt), e.ID)
	if err != nil {
		return fmt.Errorf("store: update export %d: %w", e.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: update export %d: %w", e.ID, ErrNotFound)
	}
	return nil
}

// GetExport returns the export with the given id.
func (s *Store) GetExport(ctx context.Context, id int64) (model.Export, error) {
	e, err := scanExport(s.r.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("store: export %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("store: export %d: %w", id, err)
	}
	return e, nil
}

// ListExports returns the latest exports first, up to limit; with
// unfinished, only those queued or running.
func (s *Store) ListExports(ctx context.Context, unfinished bool, limit int) ([]model.Export, error) {
	where := ""
	if unfinished {
		where = ` WHERE state IN ('queued', 'running')`
	}
	return queryAll(ctx, s, "list exports", `SELECT `+exportColumns+` FROM exports`+where+` ORDER BY id DESC LIMIT $1`,
		[]any{limit}, scanExport)
}

// LockSegments locks segments for an export: retention and the disk guard
// leave them alone until UnlockExport. Segments deleted since they were
// listed make it fail with ErrNotFound, so that an export never claims a
// segment it could not read.
func (s *Store) LockSegments(ctx context.Context, exportID int64, segmentIDs []int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range segmentIDs {
			ok, err := rowExists(ctx, tx, `SELECT 1 FROM segments WHERE id = $1`, id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("segment %d: %w (deleted by retention meanwhile)", id, ErrNotFound)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO segment_locks (segment_id, export_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, exportID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: lock segments for export %d: %w", exportID, err)
	}
	return nil
}

// UnlockExport releases the segments locked by an export.
func (s *Store) UnlockExport(ctx context.Context, exportID int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM segment_locks WHERE export_id = $1`, exportID); err != nil {
		return fmt.Errorf("store: unlock export %d: %w", exportID, err)
	}
	return nil
}

// LockedSegments returns how many segments an export locks.
func (s *Store) LockedSegments(ctx context.Context, exportID int64) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM segment_locks WHERE export_id = $1`, exportID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: locked segments of export %d: %w", exportID, err)
	}
	return n, nil
}

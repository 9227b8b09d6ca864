package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

func addSegments(t *testing.T, s *Store, channelID int64, start time.Time, n int, d time.Duration) []model.Segment {
	t.Helper()
	var out []model.Segment
	for i := range n {
		st := start.Add(time.Duration(i) * d)
		g := model.Segment{ChannelID: channelID, Start: st, End: st.Add(d), Bytes: 1000,
			Key: fmt.Sprintf("%d/%s.mp4", channelID, st.Format(time.RFC3339)), Location: model.LocationDisk,
			SHA256: "00", Codec: "avc1.64001f", Run: 1}
		if err := s.AddSegment(context.Background(), &g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

func TestSegmentsInRange(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	segs := addSegments(t, s, 1, t0, 10, time.Minute)
	addSegments(t, s, 2, t0, 10, time.Minute)

	got, err := s.Segments(ctx, 1, t0.Add(90*time.Second), t0.Add(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// [10:01:30, 10:04:00) overlaps the segments that start at 10:01, 10:02, 10:03.
	if len(got) != 3 || got[0].ID != segs[1].ID || got[2].ID != segs[3].ID {
		t.Fatalf("got %+v", got)
	}
	if g := got[0]; !g.Start.Equal(segs[1].Start) || !g.End.Equal(segs[1].End) || g.Location != model.LocationDisk || g.Run != 1 {
		t.Errorf("round trip: %+v", g)
	}
	if got, _ := s.Segments(ctx, 1, t0.Add(-time.Hour), t0); len(got) != 0 {
		t.Errorf("a range before the first segment found %d", len(got))
	}
	bad := model.Segment{ChannelID: 1, Start: t0, End: t0.Add(2 * time.Hour), Key: "k", Location: model.LocationDisk}
	if err := s.AddSegment(ctx, &bad); err == nil {
		t.Error("a two-hour segment was accepted; range queries assume at most MaxSegmentDuration")
	}
}

func TestSegmentTotalsAndSpans(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	a := addSegments(t, s, 7, t0, 3, time.Minute)
	addSegments(t, s, 3, t0, 2, time.Minute)
	addSegments(t, s, 12, t0, 1, time.Minute)
	if n, b, err := s.CountSegmentsAt(ctx, model.LocationDisk); err != nil || n != 6 || b != 6000 {
		t.Fatalf("disk totals %d %d %v", n, b, err)
	}
	if err := s.SetSegmentLocation(ctx, a[0].ID, model.LocationS3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSegment(ctx, a[1].ID, model.LocationDisk); err != nil {
		t.Fatal(err)
	}
	n, b, _ := s.CountSegmentsAt(ctx, model.LocationDisk)
	n3, b3, _ := s.CountSegmentsAt(ctx, model.LocationS3)
	if n != 4 || b != 4000 || n3 != 1 || b3 != 1000 {
		t.Errorf("totals after a move and a delete: disk %d/%d, s3 %d/%d", n, b, n3, b3)
	}
	ids, err := s.RecordedChannels(ctx)
	if err != nil || fmt.Sprint(ids) != "[3 7 12]" {
		t.Errorf("recorded channels %v %v", ids, err)
	}
	spans, err := s.SegmentSpans(ctx, 7, t0, t0.Add(time.Hour))
	if err != nil || len(spans) != 2 || !spans[1].Start.Equal(a[2].Start) || spans[1].Bytes != 1000 || spans[1].ChannelID != 7 {
		t.Errorf("spans %+v %v", spans, err)
	}
	// The uploader's and the disk guard's queries use the partial index.
	for _, q := range []string{`SELECT ` + segmentColumns + ` FROM segments WHERE location = 'disk' ORDER BY start_ms LIMIT 5`,
		`SELECT ` + segmentColumns + ` FROM segments WHERE location = 'disk' AND NOT EXISTS (SELECT 1 FROM segment_locks l WHERE l.segment_id = segments.id) ORDER BY start_ms LIMIT 5`} {
		var plan strings.Builder
		rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan.WriteString(detail + "; ")
		}
		rows.Close()
		if !strings.Contains(plan.String(), "segments_disk_start_idx") {
			t.Errorf("query plan does not use segments_disk_start_idx: %s", plan.String())
		}
	}
	if got, err := s.SegmentsAt(ctx, model.LocationDisk, 10); err != nil || len(got) != 4 {
		t.Errorf("segments on the disk: %d %v", len(got), err)
	}
	empty := openTestStore(t)
	if ids, err := empty.RecordedChannels(ctx); err != nil || len(ids) != 0 {
		t.Errorf("an empty index has channels %v %v", ids, err)
	}
	if n, b, err := empty.CountSegmentsAt(ctx, model.LocationS3); n != 0 || b != 0 || err != nil {
		t.Errorf("an empty index counts %d %d %v", n, b, err)
	}
}

func TestLockedSegmentsAreNotDeleted(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	segs := addSegments(t, s, 1, t0, 3, time.Minute)
	e := model.Export{RequestedBy: "duty1", Start: t0, End: t0.Add(time.Minute), ChannelIDs: []int64{1}}
	if err := s.CreateExport(ctx, &e); err != nil {
		t.Fatal(err)
	}
	if err := s.LockSegments(ctx, e.ID, []int64{segs[0].ID, 999}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("locking a missing segment: %v", err)
	}
	if n, _ := s.LockedSegments(ctx, e.ID); n != 0 {
		t.Fatalf("a failed lock left %d locks", n)
	}
	if err := s.LockSegments(ctx, e.ID, []int64{segs[0].ID}); err != nil {
		t.Fatal(err)
	}
	exp, err := s.ExpiredSegments(ctx, 1, t0.Add(time.Hour), 10)
	if err != nil || len(exp) != 2 || exp[0].ID != segs[1].ID {
		t.Fatalf("expired: %+v, %v", exp, err)
	}
	if err := s.DeleteSegment(ctx, segs[0].ID, model.LocationDisk); !errors.Is(err, ErrLocked) {
		t.Fatalf("deleting a locked segment: %v", err)
	}
	if err := s.DeleteSegment(ctx, segs[1].ID, model.LocationDisk); err != nil {
		t.Fatal(err)
	}
	old, err := s.OldestSegments(ctx, model.LocationDisk, 10)
	if err != nil || len(old) != 1 || old[0].ID != segs[2].ID {
		t.Fatalf("oldest: %+v, %v", old, err)
	}
	if err := s.UnlockExport(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSegment(ctx, segs[0].ID, model.LocationDisk); err != nil {
		t.Fatalf("deleting a released segment: %v", err)
	}
	e.State, e.Progress, e.Bytes = model.ExportReleased, 1, 42
	if err := s.UpdateExport(ctx, &e); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetExport(ctx, e.ID)
	if err != nil || got.State != model.ExportReleased || got.Bytes != 42 || got.RequestedBy != "duty1" || len(got.ChannelIDs) != 1 || !got.Start.Equal(t0) {
		t.Fatalf("export round trip: %+v, %v", got, err)
	}
}

func TestRecordPlans(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	ch := createChannels(t, s, "441821101")[0]
	p, err := s.RecordPlan(ctx, ch.ID)
	if err != nil || p.Mode != model.RecordOff {
		t.Fatalf("a channel without a plan: %+v, %v", p, err)
	}
	want := model.RecordPlan{ChannelID: ch.ID, Mode: model.RecordSchedule, RetentionDays: 7,
		Schedule: []model.WeeklyRange{{Weekday: time.Monday, From: 8 * 60, To: 18 * 60}}}
	if err := s.PutRecordPlan(ctx, &want); err != nil {
		t.Fatal(err)
	}
	got, err := s.RecordPlan(ctx, ch.ID)
	if err != nil || got.Mode != want.Mode || got.RetentionDays != 7 || len(got.Schedule) != 1 || got.Schedule[0] != want.Schedule[0] {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := s.PutRecordPlan(ctx, &model.RecordPlan{ChannelID: 999999, Mode: model.RecordContinuous}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a plan for a missing channel: %v", err)
	}
	var fe *model.FieldError
	if err := s.PutRecordPlan(ctx, &model.RecordPlan{ChannelID: ch.ID, Mode: "sometimes"}); !errors.As(err, &fe) || fe.Field != "mode" {
		t.Errorf("a bad mode: %v", err)
	}
	if err := s.DeleteChannel(ctx, ch.ID); err != nil {
		t.Fatal(err)
	}
	if all, err := s.RecordPlans(ctx); err != nil || len(all) != 0 {
		t.Errorf("the plan of a deleted channel remains: %+v, %v", all, err)
	}
}

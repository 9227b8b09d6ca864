package record

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

type repairIndex struct {
	indexed map[string]bool
	added   []model.Segment
}

func (r *repairIndex) SegmentIndexed(_ context.Context, _ int64, _ time.Time, key string) (bool, error) {
	return r.indexed[key], nil
}

func (r *repairIndex) AddSegment(_ context.Context, g *model.Segment) error {
	r.added = append(r.added, *g)
	return nil
}

func TestRepairIndexesWhatACrashLeft(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	f := newFeed(t, 0)
	rn, err := newRun(5, f.tracks, dir, 4*time.Second, time.Second, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	var finished []model.Segment
	var open model.Segment
	rn.onSegment = func(g model.Segment) { finished = append(finished, g) }
	rn.onPart = func(g model.Segment) { open = g }
	for range 15 * 7 { // 7 s: one finished segment, one open
		for _, u := range f.next() {
			if err := rn.write(u); err != nil {
				t.Fatal(err)
			}
		}
		clock.Add(time.Second / 15)
	}
	// The process dies: the open file is not closed, and the write of a
	// part was cut short.
	if len(finished) != 1 || open.Key == finished[0].Key {
		t.Fatalf("finished %d segments; open %q", len(finished), open.Key)
	}
	rn.file.Write([]byte{0, 0, 0x10, 0, 'm', 'o', 'o', 'f', 1, 2, 3})
	rn.file.Close()
	// An empty file (init only) and a file that is not a segment.
	empty := filepath.Join(dir, filepath.FromSlash(SegmentKey(5, clock.Now(), 99)))
	if err := os.WriteFile(empty, rn.init, 0o640); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, filepath.FromSlash(SegmentKey(5, clock.Now().Add(time.Second), 99)))
	if err := os.WriteFile(junk, []byte("not an mp4 at all"), 0o640); err != nil {
		t.Fatal(err)
	}

	idx := &repairIndex{indexed: map[string]bool{finished[0].Key: true}}
	rep, err := Repair(t.Context(), dir, idx, clock.Now().Add(-24*time.Hour), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 4 || rep.Indexed != 1 || rep.Trimmed != 1 || rep.Removed != 1 || rep.Unreadable != 1 {
		t.Fatalf("report %+v", rep)
	}
	g := idx.added[0]
	if g.Key != open.Key || g.Bytes != open.Bytes || !g.Start.Equal(open.Start) || g.Run != open.Run || g.ChannelID != 5 {
		t.Errorf("repaired %+v, the recorder had written %+v", g, open)
	}
	// Everything up to the last written part is kept.
	if d := g.End.Sub(open.End); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("repaired segment ends at %v, the last part at %v", g.End, open.End)
	}
	if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(g.Key))); err != nil || st.Size() != g.Bytes {
		t.Errorf("the file was not trimmed to %d bytes: %v %v", g.Bytes, st.Size(), err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("the init-only file is still there: %v", err)
	}
	if _, err := os.Stat(junk); err != nil {
		t.Errorf("the foreign file was touched: %v", err)
	}
	if d := ffprobeDuration(t, filepath.Join(dir, filepath.FromSlash(g.Key))); d >= 0 && (d < g.Duration().Seconds()-0.1 || d > g.Duration().Seconds()+0.1) {
		t.Errorf("ffprobe says %.3f s, the index %.3f s", d, g.Duration().Seconds())
	}
	// A second scan finds nothing to do.
	idx.indexed[g.Key] = true
	rep, err = Repair(t.Context(), dir, idx, clock.Now().Add(-24*time.Hour), slog.New(slog.DiscardHandler))
	if err != nil || rep.Indexed != 0 || rep.Unreadable != 1 {
		t.Errorf("second scan: %+v, %v", rep, err)
	}
}

package record

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// retentionFixture is a store with channel ids 1 and 2 recorded for a day
// (one 1 MiB file per hour), with real files in a disk store.
type retentionFixture struct {
	st   *store.Store
	disk *blob.Disk
	segs map[int64][]model.Segment
	t0   time.Time
}

func newRetentionFixture(t *testing.T) *retentionFixture {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	disk, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertDivisions(ctx, []model.Division{{Code: "441800", Name: "清远市", Level: model.DivisionLevelCity}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c := model.Channel{Code: fmt.Sprintf("4418000000132000000%d", i+1), Name: "cam", DivisionCode: "441800"}
		if err := st.CreateChannel(ctx, &c); err != nil || c.ID != int64(i+1) {
			t.Fatalf("channel %d: %v", c.ID, err)
		}
	}
	f := &retentionFixture{st: st, disk: disk, segs: map[int64][]model.Segment{},
		t0: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	payload := make([]byte, 1<<20)
	sum := sha256.Sum256(payload)
	for _, ch := range []int64{1, 2} {
		for h := range 24 {
			start := f.t0.Add(time.Duration(h) * time.Hour)
			g := model.Segment{ChannelID: ch, Start: start, End: start.Add(time.Hour), Bytes: int64(len(payload)),
				Key: SegmentKey(ch, start, 1), Location: model.LocationDisk, SHA256: hex.EncodeToString(sum[:]), Codec: "avc1", Run: 1}
			p, _ := disk.Path(g.Key)
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, payload, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := st.AddSegment(ctx, &g); err != nil {
				t.Fatal(err)
			}
			f.segs[ch] = append(f.segs[ch], g)
		}
	}
	return f
}

func (f *retentionFixture) files(t *testing.T) int {
	t.Helper()
	n := 0
	if err := f.disk.List(t.Context(), "", func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *retentionFixture) retention(now time.Time) *Retention {
	return &Retention{Index: f.st, Catalog: &Catalog{Index: f.st, Disk: f.disk}, DefaultAge: 24 * time.Hour,
		Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now },
		FreeSpace: func(string) (uint64, uint64, error) { return 1 << 40, 1 << 40, nil }}
}

func TestRetentionDeletesExpiredButNotLocked(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := t.Context()
	// Channel 2 keeps 2 days; channel 1 the default of 1 day. Lock the
	// first hour of channel 1 in an export.
	if err := f.st.PutRecordPlan(ctx, &model.RecordPlan{ChannelID: 2, Mode: model.RecordContinuous, RetentionDays: 2}); err != nil {
		t.Fatal(err)
	}
	e := model.Export{RequestedBy: "t", Start: f.t0, End: f.t0.Add(time.Hour), ChannelIDs: []int64{1}}
	if err := f.st.CreateExport(ctx, &e); err != nil {
		t.Fatal(err)
	}
	if err := f.st.LockSegments(ctx, e.ID, []int64{f.segs[1][0].ID}); err != nil {
		t.Fatal(err)
	}
	// Noon of the next day: for channel 1 (one day) the hours that ended
	// before noon of the first day expired, 0:00 to 11:00, all but the
	// locked one; channel 2 keeps two days.
	now := f.t0.Add(36 * time.Hour)
	rep, err := f.retention(now).Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Expired != 10 || rep.Guarded != 0 {
		t.Fatalf("report %+v: want 10 expired", rep)
	}
	if n := f.files(t); n != 48-10 {
		t.Errorf("%d files left, want %d", n, 48-10)
	}
	left, _ := f.st.Segments(ctx, 1, f.t0, f.t0.Add(24*time.Hour))
	if len(left) != 14 || left[0].ID != f.segs[1][0].ID || !left[1].Start.Equal(f.t0.Add(11*time.Hour)) {
		t.Errorf("channel 1 keeps %d segments starting with %d; want 14 starting with the locked %d", len(left), left[0].ID, f.segs[1][0].ID)
	}
}

func TestDiskGuardDeletesOldestFirstAndWarns(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := t.Context()
	e := model.Export{RequestedBy: "t", Start: f.t0, End: f.t0.Add(time.Hour), ChannelIDs: []int64{2}}
	if err := f.st.CreateExport(ctx, &e); err != nil {
		t.Fatal(err)
	}
	if err := f.st.LockSegments(ctx, e.ID, []int64{f.segs[2][0].ID}); err != nil {
		t.Fatal(err)
	}
	r := f.retention(f.t0.Add(time.Hour)) // nothing expired yet
	r.MaxBytes = 10 << 20                 // a quota of 10 files
	rep, err := r.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Expired != 0 || rep.Guarded < 38 || rep.SegmentBytes > r.MaxBytes {
		t.Fatalf("report %+v: want at least 38 deleted by the guard and at most 10 MiB left", rep)
	}
	if !strings.Contains(rep.Warning, "over quota") || r.Warning() == "" {
		t.Errorf("no warning raised: %q", rep.Warning)
	}
	// The locked segment survived although it is among the oldest.
	if _, err := f.st.Segment(ctx, f.segs[2][0].ID); err != nil {
		t.Errorf("the locked segment was deleted: %v", err)
	}
	// The newest ones survived.
	if _, err := f.st.Segment(ctx, f.segs[1][23].ID); err != nil {
		t.Errorf("the newest segment was deleted: %v", err)
	}
	// Back within bounds: the warning clears.
	if rep, err := r.Once(ctx); err != nil || rep.Warning != "" || r.Warning() != "" {
		t.Errorf("second pass: %+v, %v", rep, err)
	}

	// Free space below the floor with everything left locked: a warning
	// that says what to do.
	r.MaxBytes = 0
	r.MinFree = 1 << 30
	r.FreeSpace = func(string) (uint64, uint64, error) { return 1 << 20, 1 << 30, nil }
	rep, err = r.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Warning, "disk low") || !strings.Contains(rep.Warning, "release exports") {
		t.Errorf("warning %q", rep.Warning)
	}
	if _, err := f.st.Segment(ctx, f.segs[2][0].ID); err != nil {
		t.Errorf("the locked segment was deleted: %v", err)
	}
}

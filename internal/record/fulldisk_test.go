package record

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/recfile"
	"github.com/xueliang/xueliang/internal/store"
)

// tinyDisk mounts a tmpfs of size bytes for the test, or skips the test
// where that is not possible (not root, no mount).
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("a full disk is simulated with a tmpfs mount, which needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to simulate a full disk: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// TestFullDisk fills a 2 MiB disk: the write that fails leaves the file
// as it was at its last whole part, which is indexed and plays; the disk
// guard then frees space by deleting the oldest segments, and recording
// can go on.
func TestFullDisk(t *testing.T) {
	dir := tinyDisk(t, "2m")
	ctx := t.Context()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	disk, err := blob.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	record := func(frames int) (error, []model.Segment) {
		f := newFeed(t, 0)
		rn, err := newRun(1, f.tracks, dir, 2*time.Second, time.Second, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		var segs []model.Segment
		rn.onSegment = func(g model.Segment) {
			if err := st.AddSegment(ctx, &g); err != nil {
				t.Fatal(err)
			}
			segs = append(segs, g)
		}
		var werr error
		for i := 0; i < frames && werr == nil; i++ {
			for _, u := range f.next() {
				if werr = rn.write(u); werr != nil {
					break
				}
			}
			clock.Add(time.Second / 15)
		}
		cerr := rn.close()
		return errors.Join(werr, cerr), segs
	}

	err, segs := record(15 * 600) // 10 minutes: more than 2 MiB
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "no space left") {
		t.Errorf("the error does not say the disk is full: %v", err)
	}
	if len(segs) < 2 {
		t.Fatalf("%d segments indexed before the disk filled", len(segs))
	}
	// Every indexed segment, the one cut by the full disk included, is
	// whole up to its last part.
	for _, g := range segs {
		path := filepath.Join(dir, filepath.FromSlash(g.Key))
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		sf, err := recfile.Scan(f, fi.Size())
		f.Close()
		if err != nil || sf.Truncated || fi.Size() != g.Bytes || len(sf.Fragments) == 0 {
			t.Fatalf("segment %s after the disk filled: %v, truncated %v, %d bytes, index %d", g.Key, err, sf != nil && sf.Truncated, fi.Size(), g.Bytes)
		}
	}
	last := segs[len(segs)-1]
	t.Logf("the disk filled after %v of recording; %d segments indexed, the last %v long", last.End.Sub(segs[0].Start), len(segs), last.Duration())

	// The disk guard frees space, oldest first, and warns.
	ret := &Retention{Index: st, Catalog: &Catalog{Index: st, Disk: disk}, DefaultAge: 30 * 24 * time.Hour,
		MinFree: 1 << 20, Log: slog.New(slog.DiscardHandler), Now: clock.Now}
	rep, err := ret.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Guarded == 0 || rep.DiskFree < 1<<20 || !strings.Contains(rep.Warning, "disk low") {
		t.Fatalf("disk guard: %+v", rep)
	}
	if _, err := st.Segment(ctx, segs[0].ID); err == nil {
		t.Error("the oldest segment survived the guard")
	}
	if _, err := st.Segment(ctx, last.ID); err != nil {
		t.Errorf("the newest segment was deleted: %v", err)
	}
	// Recording goes on.
	if err, more := record(15 * 5); err != nil || len(more) == 0 {
		t.Errorf("recording after the guard freed space: %v, %d segments", err, len(more))
	}
}

package record

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

// concat is a StitchFunc that writes the files of segs one after the
// other: enough to test the exporter, which does not look inside.
func concat(cat *Catalog) StitchFunc {
	return func(ctx context.Context, w io.Writer, segs []model.Segment, _, _ time.Time) error {
		for _, g := range segs {
			o, err := cat.Open(ctx, g)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, io.NewSectionReader(o, 0, o.Size()))
			o.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func TestExportWritesFilesManifestAndLocks(t *testing.T) {
	f := newRetentionFixture(t) // channels 1 and 2, 24 one-hour segments each
	ctx := t.Context()
	cat := &Catalog{Index: f.st, Disk: f.disk}
	exp, err := NewExporter(f.st, cat, t.TempDir(), concat(cat), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go exp.Run(runCtx)

	wait := func(id int64) model.Export {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			x, err := f.st.GetExport(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if x.State == model.ExportDone || x.State == model.ExportFailed {
				return x
			}
			if time.Now().After(deadline) {
				t.Fatalf("export %d still %s", id, x.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Refused at once: a range too long, no channel, a channel twice, an unknown channel.
	for _, c := range []struct {
		ids        []int64
		start, end time.Time
	}{
		{[]int64{1}, f.t0, f.t0.Add(25 * time.Hour)},
		{nil, f.t0, f.t0.Add(time.Hour)},
		{[]int64{1, 1}, f.t0, f.t0.Add(time.Hour)},
		{[]int64{99}, f.t0, f.t0.Add(time.Hour)},
	} {
		if _, err := exp.Submit(ctx, "duty1", c.ids, c.start, c.end); err == nil {
			t.Errorf("Submit(%v, %v) accepted", c.ids, c.end.Sub(c.start))
		}
	}

	x, err := exp.Submit(ctx, "duty1", []int64{1, 2}, f.t0.Add(90*time.Minute), f.t0.Add(150*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	x = wait(x.ID)
	if x.State != model.ExportDone || x.Progress != 1 {
		t.Fatalf("export: %+v", x)
	}
	files, err := exp.Files(x.ID)
	if err != nil || len(files) != 4 {
		t.Fatalf("files %+v %v", files, err)
	}
	// SHA256SUMS checks every other file, as sha256sum -c would.
	sums, err := os.ReadFile(filepath.Join(exp.Dir, fmt.Sprint(x.ID), SumsName))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		b, err := os.ReadFile(filepath.Join(exp.Dir, fmt.Sprint(x.ID), name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: SHA256SUMS says %s", name, sum)
		}
	}
	var m Manifest
	b, _ := os.ReadFile(filepath.Join(exp.Dir, fmt.Sprint(x.ID), ManifestName))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	// [1:30, 2:30) touches the segments of 1:00 and 2:00 of each channel.
	if m.RequestedBy != "duty1" || len(m.Channels) != 2 || len(m.Channels[0].Segments) != 2 || m.Channels[0].Code == "" ||
		m.Channels[0].SHA256 == "" || !m.Start.Equal(f.t0.Add(90*time.Minute)) {
		t.Errorf("manifest %+v", m)
	}
	if n, _ := f.st.LockedSegments(ctx, x.ID); n != 4 {
		t.Errorf("the export locks %d segments, want 4", n)
	}
	// A path outside the export's folder is refused.
	for _, name := range []string{"../../etc/passwd", ".hidden", "", "nope.mp4"} {
		if _, err := exp.Path(x.ID, name); err == nil {
			t.Errorf("Path(%q) accepted", name)
		}
	}
	if _, err := exp.Release(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.st.LockedSegments(ctx, x.ID); n != 0 {
		t.Errorf("a released export locks %d segments", n)
	}
	if _, err := os.Stat(filepath.Join(exp.Dir, fmt.Sprint(x.ID))); !os.IsNotExist(err) {
		t.Errorf("a released export's folder remains: %v", err)
	}

	// A segment altered after it was recorded fails the export, which
	// says which file, and locks nothing.
	p, _ := f.disk.Path(f.segs[1][5].Key)
	if err := os.WriteFile(p, append(make([]byte, 1<<20-1), 1), 0o640); err != nil {
		t.Fatal(err)
	}
	x, err = exp.Submit(ctx, "duty1", []int64{1}, f.t0.Add(5*time.Hour), f.t0.Add(6*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	x = wait(x.ID)
	if x.State != model.ExportFailed || !strings.Contains(x.Error, f.segs[1][5].Key) || !strings.Contains(x.Error, "altered") {
		t.Errorf("export of a tampered segment: %+v", x)
	}
	if n, _ := f.st.LockedSegments(ctx, x.ID); n != 0 {
		t.Errorf("a failed export locks %d segments", n)
	}
	if _, err := exp.Release(ctx, x.ID); err != nil {
		t.Errorf("releasing a failed export: %v", err)
	}
}

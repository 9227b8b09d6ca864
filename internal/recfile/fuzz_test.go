package recfile_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/recfile"
	"github.com/xueliang/xueliang/internal/recfile/recfiletest"
)

// FuzzScan checks that Scan never panics nor over-reads on any input, and
// that what it accepts is consistent and can be read back by ReadSamples,
// PatchMoof and RewriteInit.
func FuzzScan(f *testing.F) {
	for _, a := range []recfiletest.Audio{recfiletest.AudioNone, recfiletest.AudioAAC, recfiletest.AudioLPCM} {
		w, err := recfiletest.NewWriter(recfiletest.Options{Clip: recfiletest.Testsrc160, Audio: a, PartDuration: 500 * time.Millisecond})
		if err != nil {
			f.Fatal(err)
		}
		s, err := w.Segment(time.Second)
		if err != nil {
			f.Fatal(err)
		}
		b := s.Bytes
		f.Add(b)
		f.Add(b[:s.InitSize])
		f.Add(b[:len(b)-len(b)/3])
		f.Add(b[:s.InitSize+20])
		if a == recfiletest.AudioAAC {
			sf, err := recfile.Scan(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				f.Fatal(err)
			}
			init, err := recfile.RewriteInit(sf.InitBytes, recfile.InitEdit{Created: time.Unix(1e9, 0), Duration: time.Second,
				Edits: map[int]recfile.Edit{1: {MediaTime: 3}, 2: {MediaTime: 1}}})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(append(init, b[sf.InitSize:]...))
		}
	}
	f.Add([]byte("\x00\x00\x00\x08ftyp"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cr := &countingReader{r: bytes.NewReader(b)}
		file, err := recfile.Scan(cr, int64(len(b)))
		if cr.largest > recfile.MaxInitSize+recfile.MaxMoofSize {
			t.Fatalf("read %d bytes at once", cr.largest)
		}
		if err != nil {
			return
		}
		if file.InitSize <= 0 || file.InitSize > file.ValidSize || file.ValidSize > int64(len(b)) || int64(len(file.InitBytes)) != file.InitSize {
			t.Fatalf("sizes: init %d valid %d of %d", file.InitSize, file.ValidSize, len(b))
		}
		if file.MainTrack() == nil {
			t.Fatal("no main track")
		}
		end := file.InitSize
		for i, fr := range file.Fragments {
			if fr.Offset < end || fr.MoofSize <= 0 || fr.MoofSize >= fr.Size || fr.Offset+fr.Size > file.ValidSize {
				t.Fatalf("fragment %d: %+v after %d, valid %d", i, fr, end, file.ValidSize)
			}
			end = fr.Offset + fr.Size
			ts, err := recfile.ReadSamples(bytes.NewReader(b), fr)
			if err != nil {
				t.Fatalf("fragment %d: ReadSamples: %v", i, err)
			}
			if len(ts) != len(fr.Tracks) {
				t.Fatalf("fragment %d: %d tracks, Scan saw %d", i, len(ts), len(fr.Tracks))
			}
			for j := range ts {
				if len(ts[j].Samples) != fr.Tracks[j].Samples || ts[j].BaseTime != fr.Tracks[j].BaseTime {
					t.Fatalf("fragment %d track %d differs", i, j)
				}
			}
			moof := bytes.Clone(b[fr.Offset : fr.Offset+fr.MoofSize])
			_ = recfile.PatchMoof(moof, 1, func(_ int, old uint64) uint64 { return old / 2 })
			_, _ = recfile.ReadPart(bytes.NewReader(b), fr)
		}
		init, err := recfile.RewriteInit(file.InitBytes, recfile.InitEdit{Created: time.Unix(1e9, 0), Duration: time.Second,
			Edits: map[int]recfile.Edit{file.Tracks[0].ID: {MediaTime: 1}}})
		if err != nil {
			t.Fatalf("RewriteInit of an init Scan accepted: %v", err)
		}
		if _, err := recfile.Scan(bytes.NewReader(init), int64(len(init))); err != nil {
			t.Fatalf("Scan of the rewritten init: %v", err)
		}
	})
}

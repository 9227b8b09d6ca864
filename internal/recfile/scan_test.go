package recfile_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mcodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/xueliang/xueliang/internal/recfile"
	"github.com/xueliang/xueliang/internal/recfile/recfiletest"
)

// segment writes one file of d with the given audio.
func segment(t testing.TB, audio recfiletest.Audio, d time.Duration) *recfiletest.Segment {
	t.Helper()
	w, err := recfiletest.NewWriter(recfiletest.Options{Audio: audio})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Segment(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scan(t testing.TB, b []byte) *recfile.File {
	t.Helper()
	f, err := recfile.Scan(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return f
}

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		audio  recfiletest.Audio
		codecs string
	}{
		{"video", recfiletest.AudioNone, "avc1.64000c"},
		{"aac", recfiletest.AudioAAC, "avc1.64000c,mp4a.40.2"},
		{"lpcm", recfiletest.AudioLPCM, "avc1.64000c,ipcm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := segment(t, tc.audio, 4*time.Second)
			f := scan(t, s.Bytes)
			if got := f.Codecs(); got != tc.codecs {
				t.Errorf("Codecs = %q, want %q", got, tc.codecs)
			}
			if f.InitSize != int64(s.InitSize) || f.ValidSize != int64(len(s.Bytes)) || f.Truncated {
				t.Errorf("InitSize %d ValidSize %d Truncated %v, want %d %d false", f.InitSize, f.ValidSize, f.Truncated, s.InitSize, len(s.Bytes))
			}
			if f.Duration != 4*time.Second || len(f.Fragments) != s.Parts {
				t.Errorf("Duration %v, %d fragments, want 4s, %d", f.Duration, len(f.Fragments), s.Parts)
			}
			if v := f.MainTrack(); v == nil || v.Kind != recfile.KindVideo || v.TimeScale != 90000 || v.ID != 1 {
				t.Errorf("MainTrack = %+v", v)
			}
			end := f.InitSize
			var video, audio uint64
			for i, fr := range f.Fragments {
				// 2 s GOPs in fragments of 1 s: key, not key, key...
				if fr.Key != (i%2 == 0) || fr.Sequence != uint32(i+1) || fr.Offset != end {
					t.Errorf("fragment %d: %+v", i, fr)
				}
				if fr.Start != time.Duration(i)*time.Second || fr.Duration != time.Second {
					t.Errorf("fragment %d: start %v duration %v", i, fr.Start, fr.Duration)
				}
				end = fr.Offset + fr.Size
				v, ok := fr.Track(1)
				if !ok || v.BaseTime != video || v.Samples != 15 {
					t.Errorf("fragment %d: video %+v, want base %d", i, v, video)
				}
				video = v.End()
				if a, ok := fr.Track(2); ok {
					if a.BaseTime != audio {
						t.Errorf("fragment %d: audio base %d, want %d", i, a.BaseTime, audio)
					}
					audio = a.End()
				}
			}
			if (audio > 0) != (tc.audio != recfiletest.AudioNone) {
				t.Errorf("audio track: %d ticks", audio)
			}
		})
	}
}

func TestScanTruncated(t *testing.T) {
	s := segment(t, recfiletest.AudioAAC, 4*time.Second)
	full := scan(t, s.Bytes)
	last := full.Fragments[len(full.Fragments)-1]
	prevEnd := last.Offset
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"moof header", s.Bytes[:last.Offset+4]},
		{"inside moof", s.Bytes[:last.Offset+last.MoofSize/2]},
		{"moof without mdat", s.Bytes[:last.Offset+last.MoofSize]},
		{"mdat header", s.Bytes[:last.Offset+last.MoofSize+6]},
		{"inside mdat", s.Bytes[:last.Offset+last.Size-1]},
		{"zero tail", append(append([]byte(nil), s.Bytes[:prevEnd]...), make([]byte, 4096)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := scan(t, tc.b)
			if !f.Truncated || f.ValidSize != prevEnd || len(f.Fragments) != len(full.Fragments)-1 {
				t.Errorf("Truncated %v ValidSize %d (%d fragments), want true %d (%d)", f.Truncated, f.ValidSize, len(f.Fragments), prevEnd, len(full.Fragments)-1)
			}
		})
	}
	t.Run("init only", func(t *testing.T) {
		f := scan(t, s.Bytes[:s.InitSize])
		if f.Truncated || len(f.Fragments) != 0 || f.ValidSize != int64(s.InitSize) || f.Duration != 0 {
			t.Errorf("got %+v", f)
		}
	})
	for _, n := range []int{0, 7, 20, s.InitSize - 1} {
		_, err := recfile.Scan(bytes.NewReader(s.Bytes[:n]), int64(n))
		var fe *recfile.FormatError
		if !errors.Is(err, recfile.ErrTruncated) || !errors.As(err, &fe) {
			t.Errorf("cut at %d: err = %v, want ErrTruncated", n, err)
		}
	}
}

// box returns a box of type typ around payload.
func box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func TestScanNotSegment(t *testing.T) {
	s := segment(t, recfiletest.AudioNone, 2*time.Second)
	init := s.Bytes[:s.InitSize]
	frag := s.Bytes[s.InitSize:]
	f := scan(t, s.Bytes)
	moofSize := int(f.Fragments[0].MoofSize)
	withMoof := func(edit func(moof []byte)) []byte {
		b := append([]byte(nil), s.Bytes...)
		edit(b[s.InitSize : s.InitSize+moofSize])
		return b
	}
	be := binary.BigEndian
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"text", []byte("#EXTM3U\n#EXT-X-VERSION:7\n"), "box at offset 0: not an MP4 box"},
		{"moov first", append(box("moov", []byte("xxxx")), init...), `box at offset 0: want ftyp, got "moov"`},
		{"no moov", append(append([]byte(nil), init[:be.Uint32(init)]...), frag...), "want moov, got \"moof\""},
		{"mdat first", append(append([]byte(nil), init...), box("mdat", []byte("data"))...), "mdat without a moof"},
		{"junk box", append(append([]byte(nil), init...), box("abcd")...), `unexpected box "abcd"`},
		{"moof then free", append(append(append([]byte(nil), init...), frag[:moofSize]...), box("free", make([]byte, 16))...), "want mdat after the moof"},
		{"tiny size", append(append([]byte(nil), init...), 0, 0, 0, 3, 'm', 'o', 'o', 'f'), "invalid size 3"},
		{"huge moof", append(append(append([]byte(nil), init...), 0, 0x7f, 0, 0, 'm', 'o', 'o', 'f'), make([]byte, 1<<21)...), "moof of"},
		{"sample count", withMoof(func(m []byte) {
			i := bytes.Index(m, []byte("trun"))
			be.PutUint32(m[i+8:], 1<<31)
		}), "samples, more than"},
		{"sample size", withMoof(func(m []byte) {
			i := bytes.Index(m, []byte("trun"))
			be.PutUint32(m[i+20:], 1<<30) // size of the first sample
		}), "outside the mdat payload"},
		{"data offset", withMoof(func(m []byte) {
			i := bytes.Index(m, []byte("trun"))
			be.PutUint32(m[i+12:], 0x80000000) // data_offset
		}), "before the moof"},
		{"unknown track", withMoof(func(m []byte) {
			i := bytes.Index(m, []byte("tfhd"))
			be.PutUint32(m[i+8:], 9)
		}), "track 9, which the moov lacks"},
		{"no tfdt", withMoof(func(m []byte) {
			i := bytes.Index(m, []byte("tfdt"))
			copy(m[i:], "free")
		}), "no tfdt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := recfile.Scan(bytes.NewReader(tc.b), int64(len(tc.b)))
			if !errors.Is(err, recfile.ErrFormat) || !strings.HasPrefix(err.Error(), "recfile: box at offset ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrFormat with %q", err, tc.want)
			}
		})
	}
}

// countingReader records the reads of Scan.
type countingReader struct {
	r       *bytes.Reader
	mu      sync.Mutex
	n       int
	largest int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.n++
	c.largest = max(c.largest, len(p))
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func TestScanReads(t *testing.T) {
	s := segment(t, recfiletest.AudioAAC, 8*time.Second)
	cr := &countingReader{r: bytes.NewReader(s.Bytes)}
	f, err := recfile.Scan(cr, int64(len(s.Bytes)))
	if err != nil {
		t.Fatal(err)
	}
	// One read for the init, one or two per fragment (the mdat header is
	// usually in the same read as the moof); none of the sample data.
	if cr.n > 1+2*len(f.Fragments) || cr.largest > 8<<10 {
		t.Errorf("%d reads, largest %d bytes, for %d fragments", cr.n, cr.largest, len(f.Fragments))
	}
	// A size past the end of the data is an I/O error, not a format error.
	_, err = recfile.Scan(bytes.NewReader(s.Bytes), int64(len(s.Bytes))+100)
	if err == nil || errors.Is(err, recfile.ErrFormat) {
		t.Errorf("size past the end: err = %v", err)
	}
}

func TestPatchMoof(t *testing.T) {
	s := segment(t, recfiletest.AudioLPCM, 2*time.Second)
	b := append([]byte(nil), s.Bytes...)
	f := scan(t, b)
	for i, fr := range f.Fragments {
		moof := b[fr.Offset : fr.Offset+fr.MoofSize]
		err := recfile.PatchMoof(moof, uint32(100+i), func(id int, old uint64) uint64 { return old + uint64(id)*1000 })
		if err != nil {
			t.Fatal(err)
		}
	}
	g := scan(t, b)
	for i, fr := range g.Fragments {
		if fr.Sequence != uint32(100+i) {
			t.Errorf("fragment %d: sequence %d", i, fr.Sequence)
		}
		for j, tr := range fr.Tracks {
			if want := f.Fragments[i].Tracks[j].BaseTime + uint64(tr.ID)*1000; tr.BaseTime != want {
				t.Errorf("fragment %d track %d: base %d, want %d", i, tr.ID, tr.BaseTime, want)
			}
		}
	}
	if g.Duration != f.Duration {
		t.Errorf("duration %v, want %v", g.Duration, f.Duration)
	}
}

func TestRewriteInit(t *testing.T) {
	s := segment(t, recfiletest.AudioAAC, 2*time.Second)
	f := scan(t, s.Bytes)
	created := time.Date(2026, 11, 29, 10, 15, 0, 0, time.UTC)
	init, err := recfile.RewriteInit(f.InitBytes, recfile.InitEdit{
		Created:  created,
		Duration: 2 * time.Second,
		Edits: map[int]recfile.Edit{
			1: {MediaTime: 30, Duration: 1500 * time.Millisecond},
			2: {MediaTime: 5, Duration: 1500 * time.Millisecond},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(init, []byte("mehd")) || bytes.Contains(f.InitBytes, []byte("edts")) {
		t.Error("mehd missing, or edts in the original")
	}
	b := append(init, s.Bytes[f.InitSize:]...)
	g := scan(t, b)
	if !g.Created.Equal(created) {
		t.Errorf("Created = %v", g.Created)
	}
	if e := g.Tracks[0].Edit; e == nil || *e != (recfile.Edit{MediaTime: 30, Duration: 1500 * time.Millisecond}) {
		t.Errorf("video edit = %+v", e)
	}
	if e := g.Tracks[1].Edit; e == nil || e.MediaTime != 5 {
		t.Errorf("audio edit = %+v", e)
	}
	if !g.SameTracks(f) || g.Codecs() != f.Codecs() || len(g.Fragments) != len(f.Fragments) {
		t.Errorf("tracks or fragments changed: %q %d", g.Codecs(), len(g.Fragments))
	}
	// Rewriting the rewritten init replaces its boxes rather than adding.
	again, err := recfile.RewriteInit(init, recfile.InitEdit{Created: created, Duration: 2 * time.Second, Edits: map[int]recfile.Edit{
		1: {MediaTime: 30, Duration: 1500 * time.Millisecond},
		2: {MediaTime: 5, Duration: 1500 * time.Millisecond},
	}})
	if err != nil || !bytes.Equal(again, init) {
		t.Errorf("second rewrite differs (err %v)", err)
	}
}

func TestReadSamplesAndPart(t *testing.T) {
	s := segment(t, recfiletest.AudioAAC, 2*time.Second)
	f := scan(t, s.Bytes)
	r := bytes.NewReader(s.Bytes)
	for i, fr := range f.Fragments {
		ts, err := recfile.ReadSamples(r, fr)
		if err != nil {
			t.Fatal(err)
		}
		part, err := recfile.ReadPart(r, fr)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != len(fr.Tracks) || len(part.Tracks) != len(ts) {
			t.Fatalf("fragment %d: %d tracks, %d in part, want %d", i, len(ts), len(part.Tracks), len(fr.Tracks))
		}
		for j, tr := range ts {
			pt := part.Tracks[j]
			var dur uint64
			for k, smp := range tr.Samples {
				ps := pt.Samples[k]
				if smp.Duration != ps.Duration || int(smp.Size) != len(ps.Payload) || smp.Sync == ps.IsNonSyncSample {
					t.Errorf("fragment %d track %d sample %d: %+v vs %d %d %v", i, tr.ID, k, smp, ps.Duration, len(ps.Payload), ps.IsNonSyncSample)
				}
				dur += uint64(smp.Duration)
			}
			if tr.ID != fr.Tracks[j].ID || tr.BaseTime != fr.Tracks[j].BaseTime || dur != fr.Tracks[j].Duration || uint64(pt.BaseTime) != tr.BaseTime {
				t.Errorf("fragment %d track %d: %d %d %d", i, tr.ID, tr.BaseTime, dur, pt.BaseTime)
			}
			for k, smp := range tr.Samples {
				if got := s.Bytes[smp.Offset : smp.Offset+int64(smp.Size)]; !bytes.Equal(got, pt.Samples[k].Payload) {
					t.Errorf("fragment %d track %d sample %d: data at offset %d differs", i, tr.ID, k, smp.Offset)
				}
			}
			if tr.ID == 1 && tr.Samples[0].Sync != fr.Key {
				t.Errorf("fragment %d: first sample sync %v, Key %v", i, tr.Samples[0].Sync, fr.Key)
			}
		}
	}
}

func TestKind(t *testing.T) {
	if recfile.KindVideo.String() != "video" || recfile.KindAudio.String() != "audio" || recfile.Kind(9).String() != "Kind(9)" {
		t.Error("Kind.String")
	}
}

// TestAppendMoof rebuilds every fragment from its samples: the bytes are
// those that mediacommon wrote.
func TestAppendMoof(t *testing.T) {
	for _, a := range []recfiletest.Audio{recfiletest.AudioNone, recfiletest.AudioAAC, recfiletest.AudioLPCM} {
		s := segment(t, a, 4*time.Second)
		f := scan(t, s.Bytes)
		r := bytes.NewReader(s.Bytes)
		for i, fr := range f.Fragments {
			ts, err := recfile.ReadSamples(r, fr)
			if err != nil {
				t.Fatal(err)
			}
			b := recfile.AppendMoof(nil, fr.Sequence, ts)
			var payload uint64
			for _, tr := range ts {
				for _, smp := range tr.Samples {
					payload += uint64(smp.Size)
				}
			}
			b = recfile.AppendMdatHeader(b, payload)
			for _, tr := range ts {
				for _, smp := range tr.Samples {
					b = append(b, s.Bytes[smp.Offset:smp.Offset+int64(smp.Size)]...)
				}
			}
			if want := s.Bytes[fr.Offset : fr.Offset+fr.Size]; !bytes.Equal(b, want) {
				t.Fatalf("audio %d fragment %d: rebuilt differs (%d bytes, want %d)", a, i, len(b), len(want))
			}
		}
	}
	if recfile.MdatHeaderSize(1<<32) != 16 || len(recfile.AppendMdatHeader(nil, 1<<32)) != 16 {
		t.Error("largesize mdat header")
	}
}

// TestScanH265 reads a file with an H.265 track (parameter sets of
// mediacommon's tests; the sample is not a real picture).
func TestScanH265(t *testing.T) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: &mcodecs.H265{
		VPS: []byte{0x01, 0x02, 0x03, 0x04},
		SPS: []byte{
			0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
			0x00, 0x78, 0xa0, 0x03, 0xc0, 0x80, 0x10, 0xe5, 0x96, 0x66, 0x69, 0x24, 0xca, 0xe0, 0x10, 0x00,
			0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x01, 0xe0, 0x80,
		},
		PPS: []byte{0x08},
	}}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	part := fmp4.Part{SequenceNumber: 1, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: 90000, Samples: []*fmp4.Sample{
		{Duration: 3000, Payload: []byte{0, 0, 0, 2, 0x26, 0x01}},
		{Duration: 3000, IsNonSyncSample: true, Payload: []byte{0, 0, 0, 2, 0x02, 0x01}},
	}}}}
	if err := part.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	f := scan(t, buf.Bytes())
	if c := f.Codecs(); c != "hvc1.1.6.L120.90" || f.Tracks[0].Kind != recfile.KindVideo {
		t.Errorf("Codecs = %q, kind %v", c, f.Tracks[0].Kind)
	}
	if len(f.Fragments) != 1 || !f.Fragments[0].Key || f.Duration != time.Second/15 {
		t.Errorf("fragments %+v, duration %v", f.Fragments, f.Duration)
	}
}

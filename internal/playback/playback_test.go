package playback_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/playback"
	"github.com/xueliang/xueliang/internal/recfile"
	"github.com/xueliang/xueliang/internal/recfile/recfiletest"
)

// t0 is the wall-clock start of the recording of the tests.
var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// store is an in-memory blob store of segment files. It counts the
// objects it opens and that are closed.
type store struct {
	files map[string][]byte

	mu     sync.Mutex
	opened int
	closed int
}

type object struct {
	*bytes.Reader
	s    *store
	size int64
	once sync.Once
}

func (o *object) Size() int64 { return o.size }

func (o *object) Close() error {
	o.once.Do(func() {
		o.s.mu.Lock()
		o.s.closed++
		o.s.mu.Unlock()
	})
	return nil
}

func (s *store) open(_ context.Context, seg model.Segment) (blob.Object, error) {
	b, ok := s.files[seg.Key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", seg.Key, blob.ErrNotFound)
	}
	s.mu.Lock()
	s.opened++
	s.mu.Unlock()
	return &object{Reader: bytes.NewReader(b), s: s, size: int64(len(b))}, nil
}

func (s *store) checkClosed(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened != s.closed {
		t.Errorf("%d objects opened, %d closed", s.opened, s.closed)
	}
}

// The recording of the tests (t0 + seconds):
//
//	run 1: a.mp4 [0, 6), b.mp4 [6, 12)  H.264 320x240 + AAC
//	gap of 5 s
//	run 2: c.mp4 [17, 23)               same tracks, decode times from 100 s
//	gap of 2 s
//	run 3: d.mp4 [25, 29)               H.264 160x120, no audio
//
// Keyframes every 2 s, fragments of 1 s.
type fixture struct {
	segs  []model.Segment
	files map[string][]byte
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
	fixtureErr  error
)

func recording(t *testing.T) *fixture {
	t.Helper()
	fixtureOnce.Do(func() { fixtureVal, fixtureErr = buildFixture() })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureVal
}

func buildFixture() (*fixture, error) {
	fx := &fixture{files: map[string][]byte{}}
	add := func(w *recfiletest.Writer, key string, run int64, start time.Duration, d time.Duration) error {
		s, err := w.Segment(d)
		if err != nil {
			return err
		}
		f, err := recfile.Scan(bytes.NewReader(s.Bytes), int64(len(s.Bytes)))
		if err != nil {
			return err
		}
		fx.files[key] = s.Bytes
		fx.segs = append(fx.segs, model.Segment{
			ID: int64(len(fx.segs) + 1), ChannelID: 1, Key: key, Run: run,
			Start: t0.Add(start), End: t0.Add(start + s.Duration),
			Bytes: int64(len(s.Bytes)), Codec: f.Codecs(), Location: model.LocationDisk,
		})
		return nil
	}
	w, err := recfiletest.NewWriter(recfiletest.Options{Audio: recfiletest.AudioAAC})
	if err != nil {
		return nil, err
	}
	if err := add(w, "a.mp4", 1, 0, 6*time.Second); err != nil {
		return nil, err
	}
	if err := add(w, "b.mp4", 1, 6*time.Second, 6*time.Second); err != nil {
		return nil, err
	}
	w2, err := recfiletest.NewWriter(recfiletest.Options{Audio: recfiletest.AudioAAC, BaseTime: 100 * time.Second})
	if err != nil {
		return nil, err
	}
	if err := add(w2, "c.mp4", 2, 17*time.Second, 6*time.Second); err != nil {
		return nil, err
	}
	w3, err := recfiletest.NewWriter(recfiletest.Options{Clip: recfiletest.Testsrc160})
	if err != nil {
		return nil, err
	}
	if err := add(w3, "d.mp4", 3, 25*time.Second, 4*time.Second); err != nil {
		return nil, err
	}
	return fx, nil
}

// overlapping returns the segments that overlap [start, end), as the index
// would.
func overlapping(segs []model.Segment, start, end time.Time) []model.Segment {
	var out []model.Segment
	for _, s := range segs {
		if s.Start.Before(end) && s.End.After(start) {
			out = append(out, s)
		}
	}
	return out
}

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestPlan(t *testing.T) {
	fx := recording(t)
	for _, tc := range []struct {
		name        string
		from, to    float64 // seconds after t0
		preroll     time.Duration
		duration    time.Duration
		discontinue int  // EXT-X-DISCONTINUITY tags
		mp4Short    bool // the MP4 stops at run 3
		exact       bool // all of the range is recorded
	}{
		// Keyframes every 2 s from the start of each run.
		{name: "mid-GOP", from: 3.5, to: 5.2, preroll: 1500 * time.Millisecond, duration: 1700 * time.Millisecond, exact: true},
		{name: "at a keyframe", from: 2, to: 4, duration: 2 * time.Second, exact: true},
		{name: "across files", from: 4.3, to: 9.1, preroll: 300 * time.Millisecond, duration: 4800 * time.Millisecond, exact: true},
		{name: "across the gap", from: 10, to: 20, duration: 5 * time.Second, discontinue: 1},
		{name: "start in the gap", from: 14, to: 19, duration: 2 * time.Second},
		{name: "end in the gap", from: 11.5, to: 15, preroll: 1500 * time.Millisecond, duration: 500 * time.Millisecond},
		{name: "before the recording", from: -5, to: 1, duration: time.Second},
		{name: "whole", from: -1, to: 40, duration: 22 * time.Second, discontinue: 2, mp4Short: true},
		{name: "codec change", from: 21, to: 27, duration: 4 * time.Second, discontinue: 1, mp4Short: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end := t0.Add(sec(tc.from)), t0.Add(sec(tc.to))
			st := &store{files: fx.files}
			p, err := playback.NewPlan(context.Background(), overlapping(fx.segs, start, end), st.open, start, end)
			if err != nil {
				t.Fatal(err)
			}
			st.checkClosed(t)
			if d := p.Preroll - tc.preroll; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("Preroll = %v, want %v", p.Preroll, tc.preroll)
			}
			if d := p.Duration - tc.duration; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("Duration = %v, want %v", p.Duration, tc.duration)
			}
			if p.Postroll < 0 || p.Postroll >= time.Second {
				t.Errorf("Postroll = %v", p.Postroll)
			}
			if (p.MP4Duration < p.Duration) != tc.mp4Short {
				t.Errorf("MP4Duration = %v, Duration %v", p.MP4Duration, p.Duration)
			}

			pl := checkPlaylist(t, p, fx.files)
			if pl.discontinuities != tc.discontinue {
				t.Errorf("%d discontinuities, want %d", pl.discontinuities, tc.discontinue)
			}

			var mp4 bytes.Buffer
			if err := p.WriteMP4(context.Background(), &mp4); err != nil {
				t.Fatal(err)
			}
			st.checkClosed(t)
			n := checkMP4(t, p, mp4.Bytes())
			ffprobe(t, mp4.Bytes(), p.MP4Duration, n)
			if tc.exact {
				// All recorded: the MP4 is the range asked for.
				if d := p.MP4Duration - end.Sub(start); d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("MP4Duration %v, range %v", p.MP4Duration, end.Sub(start))
				}
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	fx := recording(t)
	st := &store{files: fx.files}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		from, to float64
		want     error
	}{
		{"inside the gap", 13, 16, playback.ErrNoRecording},
		{"after the recording", 30, 40, playback.ErrNoRecording},
		{"empty", 3, 3, playback.ErrInvalidRange},
		{"reversed", 5, 3, playback.ErrInvalidRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end := t0.Add(sec(tc.from)), t0.Add(sec(tc.to))
			// All the segments: NewPlan must find the range empty itself.
			_, err := playback.NewPlan(ctx, fx.segs, st.open, start, end)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("no segments", func(t *testing.T) {
		_, err := playback.NewPlan(ctx, nil, st.open, t0, t0.Add(time.Second))
		if !errors.Is(err, playback.ErrNoRecording) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		segs := []model.Segment{fx.segs[0]}
		segs[0].Key = "gone.mp4"
		_, err := playback.NewPlan(ctx, segs, st.open, t0, t0.Add(time.Second))
		if !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not a segment", func(t *testing.T) {
		bad := &store{files: map[string][]byte{"a.mp4": []byte("#EXTM3U\n")}}
		_, err := playback.NewPlan(ctx, fx.segs[:1], bad.open, t0, t0.Add(time.Second))
		if !errors.Is(err, recfile.ErrFormat) {
			t.Fatalf("err = %v", err)
		}
		bad.checkClosed(t)
	})
	st.checkClosed(t)
}

// TestPlanMissingFile plays across a file of a run that is gone from the
// index: the files around it do not follow each other, so the playlist
// has a discontinuity and the MP4 closes the gap. The audio is PCM.
func TestPlanMissingFile(t *testing.T) {
	w, err := recfiletest.NewWriter(recfiletest.Options{Audio: recfiletest.AudioLPCM})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var segs []model.Segment
	for i := range 3 {
		s, err := w.Segment(4 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("x%d.mp4", i)
		files[key] = s.Bytes
		start := t0.Add(time.Duration(i) * 4 * time.Second)
		segs = append(segs, model.Segment{Key: key, Run: 7, Start: start, End: start.Add(s.Duration), Bytes: int64(len(s.Bytes))})
	}
	st := &store{files: files}
	start, end := t0.Add(sec(2.5)), t0.Add(sec(10.25))
	p, err := playback.NewPlan(context.Background(), []model.Segment{segs[0], segs[2]}, st.open, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if p.Preroll != 500*time.Millisecond || p.Duration != 3750*time.Millisecond || p.Postroll != 750*time.Millisecond {
		t.Errorf("Preroll %v Duration %v Postroll %v, want 500ms 3.75s 750ms", p.Preroll, p.Duration, p.Postroll)
	}
	if pl := checkPlaylist(t, p, files); pl.discontinuities != 1 {
		t.Errorf("%d discontinuities, want 1", pl.discontinuities)
	}
	var mp4 bytes.Buffer
	if err := p.WriteMP4(context.Background(), &mp4); err != nil {
		t.Fatal(err)
	}
	n := checkMP4(t, p, mp4.Bytes())
	ffprobe(t, mp4.Bytes(), p.Duration, n)
	st.checkClosed(t)
}

// TestPlanOpenSegment plays a segment that is still being written: only
// the committed bytes (Segment.Bytes) count, even though the file holds
// more.
func TestPlanOpenSegment(t *testing.T) {
	fx := recording(t)
	c := fx.segs[2]
	f, err := recfile.Scan(bytes.NewReader(fx.files[c.Key]), int64(len(fx.files[c.Key])))
	if err != nil {
		t.Fatal(err)
	}
	fr := f.Fragments[3]
	c.Open = true
	c.Bytes = fr.Offset + fr.Size/2 // three fragments and half of the fourth
	c.End = c.Start.Add(3 * time.Second)
	st := &store{files: fx.files}
	start, end := c.Start.Add(-time.Second), c.Start.Add(time.Hour)
	p, err := playback.NewPlan(context.Background(), []model.Segment{c}, st.open, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if p.Duration != 3*time.Second || p.Preroll != 0 || p.Postroll != 0 {
		t.Errorf("Duration %v Preroll %v Postroll %v, want 3s 0 0", p.Duration, p.Preroll, p.Postroll)
	}
	pl := checkPlaylist(t, p, fx.files)
	if pl.maxEnd > c.Bytes {
		t.Errorf("playlist reads up to byte %d, committed %d", pl.maxEnd, c.Bytes)
	}
	var mp4 bytes.Buffer
	if err := p.WriteMP4(context.Background(), &mp4); err != nil {
		t.Fatal(err)
	}
	n := checkMP4(t, p, mp4.Bytes())
	ffprobe(t, mp4.Bytes(), 3*time.Second, n)
	st.checkClosed(t)
}

// TestMP4HTTP serves the MP4 over HTTP as the API does, streamed with
// WriteMP4 and with ranges through http.ServeContent, and has ffprobe read
// it from there.
func TestMP4HTTP(t *testing.T) {
	fx := recording(t)
	st := &store{files: fx.files}
	start, end := t0.Add(sec(4.3)), t0.Add(sec(11))
	p, err := playback.NewPlan(context.Background(), overlapping(fx.segs, start, end), st.open, start, end)
	if err != nil {
		t.Fatal(err)
	}
	var whole bytes.Buffer
	if err := p.WriteMP4(context.Background(), &whole); err != nil {
		t.Fatal(err)
	}
	if int64(whole.Len()) != p.MP4Size() {
		t.Fatalf("WriteMP4 wrote %d bytes, MP4Size %d", whole.Len(), p.MP4Size())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream.mp4", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		if err := p.WriteMP4(r.Context(), w); err != nil {
			t.Log(err)
		}
	})
	mux.HandleFunc("/range.mp4", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		mp4 := p.MP4(r.Context())
		defer mp4.Close()
		http.ServeContent(w, r, "range.mp4", time.Time{}, mp4)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, rg := range [][2]int64{{0, 99}, {1000, 60000}, {p.MP4Size() - 10, p.MP4Size() - 1}, {5, p.MP4Size() - 1}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/range.mp4", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, whole.Bytes()[rg[0]:rg[1]+1]) {
			t.Errorf("range %v: status %d, %d bytes (err %v), differ from WriteMP4's", rg, resp.StatusCode, len(body), err)
		}
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("no ffprobe")
	}
	for _, path := range []string{"/stream.mp4", "/range.mp4"} {
		got := probe(t, srv.URL+path)
		if math.Abs(got.duration-end.Sub(start).Seconds()) > 0.5 {
			t.Errorf("ffprobe %s: duration %.3f s, want %.3f", path, got.duration, end.Sub(start).Seconds())
		}
		t.Logf("ffprobe %s: duration %.3f s, frames %v", path, got.duration, got.streams)
	}
	st.checkClosed(t)
}

// TestMP4Reader reads the MP4 in random pieces: the same bytes as
// WriteMP4.
func TestMP4Reader(t *testing.T) {
	fx := recording(t)
	st := &store{files: fx.files}
	p, err := playback.NewPlan(context.Background(), fx.segs, st.open, t0.Add(sec(3.3)), t0.Add(sec(21.7)))
	if err != nil {
		t.Fatal(err)
	}
	var whole bytes.Buffer
	if err := p.WriteMP4(context.Background(), &whole); err != nil {
		t.Fatal(err)
	}
	r := p.MP4(context.Background())
	defer r.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := rnd.Int64N(p.MP4Size())
		n := rnd.IntN(70000)
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		got, err := io.ReadFull(r, b)
		want := whole.Bytes()[off:min(off+int64(n), int64(whole.Len()))]
		if !bytes.Equal(b[:got], want) || (got < n && err != io.ErrUnexpectedEOF) {
			t.Fatalf("at %d: %d bytes (err %v) differ", off, got, err)
		}
	}
	if end, _ := r.Seek(0, io.SeekEnd); end != p.MP4Size() {
		t.Errorf("Seek end = %d", end)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end: %d %v", n, err)
	}
	r.Close()
	st.checkClosed(t)
}

func TestWriteMP4Canceled(t *testing.T) {
	fx := recording(t)
	st := &store{files: fx.files}
	start, end := t0, t0.Add(12*time.Second)
	p, err := playback.NewPlan(context.Background(), fx.segs, st.open, start, end)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.WriteMP4(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	st.checkClosed(t)
}

// playlist is what checkPlaylist found in a playlist.
type playlist struct {
	discontinuities int
	maxEnd          int64 // of the byte ranges
}

// checkPlaylist writes the playlist of p, checks its tags and durations,
// and that the bytes of each period (its map, then its entries) scan as a
// segment file.
func checkPlaylist(t *testing.T, p *playback.Plan, files map[string][]byte) playlist {
	t.Helper()
	var buf bytes.Buffer
	err := p.WritePlaylist(&buf, func(s model.Segment) string { return "/files/" + s.Key })
	if err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, tag := range []string{"#EXTM3U\n", "#EXT-X-VERSION:7\n", "#EXT-X-PLAYLIST-TYPE:VOD\n", "#EXT-X-ENDLIST\n"} {
		if !strings.Contains(text, tag) {
			t.Errorf("no %q in\n%s", tag, text)
		}
	}
	var (
		out       playlist
		target    int
		sum       float64
		offset    float64
		maps      int
		pdts      int
		pending   []byte // bytes of the current period
		extinf    float64
		byterange string
	)
	flush := func() {
		if pending == nil {
			return
		}
		f, err := recfile.Scan(bytes.NewReader(pending), int64(len(pending)))
		if err != nil {
			t.Errorf("period bytes: %v", err)
		} else if f.Truncated {
			t.Errorf("period bytes end in a partial box")
		}
		pending = nil
	}
	rangeOf := func(uri, br string) []byte {
		n, o, ok := strings.Cut(br, "@")
		ln, err1 := strconv.ParseInt(n, 10, 64)
		off, err2 := strconv.ParseInt(o, 10, 64)
		b := files[strings.TrimPrefix(uri, "/files/")]
		if !ok || err1 != nil || err2 != nil || off+ln > int64(len(b)) {
			t.Fatalf("byte range %q of %s", br, uri)
		}
		out.maxEnd = max(out.maxEnd, off+ln)
		return b[off : off+ln]
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			target, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"))
		case strings.HasPrefix(line, "#EXT-X-START:"):
			v := strings.TrimSuffix(strings.TrimPrefix(line, "#EXT-X-START:TIME-OFFSET="), ",PRECISE=YES")
			offset, _ = strconv.ParseFloat(v, 64)
		case line == "#EXT-X-DISCONTINUITY":
			out.discontinuities++
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			maps++
			flush()
			var uri, br string
			for _, attr := range strings.Split(strings.TrimPrefix(line, "#EXT-X-MAP:"), ",") {
				k, v, _ := strings.Cut(attr, "=")
				v = strings.Trim(v, `"`)
				switch k {
				case "URI":
					uri = v
				case "BYTERANGE":
					br = v
				}
			}
			pending = append([]byte(nil), rangeOf(uri, br)...)
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			pdts++
			if _, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:")); err != nil {
				t.Error(err)
			}
		case strings.HasPrefix(line, "#EXTINF:"):
			extinf, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
		case strings.HasPrefix(line, "#EXT-X-BYTERANGE:"):
			byterange = strings.TrimPrefix(line, "#EXT-X-BYTERANGE:")
		case line != "" && !strings.HasPrefix(line, "#"):
			if extinf <= 0 || byterange == "" {
				t.Fatalf("entry %s without EXTINF or BYTERANGE", line)
			}
			if int(math.Round(extinf)) > target {
				t.Errorf("EXTINF %.3f above the target duration %d", extinf, target)
			}
			sum += extinf
			pending = append(pending, rangeOf(line, byterange)...)
			extinf, byterange = 0, ""
		}
	}
	flush()
	if maps != out.discontinuities+1 || pdts != maps {
		t.Errorf("%d maps, %d program date-times, %d discontinuities", maps, pdts, out.discontinuities)
	}
	if math.Abs(offset-p.Preroll.Seconds()) > 1e-5 {
		t.Errorf("TIME-OFFSET %.6f, Preroll %v", offset, p.Preroll)
	}
	// The playlist holds the pre-roll, what is presented and the post-roll.
	if want := (p.Preroll + p.Duration + p.Postroll).Seconds(); math.Abs(sum-want) > 1e-3 {
		t.Errorf("EXTINF add up to %.6f s, want %.6f (%v + %v + %v)", sum, want, p.Preroll, p.Duration, p.Postroll)
	}
	if t.Failed() {
		t.Logf("playlist:\n%s", text)
	}
	return out
}

// checkMP4 parses the MP4 written for p: its timeline starts at zero and
// goes on without gap; the edit list skips the compressed pre-roll.
func checkMP4(t *testing.T, p *playback.Plan, b []byte) (videoSamples int) {
	t.Helper()
	f, err := recfile.Scan(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Scan of the MP4: %v", err)
	}
	if f.Truncated || f.ValidSize != int64(len(b)) || len(f.Fragments) == 0 {
		t.Fatalf("MP4: truncated %v, %d of %d bytes valid", f.Truncated, f.ValidSize, len(b))
	}
	if !f.Created.Equal(p.PresentStart.Truncate(time.Second)) {
		t.Errorf("Created = %v, want %v", f.Created, p.PresentStart)
	}
	main := f.MainTrack()
	if main.Edit == nil {
		t.Fatal("no edit list")
	}
	preroll := uint64(main.Edit.MediaTime)
	if !f.Fragments[0].Key {
		t.Error("the MP4 does not start with a keyframe")
	}
	ends := map[int]uint64{}
	var compressed uint64
	for i, fr := range f.Fragments {
		if fr.Sequence != uint32(i+1) {
			t.Errorf("fragment %d: sequence %d", i, fr.Sequence)
		}
		for _, tr := range fr.Tracks {
			if tr.ID == main.ID {
				videoSamples += tr.Samples
			}
			if i == 0 && tr.ID == main.ID && tr.BaseTime != 0 {
				t.Errorf("first fragment: video starts at %d", tr.BaseTime)
			}
			if e, ok := ends[tr.ID]; ok && tr.BaseTime < e {
				t.Errorf("fragment %d track %d: starts at %d, before the end %d of the previous one", i, tr.ID, tr.BaseTime, e)
			}
			if tr.ID == main.ID {
				if e, ok := ends[tr.ID]; ok && tr.BaseTime != e {
					t.Errorf("fragment %d: video gap from %d to %d", i, e, tr.BaseTime)
				}
				if tr.BaseTime < preroll {
					compressed += min(tr.End(), preroll) - tr.BaseTime
				}
			}
			ends[tr.ID] = tr.End()
		}
	}
	if compressed != preroll {
		t.Errorf("edit list skips %d ticks, the pre-roll takes %d", preroll, compressed)
	}
	want := p.MP4Duration + recfile.TicksToDuration(preroll, main.TimeScale)
	if d := f.Duration - want; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("MP4 lasts %v, want %v", f.Duration, want)
	}
	if d := main.Edit.Duration - p.MP4Duration; d < 0 || d > time.Millisecond {
		t.Errorf("edit of %v, want %v", main.Edit.Duration, p.MP4Duration)
	}
	if int64(len(b)) != p.MP4Size() {
		t.Errorf("%d bytes, MP4Size %d", len(b), p.MP4Size())
	}
	return videoSamples
}

// probed is what ffprobe says of a file.
type probed struct {
	duration float64
	streams  map[string]int // frames read by codec name
}

// ffprobe checks what ffprobe says of b: its duration is want (±0.5 s)
// and it decodes all the video samples.
func ffprobe(t *testing.T, b []byte, want time.Duration, videoSamples int) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Log("no ffprobe: not checked with it")
		return
	}
	path := filepath.Join(t.TempDir(), "range.mp4")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got := probe(t, path)
	if math.Abs(got.duration-want.Seconds()) > 0.5 {
		t.Errorf("ffprobe: duration %.3f s, want %.3f", got.duration, want.Seconds())
	}
	if got.streams["h264"] != videoSamples {
		t.Errorf("ffprobe: %d H.264 frames, want %d", got.streams["h264"], videoSamples)
	}
	t.Logf("ffprobe: duration %.3f s, frames %v (plan %v)", got.duration, got.streams, want)
}

func probe(t *testing.T, src string) probed {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-of", "json",
		"-show_entries", "format=duration:stream=codec_name,nb_read_frames", "-count_frames", src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	var v struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			CodecName    string `json:"codec_name"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	p := probed{streams: map[string]int{}}
	p.duration, _ = strconv.ParseFloat(v.Format.Duration, 64)
	for _, s := range v.Streams {
		n, _ := strconv.Atoi(s.NbReadFrames)
		p.streams[s.CodecName] += n
	}
	return p
}

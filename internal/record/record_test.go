package record

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/sim"
)

// feed produces the units of the embedded H.264 clip at 15 fps with
// G.711 audio (160 samples every 20 ms), starting at PTS base.
type feed struct {
	clip   *sim.VideoClip
	tracks []*media.Track
	frame  int
	base   int64
}

func newFeed(t testing.TB, base int64) *feed {
	t.Helper()
	clip, err := sim.LoadClip(sim.DefaultClip)
	if err != nil {
		t.Fatal(err)
	}
	return &feed{clip: clip, base: base, tracks: []*media.Track{
		{Codec: media.CodecH264, ClockRate: 90000, SPS: clip.SPS, PPS: clip.PPS},
		{Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1},
	}}
}

// next returns the units of the next video frame and the audio that
// belongs to its 1/15 s.
func (f *feed) next() []*media.Unit {
	au := f.clip.Units[f.frame%len(f.clip.Units)]
	pts := f.base + int64(f.frame)*6000
	out := []*media.Unit{{Track: 0, PTS: pts, Key: au.IDR, Payload: au.NALUs}}
	// 1/15 s is 533.3 samples at 8 kHz: send the 20 ms packets that start
	// in this frame's interval.
	a0 := media.Rescale(pts-f.base, 90000, 8000)
	a1 := media.Rescale(pts-f.base+6000, 90000, 8000)
	for s := (a0 + 159) / 160 * 160; s < a1; s += 160 {
		out = append(out, &media.Unit{Track: 1, PTS: media.Rescale(f.base, 90000, 8000) + s, Payload: [][]byte{make([]byte, 160)}})
	}
	f.frame++
	return out
}

// fakeClock advances by the media time that the test feeds.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ffprobeDuration returns the length of the media in the file at path.
func ffprobeDuration(t *testing.T, path string) float64 {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Log("ffprobe not installed: skipping its check (make test-deps installs it)")
		return -1
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration,start_time", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	// Decode times continue across the segments of a run, so a segment
	// starts where the previous one ended: its length is the duration
	// minus the start time.
	start, dur, ok := strings.Cut(strings.TrimSpace(string(out)), ",")
	s, err1 := strconv.ParseFloat(start, 64)
	d, err2 := strconv.ParseFloat(dur, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("ffprobe %s: %q", path, out)
	}
	return d - s
}

func TestRunWritesContiguousSegments(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	f := newFeed(t, 123456)
	rn, err := newRun(7, f.tracks, dir, 4*time.Second, time.Second, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	var done []model.Segment
	var parts int
	rn.onPart = func(model.Segment) { parts++ }
	rn.onSegment = func(g model.Segment) { done = append(done, g) }
	for range 15 * 10 { // 10 s
		for _, u := range f.next() {
			if err := rn.write(u); err != nil {
				t.Fatal(err)
			}
		}
		clock.Add(time.Second / 15)
	}
	if err := rn.close(); err != nil {
		t.Fatal(err)
	}
	// 10 s with a keyframe every 2 s and 4 s segments: 4 + 4 + 2 s.
	if len(done) != 3 {
		t.Fatalf("got %d segments, want 3: %+v", len(done), done)
	}
	// Parts: at most 1 s each and a new one at every keyframe: 2 per GOP.
	if parts < 10 {
		t.Errorf("got %d parts, want at least 10 (1 s each)", parts)
	}
	for i, g := range done {
		if g.Open || g.SHA256 == "" || g.Bytes == 0 || g.Codec != "avc1.64001e,ipcm" && !strings.HasPrefix(g.Codec, "avc1.") {
			t.Errorf("segment %d: %+v", i, g)
		}
		if i > 0 && !g.Start.Equal(done[i-1].End) {
			t.Errorf("segment %d starts at %v, the previous ended at %v: a run has no gaps", i, g.Start, done[i-1].End)
		}
		if g.Run != done[0].Run {
			t.Errorf("segment %d has run %d, want %d", i, g.Run, done[0].Run)
		}
		id, start, run, err := ParseSegmentKey(g.Key)
		if err != nil || id != 7 || !start.Equal(g.Start) || run != g.Run {
			t.Errorf("key %q parses to %d %v %d %v", g.Key, id, start, run, err)
		}
		path := filepath.Join(dir, filepath.FromSlash(g.Key))
		st, err := os.Stat(path)
		if err != nil || st.Size() != g.Bytes {
			t.Errorf("file %s: %v, size %d, index says %d", g.Key, err, st.Size(), g.Bytes)
		}
		want := g.Duration().Seconds()
		if d := ffprobeDuration(t, path); d >= 0 && (d < want-0.1 || d > want+0.1) {
			t.Errorf("segment %d: ffprobe says %.3f s, the index %.3f s", i, d, want)
		}
	}
	total := done[len(done)-1].End.Sub(done[0].Start)
	// The last frame of the run is held back for its duration and lost.
	if total < 9800*time.Millisecond || total > 10*time.Second {
		t.Errorf("recorded %v of 10 s", total)
	}
}

func TestRunNeedsVideo(t *testing.T) {
	_, err := newRun(1, []*media.Track{{Codec: media.CodecAAC, ClockRate: 48000}}, t.TempDir(), time.Minute, time.Second, time.Now)
	if media.ReasonOf(err) != media.ReasonNoVideo {
		t.Fatalf("got %v, want a no_video failure", err)
	}
}

func TestSegmentKeyRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 29, 23, 59, 59, 987e6, time.UTC)
	key := SegmentKey(12, start, 1764411300000)
	if key != "12/2026-11-29/20261129T235959.987Z-1764411300000.mp4" {
		t.Fatalf("key %q", key)
	}
	id, s, run, err := ParseSegmentKey(key)
	if err != nil || id != 12 || !s.Equal(start) || run != 1764411300000 {
		t.Fatalf("parse: %d %v %d %v", id, s, run, err)
	}
	for _, bad := range []string{"", "x", "12/2026-11-29/x.mp4", "0/2026-11-29/20261129T235959.987Z-1.mp4",
		"12/2026-11-28/20261129T235959.987Z-1.mp4", "12/2026-11-29/20261129T235959.987Z.mp4", "12/2026-11-29/20261129T235959.987Z-1.mp4.tmp"} {
		if _, _, _, err := ParseSegmentKey(bad); err == nil {
			t.Errorf("ParseSegmentKey(%q) accepted it", bad)
		}
	}
}

// fakeHub hands out streams that the test feeds; closing one and handing
// out another is what a reconnect of the source looks like.
type fakeHub struct {
	mu      sync.Mutex
	streams chan *media.Stream
	pinned  int
}

func (h *fakeHub) Pin(int64) (func(), error) {
	h.mu.Lock()
	h.pinned++
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		h.pinned--
		h.mu.Unlock()
	}, nil
}

func (h *fakeHub) Acquire(ctx context.Context, _ int64) (*media.Stream, func(), error) {
	select {
	case s := <-h.streams:
		return s, func() {}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

type memIndex struct {
	mu    sync.Mutex
	segs  []model.Segment
	plans []model.RecordPlan
	added chan model.Segment
}

func (m *memIndex) AddSegment(_ context.Context, g *model.Segment) error {
	m.mu.Lock()
	g.ID = int64(len(m.segs) + 1)
	m.segs = append(m.segs, *g)
	m.mu.Unlock()
	m.added <- *g
	return nil
}

func (m *memIndex) RecordPlans(context.Context) ([]model.RecordPlan, error) { return m.plans, nil }

func TestRecorderStartsANewRunAfterAReconnect(t *testing.T) {
	hub := &fakeHub{streams: make(chan *media.Stream)}
	idx := &memIndex{added: make(chan model.Segment, 100),
		plans: []model.RecordPlan{{ChannelID: 3, Mode: model.RecordContinuous}}}
	rec, err := New(Config{Hub: hub, Index: idx, Dir: t.TempDir(), SegmentDuration: 2 * time.Second,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()

	// Two connections of the source, 4 s of media each, fed as fast as
	// the recorder takes them.
	for c := range 2 {
		f := newFeed(t, int64(c)*1e9)
		s := media.NewStream(f.tracks)
		hub.streams <- s
		deadline := time.After(10 * time.Second)
		for rec.Status(3).State != StateRecording {
			select {
			case <-deadline:
				t.Fatal("the recorder never recorded")
			case <-time.After(10 * time.Millisecond):
			}
		}
		for range 60 { // 4 s: a finished segment and one with a part written
			for _, u := range f.next() {
				s.Write(u)
			}
		}
		if _, ok := waitOpen(rec, 3); !ok {
			t.Fatal("no open segment while recording")
		}
		s.Close(media.Fail(media.ReasonClosed, errors.New("camera hung up")))
		// Wait for the run's last segment.
		for {
			g := <-idx.added
			if g.End.Sub(g.Start) < 2*time.Second {
				break
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runs := map[int64]int{}
	idx.mu.Lock()
	for _, g := range idx.segs {
		runs[g.Run]++
	}
	idx.mu.Unlock()
	if len(runs) != 2 {
		t.Fatalf("got runs %v, want 2 runs", runs)
	}
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if hub.pinned != 0 {
		t.Errorf("the channel is still pinned %d times after Run returned", hub.pinned)
	}
}

func waitOpen(rec *Recorder, id int64) (model.Segment, bool) {
	for range 500 {
		if g, ok := rec.Open(id); ok {
			return g, true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return model.Segment{}, false
}

// FuzzParseSegmentKey: keys arrive in playback URLs. Whatever the input,
// parsing does not panic, and a key it accepts is the one SegmentKey
// writes (so it names a file inside the recordings folder).
func FuzzParseSegmentKey(f *testing.F) {
	f.Add("12/2026-11-29/20261129T101500.000Z-1764411300000.mp4")
	f.Add("../../etc/passwd")
	f.Add("1/2026-11-29/20261129T235959.999Z-0.mp4")
	f.Add("12/2026-11-29/20261129T101500.000Z-1.mp4/../x")
	f.Fuzz(func(t *testing.T, key string) {
		id, start, run, err := ParseSegmentKey(key)
		if err != nil {
			return
		}
		if got := SegmentKey(id, start, run); got != key {
			t.Fatalf("ParseSegmentKey(%q) accepted a key that SegmentKey writes as %q", key, got)
		}
	})
}

func TestRunEndsWhenMediaTimeDrifts(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	f := newFeed(t, 0)
	rn, err := newRun(1, f.tracks, t.TempDir(), 2*time.Second, time.Second, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	// The wall clock runs 50 % faster than the camera's timestamps.
	for i := range 15 * 20 {
		for _, u := range f.next() {
			err := rn.write(u)
			var drift *driftError
			if errors.As(err, &drift) {
				media := time.Duration(i) * time.Second / 15
				if media < 4*time.Second || drift.d < maxDrift {
					t.Fatalf("drift of %v reported after %v of media", drift.d, media)
				}
				rn.close()
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		clock.Add(time.Second / 10)
	}
	t.Fatal("20 s of media with a 50 % faster wall clock did not end the run")
}

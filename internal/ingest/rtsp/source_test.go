package rtsp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/xueliang/xueliang/internal/media"
)

// harness runs a Source the way the stream hub does and records what it gets.
type harness struct {
	t      *testing.T
	src    *Source
	cancel context.CancelFunc
	done   chan error // result of Run

	readyCh chan struct{} // closed by the first call to ready
	mu      sync.Mutex
	calls   int
	tracks  []*media.Track
	// copies of the track fields taken inside ready, to prove they were
	// complete before it was called
	sps, pps []byte
	reader   *media.Reader
}

// run starts src.Run in a goroutine; the test ends it.
func run(t *testing.T, src *Source) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	h := &harness{t: t, src: src, cancel: cancel, done: make(chan error, 1), readyCh: make(chan struct{})}
	go func() { h.done <- src.Run(ctx, h.ready) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) ready(tracks []*media.Track) *media.Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	h.tracks = tracks
	if len(tracks) > 0 {
		h.sps = bytes.Clone(tracks[0].SPS)
		h.pps = bytes.Clone(tracks[0].PPS)
	}
	st := media.NewStream(tracks)
	h.reader = st.AddReader("test", 4096)
	if h.calls == 1 {
		close(h.readyCh)
	}
	return st
}

// waitReady waits for ready and returns the tracks.
func (h *harness) waitReady() []*media.Track {
	h.t.Helper()
	select {
	case <-h.readyCh:
	case err := <-h.done:
		h.t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		h.t.Fatal("ready not called")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tracks
}

// units reads n units of track (any track if track < 0), and fails the test
// if they do not come or if the PTS of a track ever goes back.
func (h *harness) units(n, track int) []*media.Unit {
	h.t.Helper()
	h.waitReady()
	h.mu.Lock()
	r := h.reader
	h.mu.Unlock()
	var got []*media.Unit
	lastPTS := map[int]int64{}
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case u, ok := <-r.C():
			if !ok {
				h.t.Fatalf("stream closed after %d units: %v", len(got), r.Err())
			}
			if last, ok := lastPTS[u.Track]; ok && u.PTS <= last {
				h.t.Fatalf("track %d: PTS %d after %d", u.Track, u.PTS, last)
			}
			lastPTS[u.Track] = u.PTS
			if track < 0 || u.Track == track {
				got = append(got, u)
			}
		case err := <-h.done:
			h.t.Fatalf("Run returned after %d units: %v", len(got), err)
		case <-deadline:
			h.t.Fatalf("got %d units of %d", len(got), n)
		}
	}
	return got
}

// wait waits for Run to return within d and returns its error.
func (h *harness) wait(d time.Duration) error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // for Cleanup
		return err
	case <-time.After(d):
		h.t.Fatalf("Run did not return within %s", d)
		return nil
	}
}

func newSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// wantReason fails the test unless err is a *media.SourceError with reason
// and a message containing each of words.
func wantReason(t *testing.T, err error, reason media.Reason, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", reason)
	}
	var se *media.SourceError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a *media.SourceError", err, err)
	}
	if se.Reason != reason {
		t.Fatalf("reason = %s, want %s (err: %v)", se.Reason, reason, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q, want it to mention %q", err, w)
		}
	}
	if !strings.HasPrefix(se.Err.Error(), "rtsp: ") {
		t.Errorf("err = %q, want the rtsp: prefix", se.Err)
	}
}

func TestPlay(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		transport string
		inSDP     bool // parameter sets in the SDP, else in-band only
		noUDP     bool // the server offers TCP only
		audio     string
		codec     media.Codec
	}{
		{name: "h264 aac tcp", file: "h264_aac.ts", transport: "tcp", inSDP: true, audio: "aac", codec: media.CodecH264},
		{name: "h264 aac udp", file: "h264_aac.ts", transport: "udp", inSDP: true, audio: "aac", codec: media.CodecH264},
		{name: "h264 g711 auto", file: "h264_aac.ts", transport: "auto", inSDP: true, audio: "g711", codec: media.CodecH264},
		{name: "auto falls back to tcp", file: "h264_aac.ts", transport: "auto", noUDP: true, inSDP: true, codec: media.CodecH264},
		{name: "h264 in-band parameters", file: "h264_aac.ts", transport: "tcp", codec: media.CodecH264},
		{name: "h265 tcp", file: "h265.ts", transport: "tcp", inSDP: true, codec: media.CodecH265},
		{name: "h265 in-band parameters udp", file: "h265.ts", transport: "udp", codec: media.CodecH265},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := loadClip(t, tc.file)
			ts := newTestServer(t, serverOptions{noUDP: tc.noUDP})
			medias := []*description.Media{videoMedia(c, tc.inSDP)}
			switch tc.audio {
			case "aac":
				medias = append(medias, aacMedia(c))
			case "g711":
				medias = append(medias, g711Media())
			}
			ts.feed(ts.addStream("/cam", medias...), c)

			src := newSource(t, Config{URL: ts.url("/cam", "", ""), Transport: tc.transport})
			h := run(t, src)
			tracks := h.waitReady()

			wantTracks := 1
			if tc.audio != "" {
				wantTracks = 2
			}
			if len(tracks) != wantTracks {
				t.Fatalf("got %d tracks %v, want %d", len(tracks), tracks, wantTracks)
			}
			v := tracks[0]
			if v.Codec != tc.codec || v.ClockRate != 90000 {
				t.Errorf("video track = %v, want %v/90000", v, tc.codec)
			}
			// Parameter sets are there before ready, from the SDP or in-band.
			vps, sps, pps := c.params()
			h.mu.Lock()
			gotSPS, gotPPS := h.sps, h.pps
			h.mu.Unlock()
			if !bytes.Equal(gotSPS, sps) || !bytes.Equal(gotPPS, pps) || !bytes.Equal(v.VPS, vps) {
				t.Errorf("parameter sets at ready: SPS %x PPS %x VPS %x, want %x %x %x", gotSPS, gotPPS, v.VPS, sps, pps, vps)
			}
			switch tc.audio {
			case "aac":
				a := tracks[1]
				want, _ := c.aac.Marshal()
				if a.Codec != media.CodecAAC || a.ClockRate != c.aac.SampleRate || !bytes.Equal(a.Config, want) || a.Channels != 1 {
					t.Errorf("audio track = %+v, want AAC/%d config %x mono", a, c.aac.SampleRate, want)
				}
			case "g711":
				a := tracks[1]
				if a.Codec != media.CodecPCMA || a.ClockRate != 8000 || a.Channels != 1 {
					t.Errorf("audio track = %+v, want PCMA/8000 mono", a)
				}
			}

			// More units than the clip has, to cross a loop of the server.
			units := h.units(len(c.video)+5, 0)
			if !units[0].Key {
				t.Error("first video unit is not a keyframe")
			}
			keys := 0
			for _, u := range units {
				if u.Key {
					keys++
				}
				if u.NTP.IsZero() || len(u.Payload) == 0 {
					t.Fatalf("unit %+v lacks NTP or payload", u)
				}
			}
			if keys < 2 {
				t.Errorf("%d keyframes in %d units, want a keyframe every 10", keys, len(units))
			}
			if tc.audio != "" {
				au := h.units(5, 1)
				if au[0].Key {
					t.Error("audio unit marked as keyframe")
				}
			}

			st := src.Stats()
			if st.PacketsReceived == 0 || st.Units < uint64(len(units)) || st.Bytes == 0 {
				t.Errorf("stats = %+v", st)
			}

			h.cancel()
			if err := h.wait(time.Second); err != nil {
				t.Errorf("Run after cancel = %v, want nil", err)
			}
			h.mu.Lock()
			calls := h.calls
			h.mu.Unlock()
			if calls != 1 {
				t.Errorf("ready called %d times", calls)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const user, pass = "admin", "s3cret-Pa55"
	c := loadClip(t, "h264_aac.ts")
	for _, method := range []struct {
		name string
		m    auth.VerifyMethod
	}{
		{"basic", auth.VerifyMethodBasic},
		{"digest", auth.VerifyMethodDigestMD5},
	} {
		ts := newTestServer(t, serverOptions{user: user, pass: pass, methods: []auth.VerifyMethod{method.m}, noUDP: true})
		ts.feed(ts.addStream("/cam", videoMedia(c, true)), c)

		for _, tc := range []struct {
			name       string
			user, pass string
			ok         bool
			words      []string
		}{
			{name: "right credentials", user: user, pass: pass, ok: true},
			{name: "wrong password", user: user, pass: "nope", words: []string{"401", "refused"}},
			{name: "no credentials", words: []string{"401", "requires credentials"}},
		} {
			t.Run(method.name+"/"+tc.name, func(t *testing.T) {
				var logs bytes.Buffer
				logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				src := newSource(t, Config{URL: ts.url("/cam", tc.user, tc.pass), Transport: "tcp", Logger: logger})
				h := run(t, src)
				if tc.ok {
					h.units(3, 0)
					h.cancel()
					if err := h.wait(time.Second); err != nil {
						t.Fatalf("Run = %v", err)
					}
				} else {
					err := h.wait(5 * time.Second)
					wantReason(t, err, media.ReasonAuthFailed, tc.words...)
					if tc.pass != "" && strings.Contains(err.Error(), tc.pass) {
						t.Errorf("error %q leaks the password", err)
					}
				}
				if strings.Contains(logs.String(), pass) || (tc.pass != "" && strings.Contains(logs.String(), tc.pass)) {
					t.Errorf("logs leak the password:\n%s", logs.String())
				}
				if !strings.Contains(logs.String(), "component=rtsp") {
					t.Errorf("logs lack the component:\n%s", logs.String())
				}
			})
		}
	}
}

func TestFailures(t *testing.T) {
	c := loadClip(t, "h264_aac.ts")
	ts := newTestServer(t, serverOptions{})
	ts.addStream("/mjpeg", &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}})
	ts.feed(ts.addStream("/audio", g711Media()), c)

	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		start := time.Now()
		err = run(t, newSource(t, Config{URL: "rtsp://" + addr + "/cam"})).wait(2 * time.Second)
		wantReason(t, err, media.ReasonUnreachable, "refused")
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		err := run(t, newSource(t, Config{URL: "rtsp://camera.invalid/cam", DialTimeout: 2 * time.Second})).wait(4 * time.Second)
		wantReason(t, err, media.ReasonUnreachable)
	})
	t.Run("no answer", func(t *testing.T) {
		start := time.Now()
		err := run(t, newSource(t, Config{URL: "rtsp://" + muteCamera(t) + "/cam", ReadTimeout: 200 * time.Millisecond})).wait(3 * time.Second)
		wantReason(t, err, media.ReasonTimeout, "describe", "no answer")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("not found", func(t *testing.T) {
		err := run(t, newSource(t, Config{URL: ts.url("/nope", "", ""), Transport: "tcp"})).wait(2 * time.Second)
		wantReason(t, err, media.ReasonProtocol, "not found", "404")
	})
	t.Run("mjpeg only", func(t *testing.T) {
		err := run(t, newSource(t, Config{URL: ts.url("/mjpeg", "", ""), Transport: "tcp"})).wait(2 * time.Second)
		wantReason(t, err, media.ReasonCodecUnsupported, "M-JPEG")
	})
	t.Run("audio only", func(t *testing.T) {
		err := run(t, newSource(t, Config{URL: ts.url("/audio", "", ""), Transport: "tcp"})).wait(2 * time.Second)
		wantReason(t, err, media.ReasonNoVideo, "G711")
	})
}

func TestStall(t *testing.T) {
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			c := loadClip(t, "h264_aac.ts")
			ts := newTestServer(t, serverOptions{})
			ts.feed(ts.addStream("/cam", videoMedia(c, true)), c)
			const readTimeout = 500 * time.Millisecond
			h := run(t, newSource(t, Config{URL: ts.url("/cam", "", ""), Transport: transport, ReadTimeout: readTimeout}))
			h.units(3, 0)
			ts.paused.Store(true)
			start := time.Now()
			err := h.wait(3 * time.Second)
			wantReason(t, err, media.ReasonTimeout, "no packets")
			if d := time.Since(start); d < readTimeout {
				t.Errorf("gave up after %s, before ReadTimeout", d)
			}
		})
	}
}

func TestNoKeyframe(t *testing.T) {
	// In-band parameter sets only, and the camera sends nothing after PLAY:
	// the wait for the first keyframe is bounded.
	c := loadClip(t, "h264_aac.ts")
	ts := newTestServer(t, serverOptions{})
	ts.addStream("/cam", videoMedia(c, false))
	h := run(t, newSource(t, Config{URL: ts.url("/cam", "", ""), Transport: "tcp", ReadTimeout: 300 * time.Millisecond}))
	wantReason(t, h.wait(3*time.Second), media.ReasonTimeout, "keyframe")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls != 0 {
		t.Error("ready was called")
	}
}

func TestServerCloses(t *testing.T) {
	c := loadClip(t, "h264_aac.ts")
	ts := newTestServer(t, serverOptions{})
	ts.feed(ts.addStream("/cam", videoMedia(c, true), aacMedia(c)), c)
	h := run(t, newSource(t, Config{URL: ts.url("/cam", "", ""), Transport: "tcp"}))
	h.units(3, 0)
	ts.closeSessions()
	wantReason(t, h.wait(3*time.Second), media.ReasonClosed)
}

func TestCancel(t *testing.T) {
	c := loadClip(t, "h264_aac.ts")
	ts := newTestServer(t, serverOptions{})
	ts.feed(ts.addStream("/cam", videoMedia(c, true), aacMedia(c)), c)
	mute := muteCamera(t)

	// Let the server's goroutines settle before counting.
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()

	for _, tc := range []struct {
		name      string
		url       string
		transport string
		after     func(h *harness)
	}{
		{name: "while playing tcp", url: ts.url("/cam", "", ""), transport: "tcp", after: func(h *harness) { h.units(3, 0) }},
		{name: "while playing udp", url: ts.url("/cam", "", ""), transport: "udp", after: func(h *harness) { h.units(3, 0) }},
		{name: "while waiting for an answer", url: "rtsp://" + mute + "/cam", after: func(*harness) { time.Sleep(100 * time.Millisecond) }},
		{name: "before start", url: ts.url("/cam", "", ""), after: func(*harness) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := run(t, newSource(t, Config{URL: tc.url, Transport: tc.transport}))
			tc.after(h)
			h.cancel()
			start := time.Now()
			if err := h.wait(time.Second); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Run took %s to return", d)
			}
			checkGoroutines(t, before+1) // the goroutine of this subtest
		})
	}
}

// muteCamera returns the address of a camera that accepts connections and
// never answers.
func muteCamera(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	conns.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { io.Copy(io.Discard, conn); conn.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	return ln.Addr().String()
}

// checkGoroutines waits until no more than n goroutines run, and fails with
// their stacks if that does not happen within 2 s.
func checkGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{name: "defaults", cfg: Config{URL: "rtsp://cam/live"}},
		{name: "tcp", cfg: Config{URL: "rtsps://cam/live", Transport: "TCP"}},
		{name: "bad url", cfg: Config{URL: "http://cam/live"}, err: "rtsp: url: scheme must be rtsp or rtsps"},
		{name: "bad transport", cfg: Config{URL: "rtsp://cam/live", Transport: "quic"}, err: `rtsp: transport must be auto, tcp or udp, not "quic"`},
		{name: "negative read timeout", cfg: Config{URL: "rtsp://cam/live", ReadTimeout: -1}, err: "rtsp: read timeout"},
		{name: "negative dial timeout", cfg: Config{URL: "rtsp://cam/live", DialTimeout: -1}, err: "rtsp: dial timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewSource(tc.cfg)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if src.readTO != DefaultReadTimeout || src.dialTO != DefaultDialTimeout {
					t.Errorf("timeouts = %s, %s", src.readTO, src.dialTO)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

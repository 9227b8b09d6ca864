package whep

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xueliang/xueliang/internal/media"
)

// clip is a test video: its parameter sets and its access units, without
// AUDs and without in-band parameter sets.
type clip struct {
	track  *media.Track
	frames []clipFrame
}

type clipFrame struct {
	nalus [][]byte
	key   bool
}

// splitAnnexB returns the NAL units of an Annex-B byte stream.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				out = append(out, b[start:end])
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// loadClip reads testdata/name, made by ffmpeg with AUDs inserted (see
// testdata/README).
func loadClip(t testing.TB, name string, codec media.Codec) *clip {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	c := &clip{track: &media.Track{Codec: codec, ClockRate: 90000}}
	var cur *clipFrame
	for _, n := range splitAnnexB(b) {
		var typ int
		var isAUD, isKey bool
		if codec == media.CodecH264 {
			typ = int(n[0] & 0x1f)
			isAUD, isKey = typ == h264AUD, typ == 5
			switch typ {
			case h264SPS:
				c.track.SPS = n
				continue
			case h264PPS:
				c.track.PPS = n
				continue
			}
		} else {
			typ = int(h265Type(n))
			isAUD, isKey = typ == h265AUD, typ >= 16 && typ <= 21
			switch typ {
			case h265VPS:
				c.track.VPS = n
				continue
			case h265SPS:
				c.track.SPS = n
				continue
			case h265PPS:
				c.track.PPS = n
				continue
			}
		}
		if isAUD {
			c.frames = append(c.frames, clipFrame{})
			cur = &c.frames[len(c.frames)-1]
			continue
		}
		if cur == nil {
			t.Fatalf("%s: NAL unit before the first AUD", name)
		}
		cur.nalus = append(cur.nalus, n)
		cur.key = cur.key || isKey
	}
	if len(c.frames) == 0 || !c.frames[0].key || c.track.SPS == nil {
		t.Fatalf("%s: %d frames, first key %v: not a usable clip", name, len(c.frames), len(c.frames) > 0 && c.frames[0].key)
	}
	return c
}

// feed writes the clip in a loop at 25 fps to a new stream, with a G.711
// track every 20 ms if audio is set, until the returned stop is called.
// The stream is not closed by stop.
func feed(t testing.TB, c *clip, audio media.Codec) (*media.Stream, func()) {
	t.Helper()
	tracks := []*media.Track{c.track}
	if audio != media.CodecUnknown {
		tracks = append(tracks, &media.Track{Codec: audio, ClockRate: 8000, Channels: 1})
	}
	s := media.NewStream(tracks)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		samples := bytes.Repeat([]byte{0xd5}, 160)
		for n := int64(0); ; n++ {
			if len(tracks) > 1 {
				s.Write(&media.Unit{Track: 1, PTS: n * 160, NTP: time.Now(), Payload: [][]byte{samples}})
			}
			if n%2 == 0 {
				f := c.frames[int(n/2)%len(c.frames)]
				s.Write(&media.Unit{Track: 0, PTS: n / 2 * 3600, NTP: time.Now(), Key: f.key, Payload: f.nalus})
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return s, func() { cancel(); wg.Wait() }
}

// fakeHub is a Hub whose Acquire is a function field.
type fakeHub struct {
	acquire func(ctx context.Context, channelID int64) (*media.Stream, func(), error)
}

func (h *fakeHub) Acquire(ctx context.Context, channelID int64) (*media.Stream, func(), error) {
	return h.acquire(ctx, channelID)
}

// env is a started Server behind an httptest.Server, serving one stream as
// channel 7 and counting the leases.
type env struct {
	srv      *Server
	http     *httptest.Server
	reg      *prometheus.Registry
	acquired atomic.Int32
	released atomic.Int32
	keyReqs  atomic.Int32
}

const testToken = "s3cret"

// authorize accepts testToken from the query or a bearer header, as the
// application's token check does.
func authorize(r *http.Request, channelID int64) error {
	tok := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); len(h) > 7 && h[:7] == "Bearer " {
		tok = h[7:]
	}
	switch {
	case tok == "":
		return ErrUnauthorized
	case tok == "other-channel":
		return ErrForbidden
	case tok != testToken:
		return errors.Join(ErrUnauthorized, errors.New("token: bad signature"))
	}
	return nil
}

func newEnv(t testing.TB, stream *media.Stream, mod func(*Config)) *env {
	t.Helper()
	e := &env{reg: prometheus.NewRegistry()}
	hub := &fakeHub{acquire: func(ctx context.Context, id int64) (*media.Stream, func(), error) {
		switch id {
		case 7:
			e.acquired.Add(1)
			return stream, func() { e.released.Add(1) }, nil
		case 8:
			return nil, nil, errors.Join(media.ErrUnavailable, errors.New("rtsp: dial tcp 10.0.0.9:554: connection refused"))
		case 10: // a source that never gets ready
			<-ctx.Done()
			return nil, nil, ctx.Err()
		}
		return nil, nil, media.ErrNoChannel
	}}
	conf := Config{
		Hub:               hub,
		Authorize:         authorize,
		Logger:            testLogger(t),
		Registerer:        e.reg,
		UDPAddr:           "127.0.0.1:0",
		OnKeyframeRequest: func(int64) { e.keyReqs.Add(1) },
	}
	if mod != nil {
		mod(&conf)
	}
	srv, err := NewServer(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/live/{id}/whep", srv)
	mux.Handle("/live/{id}/whep/", srv)
	e.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.http.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// url returns the WHEP endpoint of channel id with the test token.
func (e *env) url(id string) string {
	return e.http.URL + "/live/" + id + "/whep?token=" + testToken
}

func (e *env) dial(t testing.TB, id string, opts ...DialOption) *ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, e.url(id), append([]DialOption{WithHTTPClient(e.http.Client())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLogger logs through t at Info and above (set WHEP_DEBUG=1 for pion's
// debug logs).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("WHEP_DEBUG") != "" {
		level = slog.LevelDebug
	}
	w := &tWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// tWriter writes to t.Log until the test's cleanups run: a stray pion
// goroutine logging after the test would make t.Log panic.
type tWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

// frameAssembler depacketizes RTP packets into access units of NAL units.
type frameAssembler struct {
	depack interface {
		Unmarshal([]byte) ([]byte, error)
	}
	annexB []byte
}

func newFrameAssembler(h265 bool) *frameAssembler {
	if h265 {
		return &frameAssembler{depack: &codecs.H265Depacketizer{}}
	}
	return &frameAssembler{depack: &codecs.H264Packet{}}
}

// push adds a packet and returns the NAL units of the access unit it
// completes, if its marker bit is set.
func (a *frameAssembler) push(p *rtp.Packet) ([][]byte, error) {
	b, err := a.depack.Unmarshal(p.Payload)
	if err != nil {
		return nil, err
	}
	a.annexB = append(a.annexB, b...)
	if !p.Marker {
		return nil, nil
	}
	nalus := splitAnnexB(a.annexB)
	a.annexB = nil
	return nalus, nil
}

// toFloat64 returns the value of a gauge or counter.
func toFloat64(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	switch {
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Counter != nil:
		return d.Counter.GetValue()
	}
	panic("not a gauge or counter")
}

package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/egress/whep"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/sim"
	"github.com/xueliang/xueliang/internal/streams"
)

// platform is a whole Xueliang and a camera simulator on 127.0.0.1.
type platform struct {
	t   *testing.T
	app *App
	sim *sim.Server
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("XUELIANG_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startPlatform starts a simulator with cams and a platform configured by
// edit, and seeds the Qingyuan divisions.
func startPlatform(t *testing.T, cams []sim.Camera, edit func(*config.Config)) *platform {
	t.Helper()
	s := sim.NewServer(sim.Config{Addr: "127.0.0.1:0", Cameras: cams, Logger: testLogger(t)})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Live.WebRTCUDPAddr = "127.0.0.1:0"
	cfg.Streams.ProbeInterval = 0
	cfg.Streams.IdleTimeout = config.Duration(time.Second)
	cfg.Streams.BackoffMin = config.Duration(100 * time.Millisecond)
	cfg.Streams.BackoffMax = config.Duration(400 * time.Millisecond)
	cfg.Streams.ReadTimeout = config.Duration(2 * time.Second)
	cfg.Live.HLSIdleTimeout = config.Duration(time.Second)
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Store().UpsertDivisions(t.Context(), DemoDivisions()); err != nil {
		t.Fatal(err)
	}
	return &platform{t: t, app: a, sim: s}
}

// call does an API request and decodes the JSON answer into out.
func (p *platform) call(method, path string, body any, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.app.URL()+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
		}
	}
	return res.StatusCode
}

var serial = 0

// addChannel creates a channel for a simulator path (or any URL) and
// returns its id.
func (p *platform) addChannel(rawURL string) int64 {
	p.t.Helper()
	serial++
	var ch model.Channel
	code := fmt.Sprintf("44182100001320%06d", serial)
	st := p.call("POST", "/api/v1/channels", map[string]any{
		"code": code, "name": "测试摄像机 " + code[14:], "division": "441821101", "source_url": rawURL, "transport": "tcp",
	}, &ch)
	if st != http.StatusCreated {
		p.t.Fatalf("create channel: status %d", st)
	}
	return ch.ID
}

func (p *platform) camURL(path string) string { return "rtsp://" + p.sim.Addr() + "/" + path }

type liveURLs struct {
	HLS, WHEP string
	Expires   time.Time
}

func (p *platform) live(id int64) liveURLs {
	p.t.Helper()
	var l liveURLs
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/live", id), nil, &l); st != 200 {
		p.t.Fatalf("live: status %d", st)
	}
	return l
}

func (p *platform) channel(id int64) model.Channel {
	var ch model.Channel
	p.call("GET", fmt.Sprintf("/api/v1/channels/%d", id), nil, &ch)
	return ch
}

func (p *platform) waitStatus(id int64, want model.ChannelStatus, reason string, within time.Duration) model.Channel {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ch := p.channel(id)
		if ch.Status == want && (reason == "" || ch.Reason == reason) {
			return ch
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("channel %d: status %s reason %q (%s), want %s %q", id, ch.Status, ch.Reason, ch.LastError, want, reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hlsFrames reads video access units from an HLS URL for d.
type hlsResult struct {
	frames, keys int
	monotonic    bool
	firstAfter   time.Duration
}

func readHLS(t *testing.T, uri string, d time.Duration) hlsResult {
	t.Helper()
	var mu sync.Mutex
	res := hlsResult{monotonic: true}
	last := int64(-1 << 62)
	start := time.Now()
	quiet := func(string) {}
	c := &gohlslib.Client{URI: uri, OnDownloadPrimaryPlaylist: quiet, OnDownloadStreamPlaylist: quiet, OnDownloadSegment: quiet, OnDownloadPart: quiet}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			if _, ok := tr.Codec.(*codecs.H264); ok {
				c.OnDataH26x(tr, func(pts, _ int64, au [][]byte) {
					mu.Lock()
					defer mu.Unlock()
					if res.frames == 0 {
						res.firstAfter = time.Since(start)
					}
					res.frames++
					if h264.IsRandomAccess(au) {
						res.keys++
					}
					if pts <= last {
						res.monotonic = false
					}
					last = pts
				})
			}
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() { errc <- c.Wait2() }()
	select {
	case err := <-errc:
		t.Fatalf("HLS client stopped: %v", err)
	case <-time.After(d):
	}
	mu.Lock()
	defer mu.Unlock()
	return res
}

// readWHEP counts the video RTP packets of a WHEP session for d, in the
// background: *packets is final once done delivers (nil or the error).
func readWHEP(t *testing.T, url string, d time.Duration) (packets *int, done <-chan error) {
	n, errc := new(int), make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), d+15*time.Second)
		defer cancel()
		cs, err := whep.Dial(ctx, url)
		if err != nil {
			errc <- err
			return
		}
		defer cs.Close()
		end := time.After(d)
		for {
			select {
			case _, ok := <-cs.VideoPackets():
				if !ok {
					errc <- nil
					return
				}
				*n++
			case <-end:
				errc <- nil
				return
			}
		}
	}()
	return n, errc
}

func TestLiveHLSAndWHEPShareOneUpstreamSession(t *testing.T) {
	p := startPlatform(t, []sim.Camera{{Path: "cam/1", Clip: "street", Audio: sim.AudioAAC}}, nil)
	id := p.addChannel(p.camURL("cam/1"))
	l := p.live(id)
	if !strings.Contains(l.HLS, "token=") || !strings.Contains(l.WHEP, "token=") || time.Until(l.Expires) < time.Minute {
		t.Fatalf("live URLs: %+v", l)
	}

	packets, whepDone := readWHEP(t, l.WHEP, 5*time.Second)
	res := readHLS(t, l.HLS, 5*time.Second)
	if err := <-whepDone; err != nil {
		t.Fatalf("WHEP: %v", err)
	}
	t.Logf("HLS: %d frames, %d keyframes, first after %s; WHEP: %d video RTP packets", res.frames, res.keys, res.firstAfter, *packets)
	if res.frames < 30 || res.keys < 1 || !res.monotonic {
		t.Fatalf("HLS: %+v, want >= 30 frames with monotonic PTS and a keyframe", res)
	}
	if *packets < 30 {
		t.Fatalf("WHEP: %d video packets in 5 s", *packets)
	}
	if st := p.sim.Stats("cam/1"); st.TotalSessions != 1 {
		t.Fatalf("simulator saw %d sessions for two viewers, want 1 shared upstream session", st.TotalSessions)
	}
	p.waitStatus(id, model.ChannelStatusOnline, "", time.Second)
}

func TestOnDemandSourceClosesWhenIdleAndReopens(t *testing.T) {
	p := startPlatform(t, []sim.Camera{{Path: "cam/1"}}, nil)
	id := p.addChannel(p.camURL("cam/1"))
	res := readHLS(t, p.live(id).HLS, 4*time.Second)
	if res.frames == 0 {
		t.Fatal("no frames")
	}
	// HLS idle (1 s) + hub idle (1 s): the upstream session ends.
	deadline := time.Now().Add(10 * time.Second)
	for p.sim.Stats("cam/1").ActiveSessions != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("upstream session still open %s after the last viewer left", 10*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, pi := range p.app.Hub().Paths() {
		if pi.ChannelID == id && pi.State != streams.StateIdle {
			t.Fatalf("path state %s after idle timeout", pi.State)
		}
	}
	res = readHLS(t, p.live(id).HLS, 4*time.Second)
	if res.frames == 0 {
		t.Fatal("no frames after reopening")
	}
	if st := p.sim.Stats("cam/1"); st.TotalSessions != 2 {
		t.Fatalf("sessions %d, want 2 (one per viewing period)", st.TotalSessions)
	}
}

func TestCameraDropGoesOfflineAndRecovers(t *testing.T) {
	p := startPlatform(t, []sim.Camera{{Path: "cam/1"}}, nil)
	id := p.addChannel(p.camURL("cam/1"))
	unpin, err := p.app.Hub().Pin(id) // like the recorder: keep it open
	if err != nil {
		t.Fatal(err)
	}
	defer unpin()
	p.waitStatus(id, model.ChannelStatusOnline, "", 10*time.Second)
	p.sim.SetFault("cam/1", sim.FaultDrop)
	ch := p.waitStatus(id, model.ChannelStatusOffline, "", 10*time.Second)
	t.Logf("after drop: %s / %s", ch.Reason, ch.LastError)
	if ch.Reason == "" || ch.LastError == "" {
		t.Fatalf("offline without a reason: %+v", ch)
	}
	p.sim.SetFault("cam/1", sim.FaultNone)
	p.waitStatus(id, model.ChannelStatusOnline, "", 10*time.Second)
}

func TestFailuresSayWhy(t *testing.T) {
	p := startPlatform(t, []sim.Camera{{Path: "cam/auth", Username: "admin", Password: "right"}}, nil)
	u := p.camURL("cam/auth")
	wrong := strings.Replace(u, "rtsp://", "rtsp://admin:wrong@", 1)
	for _, tc := range []struct {
		name, url, reason string
	}{
		{"wrong credentials", wrong, model.ReasonAuthFailed},
		{"no credentials", u, model.ReasonAuthFailed},
		{"unreachable", "rtsp://127.0.0.1:1/cam", model.ReasonUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := p.addChannel(tc.url)
			res, err := http.Get(p.live(id).HLS)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("HLS status %d %s, want 503", res.StatusCode, body)
			}
			ch := p.waitStatus(id, model.ChannelStatusOffline, tc.reason, 5*time.Second)
			t.Logf("%s: HLS said %s; channel says %s: %s", tc.name, bytes.TrimSpace(body), ch.Reason, ch.LastError)
		})
	}
}

func TestSlowReaderDoesNotSlowOthers(t *testing.T) {
	p := startPlatform(t, []sim.Camera{{Path: "cam/1", Clip: "street"}}, nil)
	id := p.addChannel(p.camURL("cam/1"))
	s, release, err := p.app.Hub().Acquire(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	stuck := s.AddReader("never-reads", 8)
	defer stuck.Close()
	fast := s.AddReader("reads", 0)
	defer fast.Close()
	n := 0
	timeout := time.After(4 * time.Second)
loop:
	for {
		select {
		case _, ok := <-fast.C():
			if !ok {
				t.Fatal("stream closed")
			}
			n++
		case <-timeout:
			break loop
		}
	}
	// 15 fps for 4 s, plus the cached GOP at the start.
	t.Logf("reader got %d units in 4 s; the stuck reader dropped %d", n, stuck.Dropped())
	if n < 50 {
		t.Fatalf("reading reader got %d units in 4 s, want >= 50 (15 fps)", n)
	}
	if stuck.Dropped() == 0 {
		t.Fatal("stuck reader dropped nothing")
	}
	if fast.Dropped() != 0 {
		t.Fatalf("reading reader dropped %d", fast.Dropped())
	}
}

func TestMediaTokens(t *testing.T) {
	p := startPlatform(t, []sim.Camera{{Path: "cam/1"}, {Path: "cam/2"}}, func(c *config.Config) {
		c.Live.TokenTTL = config.Duration(2 * time.Second)
	})
	id1 := p.addChannel(p.camURL("cam/1"))
	id2 := p.addChannel(p.camURL("cam/2"))
	l1 := p.live(id1)
	tok := func(u string) string { x, _ := url.Parse(u); return x.Query().Get("token") }
	get := func(u string) int {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	post := func(u string) int {
		res, err := http.Post(u, "application/sdp", strings.NewReader("v=0\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	base := p.app.URL()
	t1 := tok(l1.HLS)
	tampered := t1[:len(t1)-2] + "AA"
	if t1[len(t1)-2:] == "AA" {
		tampered = t1[:len(t1)-2] + "BB"
	}
	for _, tc := range []struct {
		name string
		do   func() int
		want int
	}{
		{"hls without token", func() int { return get(fmt.Sprintf("%s/live/%d/hls/index.m3u8", base, id1)) }, 401},
		{"whep without token", func() int { return post(fmt.Sprintf("%s/live/%d/whep", base, id1)) }, 401},
		{"hls tampered", func() int { return get(fmt.Sprintf("%s/live/%d/hls/index.m3u8?token=%s", base, id1, tampered)) }, 401},
		{"hls other channel", func() int { return get(fmt.Sprintf("%s/live/%d/hls/index.m3u8?token=%s", base, id2, t1)) }, 403},
		{"whep other channel", func() int { return post(fmt.Sprintf("%s/live/%d/whep?token=%s", base, id2, t1)) }, 403},
		{"hls valid", func() int { return get(l1.HLS) }, 200},
		{"hls expired", func() int { time.Sleep(time.Until(l1.Expires) + 100*time.Millisecond); return get(l1.HLS) }, 401},
	} {
		if got := tc.do(); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestFixingCredentialsReconnectsAtOnce(t *testing.T) {
	p := startPlatform(t, []sim.Camera{{Path: "cam/auth", Username: "admin", Password: "right"}}, func(c *config.Config) {
		c.Streams.BackoffMin = config.Duration(5 * time.Second) // a retry alone would be too slow
		c.Streams.BackoffMax = config.Duration(10 * time.Second)
	})
	u := p.camURL("cam/auth")
	id := p.addChannel(strings.Replace(u, "rtsp://", "rtsp://admin:wrong@", 1))
	unpin, err := p.app.Hub().Pin(id)
	if err != nil {
		t.Fatal(err)
	}
	defer unpin()
	p.waitStatus(id, model.ChannelStatusOffline, model.ReasonAuthFailed, 5*time.Second)
	var ch model.Channel
	if st := p.call("PATCH", fmt.Sprintf("/api/v1/channels/%d", id), map[string]any{
		"source_url": strings.Replace(u, "rtsp://", "rtsp://admin:right@", 1),
	}, &ch); st != 200 {
		t.Fatalf("patch: %d", st)
	}
	if strings.Contains(ch.SourceURL, "right") {
		t.Fatalf("API shows the password: %s", ch.SourceURL)
	}
	p.waitStatus(id, model.ChannelStatusOnline, "", 3*time.Second)
}

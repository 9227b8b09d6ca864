package llhls

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/media"
)

// received is what a gohlslib client got.
type received struct {
	mu        sync.Mutex
	video     int
	keys      int
	audio     int
	lastPTS   int64
	lastDTS   int64
	badOrder  []string
	firstAt   time.Time
	decodeErr []error
}

// play reads url with gohlslib's client for d and returns what it got. Every
// request the client sends must carry the token.
func play(t *testing.T, u string, d time.Duration) *received {
	t.Helper()
	got := &received{lastPTS: -1 << 62, lastDTS: -1 << 62}
	var noToken atomic.Int32
	c := &gohlslib.Client{
		URI: u,
		OnRequest: func(r *http.Request) {
			if r.URL.Query().Get("token") != testToken {
				noToken.Add(1)
				t.Errorf("request without token: %s", r.URL)
			}
		},
		OnDownloadPrimaryPlaylist: func(string) {},
		OnDownloadStreamPlaylist:  func(string) {},
		OnDownloadSegment:         func(string) {},
		OnDownloadPart:            func(string) {},
		OnDecodeError: func(err error) {
			got.mu.Lock()
			got.decodeErr = append(got.decodeErr, err)
			got.mu.Unlock()
		},
	}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264, *codecs.H265:
				_, h265 := tr.Codec.(*codecs.H265)
				c.OnDataH26x(tr, func(pts, dts int64, au [][]byte) {
					got.mu.Lock()
					defer got.mu.Unlock()
					if got.video == 0 {
						got.firstAt = time.Now()
					}
					got.video++
					if pts <= got.lastPTS || dts < got.lastDTS {
						got.badOrder = append(got.badOrder, fmt.Sprintf("pts %d after %d, dts %d after %d",
							pts, got.lastPTS, dts, got.lastDTS))
					}
					got.lastPTS, got.lastDTS = pts, dts
					if isIDR(au, h265) {
						got.keys++
					}
				})
			case *codecs.MPEG4Audio:
				c.OnDataMPEG4Audio(tr, func(_ int64, aus [][]byte) {
					got.mu.Lock()
					got.audio += len(aus)
					got.mu.Unlock()
				})
			}
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.Wait():
		t.Fatalf("client stopped: %v", err)
	case <-time.After(d):
	}
	c.Close()
	got.mu.Lock()
	defer got.mu.Unlock()
	return got
}

func isIDR(au [][]byte, isH265 bool) bool {
	for _, n := range au {
		if isH265 {
			if typ := h265.NALUType((n[0] >> 1) & 0x3f); typ >= 16 && typ <= 21 {
				return true
			}
		} else if h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
			return true
		}
	}
	return false
}

func hlsURL(ts string, id int64, file string) string {
	return fmt.Sprintf("%s/live/%d/hls/%s?token=%s", ts, id, file, testToken)
}

func TestPlayback(t *testing.T) {
	t.Parallel()
	v264 := loadClip(t, "clip.h264", media.CodecH264)
	v265 := loadClip(t, "clip.h265", media.CodecH265)
	aac := loadAAC(t)
	for _, tc := range []struct {
		name      string
		video     *clip
		inBand    bool
		withAudio bool
		g711      bool
	}{
		{name: "h264", video: v264},
		{name: "h264 with aac", video: v264, withAudio: true},
		{name: "h264 in-band parameter sets", video: v264, inBand: true},
		{name: "h265 with aac and g711", video: v265, withAudio: true, g711: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := sourceOpts{video: tc.video, tracks: []*media.Track{tc.video.track(tc.inBand)},
				startPTS: 123456789}
			if tc.g711 {
				o.tracks = append(o.tracks, &media.Track{Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1}) // left out
			}
			if tc.withAudio {
				o.tracks = append(o.tracks,
					&media.Track{Codec: media.CodecAAC, ClockRate: aac.rate, Config: aac.config, Channels: 1})
				o.audio, o.audioTrack = aac, len(o.tracks)-1
			}
			src := startSource(t, o)
			hub := hubOf(func() *source { return src })
			reg := prometheus.NewRegistry()
			s, ts := newTestServer(t, Config{Hub: hub, Registerer: reg})

			got := play(t, hlsURL(ts.URL, 7, "index.m3u8"), 3500*time.Millisecond)
			t.Logf("received %d video frames (%d IDR), %d audio units", got.video, got.keys, got.audio)
			if len(got.badOrder) > 0 {
				t.Errorf("timestamps out of order: %v", got.badOrder)
			}
			if got.keys == 0 {
				t.Error("no IDR received")
			}
			// The client starts a few parts behind the live edge and plays
			// for 3.5 s: at 30 fps, expect well over 1.5 s of frames.
			if got.video < 45 {
				t.Errorf("received %d video frames, want >= 45", got.video)
			}
			if tc.withAudio && got.audio < 50 {
				t.Errorf("received %d audio units, want >= 50", got.audio)
			}
			if len(got.decodeErr) > 0 {
				t.Errorf("decode errors: %v", got.decodeErr)
			}
			if n := hub.calls.Load(); n != 1 {
				t.Errorf("Acquire called %d times, want 1", n)
			}
			if v := gather(t, reg, "xueliang_llhls_requests_total", "result", "ok"); v < 5 {
				t.Errorf("requests_total{result=ok} = %v, want >= 5", v)
			}
			if v := gather(t, reg, "xueliang_llhls_muxers", "", ""); v != 1 {
				t.Errorf("muxers = %v, want 1", v)
			}
			s.Close()
			if n := hub.releases.Load(); n != 1 {
				t.Errorf("released %d times after Close, want 1", n)
			}
		})
	}
}

// gather returns the value of a counter or gauge with the label, summed.
func gather(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" {
				match := false
				for _, lp := range m.GetLabel() {
					match = match || (lp.GetName() == label && lp.GetValue() == value)
				}
				if !match {
					continue
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// mediaPlaylist fetches the multivariant playlist and then the media
// playlist of the video, and returns the latter's URL and content.
func mediaPlaylist(t *testing.T, base string, id int64) (*url.URL, *playlist.Media) {
	t.Helper()
	mvURL, _ := url.Parse(hlsURL(base, id, "index.m3u8"))
	status, body, _ := get(t, mvURL.String())
	if status != http.StatusOK {
		t.Fatalf("index.m3u8: %d %s", status, body)
	}
	pl, err := playlist.Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	mv := pl.(*playlist.Multivariant)
	ref, _ := url.Parse(mv.Variants[0].URI)
	mURL := mvURL.ResolveReference(ref)
	status, body, _ = get(t, mURL.String())
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", mURL, status, body)
	}
	pl, err = playlist.Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return mURL, pl.(*playlist.Media)
}

func TestTokenPropagation(t *testing.T) {
	t.Parallel()
	v := loadClip(t, "clip.h264", media.CodecH264)
	src := startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
	_, ts := newTestServer(t, Config{Hub: hubOf(func() *source { return src })})

	status, body, h := get(t, hlsURL(ts.URL, 3, "index.m3u8"))
	if status != http.StatusOK {
		t.Fatalf("index.m3u8: %d %s", status, body)
	}
	if cc := h.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index.m3u8 Cache-Control = %q, want no-cache", cc)
	}
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("no CORS header")
	}
	mURL, pl := mediaPlaylist(t, ts.URL, 3)

	// A blocking playlist reload (LL-HLS, as hls.js sends) waits for the
	// next part and keeps the token, without the _HLS_ parameters, in its URIs.
	blocking := *mURL
	blocking.RawQuery = fmt.Sprintf("token=%s&_HLS_msn=%d&_HLS_part=%d",
		testToken, pl.MediaSequence+len(pl.Segments), len(pl.Parts))
	start := time.Now()
	status, body, h = get(t, blocking.String())
	if status != http.StatusOK {
		t.Fatalf("blocking reload: %d %s", status, body)
	}
	if cc := h.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("media playlist Cache-Control = %q, want no-cache", cc)
	}
	t.Logf("blocking reload answered after %v", time.Since(start).Round(time.Millisecond))
	if strings.Contains(string(body), "_HLS_") {
		t.Errorf("_HLS_ parameters leaked into the URIs:\n%s", body)
	}
	p2, err := playlist.Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	pl = p2.(*playlist.Media)
	var uris []string
	if pl.Map != nil {
		uris = append(uris, pl.Map.URI)
	}
	for _, seg := range pl.Segments {
		if !seg.Gap {
			uris = append(uris, seg.URI)
		}
		for _, p := range seg.Parts {
			uris = append(uris, p.URI)
		}
	}
	for _, p := range pl.Parts {
		uris = append(uris, p.URI)
	}
	if pl.PreloadHint != nil {
		uris = append(uris, pl.PreloadHint.URI)
	}
	if len(uris) < 4 {
		t.Fatalf("only %d URIs in the media playlist", len(uris))
	}
	for _, u := range uris {
		if !strings.HasSuffix(u, "?token="+testToken) {
			t.Errorf("URI %q lost the token", u)
		}
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	v := loadClip(t, "clip.h264", media.CodecH264)
	src := startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
	var seen sync.Map // channel IDs passed to Authorize
	_, ts := newTestServer(t, Config{
		Hub: hubOf(func() *source { return src }),
		Authorize: func(r *http.Request, id int64) error {
			seen.Store(id, true)
			return authorizeToken(r, id)
		},
	})
	mURL, pl := mediaPlaylist(t, ts.URL, 5)
	seg := ""
	for _, s := range pl.Segments {
		if !s.Gap {
			seg = s.URI
		}
	}
	segURL, _ := url.Parse(seg)
	segURL = mURL.ResolveReference(segURL)
	if status, body, _ := get(t, segURL.String()); status != http.StatusOK || len(body) == 0 {
		t.Fatalf("segment with token: %d, %d bytes", status, len(body))
	}
	if _, ok := seen.Load(int64(5)); !ok {
		t.Error("Authorize not called with channel 5")
	}

	withToken := func(u *url.URL, token string) string {
		u2 := *u
		if token == "" {
			u2.RawQuery = ""
		} else {
			u2.RawQuery = "token=" + token
		}
		return u2.String()
	}
	index, _ := url.Parse(hlsURL(ts.URL, 5, "index.m3u8"))
	for _, tc := range []struct {
		name   string
		url    string
		status int
		code   string
	}{
		{"playlist without token", withToken(index, ""), http.StatusUnauthorized, codeUnauthorized},
		{"media playlist without token", withToken(mURL, ""), http.StatusUnauthorized, codeUnauthorized},
		{"segment without token", withToken(segURL, ""), http.StatusUnauthorized, codeUnauthorized},
		{"segment with a wrong token", withToken(segURL, "other"), http.StatusForbidden, codeForbidden},
		{"playlist of a channel never started, no token", withToken(index, "") + "", http.StatusUnauthorized, codeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := get(t, tc.url)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, body)
			}
			if e := decodeError(t, body); e.Code != tc.code {
				t.Errorf("code %q, want %q", e.Code, tc.code)
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	hub := &fakeHub{acquire: func(_ context.Context, id int64) (*media.Stream, func(), error) {
		switch id {
		case 404:
			return nil, nil, fmt.Errorf("streams: channel %d: %w", id, media.ErrNoChannel)
		case 503:
			return nil, nil, fmt.Errorf("streams: channel %d: %w: %w", id, media.ErrUnavailable,
				media.Fail(media.ReasonUnreachable, errors.New("camera unreachable")))
		case 504:
			return nil, nil, fmt.Errorf("streams: channel %d: %w: camera unreachable", id, media.ErrUnavailable)
		case 415:
			return media.NewStream([]*media.Track{{Codec: media.CodecPCMU, ClockRate: 8000}}), func() {}, nil
		case 500:
			v := loadClip(t, "clip.h264", media.CodecH264)
			tr := v.track(false)
			tr.SPS = []byte{0x67, 0xff}
			st := media.NewStream([]*media.Track{tr})
			idr := v.frames[0].nalus[len(v.frames[0].nalus)-1:] // without the in-band parameter sets
			st.Write(&media.Unit{Track: 0, Key: true, Payload: idr})
			return st, func() {}, nil
		}
		return nil, nil, errors.New("unexpected channel")
	}}
	reg := prometheus.NewRegistry()
	s, ts := newTestServer(t, Config{Hub: hub, Registerer: reg})
	for _, tc := range []struct {
		name    string
		path    string
		status  int
		code    string
		message string
	}{
		{"bad id", "/live/abc/hls/index.m3u8?token=" + testToken, 404, codeNotFound, "no such channel"},
		{"zero id", "/live/0/hls/index.m3u8?token=" + testToken, 404, codeNotFound, "no such channel"},
		{"huge id", "/live/99999999999999999999/hls/index.m3u8?token=" + testToken, 404, codeNotFound, "no such channel"},
		{"no file", "/live/1/hls/?token=" + testToken, 404, codeNotFound, "no such file"},
		{"segment of no muxer", "/live/1/hls/abc_video1_seg7.mp4?token=" + testToken, 404, codeNotFound, "no such file"},
		{"no channel", "/live/404/hls/index.m3u8?token=" + testToken, 404, codeNotFound, "no such channel"},
		{"source error", "/live/503/hls/index.m3u8?token=" + testToken, 503, codeUnavailable,
			"source unavailable: unreachable: camera unreachable"},
		{"wrapped text", "/live/504/hls/index.m3u8?token=" + testToken, 503, codeUnavailable,
			"source unavailable: camera unreachable"},
		{"no playable track", "/live/415/hls/index.m3u8?token=" + testToken, 503, codeUnavailable,
			"llhls: no track of the stream can be played over HLS"},
		{"invalid SPS", "/live/500/hls/index.m3u8?token=" + testToken, 503, codeUnavailable,
			"llhls: channel 500: invalid H264 SPS: not enough bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := get(t, ts.URL+tc.path)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, body)
			}
			e := decodeError(t, body)
			if e.Code != tc.code || e.Message != tc.message {
				t.Errorf("error %+v, want code %q message %q", e, tc.code, tc.message)
			}
			if h.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header on error")
			}
		})
	}

	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/live/1/hls/index.m3u8", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", res.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodOptions, ts.URL+"/live/1/hls/index.m3u8", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Methods") == "" {
		t.Errorf("OPTIONS: %d %v", res.StatusCode, res.Header)
	}

	// Failed starts leave nothing behind.
	eventually(t, 2*time.Second, "failed muxers removed", func() bool { return muxerCount(s) == 0 })
	if v := gather(t, reg, "xueliang_llhls_muxer_errors_total", "", ""); v != 1 {
		t.Errorf("muxer_errors_total = %v, want 1 (the invalid SPS)", v)
	}
	if v := gather(t, reg, "xueliang_llhls_requests_total", "result", codeUnavailable); v != 4 {
		t.Errorf("requests_total{result=unavailable} = %v, want 4", v)
	}
}

func TestConcurrentFirstRequestsShareOneAcquire(t *testing.T) {
	t.Parallel()
	v := loadClip(t, "clip.h264", media.CodecH264)
	var src *source
	var mu sync.Mutex
	hub := &fakeHub{acquire: func(ctx context.Context, _ int64) (*media.Stream, func(), error) {
		select { // a source that takes a while to connect
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		src = startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
		return src.stream, func() {}, nil
	}}
	_, ts := newTestServer(t, Config{Hub: hub})

	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			file := "index.m3u8"
			if i%2 == 1 {
				file = "stream.m3u8"
			}
			statuses[i], _, _ = get(t, hlsURL(ts.URL, 9, file))
		})
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Errorf("request %d: status %d", i, st)
		}
	}
	if c := hub.calls.Load(); c != 1 {
		t.Errorf("Acquire called %d times, want 1", c)
	}
}

func TestIdleTimeoutReleases(t *testing.T) {
	t.Parallel()
	v := loadClip(t, "clip.h264", media.CodecH264)
	src := startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
	hub := hubOf(func() *source { return src })
	reg := prometheus.NewRegistry()
	s, ts := newTestServer(t, Config{Hub: hub, IdleTimeout: 300 * time.Millisecond, Registerer: reg})

	if status, body, _ := get(t, hlsURL(ts.URL, 4, "index.m3u8")); status != http.StatusOK {
		t.Fatalf("index.m3u8: %d %s", status, body)
	}
	// Requests keep it alive.
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		get(t, hlsURL(ts.URL, 4, "stream.m3u8"))
	}
	if hub.releases.Load() != 0 {
		t.Fatal("released while requests kept coming")
	}
	eventually(t, 2*time.Second, "lease released after the idle timeout", func() bool {
		return hub.releases.Load() == 1 && muxerCount(s) == 0
	})
	if v := gather(t, reg, "xueliang_llhls_muxers", "", ""); v != 0 {
		t.Errorf("muxers gauge = %v after idle stop", v)
	}
	// The next request starts again.
	if status, body, _ := get(t, hlsURL(ts.URL, 4, "index.m3u8")); status != http.StatusOK {
		t.Fatalf("index.m3u8 after idle: %d %s", status, body)
	}
	if c := hub.calls.Load(); c != 2 {
		t.Errorf("Acquire called %d times, want 2", c)
	}
}

func TestStreamEndStopsMuxer(t *testing.T) {
	t.Parallel()
	v := loadClip(t, "clip.h264", media.CodecH264)
	var mu sync.Mutex
	var sources []*source
	hub := &fakeHub{acquire: func(context.Context, int64) (*media.Stream, func(), error) {
		mu.Lock()
		defer mu.Unlock()
		src := startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
		sources = append(sources, src)
		return src.stream, func() {}, nil
	}}
	s, ts := newTestServer(t, Config{Hub: hub})

	mURL, pl := mediaPlaylist(t, ts.URL, 6)

	// Requests waiting in gohlslib (a blocking playlist reload) and here (the
	// preload hint part) when the stream ends must all be answered.
	next := pl.MediaSequence + len(pl.Segments)
	blocking := *mURL
	blocking.RawQuery = fmt.Sprintf("token=%s&_HLS_msn=%d&_HLS_part=%d", testToken, next+1, 0)
	hint, _ := url.Parse(pl.PreloadHint.URI)
	hintURL := mURL.ResolveReference(hint)
	var wg sync.WaitGroup
	var answered atomic.Int32
	statuses := make([]int, 6)
	for i := range statuses {
		u := blocking.String()
		if i%2 == 0 {
			u = hintURL.String()
		}
		wg.Go(func() {
			statuses[i], _, _ = get(t, u) // it must not hang
			answered.Add(1)
		})
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	sources[0].close(errors.New("camera went away"))
	mu.Unlock()
	eventually(t, 3*time.Second, "waiting requests answered", func() bool { return answered.Load() == 6 })
	wg.Wait()
	for i, st := range statuses {
		// The hinted part may be finished before the stream ends.
		if st != http.StatusServiceUnavailable && !(i%2 == 0 && st == http.StatusOK) {
			t.Errorf("waiting request %d: status %d, want 503", i, st)
		}
	}
	eventually(t, 2*time.Second, "lease released after the stream ended", func() bool {
		return hub.releases.Load() == 1 && muxerCount(s) == 0
	})

	// A segment of the old muxer is gone; a playlist starts a new muxer.
	if status, _, _ := get(t, hintURL.String()); status != http.StatusNotFound {
		t.Errorf("part of the old muxer: %d, want 404", status)
	}
	if status, body, _ := get(t, hlsURL(ts.URL, 6, "index.m3u8")); status != http.StatusOK {
		t.Fatalf("index.m3u8 after the stream ended: %d %s", status, body)
	}
	if c := hub.calls.Load(); c != 2 {
		t.Errorf("Acquire called %d times, want 2", c)
	}
}

// TestFirstPlaylistLatency measures the time from the first request of a
// channel to its first playlist with a 1 s GOP, for a source that starts on
// Acquire and for one that already runs.
func TestFirstPlaylistLatency(t *testing.T) {
	t.Parallel()
	v := loadClip(t, "clip.h264", media.CodecH264)
	for _, tc := range []struct {
		name    string
		running time.Duration // how long the source ran before the request
	}{
		{"source starts on acquire", 0},
		{"source running for 0.5 s", 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var src *source
			if tc.running > 0 {
				src = startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
				time.Sleep(tc.running)
			}
			hub := &fakeHub{acquire: func(context.Context, int64) (*media.Stream, func(), error) {
				if src == nil {
					src = startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
				}
				return src.stream, func() {}, nil
			}}
			_, ts := newTestServer(t, Config{Hub: hub})
			start := time.Now()
			status, body, _ := get(t, hlsURL(ts.URL, 8, "index.m3u8"))
			elapsed := time.Since(start)
			if status != http.StatusOK {
				t.Fatalf("index.m3u8: %d %s", status, body)
			}
			t.Logf("first playlist after %v", elapsed.Round(time.Millisecond))
			if elapsed > 2*time.Second {
				t.Errorf("first playlist after %v, want < 2 s with a 1 s GOP", elapsed)
			}
		})
	}
}

func TestNotReadyTimeout(t *testing.T) {
	t.Parallel()
	// A stream that never sends a keyframe.
	stream := media.NewStream([]*media.Track{{Codec: media.CodecH264, ClockRate: 90000}})
	hub := &fakeHub{acquire: func(context.Context, int64) (*media.Stream, func(), error) {
		return stream, func() {}, nil
	}}
	_, ts := newTestServer(t, Config{Hub: hub, ReadyTimeout: 200 * time.Millisecond})
	status, body, h := get(t, hlsURL(ts.URL, 2, "index.m3u8"))
	if status != http.StatusServiceUnavailable || decodeError(t, body).Code != codeNotReady {
		t.Fatalf("status %d %s, want 503 not_ready", status, body)
	}
	if h.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

// TestCloseLeavesNoGoroutines is not parallel: it counts goroutines.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	v := loadClip(t, "clip.h264", media.CodecH264)
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()

	src := startSource(t, sourceOpts{video: v, tracks: []*media.Track{v.track(false)}})
	hub := hubOf(func() *source { return src })
	blocked := make(chan struct{})
	slowHub := &fakeHub{acquire: func(ctx context.Context, _ int64) (*media.Stream, func(), error) {
		close(blocked)
		<-ctx.Done() // an Acquire in progress when Close is called
		return nil, nil, ctx.Err()
	}}
	s, err := NewServer(Config{Hub: hubRouter{1: hub, 2: slowHub}, Authorize: authorizeToken})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/{id}/hls/", s)
	ts := httptest.NewServer(mux)

	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Get(hlsURL(ts.URL, 1, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("index.m3u8: %d", res.StatusCode)
	}
	slowDone := make(chan int)
	go func() {
		res, err := client.Get(hlsURL(ts.URL, 2, "index.m3u8"))
		if err != nil {
			slowDone <- 0
			return
		}
		res.Body.Close()
		slowDone <- res.StatusCode
	}()
	<-blocked

	s.Close()
	if st := <-slowDone; st != http.StatusServiceUnavailable {
		t.Errorf("request during Close: %d, want 503", st)
	}
	if n := hub.releases.Load(); n != 1 {
		t.Errorf("released %d times, want 1", n)
	}
	if st, _, _ := get(t, hlsURL(ts.URL, 1, "index.m3u8")); st != http.StatusServiceUnavailable {
		t.Errorf("request after Close: %d, want 503", st)
	}
	s.Close() // idempotent
	ts.Close()
	client.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	src.close(nil)

	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hubRouter sends each channel to its own hub.
type hubRouter map[int64]*fakeHub

func (r hubRouter) Acquire(ctx context.Context, id int64) (*media.Stream, func(), error) {
	return r[id].Acquire(ctx, id)
}

func TestNewServerValidates(t *testing.T) {
	t.Parallel()
	hub := &fakeHub{}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no hub", Config{Authorize: authorizeToken}},
		{"no authorize", Config{Hub: hub}},
		{"too few segments", Config{Hub: hub, Authorize: authorizeToken, SegmentCount: 2}},
		{"part longer than segment", Config{Hub: hub, Authorize: authorizeToken, PartMinDuration: 2 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewServer(tc.cfg); err == nil || !strings.HasPrefix(err.Error(), "llhls: ") {
				t.Errorf("err = %v, want an llhls: error", err)
			}
		})
	}
	if s, err := NewServer(Config{Hub: hub, Authorize: authorizeToken, SegmentCount: MinSegmentCount}); err != nil {
		t.Errorf("SegmentCount %d: %v", MinSegmentCount, err)
	} else {
		s.Close()
	}
	reg := prometheus.NewRegistry()
	s, err := NewServer(Config{Hub: hub, Authorize: authorizeToken, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Close unregisters: a new server can register again.
	s, err = NewServer(Config{Hub: hub, Authorize: authorizeToken, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

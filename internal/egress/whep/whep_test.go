package whep

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/xueliang/xueliang/internal/media"
)

// receive collects video packets for d and returns the number received and
// the NAL units of the first complete access unit.
func receive(t *testing.T, c *ClientSession, d time.Duration, h265 bool) (int, [][]byte) {
	t.Helper()
	asm := newFrameAssembler(h265)
	var first [][]byte
	n := 0
	timeout := time.After(d)
	for {
		select {
		case p := <-c.VideoPackets():
			n++
			if first == nil {
				nalus, err := asm.push(p)
				if err != nil {
					t.Fatalf("depacketize packet %d: %v", n, err)
				}
				first = nalus
			}
		case <-timeout:
			return n, first
		}
	}
}

func h264Types(nalus [][]byte) []int {
	var ts []int
	for _, n := range nalus {
		ts = append(ts, int(n[0]&0x1f))
	}
	return ts
}

func h265Types(nalus [][]byte) []int {
	var ts []int
	for _, n := range nalus {
		ts = append(ts, int(h265Type(n)))
	}
	return ts
}

func TestPlayH264WithG711(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream, stop := feed(t, c, media.CodecPCMA)
	defer stop()
	time.Sleep(300 * time.Millisecond) // let the stream cache a GOP
	e := newEnv(t, stream, nil)

	cs := e.dial(t, "7")
	n, first := receive(t, cs, 2*time.Second, false)

	ttfp, ok := cs.TimeToFirstVideoPacket()
	if !ok {
		t.Fatal("no video packet")
	}
	t.Logf("POST to first video RTP packet: %s; %d video packets in 2 s", ttfp.Round(100*time.Microsecond), n)
	if n < 60 {
		t.Errorf("received %d video packets in 2 s, want at least 60 (25 fps)", n)
	}
	types := h264Types(first)
	if len(types) < 3 || types[0] != h264SPS || types[1] != h264PPS || !slices.Contains(types, 5) {
		t.Errorf("first access unit NAL types %v, want SPS (7), PPS (8), then an IDR (5)", types)
	}
	if codec, _ := cs.VideoCodec(); codec.MimeType != webrtc.MimeTypeH264 {
		t.Errorf("video codec %q", codec.MimeType)
	}
	// The clip is High profile and the client offers 640032: the answer says High.
	if !strings.Contains(cs.Answer(), "profile-level-id=640032") {
		t.Errorf("answer does not pick the High profile:\n%s", cs.Answer())
	}

	select {
	case p := <-cs.AudioPackets():
		if p.PayloadType != 8 || len(p.Payload) != g711Samples {
			t.Errorf("audio packet PT %d, %d bytes; want PCMA (8), %d bytes", p.PayloadType, len(p.Payload), g711Samples)
		}
	case <-time.After(time.Second):
		t.Error("no G.711 audio packet")
	}

	if got := toFloat64(e.srv.metrics.frames.WithLabelValues("video")); got < 40 {
		t.Errorf("frames_sent_total{kind=video} = %v", got)
	}
	if got := toFloat64(e.srv.metrics.setups.WithLabelValues("created")); got != 1 {
		t.Errorf("sessions_total{result=created} = %v", got)
	}
	if e.srv.Sessions() != 1 || toFloat64(e.srv.metrics.active) != 1 {
		t.Errorf("Sessions() = %d, active gauge %v; want 1", e.srv.Sessions(), toFloat64(e.srv.metrics.active))
	}

	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	// DELETE answers once the session is gone and its lease released.
	if e.srv.Sessions() != 0 || e.released.Load() != 1 {
		t.Errorf("after DELETE: %d sessions, %d releases; want 0, 1", e.srv.Sessions(), e.released.Load())
	}
	if got := toFloat64(e.srv.metrics.closed.WithLabelValues("deleted")); got != 1 {
		t.Errorf("sessions_closed_total{reason=deleted} = %v", got)
	}
}

func TestPlayH265(t *testing.T) {
	c := loadClip(t, "clip.h265", media.CodecH265)
	stream, stop := feed(t, c, media.CodecUnknown)
	defer stop()
	e := newEnv(t, stream, nil)

	cs := e.dial(t, "7", WithH265())
	defer cs.Close()
	n, first := receive(t, cs, time.Second, true)
	if codec, _ := cs.VideoCodec(); codec.MimeType != webrtc.MimeTypeH265 {
		t.Fatalf("video codec %q, want H265", codec.MimeType)
	}
	if n < 25 {
		t.Errorf("received %d video packets in 1 s", n)
	}
	types := h265Types(first)
	irap := slices.ContainsFunc(types, func(t int) bool { return t >= 16 && t <= 21 })
	if len(types) < 4 || types[0] != h265VPS || types[1] != h265SPS || types[2] != h265PPS || !irap {
		t.Errorf("first access unit NAL types %v, want VPS (32), SPS (33), PPS (34), then an IRAP (16-21)", types)
	}
}

func TestH265RefusedWithoutH265Offer(t *testing.T) {
	c := loadClip(t, "clip.h265", media.CodecH265)
	e := newEnv(t, media.NewStream([]*media.Track{c.track}), nil)

	_, err := Dial(t.Context(), e.url("7"), WithHTTPClient(e.http.Client()))
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnprocessableEntity || se.Code != codeH265NotOffered ||
		!strings.Contains(se.Message, h265Refusal) {
		t.Fatalf("Dial error %v, want 422 saying %q", err, h265Refusal)
	}
	if e.acquired.Load() != 1 || e.released.Load() != 1 {
		t.Errorf("%d acquired, %d released; want 1, 1", e.acquired.Load(), e.released.Load())
	}
}

const minimalOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"

func TestHTTPErrors(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	e := newEnv(t, media.NewStream([]*media.Track{c.track}), nil)
	base := e.http.URL

	tests := []struct {
		name        string
		method, url string
		header      map[string]string
		body        string
		status      int
		code        string
		message     string // substring of the message
	}{
		{name: "no token", method: "POST", url: "/live/7/whep", body: minimalOffer,
			status: 401, code: codeUnauthorized},
		{name: "bad token", method: "POST", url: "/live/7/whep?token=nope", body: minimalOffer,
			status: 401, code: codeUnauthorized, message: "bad signature"},
		{name: "forbidden", method: "POST", url: "/live/7/whep?token=other-channel", body: minimalOffer,
			status: 403, code: codeForbidden},
		{name: "unknown channel", method: "POST", url: "/live/9/whep?token=" + testToken, body: minimalOffer,
			status: 404, code: codeNotFound, message: "no such channel"},
		{name: "channel not a number", method: "POST", url: "/live/abc/whep?token=" + testToken, body: minimalOffer,
			status: 404, code: codeNotFound},
		{name: "unavailable", method: "POST", url: "/live/8/whep?token=" + testToken, body: minimalOffer,
			status: 503, code: codeUnavailable, message: "connection refused"},
		{name: "wrong content type", method: "POST", url: "/live/7/whep?token=" + testToken, body: minimalOffer,
			header: map[string]string{"Content-Type": "application/json"}, status: 415, code: codeUnsupportedType},
		{name: "garbage offer", method: "POST", url: "/live/7/whep?token=" + testToken, body: "hello",
			status: 400, code: codeBadRequest},
		{name: "offer without ice", method: "POST", url: "/live/7/whep?token=" + testToken,
			body:   "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n",
			status: 400, code: codeBadRequest},
		{name: "offer without h264", method: "POST", url: "/live/7/whep?token=" + testToken,
			body:   strings.ReplaceAll(minimalOffer, "H264/90000", "VP8/90000"),
			status: 422, code: codeUnsupportedCodec, message: "no H.264"},
		{name: "offer too large", method: "POST", url: "/live/7/whep?token=" + testToken,
			body: minimalOffer + strings.Repeat("a=x-pad:0123456789\r\n", 5000), status: 413, code: codeTooLarge},
		{name: "bearer token", method: "POST", url: "/live/7/whep", body: "garbage",
			header: map[string]string{"Authorization": "Bearer " + testToken}, status: 400, code: codeBadRequest},
		{name: "get endpoint", method: "GET", url: "/live/7/whep", status: 405, code: codeMethodNotAllowed},
		{name: "patch session", method: "PATCH", url: "/live/7/whep/0123", status: 405, code: codeMethodNotAllowed},
		{name: "delete unknown session", method: "DELETE", url: "/live/7/whep/0123", status: 404, code: codeNotFound},
		{name: "nested path", method: "DELETE", url: "/live/7/whep/a/b", status: 404, code: codeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.url, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/sdp")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var eb errorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", body, err)
			}
			if resp.StatusCode != tt.status || eb.Error.Code != tt.code || !strings.Contains(eb.Error.Message, tt.message) {
				t.Errorf("got %d %q %q, want %d %q containing %q", resp.StatusCode, eb.Error.Code, eb.Error.Message, tt.status, tt.code, tt.message)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if resp.StatusCode == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
		})
	}
	if n := e.acquired.Load(); n != e.released.Load() {
		t.Errorf("%d leases acquired, %d released", n, e.released.Load())
	}
	if e.srv.Sessions() != 0 {
		t.Errorf("%d sessions left", e.srv.Sessions())
	}
}

func TestOptions(t *testing.T) {
	e := newEnv(t, media.NewStream(nil), nil)
	req, _ := http.NewRequest("OPTIONS", e.http.URL+"/live/7/whep", nil)
	req.Header.Set("Origin", "https://console.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("preflight: %d %v", resp.StatusCode, h)
	}
}

func TestDeleteReleasesLeaseOnce(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream, stop := feed(t, c, media.CodecUnknown)
	defer stop()
	e := newEnv(t, stream, nil)

	cs := e.dial(t, "7")
	eventually(t, 5*time.Second, "first packet", func() bool { _, ok := cs.FirstVideoPacket(); return ok })
	loc := cs.Location()
	if !strings.HasPrefix(loc, e.http.URL+"/live/7/whep/") || len(loc) < len(e.http.URL+"/live/7/whep/")+32 {
		t.Errorf("Location %q: want /live/7/whep/ and 128 random bits", loc)
	}
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	if e.released.Load() != 1 || e.srv.Sessions() != 0 {
		t.Fatalf("after DELETE: %d releases, %d sessions", e.released.Load(), e.srv.Sessions())
	}

	// A second DELETE finds nothing, and releases nothing.
	req, _ := http.NewRequest("DELETE", loc, nil)
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("second DELETE: %d", resp.StatusCode)
	}
	// The session of one channel cannot be deleted through another.
	cs2 := e.dial(t, "7")
	defer cs2.Close()
	other := strings.Replace(cs2.Location(), "/live/7/", "/live/9/", 1)
	req, _ = http.NewRequest("DELETE", other, nil)
	resp, err = e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || e.srv.Sessions() != 1 {
		t.Errorf("DELETE through another channel: %d, %d sessions", resp.StatusCode, e.srv.Sessions())
	}
	time.Sleep(100 * time.Millisecond)
	if e.released.Load() != 1 {
		t.Errorf("%d releases, want 1", e.released.Load())
	}
}

func TestStreamEndClosesSession(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream, stop := feed(t, c, media.CodecUnknown)
	e := newEnv(t, stream, nil)

	cs := e.dial(t, "7")
	defer cs.Close()
	eventually(t, 5*time.Second, "first packet", func() bool { _, ok := cs.FirstVideoPacket(); return ok })
	stop()
	stream.Close(errors.New("camera went away"))

	eventually(t, 5*time.Second, "session end", func() bool { return e.srv.Sessions() == 0 })
	if e.released.Load() != 1 {
		t.Errorf("%d releases, want 1", e.released.Load())
	}
	if got := toFloat64(e.srv.metrics.closed.WithLabelValues("stream_ended")); got != 1 {
		t.Errorf("sessions_closed_total{reason=stream_ended} = %v", got)
	}
	// The server closed the peer connection; the player sees it.
	select {
	case <-cs.Done():
	case <-time.After(5 * time.Second):
		t.Error("client not told that the session ended")
	}
}

func TestPeerGoneClosesSession(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream, stop := feed(t, c, media.CodecUnknown)
	defer stop()
	e := newEnv(t, stream, nil)

	cs := e.dial(t, "7")
	eventually(t, 5*time.Second, "first packet", func() bool { _, ok := cs.FirstVideoPacket(); return ok })
	// The player closes its peer connection without DELETE (tab closed).
	if err := cs.pc.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "session end", func() bool { return e.srv.Sessions() == 0 })
	if e.released.Load() != 1 {
		t.Errorf("%d releases, want 1", e.released.Load())
	}
	cs.location = "" // nothing to DELETE
	_ = cs.Close()
}

func TestConnectTimeout(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	e := newEnv(t, media.NewStream([]*media.Track{c.track}), func(c *Config) { c.SessionTimeout = 300 * time.Millisecond })

	// A player that POSTs and never connects.
	pc, err := newClientPeerConnection(false)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.SetLocalDescription(offer)
	<-webrtc.GatheringCompletePromise(pc)
	sdp := pc.LocalDescription().SDP
	_ = pc.Close()

	resp, err := e.http.Client().Post(e.url("7"), "application/sdp", strings.NewReader(sdp))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if e.srv.Sessions() != 1 {
		t.Fatalf("%d sessions", e.srv.Sessions())
	}
	eventually(t, 3*time.Second, "session timeout", func() bool { return e.srv.Sessions() == 0 })
	if e.released.Load() != 1 {
		t.Errorf("%d releases, want 1", e.released.Load())
	}
	if got := toFloat64(e.srv.metrics.closed.WithLabelValues("connect_timeout")); got != 1 {
		t.Errorf("sessions_closed_total{reason=connect_timeout} = %v", got)
	}
}

func TestAcquireTimeout(t *testing.T) {
	e := newEnv(t, media.NewStream(nil), func(c *Config) { c.AcquireTimeout = 200 * time.Millisecond })
	_, err := Dial(t.Context(), e.url("10"), WithHTTPClient(e.http.Client()))
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable || !strings.Contains(se.Message, "not ready") {
		t.Fatalf("Dial: %v, want 503 source not ready", err)
	}
}

func TestCloseDuringAcquire(t *testing.T) {
	e := newEnv(t, media.NewStream(nil), nil)
	errc := make(chan error, 1)
	go func() {
		_, err := Dial(context.Background(), e.url("10"), WithHTTPClient(e.http.Client()))
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond) // the POST waits in Acquire
	start := time.Now()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s with a POST waiting in Acquire", d)
	}
	var se *StatusError
	if err := <-errc; !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("Dial: %v, want 503", err)
	}
}

func TestKeyframeRequest(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream, stop := feed(t, c, media.CodecUnknown)
	defer stop()
	e := newEnv(t, stream, nil)

	cs := e.dial(t, "7")
	defer cs.Close()
	eventually(t, 5*time.Second, "first packet", func() bool { _, ok := cs.FirstVideoPacket(); return ok })
	p := <-cs.VideoPackets()
	for range 3 {
		if err := cs.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: p.SSRC}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 3*time.Second, "PLI counted", func() bool {
		return toFloat64(e.srv.metrics.keyframe.WithLabelValues("pli")) == 3
	})
	if n := e.keyReqs.Load(); n != 1 {
		t.Errorf("OnKeyframeRequest called %d times for 3 PLIs within a second, want 1", n)
	}
}

func TestCloseEndsSessionsAndLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream, stop := feed(t, c, media.CodecPCMU)

	e := newEnv(t, stream, nil)
	var clients []*ClientSession
	for range 3 {
		clients = append(clients, e.dial(t, "7"))
	}
	for _, cs := range clients {
		eventually(t, 5*time.Second, "first packet", func() bool { _, ok := cs.FirstVideoPacket(); return ok })
	}
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if e.srv.Sessions() != 0 || e.released.Load() != 3 {
		t.Fatalf("after Close: %d sessions, %d releases", e.srv.Sessions(), e.released.Load())
	}
	if got := toFloat64(e.srv.metrics.active); got != 0 {
		t.Errorf("sessions_active = %v after Close", got)
	}
	// A POST after Close is refused without a lease.
	resp, err := e.http.Client().Post(e.url("7"), "application/sdp", strings.NewReader(minimalOffer))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || e.acquired.Load() != 3 {
		t.Errorf("POST after Close: %d, %d acquired", resp.StatusCode, e.acquired.Load())
	}
	for _, cs := range clients {
		_ = cs.Close() // 404: the server already ended it
	}
	stop()
	e.http.Close()
	e.http.Client().CloseIdleConnections()

	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNewServerConfig(t *testing.T) {
	hub := &fakeHub{}
	for _, tt := range []struct {
		name string
		conf Config
	}{
		{"no hub", Config{UDPAddr: ":0"}},
		{"no udp addr", Config{Hub: hub}},
		{"bad udp addr", Config{Hub: hub, UDPAddr: "nope"}},
		{"hostname as additional host", Config{Hub: hub, UDPAddr: ":0", AdditionalHosts: []string{"example.com"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewServer(tt.conf); err == nil || !strings.HasPrefix(err.Error(), "whep: ") {
				t.Errorf("NewServer: %v, want a whep: error", err)
			}
		})
	}
	// Close before Start, and twice.
	s, err := NewServer(Config{Hub: hub, UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

func TestAdditionalHosts(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream, stop := feed(t, c, media.CodecUnknown)
	defer stop()
	e := newEnv(t, stream, func(c *Config) { c.AdditionalHosts = []string{"203.0.113.7"} })
	cs := e.dial(t, "7")
	defer cs.Close()
	if !strings.Contains(cs.Answer(), "203.0.113.7") || !strings.Contains(cs.Answer(), "127.0.0.1") {
		t.Errorf("answer lacks the additional host or the local one:\n%s", cs.Answer())
	}
	eventually(t, 5*time.Second, "first packet", func() bool { _, ok := cs.FirstVideoPacket(); return ok })
}

func TestMetricsRegistered(t *testing.T) {
	e := newEnv(t, media.NewStream(nil), nil)
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(mfs); n < 2 { // vectors without children are not gathered
		t.Errorf("%d metrics gathered", n)
	}
	// A second server on the same registry is refused, not a panic.
	_, err = NewServer(Config{Hub: &fakeHub{}, UDPAddr: "127.0.0.1:0", Registerer: e.reg})
	if err == nil {
		t.Error("second registration accepted")
	}
}

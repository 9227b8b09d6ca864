package sim

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// testSpeed plays clips four times faster: a 4 s clip loops every second.
const testSpeed = 4

func startServer(t *testing.T, cams ...Camera) *Server {
	t.Helper()
	s := NewServer(Config{Addr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", Cameras: cams, Speed: testSpeed})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// frame is a received video access unit.
type frame struct {
	pts int64 // in 90 kHz units
	idr bool
}

// reader is a test RTSP client that decodes what it plays.
type reader struct {
	c       *gortsplib.Client
	desc    *description.Session
	playRes *base.Response

	mu      sync.Mutex
	frames  []frame
	packets int      // every RTP packet
	audio   []uint32 // audio RTP timestamps
	lastTS  uint32   // last video RTP timestamp
}

// describe connects to url ("[user:pass@]path") and describes it.
func describe(s *Server, url string, proto gortsplib.Protocol) (*gortsplib.Client, *description.Session, error) {
	userinfo, path, ok := strings.Cut(url, "@")
	if !ok {
		userinfo, path = "", url
	} else {
		userinfo += "@"
	}
	u, err := base.ParseURL("rtsp://" + userinfo + s.Addr() + "/" + path)
	if err != nil {
		return nil, nil, err
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto, ReadTimeout: 3 * time.Second}
	if err := c.Start(); err != nil {
		return nil, nil, err
	}
	desc, _, err := c.Describe(u)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, desc, nil
}

// play plays url ("[user:pass@]path") and decodes its video.
func play(t *testing.T, s *Server, url string, proto gortsplib.Protocol) *reader {
	t.Helper()
	c, desc, err := describe(s, url, proto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r := &reader{c: c, desc: desc}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var decode func(*rtp.Packet) ([][]byte, error)
	var isIDR func([][]byte) bool
	var f264 *format.H264
	var f265 *format.H265
	if m := desc.FindFormat(&f264); m != nil {
		d, err := f264.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		decode, isIDR = d.Decode, h264.IsRandomAccess
	} else if m := desc.FindFormat(&f265); m != nil {
		d, err := f265.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		decode, isIDR = d.Decode, h265.IsRandomAccess
	} else {
		t.Fatal("no video format")
	}
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.packets++
		if m.Type != description.MediaTypeVideo {
			r.audio = append(r.audio, pkt.Timestamp)
			return
		}
		r.lastTS = pkt.Timestamp
		pts, ok := c.PacketPTS(m, pkt)
		au, err := decode(pkt)
		if ok && err == nil {
			r.frames = append(r.frames, frame{pts: pts, idr: isIDR(au)})
		}
	})
	if r.playRes, err = c.Play(nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFrames waits until r has decoded n frames and returns them.
func (r *reader) waitFrames(t *testing.T, n int) []frame {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]frame(nil), r.frames...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("decoded %d frames, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *reader) packetCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packets
}

// eventually retries cond for up to 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestPlay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		clip  string
		proto gortsplib.Protocol
	}{
		{"h264 over TCP", "testsrc.h264", gortsplib.ProtocolTCP},
		{"h264 over UDP", "street.h264", gortsplib.ProtocolUDP},
		{"h265 over TCP", "testsrc.h265", gortsplib.ProtocolTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Camera{Path: "cam/1", Clip: tc.clip})
			clipLen := len(s.cams["cam/1"].video.clip.Units)
			r := play(t, s, "cam/1", tc.proto)
			frames := r.waitFrames(t, clipLen+20) // past one loop

			if !frames[0].idr {
				t.Error("first frame is not an IDR")
			}
			lastIDR := frames[0].pts
			for i := 1; i < len(frames); i++ {
				d := frames[i].pts - frames[i-1].pts
				if d <= 0 || tc.proto == gortsplib.ProtocolTCP && d != 90000/15 {
					t.Fatalf("frame %d: PTS step %d, want 6000 (15 fps)", i, d)
				}
				if frames[i].idr {
					if gap := frames[i].pts - lastIDR; gap > 2*90000 {
						t.Fatalf("frame %d: %v since the last IDR", i, time.Duration(gap)*time.Second/90000)
					}
					lastIDR = frames[i].pts
				}
			}
			if st := s.Stats("cam/1"); st != (CameraStats{ActiveSessions: 1, TotalSessions: 1, Readers: 1}) {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

// A camera's RTP timestamps keep growing after it idles and restarts.
func TestTimestampsSurviveRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "cam"})
	r := play(t, s, "cam", gortsplib.ProtocolTCP)
	r.waitFrames(t, 5)
	r.c.Close()
	eventually(t, "the camera to idle", func() bool { return s.Stats("cam").Readers == 0 })
	r.mu.Lock()
	last := r.lastTS
	r.mu.Unlock()

	r2 := play(t, s, "cam", gortsplib.ProtocolTCP)
	r2.waitFrames(t, 1)
	r2.mu.Lock()
	first := r2.lastTS
	r2.mu.Unlock()
	if int32(first-last) <= 0 {
		t.Errorf("timestamp went from %d to %d across a restart", last, first)
	}
}

func TestAudio(t *testing.T) {
	t.Parallel()
	s := startServer(t,
		Camera{Path: "aac", Audio: AudioAAC},
		Camera{Path: "pcma", Audio: AudioG711A},
		Camera{Path: "pcmu", Audio: AudioG711U, Clip: "testsrc.h265"},
		Camera{Path: "mute", Audio: AudioNone})
	for _, tc := range []struct {
		path  string
		check func(format.Format) bool
		clock int
	}{
		{"aac", func(f format.Format) bool {
			a, ok := f.(*format.MPEG4Audio)
			return ok && a.Config.SampleRate == 16000 && a.Config.ChannelConfig == 1
		}, 16000},
		{"pcma", func(f format.Format) bool { g, ok := f.(*format.G711); return ok && !g.MULaw && g.PayloadTyp == 8 }, 8000},
		{"pcmu", func(f format.Format) bool { g, ok := f.(*format.G711); return ok && g.MULaw && g.PayloadTyp == 0 }, 8000},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := play(t, s, tc.path, gortsplib.ProtocolTCP)
			if len(r.desc.Medias) != 2 || !tc.check(r.desc.Medias[1].Formats[0]) {
				t.Fatalf("audio media: %+v", r.desc.Medias[len(r.desc.Medias)-1].Formats[0])
			}
			frames := r.waitFrames(t, 15) // one second of clip time
			r.mu.Lock()
			audio := r.audio
			r.mu.Unlock()
			if len(audio) < 2 {
				t.Fatalf("%d audio packets with %d frames", len(audio), len(frames))
			}
			span := int(audio[len(audio)-1] - audio[0])
			if span < tc.clock/2 {
				t.Errorf("audio spans %d samples over %d frames, want about a second", span, len(frames))
			}
			for i := 1; i < len(audio); i++ {
				if int32(audio[i]-audio[i-1]) <= 0 {
					t.Fatalf("audio timestamp %d after %d", audio[i], audio[i-1])
				}
			}
		})
	}
	_, desc, err := describe(s, "mute", gortsplib.ProtocolTCP)
	if err != nil || len(desc.Medias) != 1 {
		t.Errorf("mute camera: %v, %v", desc, err)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "cam", Username: "admin", Password: "s3cret"})

	// The gortsplib client prefers Digest.
	r := play(t, s, "admin:s3cret@cam", gortsplib.ProtocolTCP)
	r.waitFrames(t, 1)
	for _, url := range []string{"cam", "admin:wrong@cam", "root:s3cret@cam"} {
		if _, _, err := describe(s, url, gortsplib.ProtocolTCP); err == nil {
			t.Errorf("%s: described without the right credentials", url)
		}
	}

	// Basic, by hand.
	for _, tc := range []struct {
		user, pass string
		want       base.StatusCode
	}{
		{"admin", "s3cret", base.StatusOK},
		{"admin", "nope", base.StatusUnauthorized},
	} {
		if got := rawDescribe(t, s, "cam", tc.user, tc.pass); got != tc.want {
			t.Errorf("Basic %s:%s: %v, want %v", tc.user, tc.pass, got, tc.want)
		}
	}

	// FaultRefuseAuth refuses even the right credentials, then heals.
	if err := s.SetFault("cam", FaultRefuseAuth); err != nil {
		t.Fatal(err)
	}
	if _, _, err := describe(s, "admin:s3cret@cam", gortsplib.ProtocolTCP); err == nil {
		t.Error("described despite FaultRefuseAuth")
	}
	if got := rawDescribe(t, s, "cam", "admin", "s3cret"); got != base.StatusUnauthorized {
		t.Errorf("Basic under FaultRefuseAuth: %v", got)
	}
	s.SetFault("cam", FaultNone)
	if _, _, err := describe(s, "admin:s3cret@cam", gortsplib.ProtocolTCP); err != nil {
		t.Errorf("after FaultNone: %v", err)
	}
}

// rawDescribe sends a DESCRIBE with Basic credentials and returns the status.
func rawDescribe(t *testing.T, s *Server, path, user, pass string) base.StatusCode {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	u, _ := base.ParseURL("rtsp://" + s.Addr() + "/" + path)
	req := base.Request{Method: base.Describe, URL: u, Header: base.Header{
		"CSeq":          base.HeaderValue{"1"},
		"Authorization": base.HeaderValue{"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))},
	}}
	b, _ := req.Marshal()
	nc.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	var res base.Response
	if err := res.Unmarshal(bufio.NewReader(nc)); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode
}

func TestFaultDrop(t *testing.T) {
	t.Parallel()
	for _, proto := range []gortsplib.Protocol{gortsplib.ProtocolTCP, gortsplib.ProtocolUDP} {
		t.Run(proto.String(), func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Camera{Path: "cam"}, Camera{Path: "other"})
			r := play(t, s, "cam", proto)
			r.waitFrames(t, 1)
			other := play(t, s, "other", proto)
			// An open connection that only described the camera.
			described, _, err := describe(s, "cam", gortsplib.ProtocolTCP)
			if err != nil {
				t.Fatal(err)
			}
			defer described.Close()

			if err := s.SetFault("cam", FaultDrop); err != nil {
				t.Fatal(err)
			}
			waitErr(t, r.c)
			waitErr(t, described)
			eventually(t, "sessions to close", func() bool { return s.Stats("cam") == CameraStats{TotalSessions: 1} })
			if _, _, err := describe(s, "cam", gortsplib.ProtocolTCP); err == nil {
				t.Error("described a dropped camera")
			}
			n := other.packetCount()
			eventually(t, "the other camera to go on", func() bool { return other.packetCount() > n })

			s.SetFault("cam", FaultNone)
			play(t, s, "cam", proto).waitFrames(t, 1)
		})
	}
}

func waitErr(t *testing.T, c *gortsplib.Client) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("client ended without an error")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("client still connected to a dropped camera")
	}
}

func TestFaultStall(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "cam", Audio: AudioG711U})
	r := play(t, s, "cam", gortsplib.ProtocolTCP)
	r.waitFrames(t, 1)
	s.SetFault("cam", FaultStall)
	time.Sleep(100 * time.Millisecond) // packets in flight
	n := r.packetCount()
	time.Sleep(400 * time.Millisecond)
	if got := r.packetCount(); got != n {
		t.Errorf("%d packets arrived during the stall", got-n)
	}
	if st := s.Stats("cam"); st.Readers != 1 {
		t.Errorf("Stats = %+v; the stalled session should stay", st)
	}
	s.SetFault("cam", FaultNone)
	eventually(t, "packets to resume", func() bool { return r.packetCount() > n })
}

// Two readers share one camera session each, and one pacer.
func TestStats(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "cam"})
	if st := s.Stats("cam"); st != (CameraStats{}) {
		t.Errorf("idle Stats = %+v", st)
	}
	r1 := play(t, s, "cam", gortsplib.ProtocolTCP)
	r1.waitFrames(t, 1)
	r2 := play(t, s, "cam", gortsplib.ProtocolUDP)
	r2.waitFrames(t, 1)
	if st := s.Stats("cam"); st != (CameraStats{ActiveSessions: 2, TotalSessions: 2, Readers: 2}) {
		t.Errorf("Stats = %+v", st)
	}
	var ri headers.RTPInfo
	if err := ri.Unmarshal(r2.playRes.Header["RTP-Info"]); err != nil || ri[0].Timestamp == nil {
		t.Errorf("joining a running camera: RTP-Info %q: %v", r2.playRes.Header["RTP-Info"], err)
	}
	r1.c.Close()
	eventually(t, "one reader", func() bool {
		return s.Stats("cam") == CameraStats{ActiveSessions: 1, TotalSessions: 2, Readers: 1}
	})
	r2.c.Close()
	eventually(t, "no reader", func() bool { return s.Stats("cam") == CameraStats{TotalSessions: 2} })
	c := s.cams["cam"]
	c.mu.Lock()
	idle := c.stop == nil
	c.mu.Unlock()
	if !idle {
		t.Error("pacer still running without readers")
	}
	if st := s.Stats("nope"); st != (CameraStats{}) {
		t.Errorf("unknown camera Stats = %+v", st)
	}
	if err := s.SetFault("nope", FaultDrop); !errors.Is(err, ErrUnknownCamera) {
		t.Errorf("SetFault(unknown) = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"empty path":     {Addr: "127.0.0.1:0", Cameras: []Camera{{Path: "/"}}},
		"duplicate path": {Addr: "127.0.0.1:0", Cameras: []Camera{{Path: "a"}, {Path: "/a"}}},
		"unknown clip":   {Addr: "127.0.0.1:0", Cameras: []Camera{{Path: "a", Clip: "/nonexistent.h264"}}},
		"unknown audio":  {Addr: "127.0.0.1:0", Cameras: []Camera{{Path: "a", Audio: "mp3"}}},
		"odd UDP port":   {Addr: "127.0.0.1:0", UDPPort: 8001},
		"bad address":    {Addr: "nowhere"},
		"bad control":    {Addr: "127.0.0.1:0", ControlAddr: "nowhere"},
	} {
		s := NewServer(cfg)
		if err := s.Start(); err == nil {
			t.Errorf("%s: Start succeeded", name)
		}
		if err := s.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
	}
}

// Not parallel: it counts the process's goroutines.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()

	s := NewServer(Config{Addr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", Speed: testSpeed,
		Cameras: []Camera{{Path: "a", Audio: AudioAAC}, {Path: "b"}}})
	if err := s.Close(); err != nil { // before Start
		t.Fatal(err)
	}
	// A partial start: RTSP up, the control API fails.
	s = NewServer(Config{Addr: "127.0.0.1:0", ControlAddr: "nowhere", Cameras: []Camera{{Path: "a"}}})
	if err := s.Start(); err == nil {
		t.Fatal("Start with a bad control address succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = NewServer(Config{Addr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", Speed: testSpeed,
		Cameras: []Camera{{Path: "a", Audio: AudioAAC}, {Path: "b"}}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ra := play(t, s, "a", gortsplib.ProtocolTCP)
	rb := play(t, s, "b", gortsplib.ProtocolUDP)
	ra.waitFrames(t, 1)
	rb.waitFrames(t, 1)
	s.Close()
	waitErr(t, ra.c)
	waitErr(t, rb.c)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrStarted) {
		t.Errorf("Start after Close = %v", err)
	}

	eventually(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// BenchmarkWriteFrame measures pacing one frame to a stream without readers:
// the clip at $SIM_BENCH_CLIP (see scripts/gen-clips.sh bench), or the
// default clip.
func BenchmarkWriteFrame(b *testing.B) {
	clip := cmp.Or(os.Getenv("SIM_BENCH_CLIP"), DefaultClip)
	s := NewServer(Config{Addr: "127.0.0.1:0", DisableUDP: true, Cameras: []Camera{{Path: "cam", Clip: clip}}})
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := s.cams["cam"]
	st, err := c.getStream(s.rtsp)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.writeFrame(st); err != nil {
			b.Fatal(err)
		}
	}
}

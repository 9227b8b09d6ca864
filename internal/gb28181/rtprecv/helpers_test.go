package rtprecv

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/gb28181/rtpframe"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/sim"
)

// device writes frames as the RTP packets of a GB/T 28181 device: a pack
// per frame, cut into payloads of mtu bytes, the RTP timestamp equal to the
// PTS, the marker bit on the last packet of a frame.
type device struct {
	mux   ps.Muxer
	ssrc  uint32
	seq   uint16
	pt    uint8 // 96 if 0
	mtu   int   // 1400 if 0
	noPTS bool  // write PES packets without PTS
}

func (d *device) packets(f ps.Frame) [][]byte {
	ts := uint32(f.PTS)
	if d.noPTS {
		f.HasPTS = false
	}
	return d.rtp(d.mux.Mux(nil, &f), ts)
}

// rtp cuts payload into RTP packets of timestamp ts.
func (d *device) rtp(payload []byte, ts uint32) [][]byte {
	pt, mtu := d.pt, d.mtu
	if pt == 0 {
		pt = 96
	}
	if mtu == 0 {
		mtu = 1400
	}
	var out [][]byte
	for len(payload) > 0 {
		n := min(len(payload), mtu)
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: d.seq, Timestamp: ts,
			SSRC: d.ssrc, Marker: n == len(payload)}, Payload: payload[:n]}
		b, err := p.Marshal()
		if err != nil {
			panic(err)
		}
		out = append(out, b)
		d.seq++
		payload = payload[n:]
	}
	return out
}

// clip is a video clip as frames: Annex-B with 4-byte start codes, at the
// clip's frame rate from PTS start.
type clip struct {
	*sim.VideoClip
	codec  media.Codec
	step   int64 // PTS step
	frames []ps.Frame
}

func loadClip(t testing.TB, name string, start int64) *clip {
	t.Helper()
	c, err := sim.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	cl := &clip{VideoClip: c, codec: media.CodecH264, step: int64(90000 / c.FPS)}
	if c.Codec == sim.CodecH265 {
		cl.codec = media.CodecH265
	}
	for i, au := range c.Units {
		var data []byte
		for _, n := range au.NALUs {
			data = append(data, 0, 0, 0, 1)
			data = append(data, n...)
		}
		pts := start + int64(i)*cl.step
		cl.frames = append(cl.frames, ps.Frame{Stream: 0xE0, Codec: cl.codec, PTS: pts, DTS: pts, HasPTS: true, Key: au.IDR, Data: data})
	}
	return cl
}

// g711Frames returns n frames of 20 ms of G.711 from PTS start.
func g711Frames(c media.Codec, n int, start int64) []ps.Frame {
	var out []ps.Frame
	for i := range n {
		data := bytes.Repeat([]byte{byte(0xD5 + i)}, 160)
		pts := start + int64(i)*1800
		out = append(out, ps.Frame{Stream: 0xC0, Codec: c, PTS: pts, DTS: pts, HasPTS: true, Data: data})
	}
	return out
}

// aacFrames returns the ADTS frames of the simulator's beep, one per PES,
// from PTS start, and the clip.
func aacFrames(t testing.TB, start int64) ([]ps.Frame, *sim.AudioClip) {
	t.Helper()
	data, err := os.ReadFile("../../sim/clips/beep.aac")
	if err != nil {
		t.Fatal(err)
	}
	ac, err := sim.ParseADTS(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []ps.Frame
	for i := 0; len(data) >= 7; i++ {
		size := int(data[3]&3)<<11 | int(data[4])<<3 | int(data[5])>>5
		pts := start + int64(i)*1024*90000/int64(ac.Config.SampleRate)
		out = append(out, ps.Frame{Stream: 0xC0, Codec: media.CodecAAC, PTS: pts, DTS: pts, HasPTS: true, Data: data[:size]})
		data = data[size:]
	}
	return out, ac
}

// interleave merges frames by PTS, video first on ties.
func interleave(video, audio []ps.Frame) []ps.Frame {
	out := append(slices.Clone(video), audio...)
	slices.SortStableFunc(out, func(a, b ps.Frame) int {
		switch {
		case a.PTS < b.PTS:
			return -1
		case a.PTS > b.PTS:
			return 1
		}
		return 0
	})
	return out
}

// collector is a ready function that keeps the tracks and reads the units.
type collector struct {
	mu     sync.Mutex
	calls  int
	tracks []*media.Track
	reader *media.Reader
}

func (c *collector) ready(tracks []*media.Track) *media.Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.tracks = tracks
	st := media.NewStream(tracks)
	c.reader = st.AddReader("test", 1<<14)
	return st
}

// units returns the units queued so far.
func (c *collector) units() []*media.Unit {
	c.mu.Lock()
	r := c.reader
	c.mu.Unlock()
	if r == nil {
		return nil
	}
	var out []*media.Unit
	for {
		select {
		case u, ok := <-r.C():
			if !ok {
				return out
			}
			out = append(out, u)
		default:
			return out
		}
	}
}

// byTrack splits units by track.
func byTrack(us []*media.Unit) map[int][]*media.Unit {
	m := make(map[int][]*media.Unit)
	for _, u := range us {
		m[u.Track] = append(m[u.Track], u)
	}
	return m
}

// newTestSession returns the packet path of a receiver, without sockets.
func newTestSession(t testing.TB, cfg Config, tcp bool, c *collector, now time.Time) *session {
	t.Helper()
	if tcp && cfg.Mode == UDP {
		cfg.Mode = TCPPassive
	}
	if _, err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	return newSession(&cfg, tcp, &counters{}, c.ready, cfg.Log, now)
}

// timedPacket is a packet and its arrival time.
type timedPacket struct {
	b  []byte
	at time.Time
}

// schedule returns the packets of frames, each arriving at its media time
// after t0.
func schedule(d *device, frames []ps.Frame, t0 time.Time) []timedPacket {
	var out []timedPacket
	for _, f := range frames {
		at := t0.Add(media.Duration(f.PTS-frames[0].PTS, 90000))
		for _, p := range d.packets(f) {
			out = append(out, timedPacket{p, at})
		}
	}
	return out
}

// play gives packets to s at their times, ticking in between, and returns
// the first error.
func play(s *session, pkts []timedPacket) error {
	for _, p := range pkts {
		if err := s.handle(p.b, p.at); err != nil {
			return err
		}
		if err := s.maybeTick(p.at); err != nil {
			return err
		}
	}
	return nil
}

// checkVideo checks that video units are the clip's frames from the first
// keyframe, whole and in order, with strictly increasing PTS.
func checkVideo(t *testing.T, got []*media.Unit, cl *clip, wantMin int) {
	t.Helper()
	if len(got) < wantMin {
		t.Fatalf("got %d video units, want at least %d", len(got), wantMin)
	}
	if !got[0].Key {
		t.Fatalf("first video unit is not a keyframe")
	}
	keys := 0
	for i, u := range got {
		if i > 0 && u.PTS <= got[i-1].PTS {
			t.Fatalf("unit %d: PTS %d after %d", i, u.PTS, got[i-1].PTS)
		}
		if i > 0 && !u.NTP.After(got[i-1].NTP) {
			t.Fatalf("unit %d: NTP %v after %v", i, u.NTP, got[i-1].NTP)
		}
		if i < len(cl.Units) && !slices.EqualFunc(u.Payload, cl.Units[i].NALUs, bytes.Equal) {
			t.Fatalf("unit %d: NAL units differ from the clip's", i)
		}
		if u.Key {
			keys++
		}
	}
	if keys == 0 {
		t.Fatal("no keyframe")
	}
}

// checkTrack checks the video track against the clip.
func checkTrack(t *testing.T, tr *media.Track, cl *clip) {
	t.Helper()
	if tr.Codec != cl.codec || tr.ClockRate != 90000 || !bytes.Equal(tr.SPS, cl.SPS) || !bytes.Equal(tr.PPS, cl.PPS) || !bytes.Equal(tr.VPS, cl.VPS) {
		t.Fatalf("video track %v, SPS %x PPS %x VPS %x; want %v SPS %x PPS %x VPS %x", tr, tr.SPS, tr.PPS, tr.VPS, cl.codec, cl.SPS, cl.PPS, cl.VPS)
	}
}

// wantReason checks err's reason and that its text contains every part.
func wantReason(t *testing.T, err error, reason media.Reason, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", reason)
	}
	if got := media.ReasonOf(err); got != reason {
		t.Fatalf("reason %s (%v), want %s", got, err, reason)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not say %q", err, p)
		}
	}
}

// checkNoLeak fails if goroutines started during the test are still there
// shortly after it (and its parallel subtests). It counts the goroutines of
// the process: call it from tests that do not run in parallel themselves.
func checkNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines, %d before the test:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// running is a Receiver running in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, r *Receiver, remote string, c *collector) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx, remote, c.ready) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rn.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
	return rn
}

// wait returns the error of Run, failing after d.
func (rn *running) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-rn.done:
		rn.done <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("Run still running after %s", d)
		return nil
	}
}

// stop cancels Run and returns its error.
func (rn *running) stop(t *testing.T) error {
	rn.cancel()
	return rn.wait(t, 5*time.Second)
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendUDP sends packets to port on 127.0.0.1, pausing between frames so
// that the socket buffer never overflows.
func sendUDP(t *testing.T, port int, pkts [][]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, p := range pkts {
		if _, err := c.Write(p); err != nil {
			t.Logf("send: %v", err) // the receiver is gone: ICMP port unreachable
			return
		}
		if i%8 == 7 {
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// framed returns packets with their RFC 4571 length prefixes.
func framed(pkts [][]byte) []byte {
	var out []byte
	for _, p := range pkts {
		out, _ = rtpframe.Append(out, p)
	}
	return out
}

// allPackets returns the packets of frames.
func allPackets(d *device, frames []ps.Frame) [][]byte {
	var out [][]byte
	for _, f := range frames {
		out = append(out, d.packets(f)...)
	}
	return out
}

// testLog returns a logger writing to the test log at debug level.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func isReason(err error, r media.Reason) bool {
	se, ok := errors.AsType[*media.SourceError](err)
	return ok && se.Reason == r
}

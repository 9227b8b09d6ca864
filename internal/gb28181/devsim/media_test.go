package devsim

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/sdp"
	"github.com/xueliang/xueliang/internal/media"
)

// TestLive plays live video over each transport, reads it with the
// platform's readers (sdp, rtpframe, ps) and hangs up.
func TestLive(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tcp   bool
		setup string // the offer's: "passive" = the platform listens
	}{
		{"udp", false, ""},
		{"tcp offer passive", true, "passive"},
		{"tcp offer active", true, "active"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, s, pr, addr := mediaSetup(t, nil)
			ch := s.Channels(s.DeviceIDs()[0])[1]
			var sk *sink
			port := 9 // an active platform names no port it listens on
			switch {
			case !tc.tcp:
				sk = udpSink(t)
				port = sk.port
			case tc.setup == "passive":
				sk, _ = tcpListenSink(t)
				port = sk.port
			}
			y := ssrc(t, true, 7)
			offer := sdp.LiveOffer(platformID, ch, "127.0.0.1", port, tc.tcp, tc.setup, y)
			c, err := pr.invite(t, addr, ch, offer)
			if err != nil {
				t.Fatal(err)
			}
			if problems := sdp.Check(offer, c.answer); problems != nil {
				t.Errorf("answer problems %q", problems)
			}
			a := c.info
			if a.SSRC != y || a.SSRCErr != nil || a.Format.PT != 96 || a.Format.Name != "PS" || a.IP != "127.0.0.1" || a.TCP != tc.tcp {
				t.Errorf("answer %+v", a)
			}
			if c.answer.SessionName != "Play" || c.answer.Origin != ch || c.answer.Video().Direction != "sendonly" {
				t.Errorf("answer %+v", c.answer)
			}
			if tc.tcp && c.answer.Video().Connection != "new" {
				t.Errorf("answer a=connection:%s", c.answer.Video().Connection)
			}
			if tc.setup == "active" {
				sk = tcpDialSink(t, net.JoinHostPort(a.IP, strconv.Itoa(a.Port)))
			}
			r := newReceiver(t)
			start := time.Now()
			r.until(sk, 10*time.Second, "2 s of video", func() bool { return r.span() >= 2 })
			if took := time.Since(start); took < 1500*time.Millisecond {
				t.Errorf("2 s of video in %v: not paced in real time", took)
			}
			if keys := r.check(0, media.CodecH264, a.SSRCValue); keys < 1 || !r.frames[0].Key {
				t.Errorf("%d keyframes; first frame key %v", keys, r.frames[0].Key)
			}
			waitFor(t, 2*time.Second, "stats", func() bool {
				st := s.Stats()
				return st.ActiveStreams == 1 && st.Invites == 1 && st.BytesSent > 0
			})

			c.bye(t)
			if tc.tcp {
				select {
				case <-sk.closed: // the device closed the connection
				case <-time.After(3 * time.Second):
					t.Error("TCP connection still open after BYE")
				}
			} else if !quiet(sk, 200*time.Millisecond, 500*time.Millisecond) {
				t.Error("packets after BYE")
			}
			waitFor(t, 2*time.Second, "no active stream", func() bool { return s.Stats().ActiveStreams == 0 })
			select {
			case id := <-pr.byes:
				t.Errorf("the device sent BYE %s too", id)
			default:
			}
			_ = p
		})
	}
}

// TestLiveH265 streams the H.265 clip with PS stream type 0x24.
func TestLiveH265(t *testing.T) {
	t.Parallel()
	_, s, pr, addr := mediaSetup(t, func(c *Config) { c.Clip = "testsrc.h265" })
	ch := s.Channels(s.DeviceIDs()[0])[0]
	sk := udpSink(t)
	c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, true, 8)).WithH265())
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t)
	r.until(sk, 10*time.Second, "a keyframe and more", func() bool { return len(r.frames) >= 3 })
	r.check(0, media.CodecH265, c.info.SSRCValue)
	if st := r.dm.Streams(); len(st) != 1 || st[0].Type != 0x24 {
		t.Errorf("streams %+v", st)
	}
	c.bye(t)
}

// TestDeviceByeOnTCPError: the platform drops the TCP connection; the
// device stops and hangs up.
func TestDeviceByeOnTCPError(t *testing.T) {
	t.Parallel()
	_, s, pr, addr := mediaSetup(t, nil)
	ch := s.Channels(s.DeviceIDs()[0])[0]
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, true, "passive", ssrc(t, true, 9)))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := conn.Read(buf); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetLinger(0) // reset: the device's next write fails
	conn.Close()
	select {
	case id := <-pr.byes:
		if id != string(*c.dlg.InviteRequest.CallID()) {
			t.Errorf("BYE for %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE from the device")
	}
	waitFor(t, 2*time.Second, "no active stream", func() bool { return s.Stats().ActiveStreams == 0 })
}

// TestDeviceByeOnUDPRefused: nobody listens on the platform's port any
// more; the device ignores ICMP errors for MediaTimeout, then hangs up.
func TestDeviceByeOnUDPRefused(t *testing.T) {
	t.Parallel()
	_, s, pr, addr := mediaSetup(t, func(c *Config) { c.MediaTimeout = 500 * time.Millisecond })
	ch := s.Channels(s.DeviceIDs()[0])[0]
	sk := udpSink(t)
	c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, true, 10)))
	if err != nil {
		t.Fatal(err)
	}
	<-sk.pkts
	start := time.Now()
	sk.conn.Close()
	select {
	case <-pr.byes:
		if took := time.Since(start); took < 400*time.Millisecond {
			t.Errorf("BYE after %v, want after MediaTimeout (500ms) of errors", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE from the device")
	}
	_ = c
}

// TestInviteRefused covers the SIP errors of INVITEs the device cannot
// take.
func TestInviteRefused(t *testing.T) {
	_, s, pr, addr := mediaSetup(t, func(c *Config) { c.MaxStreams = 1 })
	dev := s.DeviceIDs()[0]
	ch := s.Channels(dev)[0]
	offer := func() *sdp.Session {
		return sdp.LiveOffer(platformID, ch, "127.0.0.1", 40000, false, "", ssrc(t, true, 1))
	}
	body := func(edit func(string) string) []byte { return []byte(edit(string(sdp.Marshal(offer())))) }
	for _, tc := range []struct {
		name   string
		target string
		body   []byte
		ctype  string
		code   int
		reason string
	}{
		{"unknown channel", division + "001310999999", sdp.Marshal(offer()), "application/sdp", 404, "Not Found"},
		{"NVR code", dev, sdp.Marshal(offer()), "application/sdp", 404, "is an NVR"},
		{"not sdp", ch, sdp.Marshal(offer()), "text/plain", 415, "application/sdp"},
		{"no PS", ch, body(func(b string) string { return strings.ReplaceAll(b, "PS/90000", "XX/90000") }), "application/sdp", 488, "PS/90000"},
		{"talk", ch, body(func(b string) string { return strings.Replace(b, "s=Play", "s=Talk", 1) }), "application/sdp", 488, "s=Talk"},
		{"garbage", ch, []byte("hello\r\n"), "application/sdp", 400, "type"},
		{"bad port", ch, body(func(b string) string { return strings.Replace(b, "m=video 40000", "m=video x", 1) }), "application/sdp", 400, "port"},
		{"ssrc too large", ch, body(func(b string) string { return strings.Replace(b, "y="+offer().SSRC, "y=9999999999", 1) }), "application/sdp", 488, "32-bit"},
		{"playback without range", ch, body(func(b string) string { return strings.Replace(b, "s=Play", "s=Playback", 1) }), "application/sdp", 400, "t="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pr.inviteBody(t, addr, tc.target, nil, tc.body, tc.ctype)
			if err == nil {
				t.Fatal("INVITE accepted")
			}
			res := refusal(t, err)
			if res.StatusCode != tc.code || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("%d %s, want %d with %q", res.StatusCode, res.Reason, tc.code, tc.reason)
			}
		})
	}
	t.Run("busy", func(t *testing.T) {
		sk := udpSink(t)
		c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, true, 2)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.bye(t)
		_, err = pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, true, 3)))
		if res := refusal(t, err); res.StatusCode != 486 {
			t.Errorf("second stream: %d %s, want 486", res.StatusCode, res.Reason)
		}
		// The other channel is free.
		other := s.Channels(dev)[1]
		c2, err := pr.invite(t, addr, other, sdp.LiveOffer(platformID, other, "127.0.0.1", sk.port, false, "", ssrc(t, true, 4)))
		if err != nil {
			t.Fatal(err)
		}
		c2.bye(t)
	})
	if st := s.Stats(); st.Rejected < 10 {
		t.Errorf("stats %+v", st)
	}
}

// TestIPCDeviceCode: an IPC is invited by its own code too.
func TestIPCDeviceCode(t *testing.T) {
	t.Parallel()
	_, s, pr, addr := mediaSetup(t, func(c *Config) { c.ChannelsPerDevice = 1 })
	dev := s.DeviceIDs()[0]
	sk := udpSink(t)
	c, err := pr.invite(t, addr, dev, sdp.LiveOffer(platformID, dev, "127.0.0.1", sk.port, false, "", ssrc(t, true, 11)))
	if err != nil {
		t.Fatal(err)
	}
	if c.answer.Origin != dev {
		t.Errorf("o=%s", c.answer.Origin)
	}
	r := newReceiver(t)
	r.until(sk, 5*time.Second, "frames", func() bool { return len(r.frames) >= 2 })
	c.bye(t)
}

// TestCloseStopsStreams: Close ends the streams without BYE (a power
// cut) and waits for them.
func TestCloseStopsStreams(t *testing.T) {
	t.Parallel()
	_, s, pr, addr := mediaSetup(t, nil)
	ch := s.Channels(s.DeviceIDs()[0])[0]
	udp := udpSink(t)
	if _, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", udp.port, false, "", ssrc(t, true, 30))); err != nil {
		t.Fatal(err)
	}
	tcp, _ := tcpListenSink(t)
	if _, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", tcp.port, true, "passive", ssrc(t, true, 31))); err != nil {
		t.Fatal(err)
	}
	<-udp.pkts
	<-tcp.pkts
	s.Close()
	if st := s.Stats(); st.ActiveStreams != 0 {
		t.Errorf("stats after Close %+v", st)
	}
	select {
	case <-tcp.closed:
	case <-time.After(time.Second):
		t.Error("TCP connection open after Close")
	}
	if !quiet(udp, 50*time.Millisecond, 300*time.Millisecond) {
		t.Error("UDP packets after Close")
	}
	select {
	case id := <-pr.byes:
		t.Errorf("BYE %s on Close", id)
	default:
	}
}

// TestIFrameCmd: IFameCmd makes a live stream send an IDR next, long
// before the clip's next one (every 30 frames).
func TestIFrameCmd(t *testing.T) {
	t.Parallel()
	_, s, pr, addr := mediaSetup(t, nil)
	dev := s.DeviceIDs()[0]
	ch := s.Channels(dev)[0]
	sk := udpSink(t)
	c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, true, 32)))
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t)
	r.until(sk, 5*time.Second, "a keyframe and 2 frames", func() bool { return len(r.frames) >= 3 && r.frames[len(r.frames)-3].Key })
	n := len(r.frames)
	pr.send(t, addr, dev, manscdp.KeyFrameControl(1, ch))
	r.until(sk, 5*time.Second, "the next keyframe", func() bool { return len(r.frames) > n && r.last().Key })
	if gap := len(r.frames) - n + 2; gap >= 20 {
		t.Errorf("keyframe %d frames after the one before, want an early one", gap)
	}
	r.check(0, media.CodecH264, c.info.SSRCValue)
	c.bye(t)
}

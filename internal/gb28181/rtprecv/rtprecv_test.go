package rtprecv

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/sim"
)

const testSSRC = 100000001 // y=0100000001

// TestModes receives a clip over each transport and checks the tracks and
// units that come out.
func TestModes(t *testing.T) {
	checkNoLeak(t) // after every parallel subtest
	for _, mode := range []Mode{UDP, TCPPassive, TCPActive} {
		for _, name := range []string{sim.DefaultClip, "testsrc.h265"} {
			t.Run(mode.String()+"/"+name, func(t *testing.T) {
				t.Parallel()
				cl := loadClip(t, name, 900000)
				d := &device{ssrc: testSSRC}
				pkts := allPackets(d, cl.frames)

				var remote string
				var ln net.Listener
				if mode == TCPActive {
					var err error
					if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
					remote = ln.Addr().String()
				}
				r, err := Listen(Config{Mode: mode, IP: "127.0.0.1", SSRC: testSSRC, CheckSSRC: true, Log: testLog(t)})
				if err != nil {
					t.Fatal(err)
				}
				if (r.Port() == 0) != (mode == TCPActive) {
					t.Fatalf("port %d in mode %v", r.Port(), mode)
				}
				c := &collector{}
				rn := start(t, r, remote, c)

				var conn net.Conn
				switch mode {
				case UDP:
					sendUDP(t, r.Port(), pkts)
				case TCPPassive:
					conn, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port())))
				case TCPActive:
					conn, err = ln.Accept()
				}
				if err != nil {
					t.Fatal(err)
				}
				if conn != nil {
					defer conn.Close()
					if _, err := conn.Write(framed(pkts)); err != nil {
						t.Fatal(err)
					}
				}
				want := len(cl.frames) - 1 // the last frame ends with the next one
				waitFor(t, 5*time.Second, "units", func() bool { return r.Stats().Frames >= uint64(want) })
				if err := rn.stop(t); err != nil {
					t.Fatalf("Run: %v", err)
				}

				if c.calls != 1 || len(c.tracks) != 1 {
					t.Fatalf("ready called %d times with %d tracks", c.calls, len(c.tracks))
				}
				checkTrack(t, c.tracks[0], cl)
				us := c.units()
				checkVideo(t, us, cl, want)
				if us[0].PTS != 0 {
					t.Errorf("first PTS %d, want 0", us[0].PTS)
				}
				st := r.Stats()
				if st.Packets != uint64(len(pkts)) || st.Lost != 0 || st.WrongSSRC != 0 || st.Keyframes != 2 || st.Frames != uint64(want) {
					t.Errorf("stats %+v; sent %d packets", st, len(pkts))
				}
				if st.Peer == "" || st.LastPacket.IsZero() {
					t.Errorf("stats %+v: no peer or last packet time", st)
				}
			})
		}
	}
}

// TestFailures checks that each way a session can fail gives its reason
// and a message that says what to check.
func TestFailures(t *testing.T) {
	cl := loadClip(t, sim.DefaultClip, 0)
	const other = 200000002
	tests := []struct {
		name   string
		mode   Mode
		check  bool          // CheckSSRC
		remote func() string // TCP active
		// send feeds the receiver on port; it may be nil.
		send   func(t *testing.T, port int)
		reason media.Reason
		says   []string
	}{
		{
			name: "no packets", reason: ReasonNoPackets,
			says: []string{"no packet arrived on udp port", "firewall, NAT"},
		},
		{
			name: "wrong ssrc", check: true, reason: ReasonWrongSSRC,
			send: func(t *testing.T, port int) {
				sendUDP(t, port, allPackets(&device{ssrc: other}, cl.frames[:5]))
			},
			says: []string{"SSRC 0200000002 (0x0bebc202)", "SSRC 0100000001 (0x05f5e101) of the SDP y= line"},
		},
		{
			name: "raw h264 instead of ps", check: true, reason: ReasonNotPS,
			send: func(t *testing.T, port int) {
				d := &device{ssrc: testSSRC, pt: 98}
				var pkts [][]byte
				for _, f := range cl.frames[:5] {
					pkts = append(pkts, d.rtp(f.Data, uint32(f.PTS))...)
				}
				sendUDP(t, port, pkts)
			},
			says: []string{"payload type 98", "00 00 00 01 67", "elementary stream (Annex B) without PS"},
		},
		{
			name: "rtp h264 instead of ps", reason: ReasonNotPS,
			send: func(t *testing.T, port int) {
				d := &device{ssrc: testSSRC, pt: 98}
				fu := append([]byte{0x7C, 0x85}, make([]byte, 500)...) // FU-A start of an IDR
				sendUDP(t, port, d.rtp(fu, 0))
			},
			says: []string{"7c 85", "H.264 in RTP (RFC 6184)"},
		},
		{
			name: "not rtp", reason: ReasonNotPS,
			send: func(t *testing.T, port int) {
				var f ps.Muxer
				sendUDP(t, port, [][]byte{f.Mux(nil, &cl.frames[0])[:1400]})
			},
			says: []string{"none of them RTP", "00 00 01 ba"},
		},
		{
			name: "no tcp connection", mode: TCPPassive, reason: ReasonNoTCPConnection,
			says: []string{"did not connect to tcp port", "a=setup:active"},
		},
		{
			name: "dial refused", mode: TCPActive, reason: media.ReasonUnreachable,
			remote: func() string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					panic(err)
				}
				defer ln.Close()
				return ln.Addr().String()
			},
			says: []string{"dial the device's media port", "connection refused", "a=setup:passive"},
		},
		{
			name: "dial without address", mode: TCPActive, reason: media.ReasonProtocol,
			remote: func() string { return "" },
			says:   []string{"no device address to dial"},
		},
		{
			name: "timeout mid-stream", reason: media.ReasonTimeout,
			send: func(t *testing.T, port int) {
				sendUDP(t, port, allPackets(&device{ssrc: testSSRC}, cl.frames[:10]))
			},
			says: []string{"no media for", "the device stopped sending"},
		},
		{
			name: "ssrc change mid-stream", check: true, reason: media.ReasonTimeout,
			send: func(t *testing.T, port int) {
				sendUDP(t, port, allPackets(&device{ssrc: testSSRC}, cl.frames[:10]))
				for range 6 {
					time.Sleep(50 * time.Millisecond)
					sendUDP(t, port, allPackets(&device{ssrc: other}, cl.frames[10:12]))
				}
			},
			says: []string{"changed its SSRC", "0200000002"},
		},
		{
			name: "peer closes", mode: TCPPassive, reason: media.ReasonClosed,
			send: func(t *testing.T, port int) {
				c := dialTCP(t, port)
				defer c.Close()
				if _, err := c.Write(framed(allPackets(&device{ssrc: testSSRC}, cl.frames[:10]))); err != nil {
					t.Error(err)
				}
			},
			says: []string{"the device closed the TCP connection after"},
		},
		{
			name: "peer closes inside a packet", mode: TCPPassive, reason: media.ReasonClosed,
			send: func(t *testing.T, port int) {
				c := dialTCP(t, port)
				defer c.Close()
				b := framed(allPackets(&device{ssrc: testSSRC}, cl.frames[:3]))
				if _, err := c.Write(b[:len(b)-10]); err != nil {
					t.Error(err)
				}
			},
			says: []string{"in the middle of a packet"},
		},
		{
			name: "tcp without rtp", mode: TCPPassive, reason: media.ReasonProtocol,
			send: func(t *testing.T, port int) {
				c := dialTCP(t, port)
				defer c.Close()
				var m ps.Muxer
				if _, err := c.Write(m.Mux(nil, &cl.frames[0])); err != nil {
					t.Error(err)
				}
				time.Sleep(100 * time.Millisecond)
			},
			says: []string{"not RTP framed as in RFC 4571", "program stream without RTP"},
		},
		{
			name: "tcp connection without packets", mode: TCPPassive, reason: ReasonNoPackets,
			send: func(t *testing.T, port int) {
				c := dialTCP(t, port)
				time.Sleep(400 * time.Millisecond)
				c.Close()
			},
			says: []string{"is open but no packet came"},
		},
	}
	checkNoLeak(t) // after every parallel subtest
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Mode: tt.mode, IP: "127.0.0.1", SSRC: testSSRC, CheckSSRC: tt.check, Log: testLog(t),
				FirstPacketTimeout: 250 * time.Millisecond, ReadTimeout: 250 * time.Millisecond}
			r, err := Listen(cfg)
			if err != nil {
				t.Fatal(err)
			}
			remote := ""
			if tt.remote != nil {
				remote = tt.remote()
			}
			c := &collector{}
			began := time.Now()
			rn := start(t, r, remote, c)
			if tt.send != nil {
				tt.send(t, r.Port())
			}
			err = rn.wait(t, 5*time.Second)
			wantReason(t, err, tt.reason, tt.says...)
			t.Logf("after %s: %v", time.Since(began).Round(time.Millisecond), err)
		})
	}
}

func dialTCP(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTCPPassiveEarlyConnect connects before Run, as devices do that
// connect before answering the INVITE.
func TestTCPPassiveEarlyConnect(t *testing.T) {
	checkNoLeak(t)
	cl := loadClip(t, sim.DefaultClip, 0)
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Listen(Config{Mode: TCPPassive, IP: "127.0.0.1", Log: testLog(t), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialTCP(t, r.Port())
	defer conn.Close()
	if _, err := conn.Write(framed(allPackets(&device{ssrc: 7}, cl.frames[:20]))); err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	rn := start(t, r, "", c)
	waitFor(t, 5*time.Second, "units", func() bool { return r.Stats().Frames >= 19 })
	if n := metricValue(m.active.WithLabelValues("tcp-passive")); n != 1 {
		t.Errorf("%v active sessions while running", n)
	}
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(m.active.WithLabelValues("tcp-passive")); n != 0 {
		t.Errorf("%v active sessions after Run", n)
	}
	if n := metricValue(m.frames); n != 19 {
		t.Errorf("%v frames counted", n)
	}
}

// TestCloseAndRun checks Close during Run, Run after Close, and Run twice.
func TestCloseAndRun(t *testing.T) {
	checkNoLeak(t)
	for _, mode := range []Mode{UDP, TCPPassive, TCPActive} {
		r, err := Listen(Config{Mode: mode, IP: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		rn := start(t, r, "127.0.0.1:9", &collector{})
		time.Sleep(20 * time.Millisecond)
		r.Close()
		if err := rn.wait(t, 5*time.Second); !errors.Is(err, ErrClosed) && !isReason(err, media.ReasonUnreachable) {
			t.Fatalf("%v: Run after Close: %v, want ErrClosed", mode, err)
		}
		if err := r.Run(t.Context(), "", (&collector{}).ready); !errors.Is(err, ErrRunning) {
			t.Fatalf("%v: second Run: %v", mode, err)
		}
	}
	r, err := Listen(Config{IP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := r.Run(t.Context(), "", (&collector{}).ready); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

// TestPortPool checks that a pool hands out even ports in turn, skips ports
// in use, runs out, and takes ports back.
func TestPortPool(t *testing.T) {
	base := freeRange(t, 6)
	pool, err := NewPortPool(base-1, base+5) // even ports base, base+2, base+4
	if err != nil {
		t.Fatal(err)
	}
	if pool.Size() != 3 {
		t.Fatalf("size %d", pool.Size())
	}
	// Another program holds base+2.
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: base + 2})
	if err != nil {
		t.Fatal(err)
	}
	var rs []*Receiver
	for range 2 {
		r, err := Listen(Config{IP: "127.0.0.1", Ports: pool})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if rs[0].Port() != base || rs[1].Port() != base+4 {
		t.Fatalf("ports %d %d, want %d %d", rs[0].Port(), rs[1].Port(), base, base+4)
	}
	if _, err := Listen(Config{IP: "127.0.0.1", Ports: pool}); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("Listen on a full pool: %v", err)
	}
	if pool.InUse() != 2 {
		t.Fatalf("in use %d", pool.InUse())
	}
	busy.Close()
	rs[0].Close()
	rs[0].Close() // idempotent
	if pool.InUse() != 1 {
		t.Fatalf("in use %d after Close", pool.InUse())
	}
	// Both free ports are handed out again.
	got := map[int]bool{}
	for range 2 {
		r, err := Listen(Config{Mode: TCPPassive, IP: "127.0.0.1", Ports: pool})
		if err != nil {
			t.Fatal(err)
		}
		got[r.Port()] = true
		defer r.Close()
	}
	if !got[base] || !got[base+2] {
		t.Fatalf("ports %v, want %d and %d", got, base, base+2)
	}
	rs[1].Close()
	if _, err := NewPortPool(7, 7); err == nil {
		t.Fatal("a pool without even ports")
	}
	if _, err := NewPortPool(0, 70000); err == nil {
		t.Fatal("a pool beyond 65535")
	}
	// TCP active takes no port.
	r, err := Listen(Config{Mode: TCPActive, Ports: pool})
	if err != nil || r.Port() != 0 {
		t.Fatalf("TCP active: port %d, %v", r.Port(), err)
	}
	r.Close()
}

// freeRange returns an even port p such that p to p+n-1 are free for UDP and
// TCP on 127.0.0.1.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for base := 40000 + 2*(time.Now().Nanosecond()%5000); base < 65000; base += 2 * n {
		ok := true
		for p := base; p < base+n && ok; p++ {
			u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			u.Close()
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Mode: 7},
		{IP: "localhost"},
		{ReadTimeout: -1},
		{ReorderWindow: MaxReorderWindow + 1},
	} {
		if r, err := Listen(cfg); err == nil {
			r.Close()
			t.Errorf("Listen(%+v) accepted", cfg)
		}
	}
	if got := TCPActive.String() + Mode(9).String(); got != "tcp-activeMode(9)" {
		t.Errorf("String: %q", got)
	}
}

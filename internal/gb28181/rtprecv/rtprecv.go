// Package rtprecv receives the media of one GB/T 28181 session and delivers
// it to the media plane as units.
//
// A device sends live video, playback and downloads as an MPEG-2 Program
// Stream in RTP packets of payload type 96 with a 90 kHz clock
// (GB/T 28181-2022 §5.3 and Annex C; the SDP carries "a=rtpmap:96 PS/90000"
// and the SSRC in its y= line). The packets come over UDP, or over TCP framed
// as in RFC 4571 §2 (a 2-byte big-endian length before each packet), where
// either the platform listens and the device connects (the offer says
// "a=setup:passive", Mode TCPPassive) or the platform dials the device
// (Mode TCPActive, RFC 4145).
//
// A Receiver stands for one such session:
//
//	r, err := rtprecv.Listen(cfg)        // binds the port before the INVITE
//	offer := sdp.LiveOffer(..., r.Port(), ...)
//	... send the INVITE, read the answer ...
//	err = r.Run(ctx, answerAddr, ready)  // until ctx is done or the media fails
//
// Run reads RTP packets, drops those of another SSRC, puts UDP packets back
// in order (rtpframe.Reorder), demultiplexes the program stream (ps.Demuxer)
// and turns its frames into media.Units: H.264 or H.265 video with its
// parameter sets, and AAC or G.711 audio if the device sends it within the
// first second. When the tracks are known it calls ready once and writes the
// units to the Stream that ready returns.
//
// When the media cannot be used, Run returns a *media.SourceError whose
// Reason says why, in words an operator can act on. GB/T 28181 platforms are
// known for a bare "收流超时" (media timeout) whatever went wrong; this
// package tells apart:
//
//	ReasonNoPackets        nothing arrived at all (firewall, NAT, wrong IP in the SDP offer)
//	ReasonWrongSSRC        packets arrived, all with another SSRC than the y= line
//	ReasonNotPS            packets arrived, but not MPEG-PS over RTP (raw H.264, RTP/H.264, MPEG-TS, not RTP)
//	ReasonNoTCPConnection  TCP passive: the device never connected
//	media.ReasonUnreachable       TCP active: the device's port refused or did not answer
//	media.ReasonNoVideo           the program stream carries no video
//	media.ReasonCodecUnsupported  the video is SVAC or another codec the platform cannot carry
//	media.ReasonTimeout           no keyframe came, or the media stopped
//	media.ReasonClosed            the device closed the TCP connection
//	media.ReasonProtocol          the codec or resolution changed mid-stream, or the TCP stream is not RFC 4571
//
// The package never panics on any input and bounds the memory one session
// holds (see Config.ReorderWindow and ps.DefaultMaxFrameSize).
package rtprecv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/rtpframe"
	"github.com/xueliang/xueliang/internal/media"
)

// Mode is how the media reaches the platform.
type Mode int

// Modes of a session (GB/T 28181-2022 §5.3; RFC 4145 for TCP setup).
const (
	// UDP: the device sends RTP datagrams to the receiver's port.
	UDP Mode = iota
	// TCPPassive: the receiver listens ("a=setup:passive" in the offer)
	// and the device connects to it.
	TCPPassive
	// TCPActive: the receiver dials the address of the device's answer
	// ("a=setup:active" in the offer).
	TCPActive
)

// String returns "udp", "tcp-passive" or "tcp-active".
func (m Mode) String() string {
	switch m {
	case UDP:
		return "udp"
	case TCPPassive:
		return "tcp-passive"
	case TCPActive:
		return "tcp-active"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Reasons of the failures that only this package can tell apart. The others
// are media's (see the package documentation).
const (
	// ReasonNoPackets means nothing arrived within Config.FirstPacketTimeout.
	ReasonNoPackets media.Reason = "no_packets"
	// ReasonWrongSSRC means packets arrived, but only with another SSRC
	// than the one of the SDP y= line.
	ReasonWrongSSRC media.Reason = "wrong_ssrc"
	// ReasonNotPS means packets of the session arrived, but they do not
	// carry an MPEG program stream (or are not RTP).
	ReasonNotPS media.Reason = "not_ps"
	// ReasonNoTCPConnection means that in TCP passive mode the device did
	// not connect within Config.FirstPacketTimeout.
	ReasonNoTCPConnection media.Reason = "no_tcp_connection"
)

// Defaults of Config.
const (
	DefaultFirstPacketTimeout = 5 * time.Second
	DefaultReadTimeout        = 10 * time.Second
	// MaxReorderWindow bounds Config.ReorderWindow: a window holds up to
	// that many datagrams of up to 64 KiB each.
	MaxReorderWindow = 512
)

// Errors of Listen, Run and Close. Failures of the media are
// *media.SourceError values instead.
var (
	// ErrNoPorts means every port of the PortPool is taken or in use by
	// another program.
	ErrNoPorts = errors.New("rtprecv: no free port in the pool")
	// ErrClosed is returned by Run when the Receiver was closed before or
	// while it ran (and its context was not done).
	ErrClosed = errors.New("rtprecv: receiver closed")
	// ErrRunning is returned by Run when Run was called before on the same
	// Receiver: a Receiver serves one session.
	ErrRunning = errors.New("rtprecv: Run called twice")
)

// Config configures a Receiver. The zero value receives UDP on any free port
// of all interfaces, accepting any SSRC.
type Config struct {
	Mode Mode
	// IP is the local address to bind (UDP, TCP passive) or to dial from
	// (TCP active): "0.0.0.0", "127.0.0.1", ... Empty means all interfaces.
	IP string
	// AdvertisedIP is the address the platform puts in the c= line of its
	// SDP offer. It is only used in error messages; IP if empty.
	AdvertisedIP string
	// Ports is the pool to take the port from; nil means any free port
	// chosen by the system. TCP active takes no port.
	Ports *PortPool
	// SSRC is the SSRC of the SDP y= line (GB/T 28181-2022 Annex G:
	// 10 decimal digits).
	SSRC uint32
	// CheckSSRC drops packets of any other SSRC than SSRC (unless SSRC is
	// 0). Without it the receiver takes the first SSRC that arrives, and
	// moves to another one only when the first has been silent for a second.
	CheckSSRC bool
	// FirstPacketTimeout bounds the time from Run to the first packet that
	// carries a program stream: when it has passed, Run fails with
	// ReasonNoPackets, ReasonWrongSSRC, ReasonNotPS or (TCP passive)
	// ReasonNoTCPConnection, and TCP active stops dialing.
	// DefaultFirstPacketTimeout if 0.
	FirstPacketTimeout time.Duration
	// ReadTimeout is how long the media may stop before Run fails with
	// media.ReasonTimeout. It also bounds the wait for the first video
	// keyframe after the first packet. DefaultReadTimeout if 0.
	ReadTimeout time.Duration
	// ReorderWindow is how many UDP packets are held to put them back in
	// order (rtpframe.DefaultWindow if 0, at most MaxReorderWindow), and
	// ReorderDelay how long a missing packet is waited for
	// (rtpframe.DefaultMaxDelay if 0). Unused over TCP.
	ReorderWindow int
	ReorderDelay  time.Duration
	// Log receives the logs of the receiver, which adds its component, mode
	// and port. Nothing is logged if nil.
	Log *slog.Logger
	// Metrics, if set, receives the counters of the receiver; one Metrics
	// is shared by all receivers of a process.
	Metrics *Metrics
}

// normalize checks c and fills in the defaults.
func (c *Config) normalize() (net.IP, error) {
	switch c.Mode {
	case UDP, TCPPassive, TCPActive:
	default:
		return nil, fmt.Errorf("rtprecv: unknown mode %d", int(c.Mode))
	}
	var ip net.IP
	if c.IP != "" {
		if ip = net.ParseIP(c.IP); ip == nil {
			return nil, fmt.Errorf("rtprecv: IP %q is not an IP address", c.IP)
		}
	}
	if c.AdvertisedIP == "" {
		c.AdvertisedIP = c.IP
	}
	switch {
	case c.FirstPacketTimeout < 0 || c.ReadTimeout < 0 || c.ReorderDelay < 0:
		return nil, errors.New("rtprecv: timeouts must not be negative")
	case c.ReorderWindow < 0 || c.ReorderWindow > MaxReorderWindow:
		return nil, fmt.Errorf("rtprecv: reorder window must be between 0 and %d, not %d", MaxReorderWindow, c.ReorderWindow)
	}
	if c.FirstPacketTimeout == 0 {
		c.FirstPacketTimeout = DefaultFirstPacketTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.ReorderDelay == 0 {
		c.ReorderDelay = rtpframe.DefaultMaxDelay
	}
	if c.ReorderWindow == 0 {
		c.ReorderWindow = rtpframe.DefaultWindow
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return ip, nil
}

// Stats are the counters of a Receiver.
type Stats struct {
	Packets    uint64 // RTP packets of the session's SSRC
	Bytes      uint64 // their size, RTP headers included, RFC 4571 length prefixes not
	Lost       uint64 // sequence numbers that never arrived in time
	Reordered  uint64 // UDP packets that arrived out of order and were put back in place
	Duplicates uint64 // packets received twice
	Late       uint64 // packets that arrived after they were counted lost (UDP), or behind later ones (TCP)
	WrongSSRC  uint64 // RTP packets dropped for their SSRC
	Invalid    uint64 // datagrams or TCP frames that are not RTP version 2
	Frames     uint64 // units written to the stream: video frames and audio frames
	Keyframes  uint64 // video keyframes among Frames
	// Dropped counts frames the program stream delivered that were not
	// written: video before the first keyframe, frames of streams that are
	// not used, audio that could not be decoded, a frame cut by a lost
	// packet.
	Dropped uint64
	// LastPacket is when the last packet counted in Packets arrived; zero
	// before the first one.
	LastPacket time.Time
	// Peer is the address the media comes from ("ip:port"), once known.
	Peer string
}

// counters back Stats; they are written by Run and read by anyone.
type counters struct {
	packets, bytes, lost, reordered, duplicates, late, wrongSSRC, invalid atomic.Uint64
	frames, keyframes, dropped                                            atomic.Uint64
	last                                                                  atomic.Int64 // UnixNano of LastPacket
	peer                                                                  atomic.Pointer[string]
}

func (c *counters) snapshot() Stats {
	st := Stats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(), Lost: c.lost.Load(),
		Reordered: c.reordered.Load(), Duplicates: c.duplicates.Load(), Late: c.late.Load(),
		WrongSSRC: c.wrongSSRC.Load(), Invalid: c.invalid.Load(),
		Frames: c.frames.Load(), Keyframes: c.keyframes.Load(), Dropped: c.dropped.Load(),
	}
	if ns := c.last.Load(); ns != 0 {
		st.LastPacket = time.Unix(0, ns)
	}
	if p := c.peer.Load(); p != nil {
		st.Peer = *p
	}
	return st
}

// Receiver receives the media of one session. Listen creates it, Run runs
// it once, Close releases its port.
//
// Port, Stats and Close may be called from any goroutine at any time.
type Receiver struct {
	cfg  Config // normalized
	ip   net.IP // parsed cfg.IP; nil for all interfaces
	log  *slog.Logger
	port int
	udp  *net.UDPConn     // UDP only
	ln   *net.TCPListener // TCP passive only
	cnt  counters

	mu      sync.Mutex         // guards the fields below
	conn    net.Conn           // TCP connection of Run, once there is one
	cancel  context.CancelFunc // cancels the context of a running Run
	ran     bool               // Run was called
	closed  bool
	release func() // returns the port to the pool; nil once done
}

// Listen validates cfg and prepares a receiver: for UDP it binds the UDP
// port, for TCP passive it starts listening on the TCP port (so that a device
// that connects as soon as it gets the INVITE, before answering it, finds the
// port open), for TCP active it binds nothing. The port is taken from
// cfg.Ports, skipping ports other programs use, or chosen by the system.
//
// The caller must Close the receiver if it does not Run it.
func Listen(cfg Config) (*Receiver, error) {
	ip, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg, ip: ip}
	if cfg.Mode != TCPActive {
		bind := r.bind
		if cfg.Ports != nil {
			port, release, err := cfg.Ports.take(bind)
			if err != nil {
				return nil, err
			}
			r.port, r.release = port, release
		} else if err := bind(0); err != nil {
			return nil, err
		}
	}
	r.log = cfg.Log.With("component", "rtprecv", "mode", cfg.Mode.String(), "port", r.port)
	return r, nil
}

// bind opens the socket of r on port (0: any), and sets r.port.
func (r *Receiver) bind(port int) error {
	switch r.cfg.Mode {
	case UDP:
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: r.ip, Port: port})
		if err != nil {
			return fmt.Errorf("rtprecv: listen udp: %w", err)
		}
		// A keyframe arrives as a burst of a few hundred datagrams: room for
		// them while the session is busy (the kernel caps it at rmem_max).
		_ = c.SetReadBuffer(2 << 20)
		r.udp, r.port = c, c.LocalAddr().(*net.UDPAddr).Port
	case TCPPassive:
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: r.ip, Port: port})
		if err != nil {
			return fmt.Errorf("rtprecv: listen tcp: %w", err)
		}
		r.ln, r.port = ln, ln.Addr().(*net.TCPAddr).Port
	}
	return nil
}

// SetSSRC changes the SSRC the session expects (Config.SSRC): a device's
// SDP answer may name another y= than the offer, and GB/T 28181 has the
// media carry the answer's. It must be called before Run.
func (r *Receiver) SetSSRC(ssrc uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ran {
		r.cfg.SSRC = ssrc
	}
}

// Port returns the local port to put in the SDP offer: the UDP port, or the
// TCP port the receiver listens on. It is 0 for TCP active, whose offer
// carries the discard port 9 by convention (RFC 4145 §4).
func (r *Receiver) Port() int { return r.port }

// Mode returns the mode of the receiver.
func (r *Receiver) Mode() Mode { return r.cfg.Mode }

// Stats returns a snapshot of the counters.
func (r *Receiver) Stats() Stats { return r.cnt.snapshot() }

// Close closes the sockets of the receiver and returns its port to the pool.
// A running Run returns soon after, with ErrClosed (or nil if its context is
// done); Close does not wait for it. Close is idempotent and safe at any
// time, and Run calls it when it returns.
func (r *Receiver) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	cancel, release := r.cancel, r.release
	r.release = nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.closeSockets()
	if release != nil {
		release()
	}
	return nil
}

// closeSockets closes every socket of r, which makes a blocked read, accept
// or dial of Run return.
func (r *Receiver) closeSockets() {
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	if r.udp != nil {
		_ = r.udp.Close()
	}
	if r.ln != nil {
		_ = r.ln.Close()
	}
	if conn != nil {
		_ = conn.Close()
	}
}

func (r *Receiver) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Run receives the session until ctx is done (it then returns nil) or the
// media fails (it returns a *media.SourceError; see the package
// documentation for the reasons). It closes the receiver when it returns,
// and leaves no goroutine behind. Run may be called once.
//
// remote is the device's media address from its SDP answer ("ip:port").
// TCP active dials it, retrying refused connections until
// FirstPacketTimeout; UDP and TCP passive only log when the media comes from
// another address (devices behind NAT do), never refusing it.
//
// ready is called once, from the goroutine of Run, when the tracks are
// known: the video track first, then the audio track if there is one. It
// must not block and must return a non-nil Stream, to which Run then writes
// the units. Run does not close the Stream: its owner does.
//
// Unit PTS start near 0 at the first keyframe and increase: the 33-bit PES
// timestamps are unwrapped, and jumps (a device restarting its clock) are
// smoothed over; video without PES timestamps is timed by its RTP
// timestamps. Unit NTP is the wall-clock time of arrival of the first packet
// plus the media time since. Video units hold NAL units without start
// codes; the Track holds the parameter sets of the first keyframe; AAC
// units hold raw access units (ADTS headers removed).
func (r *Receiver) Run(ctx context.Context, remote string, ready func([]*media.Track) *media.Stream) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer r.Close()

	r.mu.Lock()
	switch {
	case r.ran:
		r.mu.Unlock()
		return ErrRunning
	case r.closed:
		r.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		return ErrClosed
	}
	r.ran, r.cancel = true, cancel
	r.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}

	// Closing the sockets is what wakes a blocked read, accept or dial.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(runCtx, func() {
		defer close(interrupted)
		r.closeSockets()
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()

	m := r.cfg.Metrics
	m.sessionStarted(r.cfg.Mode)
	defer m.sessionEnded(r.cfg.Mode)

	s := newSession(&r.cfg, r.cfg.Mode != UDP, &r.cnt, ready, r.log, time.Now())
	s.remote, s.localPort = remote, r.port
	r.log.Debug("receiving", "remote", remote, "ssrc", ssrcString(r.cfg.SSRC), "check_ssrc", r.cfg.CheckSSRC)

	var err error
	switch r.cfg.Mode {
	case UDP:
		err = r.runUDP(runCtx, s)
	case TCPPassive:
		var conn net.Conn
		if conn, err = r.accept(runCtx, s); conn != nil {
			err = r.runTCP(runCtx, s, conn)
		}
	case TCPActive:
		var conn net.Conn
		if conn, err = r.dial(runCtx, s, remote); conn != nil {
			err = r.runTCP(runCtx, s, conn)
		}
	}
	s.flushMetrics()

	switch {
	case ctx.Err() != nil:
		r.log.Debug("stopped", "stats", s.summary())
		return nil
	case err == nil, r.isClosed() && !isSourceError(err):
		r.log.Debug("closed", "stats", s.summary())
		return ErrClosed
	}
	m.failed(media.ReasonOf(err))
	r.log.Info("failed", "reason", string(media.ReasonOf(err)), "error", err, "stats", s.summary())
	return err
}

func isSourceError(err error) bool {
	_, ok := errors.AsType[*media.SourceError](err)
	return ok
}

// runUDP reads datagrams until the session fails or the socket is closed.
func (r *Receiver) runUDP(ctx context.Context, s *session) error {
	buf := make([]byte, 1<<16)
	var deadline time.Time
	for {
		if !s.nextTick.Equal(deadline) {
			deadline = s.nextTick
			_ = r.udp.SetReadDeadline(deadline)
		}
		n, addr, err := r.udp.ReadFromUDPAddrPort(buf)
		now := time.Now()
		switch {
		case err == nil:
			if err := s.handleFrom(buf[:n], addr, now); err != nil {
				return err
			}
		case ctx.Err() != nil || errors.Is(err, net.ErrClosed):
			return nil
		case !isTimeout(err):
			return media.Fail(media.ReasonProtocol, fmt.Errorf("rtprecv: read udp port %d: %w", r.port, err))
		}
		if err := s.maybeTick(now); err != nil {
			return err
		}
	}
}

// accept waits for the device to connect (TCP passive) until
// FirstPacketTimeout, then stops listening.
func (r *Receiver) accept(ctx context.Context, s *session) (net.Conn, error) {
	_ = r.ln.SetDeadline(s.start.Add(r.cfg.FirstPacketTimeout))
	conn, err := r.ln.Accept()
	_ = r.ln.Close() // one connection per session
	switch {
	case err == nil:
	case ctx.Err() != nil || errors.Is(err, net.ErrClosed):
		return nil, nil
	case isTimeout(err):
		return nil, media.Fail(ReasonNoTCPConnection, fmt.Errorf(
			"rtprecv: the device did not connect to tcp port %d within %s; check that its answer has a=setup:active, "+
				"that it can reach %s (firewall, NAT: the IP in the SDP offer), and that nothing else took the port",
			r.port, r.cfg.FirstPacketTimeout, hostPort(r.cfg.AdvertisedIP, r.port)))
	default:
		return nil, media.Fail(media.ReasonProtocol, fmt.Errorf("rtprecv: accept on tcp port %d: %w", r.port, err))
	}
	if !r.setConn(conn) {
		_ = conn.Close()
		return nil, nil
	}
	peer := conn.RemoteAddr().String()
	s.setPeer(peer)
	r.log.Info("device connected", "peer", peer)
	if host, _, err := net.SplitHostPort(s.remote); err == nil && host != "" {
		if ph, _, _ := net.SplitHostPort(peer); ph != host {
			r.log.Debug("device connected from another address than its SDP answer (NAT?)", "peer", peer, "answer", s.remote)
		}
	}
	return conn, nil
}

// dialRetry is the pause between two dials of a device that refused.
const dialRetry = 200 * time.Millisecond

// dial connects to the device (TCP active), retrying until
// FirstPacketTimeout: devices start listening when they answer the INVITE,
// some only once they get the ACK.
func (r *Receiver) dial(ctx context.Context, s *session, remote string) (net.Conn, error) {
	if _, _, err := net.SplitHostPort(remote); err != nil {
		return nil, media.Fail(media.ReasonProtocol, fmt.Errorf(
			"rtprecv: no device address to dial for TCP active (%q from the SDP answer: %w); check the c= and m= lines of the answer", remote, err))
	}
	var d net.Dialer
	if r.ip != nil && !r.ip.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: r.ip}
	}
	deadline := s.start.Add(r.cfg.FirstPacketTimeout)
	attempts := 0
	for {
		attempts++
		dctx, cancel := context.WithDeadline(ctx, deadline)
		conn, err := d.DialContext(dctx, "tcp", remote)
		cancel()
		if err == nil {
			if !r.setConn(conn) {
				_ = conn.Close()
				return nil, nil
			}
			s.setPeer(conn.RemoteAddr().String())
			r.log.Info("connected to device", "peer", remote, "attempts", attempts)
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if time.Now().Add(dialRetry).After(deadline) {
			return nil, media.Fail(media.ReasonUnreachable, fmt.Errorf(
				"rtprecv: dial the device's media port %s (from its SDP answer) for TCP active: %w (%d attempts in %s); "+
					"check that the device listens there (a=setup:passive in its answer) and that no firewall is in between",
				remote, err, attempts, r.cfg.FirstPacketTimeout))
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(dialRetry):
		}
	}
}

// setConn records the TCP connection so that Close closes it; it reports
// false if r is already closed.
func (r *Receiver) setConn(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conn = c
	return true
}

// runTCP reads RFC 4571 framed packets until the session fails, the device
// closes the connection or the socket is closed.
func (r *Receiver) runTCP(ctx context.Context, s *session, conn net.Conn) error {
	br := bufio.NewReaderSize(&tickReader{conn: conn, s: s}, 64<<10)
	if err := checkFraming(br); err != nil {
		return r.tcpError(ctx, s, err)
	}
	fr := rtpframe.NewReader(br)
	for {
		pkt, err := fr.Next()
		if err != nil {
			return r.tcpError(ctx, s, err)
		}
		now := time.Now()
		if err := s.handle(pkt, now); err != nil {
			return err
		}
		if err := s.maybeTick(now); err != nil {
			return err
		}
	}
}

// checkFraming peeks at the start of a TCP stream: the third byte of RFC
// 4571 framed RTP starts with the RTP version 2. Devices that get TCP wrong
// send the program stream without RTP, or RTSP's interleaved framing.
func checkFraming(br *bufio.Reader) error {
	b, err := br.Peek(4)
	if err != nil {
		return err
	}
	if b[2]>>6 == 2 {
		return nil
	}
	what := "not RTP"
	switch {
	case b[0] == 0 && b[1] == 0 && b[2] == 1 && b[3] == 0xBA:
		what = "an MPEG program stream without RTP"
	case b[0] == '$':
		what = "RTSP interleaved framing ('$'), not RFC 4571"
	}
	return media.Fail(media.ReasonProtocol, fmt.Errorf(
		"rtprecv: the TCP stream is not RTP framed as in RFC 4571 (2-byte length, then RTP): it starts with % x, %s; "+
			"check the device's TCP transport settings", b, what))
}

// tcpError classifies the error that ended the reading of a TCP stream.
func (r *Receiver) tcpError(ctx context.Context, s *session, err error) error {
	if se, ok := errors.AsType[*media.SourceError](err); ok {
		return se
	}
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	n := r.cnt.packets.Load() + r.cnt.wrongSSRC.Load() + r.cnt.invalid.Load()
	switch {
	case errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, rtpframe.ErrTruncated):
		return media.Fail(media.ReasonClosed, fmt.Errorf("rtprecv: the device closed the TCP connection after %d packets", n))
	case errors.Is(err, rtpframe.ErrTruncated), errors.Is(err, io.ErrUnexpectedEOF):
		return media.Fail(media.ReasonClosed, fmt.Errorf("rtprecv: the device closed the TCP connection in the middle of a packet, after %d packets: %w", n, err))
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return media.Fail(media.ReasonClosed, fmt.Errorf("rtprecv: the device reset the TCP connection after %d packets: %w", n, err))
	case errors.Is(err, rtpframe.ErrZeroLength):
		return media.Fail(media.ReasonProtocol, fmt.Errorf(
			"rtprecv: the TCP stream lost its RFC 4571 framing (a zero length) after %d packets; check the device's TCP transport settings: %w", n, err))
	}
	return media.Fail(media.ReasonClosed, fmt.Errorf("rtprecv: read tcp: %w", err))
}

// tickReader reads a TCP connection for a bufio.Reader, waking up at every
// tick of the session to let it flush and check its timeouts; an error of
// the session ends the read. (rtpframe.Reader errors are sticky, so a read
// deadline must never reach it.)
type tickReader struct {
	conn net.Conn
	s    *session
	dl   time.Time
}

func (t *tickReader) Read(p []byte) (int, error) {
	for {
		if !t.s.nextTick.Equal(t.dl) {
			t.dl = t.s.nextTick
			_ = t.conn.SetReadDeadline(t.dl)
		}
		n, err := t.conn.Read(p)
		if n > 0 || err == nil || !isTimeout(err) {
			return n, err
		}
		if err := t.s.maybeTick(time.Now()); err != nil {
			return 0, err
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// hostPort joins an advertised IP and a port for messages.
func hostPort(ip string, port int) string {
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// ssrcString writes an SSRC as in the SDP y= line (10 decimal digits) and
// in hex, as packet captures show it.
func ssrcString(v uint32) string { return fmt.Sprintf("%010d (%#08x)", v, v) }

// addrString is netip.AddrPort.String without the IPv4-mapped prefix.
func addrString(a netip.AddrPort) string {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String()
}

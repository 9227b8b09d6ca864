package devsim

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/sim"
)

// clipData is the video every stream sends, prepared once at Start. It is
// immutable and shared by all streams.
type clipData struct {
	codec          sim.Codec
	streamType     byte
	fps            float64
	frames         []clipFrame
	bytesPerSecond float64 // of the program stream, roughly: for file sizes
}

type clipFrame struct {
	data []byte // Annex-B access unit; keyframes start with VPS/SPS/PPS
	key  bool
}

// loadClips loads the clip named, or with "" the embedded H.264 clips.
func loadClips(name string) ([]*clipData, error) {
	if name != "" {
		c, err := loadClip(name)
		if err != nil {
			return nil, err
		}
		return []*clipData{c}, nil
	}
	var out []*clipData
	for _, n := range sim.Clips() {
		c, err := loadClip(n)
		if err != nil {
			return nil, err
		}
		if c.codec == sim.CodecH264 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no embedded H.264 clip")
	}
	return out, nil
}

// clip is the clip of channel ch (0 for -1, the device's own code).
func (d *device) clip(ch int) *clipData {
	clips := d.sim.clips
	return clips[d.serial(ch)%len(clips)]
}

func loadClip(name string) (*clipData, error) {
	c, err := sim.LoadClip(name)
	if err != nil {
		return nil, err
	}
	cd := &clipData{codec: c.Codec, fps: c.FPS, streamType: streamTypeH264}
	if c.Codec == sim.CodecH265 {
		cd.streamType = streamTypeH265
	}
	total := 0
	for _, u := range c.Units {
		var b []byte
		for _, n := range u.NALUs {
			b = append(append(b, 0, 0, 0, 1), n...)
		}
		cd.frames = append(cd.frames, clipFrame{data: b, key: u.IDR})
		total += len(b) + 60 // pack and PES headers, roughly
	}
	cd.bytesPerSecond = float64(total) / (float64(len(c.Units)) / c.FPS)
	return cd, nil
}

// Pacing.
const (
	// maxLag is how far a stream may fall behind its schedule before it
	// stops catching up and restarts its schedule from now.
	maxLag = time.Second
	// udpQuiet is how long UDP sends must succeed for earlier failures to
	// be forgiven.
	udpQuiet = time.Second
)

// errNoBye means the platform did not hang up after the end of a file.
var errNoBye = errors.New("no BYE after the end of the file")

// run sends the stream from the ACK until the session ends, then removes
// it. A stream that ends by itself (not by BYE, Close or a reboot) sends
// a BYE.
func (ss *session) run(ctx context.Context) {
	s := ss.sim
	s.active.Add(1)
	defer s.active.Add(-1)
	defer s.removeSession(ss)
	defer ss.release()
	err := ss.stream(ss.ctx)
	if ss.ctx.Err() != nil || ctx.Err() != nil || ss.stopped.Load() {
		return
	}
	s.log.Warn("stream stopped by the device; sending BYE", "target", ss.id, "err", err)
	bctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := ss.dlg.Bye(bctx); err != nil {
		s.log.Warn("BYE failed", "target", ss.id, "err", err)
	}
}

// mediaWriter sends the packets of one frame.
type mediaWriter interface {
	// write sends the packets of b, which end at the offsets in ends, and
	// returns the bytes sent.
	write(b []byte, ends []int) (int, error)
	close()
}

// stream connects the transport and paces the clip until ctx ends, the
// transport fails or, after the end of a file, the platform fails to hang
// up.
func (ss *session) stream(ctx context.Context) error {
	if ss.fault.NoTCPConnect && ss.offer.tcp {
		<-ctx.Done()
		return ctx.Err()
	}
	w, err := ss.connect(ctx)
	if err != nil {
		return err
	}
	defer w.close()
	if ss.fault.NoMedia {
		<-ctx.Done()
		return ctx.Err()
	}
	return ss.pace(ctx, w)
}

// connect opens the media path: the connected UDP socket, a TCP
// connection to the platform (offer a=setup:passive), or the platform's
// connection to the device's port (offer a=setup:active), each within
// MediaTimeout.
func (ss *session) connect(ctx context.Context) (mediaWriter, error) {
	timeout := ss.sim.cfg.MediaTimeout
	o := ss.offer
	switch {
	case !o.tcp:
		return &udpWriter{conn: ss.udp, giveUp: timeout}, nil
	case o.setup == "active":
		ln := ss.ln.(*net.TCPListener)
		ln.SetDeadline(time.Now().Add(timeout))
		stop := context.AfterFunc(ctx, func() { ln.SetDeadline(time.Now()) })
		defer stop()
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return nil, fmt.Errorf("the platform did not connect to %s within %v: %w", ln.Addr(), timeout, err)
		}
		return &tcpWriter{conn: c, timeout: timeout}, nil
	}
	remote := net.JoinHostPort(o.ip, fmt.Sprint(o.port))
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ss.sim.cfg.MediaIP)}}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		c, err := dialer.DialContext(cctx, "tcp4", remote)
		if err == nil {
			return &tcpWriter{conn: c, timeout: timeout}, nil
		}
		// The platform may start listening a moment late: try again.
		select {
		case <-cctx.Done():
			return nil, fmt.Errorf("cannot connect to %s within %v: %w", remote, timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// udpWriter sends packets on a connected UDP socket. A platform that is
// not listening answers with ICMP port unreachable, which the next send
// reports: the writer drops those packets and fails only when sends have
// kept failing for giveUp.
type udpWriter struct {
	conn         *net.UDPConn
	giveUp       time.Duration
	failingSince time.Time
	lastFailure  time.Time
}

func (w *udpWriter) write(b []byte, ends []int) (int, error) {
	sent, start := 0, 0
	for _, end := range ends {
		n, err := w.conn.Write(b[start:end])
		start = end
		if err == nil {
			sent += n
			continue
		}
		now := time.Now()
		if w.failingSince.IsZero() || now.Sub(w.lastFailure) > udpQuiet {
			w.failingSince = now
		}
		w.lastFailure = now
		if now.Sub(w.failingSince) >= w.giveUp {
			return sent, fmt.Errorf("UDP sends to %s failing for %v: %w", w.conn.RemoteAddr(), w.giveUp, err)
		}
	}
	return sent, nil
}

func (w *udpWriter) close() {} // the session owns the socket

// tcpWriter sends RFC 4571 framed packets on a TCP connection.
type tcpWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w *tcpWriter) write(b []byte, _ []int) (int, error) {
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	n, err := w.conn.Write(b)
	if err != nil {
		return n, fmt.Errorf("TCP send to %s: %w", w.conn.RemoteAddr(), err)
	}
	return n, nil
}

func (w *tcpWriter) close() { w.conn.Close() }

// pacer schedules frames: media frame n (counted from the start of the
// playback range, or of the live stream) is due at anchorT + (n -
// anchorN) / (fps · rate). Its PTS is base + n · 90000 / fps, so
// timestamps follow media time whatever the rate, and jump on a seek.
type pacer struct {
	fps     float64
	rate    float64
	base    int64
	n       int64
	anchorN int64
	anchorT time.Time
}

func (p *pacer) due(n int64) time.Time {
	return p.anchorT.Add(time.Duration(float64(n-p.anchorN) / (p.fps * p.rate) * float64(time.Second)))
}

func (p *pacer) pts(n int64) int64 { return p.base + int64(math.Round(float64(n)*90000/p.fps)) }

func (p *pacer) reanchor(t time.Time) { p.anchorN, p.anchorT = p.n, t }

// pace sends the clip frame by frame, looping, and obeys MANSRTSP
// commands. A playback or download ends at the end of its t= range with a
// MediaStatus 121 (GB/T 28181-2016 §9.8.2, A.2.5.4); pace then waits
// MediaTimeout for the BYE, still obeying commands (a seek backwards
// resumes).
func (ss *session) pace(ctx context.Context, w mediaWriter) error {
	s, o, clip := ss.sim, ss.offer, ss.clip
	p := &pacer{fps: clip.fps, rate: 1}
	var total int64 = -1 // frames of the range; -1 live
	switch o.name {
	case namePlay:
		// Live: timestamps from the wall clock, as cameras' are arbitrary.
		p.base = time.Now().UnixNano() / 1e4 * 9 / 10 % (1 << 33)
	case nameDownload:
		p.rate = float64(o.speed)
		fallthrough
	default:
		// Playback and download: PTS 0 is the start of the t= range.
		total = int64(math.Ceil(float64(o.stop-o.start) * clip.fps))
	}
	p.reanchor(time.Now())
	mux := psMuxer{streamType: clip.streamType}
	pk := rtpPacketizer{pt: payloadTypePS, ssrc: ss.ssrc, seq: uint16(s.nextSN())}
	tcp := o.tcp
	var ps, pkts []byte
	var ends []int
	pos := 0 // clip frame of the next frame
	paused, ended := false, false
	timer := time.NewTimer(0)
	defer timer.Stop()
	var byeWait <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-byeWait:
			return errNoBye
		case c := <-ss.ctl:
			switch c.method {
			case "PAUSE", "TEARDOWN":
				paused = true
				timer.Stop()
				continue
			}
			if c.scale != 0 {
				p.rate = c.scale
			}
			if c.seek {
				p.n = int64(math.Round(c.npt * clip.fps))
				pos = int(p.n % int64(len(clip.frames)))
				for !clip.frames[pos].key { // back to the IDR before
					pos = (pos + len(clip.frames) - 1) % len(clip.frames)
				}
				ended, byeWait = false, nil
			}
			paused = false
			p.reanchor(time.Now())
			timer.Reset(0)
		case now := <-timer.C:
			if paused || ended {
				continue
			}
			if lag := now.Sub(p.due(p.n)); lag > maxLag {
				s.log.Warn("stream fell behind; restarting its schedule", "target", ss.id, "lag", lag)
				p.reanchor(now)
			}
			for !p.due(p.n).After(now) {
				if total >= 0 && p.n >= total {
					ended = true
					break
				}
				if ss.keyframe.Swap(false) {
					for !clip.frames[pos].key {
						pos = (pos + 1) % len(clip.frames)
					}
				}
				f := clip.frames[pos]
				pts := p.pts(p.n)
				payload := f.data
				if !ss.fault.NotPS {
					ps = mux.appendFrame(ps[:0], f.data, f.key, pts)
					payload = ps
				}
				pkts, ends = pk.appendPackets(pkts[:0], ends[:0], payload, uint32(pts), tcp)
				n, err := w.write(pkts, ends)
				s.bytesSent.Add(int64(n))
				if err != nil {
					return err
				}
				p.n++
				pos = (pos + 1) % len(clip.frames)
			}
			if ended {
				s.log.Info("end of file", "target", ss.id)
				ss.sendMediaStatus(ctx)
				byeWait = time.After(s.cfg.MediaTimeout)
				continue
			}
			timer.Reset(time.Until(p.due(p.n)))
		}
	}
}

type mediaStatusBody struct {
	XMLName    xml.Name `xml:"Notify"`
	CmdType    string
	SN         int
	DeviceID   string
	NotifyType int
}

// notifyEndOfFile is the MediaStatus NotifyType of the end of a file
// (GB/T 28181-2016 A.2.5.4).
const notifyEndOfFile = 121

// sendMediaStatus tells the platform the file ended: a MESSAGE Notify
// MediaStatus 121 from the device to the platform's SIP address, with the
// Call-ID of the INVITE so that the platform can tell which session ended
// (as devices do; the body names only the channel).
func (ss *session) sendMediaStatus(ctx context.Context) {
	d := ss.d
	b, err := d.body(&mediaStatusBody{CmdType: cmdMediaStatus, SN: ss.sim.nextSN(), DeviceID: ss.id, NotifyType: notifyEndOfFile})
	if err != nil {
		ss.sim.log.Warn("encode MediaStatus", "err", err)
		return
	}
	req := d.request(sip.MESSAGE, b)
	if cid := ss.dlg.InviteRequest.CallID(); cid != nil {
		req.AppendHeader(sip.HeaderClone(cid))
	}
	code, err := d.sendRequest(ctx, req)
	if err != nil || code != 200 {
		ss.sim.failures.Add(1)
		ss.sim.log.Warn("MediaStatus not delivered", "target", ss.id, "code", code, "err", err)
	}
}

package rtprecv

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/gb28181/rtpframe"
	"github.com/xueliang/xueliang/internal/media"
)

// Limits of a session.
const (
	// audioWait is how long after the first packet of program stream the
	// receiver waits for audio once the video is ready, when the stream map
	// announces audio or there is no map yet (at most half ReadTimeout).
	audioWait = time.Second
	// maxPendingFrames and maxPendingBytes bound the frames kept between
	// the first keyframe and the call of ready.
	maxPendingFrames = 512
	maxPendingBytes  = 32 << 20
	// ssrcSwitchAfter is how long the SSRC being received must be silent
	// before another one is taken, when the SSRC is not checked.
	ssrcSwitchAfter = time.Second
	// headLen is how many bytes of the first payload are kept to describe
	// a stream that is not PS.
	headLen = 12
	// lossReportEvery is how often losses are logged.
	lossReportEvery = 10 * time.Second
	// maxGap is the largest jump of sequence numbers over TCP counted as
	// lost packets; a larger one is a restarted sender (RFC 3550 A.1 uses
	// the same bound).
	maxGap = 3000
	// maxRecycled is the largest payload buffer kept for reuse: datagrams
	// of a normal MTU. Jumbo datagrams (some devices send 8 KiB and more,
	// fragmented by IP) get buffers of their own.
	maxRecycled = 4096
)

// session is the packet path of one Run: RTP parsing, the SSRC filter,
// reordering (UDP), the PS demultiplexer, and the frames turned into units
// (tracks.go). It also decides, at every tick, whether the session failed and
// why. It does no I/O, and is used by one goroutine.
type session struct {
	cfg       *Config
	log       *slog.Logger
	cnt       *counters
	ready     func([]*media.Track) *media.Stream
	remote    string // the device's address from the SDP answer, for messages
	localPort int    // the receiver's port, for messages

	start     time.Time // of Run: FirstPacketTimeout counts from it
	tickEvery time.Duration
	nextTick  time.Time

	// What arrived, for the diagnosis of a session that gets no media.
	locked      bool   // ssrc is set
	ssrc        uint32 // SSRC received
	firstAt     time.Time
	lastAt      time.Time // last packet of ssrc
	psAt        time.Time // first program stream structure
	otherSSRC   uint32    // last SSRC refused
	otherAt     time.Time
	firstPT     uint8
	head        []byte         // start of the first payload of ssrc
	invalidHead []byte         // start of the first datagram that was not RTP
	cur         netip.AddrPort // source of the datagram being handled
	peerSet     bool

	// Reordering (UDP only: nil over TCP) and the recycling of the packets
	// it holds.
	reorder  *rtpframe.Reorder
	rstats   rtpframe.ReorderStats // the loss counters last copied to cnt
	freePkts []*rtp.Packet
	freeBufs [][]byte
	tcpPkt   rtp.Packet

	// The ordered packets given to the demuxer.
	haveSeq    bool
	demuxSSRC  uint32
	lastSeq    uint16
	lastTS     uint32
	lastMarker bool
	rtpClock   unwrapper // RTP timestamps, unwrapped past 2^32
	frameTS    int64     // unwrapped RTP timestamp of the last packet demultiplexed
	probe      clockProbe

	demux     *ps.Demuxer
	psSeen    bool
	discard   bool // drop the frames the demuxer delivers now
	frames    []ps.Frame
	demuxErrs uint64

	out output // tracks and units; see tracks.go

	lossAt   time.Time // last loss report
	lossLast Stats
	metLast  Stats // counters last added to the metrics
}

func newSession(cfg *Config, tcp bool, cnt *counters, ready func([]*media.Track) *media.Stream, log *slog.Logger, now time.Time) *session {
	s := &session{cfg: cfg, log: log, cnt: cnt, ready: ready, start: now, lossAt: now}
	tick := min(cfg.FirstPacketTimeout, cfg.ReadTimeout) / 4
	if !tcp {
		s.reorder = rtpframe.NewReorder(cfg.ReorderWindow, cfg.ReorderDelay)
		tick = min(tick, cfg.ReorderDelay/2)
	}
	s.tickEvery = min(max(tick, 5*time.Millisecond), 100*time.Millisecond)
	s.nextTick = now.Add(s.tickEvery)
	s.demux = ps.NewDemuxer(func(f ps.Frame) {
		if s.discard {
			s.cnt.dropped.Add(1)
			return
		}
		s.frames = append(s.frames, f)
	})
	s.out.init(s)
	return s
}

// handleFrom takes a datagram of a UDP session from a.
func (s *session) handleFrom(b []byte, a netip.AddrPort, now time.Time) error {
	s.cur = a
	return s.handle(b, now)
}

// setPeer records where the media comes from, once.
func (s *session) setPeer(p string) {
	s.peerSet = true
	s.cnt.peer.Store(&p)
}

// handle takes one RTP packet b, received at now. It does not keep b.
func (s *session) handle(b []byte, now time.Time) error {
	pkt := &s.tcpPkt
	if s.reorder != nil {
		pkt = s.getPacket()
	}
	if err := pkt.Unmarshal(b); err != nil || pkt.Version != 2 {
		s.cnt.invalid.Add(1)
		if s.invalidHead == nil {
			s.invalidHead = bytes.Clone(b[:min(len(b), headLen)])
		}
		s.putPacket(pkt, false)
		return nil
	}
	pkt.Extensions = pkt.Extensions[:0] // they alias b
	if !s.acceptSSRC(pkt, now) {
		s.putPacket(pkt, false)
		return nil
	}
	s.cnt.packets.Add(1)
	s.cnt.bytes.Add(uint64(len(b)))
	s.cnt.last.Store(now.UnixNano())
	if s.firstAt.IsZero() {
		s.firstAt, s.firstPT = now, pkt.PayloadType
		s.head = bytes.Clone(pkt.Payload[:min(len(pkt.Payload), headLen)])
		if !s.peerSet && s.cur.IsValid() {
			s.setPeer(addrString(s.cur))
		}
		peer := s.cnt.snapshot().Peer
		s.log.Debug("first packet", "ssrc", ssrcString(pkt.SSRC), "payload_type", pkt.PayloadType, "peer", peer)
		if host, _, err := net.SplitHostPort(s.remote); err == nil && host != "" && s.cur.IsValid() && s.cur.Addr().Unmap().String() != host {
			s.log.Debug("media comes from another address than the SDP answer's (NAT?)", "peer", peer, "answer", s.remote)
		}
	}
	s.lastAt = now

	if s.reorder == nil {
		return s.demuxPacket(pkt, now)
	}
	// The reorder buffer keeps the packet: give it a copy of the payload.
	buf := s.getBuf(len(pkt.Payload))
	pkt.Payload = buf[:copy(buf, pkt.Payload)]
	ordered, taken := s.reorder.Push(pkt, now)
	if !taken {
		s.putPacket(pkt, true)
	}
	s.setReorderStats(s.reorder.Stats())
	return s.demuxOrdered(ordered, now)
}

// acceptSSRC reports whether pkt belongs to the session.
func (s *session) acceptSSRC(pkt *rtp.Packet, now time.Time) bool {
	switch {
	case s.cfg.CheckSSRC && s.cfg.SSRC != 0:
		if pkt.SSRC == s.cfg.SSRC {
			s.locked, s.ssrc = true, pkt.SSRC
			return true
		}
	case !s.locked || pkt.SSRC == s.ssrc:
		s.locked, s.ssrc = true, pkt.SSRC
		return true
	case now.Sub(s.lastAt) >= ssrcSwitchAfter:
		s.log.Info("SSRC changed", "from", ssrcString(s.ssrc), "to", ssrcString(pkt.SSRC))
		s.ssrc = pkt.SSRC
		return true
	}
	if s.cnt.wrongSSRC.Add(1) == 1 {
		s.log.Warn("dropping packets of another SSRC", "ssrc", ssrcString(pkt.SSRC), "want", ssrcString(s.wantSSRC()))
	}
	s.otherSSRC, s.otherAt = pkt.SSRC, now
	return false
}

// wantSSRC is the SSRC the session accepts.
func (s *session) wantSSRC() uint32 {
	if s.cfg.CheckSSRC && s.cfg.SSRC != 0 {
		return s.cfg.SSRC
	}
	return s.ssrc
}

// setReorderStats copies the reorder buffer's loss counters to the
// session's, when they changed (rarely: not per in-order packet).
func (s *session) setReorderStats(st rtpframe.ReorderStats) {
	if st.Lost == s.rstats.Lost && st.Reordered == s.rstats.Reordered &&
		st.Duplicates == s.rstats.Duplicates && st.Late == s.rstats.Late {
		return
	}
	s.rstats = st
	s.cnt.lost.Store(st.Lost)
	s.cnt.reordered.Store(st.Reordered)
	s.cnt.duplicates.Store(st.Duplicates)
	s.cnt.late.Store(st.Late)
}

// getPacket returns a packet whose Payload is nil, for a datagram.
func (s *session) getPacket() *rtp.Packet {
	if n := len(s.freePkts); n > 0 {
		p := s.freePkts[n-1]
		s.freePkts = s.freePkts[:n-1]
		return p
	}
	return new(rtp.Packet)
}

// getBuf returns a buffer of n bytes for the payload of a datagram.
func (s *session) getBuf(n int) []byte {
	if k := len(s.freeBufs); k > 0 {
		b := s.freeBufs[k-1]
		s.freeBufs = s.freeBufs[:k-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n, max(n, 1500))
}

// putPacket recycles a packet of the reorder path and, if own, the payload
// buffer getBuf gave it (refused and unparsable datagrams alias the read
// buffer instead). Over TCP it does nothing.
func (s *session) putPacket(p *rtp.Packet, own bool) {
	if s.reorder == nil {
		return
	}
	limit := s.cfg.ReorderWindow + 16
	if b := p.Payload; own && cap(b) > 0 && cap(b) <= maxRecycled && len(s.freeBufs) < limit {
		s.freeBufs = append(s.freeBufs, b[:cap(b)])
	}
	p.Payload = nil
	if len(s.freePkts) < limit {
		s.freePkts = append(s.freePkts, p)
	}
}

// demuxOrdered demultiplexes the packets the reorder buffer returned, and
// recycles them.
func (s *session) demuxOrdered(pkts []*rtp.Packet, now time.Time) error {
	var err error
	for _, p := range pkts {
		if err == nil {
			err = s.demuxPacket(p, now)
		}
		s.putPacket(p, true)
	}
	return err
}

// demuxPacket gives the payload of the next packet in sequence to the
// demuxer and handles the frames it completes.
func (s *session) demuxPacket(p *rtp.Packet, now time.Time) error {
	if s.haveSeq && p.SSRC != s.demuxSSRC {
		s.resetDemux("new SSRC")
		s.haveSeq = false
	}
	if s.haveSeq {
		switch d := int16(p.SequenceNumber - s.lastSeq); {
		case d == 1:
		case s.reorder == nil && d == 0:
			s.cnt.duplicates.Add(1)
			return nil
		case s.reorder == nil && d < 0 && d > -100:
			s.cnt.late.Add(1)
			return nil
		default:
			if s.reorder == nil && d > 1 && d < maxGap {
				s.cnt.lost.Add(uint64(d - 1))
			}
			// A gap (or a restart): the frame being collected misses a
			// piece, unless the packet before the gap ended it.
			if s.lastMarker && p.Timestamp != s.lastTS {
				s.demux.Flush()
			}
			s.resetDemux("")
		}
	}
	s.haveSeq, s.demuxSSRC, s.lastSeq = true, p.SSRC, p.SequenceNumber

	if s.probe.timed() {
		// Video without PES timestamps: a frame ends where the RTP
		// timestamp changes, at a packet that starts a pack or a PES packet.
		if p.Timestamp != s.lastTS && startsPS(p.Payload) {
			s.demux.Flush()
		}
	} else if !s.probe.decided && s.probe.scan(p.Payload, p.Timestamp) && s.probe.timed() {
		s.log.Info("video has no usable PES timestamps: timing it by RTP timestamps")
		s.discard = true
		s.demux.Flush() // what was collected is several frames in one
		s.discard = false
	}
	if err := s.demux.Write(p.Payload); err != nil {
		s.demuxErrs++
		if s.demuxErrs == 1 || s.demuxErrs%1000 == 0 {
			s.log.Debug("program stream error", "error", err, "count", s.demuxErrs)
		}
	}
	if !s.psSeen {
		if st := s.demux.Stats(); st.Packs+st.PES > 0 {
			s.psSeen, s.psAt = true, now
			s.log.Debug("program stream found", "after", now.Sub(s.start).Round(time.Millisecond))
		}
	}
	err := s.out.frames(s.frames, now)
	clear(s.frames)
	s.frames = s.frames[:0]
	s.lastTS, s.lastMarker = p.Timestamp, p.Marker
	s.frameTS = s.rtpClock.unwrap32(p.Timestamp)
	return err
}

// resetDemux forgets the frames being collected after a discontinuity.
func (s *session) resetDemux(why string) {
	s.demux.Reset()
	s.out.discontinuity()
	if why != "" {
		s.log.Debug("discontinuity", "why", why)
	}
}

// startsPS reports whether an RTP payload starts with a pack header, a
// program stream map or a PES packet.
func startsPS(b []byte) bool {
	return len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 1 && b[3] >= 0xBA
}

// maybeTick runs tick if it is due.
func (s *session) maybeTick(now time.Time) error {
	if now.Before(s.nextTick) {
		return nil
	}
	s.nextTick = now.Add(s.tickEvery)
	return s.tick(now)
}

// tick flushes the reorder buffer, starts the stream if the wait for audio
// is over, and checks the timeouts.
func (s *session) tick(now time.Time) error {
	if s.reorder != nil {
		ordered := s.reorder.Flush(now)
		s.setReorderStats(s.reorder.Stats())
		if err := s.demuxOrdered(ordered, now); err != nil {
			return err
		}
	}
	s.flushMetrics()
	s.reportLoss(now)
	if !s.psSeen {
		if now.Sub(s.start) >= s.cfg.FirstPacketTimeout {
			return s.noMedia()
		}
		return nil
	}
	if !s.out.started() {
		if err := s.out.maybeStart(now); err != nil {
			return err
		}
		if err := s.out.unusable(); err != nil {
			return err
		}
		if !s.out.started() && now.Sub(s.psAt) >= s.cfg.ReadTimeout {
			return s.out.noTracks(now.Sub(s.psAt))
		}
	}
	if silent := now.Sub(s.lastAt); silent >= s.cfg.ReadTimeout {
		return s.stopped(silent)
	}
	return nil
}

// noMedia explains why no program stream arrived within FirstPacketTimeout.
func (s *session) noMedia() error {
	st := s.cnt.snapshot()
	to := s.cfg.FirstPacketTimeout
	switch {
	case st.Packets > 0:
		return media.Fail(ReasonNotPS, fmt.Errorf(
			"rtprecv: %d RTP packets of payload type %d arrived in %s, none with an MPEG program stream: the payload starts with % x (%s); "+
				"the device must send PS (a=rtpmap:96 PS/90000): check its stream format and its SDP answer",
			st.Packets, s.firstPT, to, s.head, describePayload(s.head)))
	case st.WrongSSRC > 0:
		return media.Fail(ReasonWrongSSRC, fmt.Errorf(
			"rtprecv: %d RTP packets arrived in %s with SSRC %s, none with the SSRC %s of the SDP y= line; "+
				"check the SSRC the device uses (some ignore y=), or turn the SSRC check off (gb28181.ignore_ssrc)",
			st.WrongSSRC, to, ssrcString(s.otherSSRC), ssrcString(s.cfg.SSRC)))
	case st.Invalid > 0:
		what := describePayload(s.invalidHead)
		if startsPS(s.invalidHead) {
			what = "a program stream without RTP"
		}
		return media.Fail(ReasonNotPS, fmt.Errorf(
			"rtprecv: %d packets arrived in %s, none of them RTP: they start with % x (%s); the device must send PS over RTP",
			st.Invalid, to, s.invalidHead, what))
	case s.cfg.Mode == UDP:
		return media.Fail(ReasonNoPackets, fmt.Errorf(
			"rtprecv: no packet arrived on udp port %d within %s; check that the device can reach %s, the address of the SDP offer "+
				"(firewall, NAT, the IP in c=), and that it answered the INVITE", s.localPort, to, hostPort(s.cfg.AdvertisedIP, s.localPort)))
	default:
		return media.Fail(ReasonNoPackets, fmt.Errorf(
			"rtprecv: the TCP connection with the device (%s) is open but no packet came within %s; check the device's media settings",
			st.Peer, to))
	}
}

// stopped explains a session whose media stopped.
func (s *session) stopped(silent time.Duration) error {
	st := s.cnt.snapshot()
	msg := fmt.Sprintf("rtprecv: no media for %s, after %d packets (%d frames); the device stopped sending",
		silent.Round(time.Millisecond), st.Packets, st.Frames)
	if s.otherAt.After(s.lastAt) {
		msg += fmt.Sprintf(", or changed its SSRC: packets keep coming with SSRC %s instead of %s", ssrcString(s.otherSSRC), ssrcString(s.wantSSRC()))
	}
	return media.Fail(media.ReasonTimeout, fmt.Errorf("%s", msg))
}

// reportLoss logs, at most every lossReportEvery, the packets lost since
// the last report.
func (s *session) reportLoss(now time.Time) {
	if now.Sub(s.lossAt) < lossReportEvery {
		return
	}
	st := s.cnt.snapshot()
	if lost := st.Lost - s.lossLast.Lost; lost > 0 {
		s.log.Warn("packets lost", "lost", lost, "received", st.Packets-s.lossLast.Packets,
			"reordered", st.Reordered-s.lossLast.Reordered, "period", now.Sub(s.lossAt).Round(time.Second))
	}
	s.lossAt, s.lossLast = now, st
}

// flushMetrics adds the counters since the last call to the metrics.
func (s *session) flushMetrics() {
	if s.cfg.Metrics == nil {
		return
	}
	st := s.cnt.snapshot()
	s.cfg.Metrics.add(&st, &s.metLast)
	s.metLast = st
}

// summary is the log value of the counters at the end of a session.
func (s *session) summary() slog.Value {
	st := s.cnt.snapshot()
	return slog.GroupValue(
		slog.Uint64("packets", st.Packets), slog.Uint64("lost", st.Lost), slog.Uint64("reordered", st.Reordered),
		slog.Uint64("wrong_ssrc", st.WrongSSRC), slog.Uint64("invalid", st.Invalid),
		slog.Uint64("frames", st.Frames), slog.Uint64("keyframes", st.Keyframes), slog.Uint64("dropped", st.Dropped))
}

// describePayload guesses what the start of a payload that is not a
// program stream is.
func describePayload(b []byte) string {
	switch {
	case len(b) == 0:
		return "empty"
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || b[2] == 0 && b[3] == 1):
		i := 3
		if b[2] == 0 {
			i = 4
		}
		if i < len(b) && b[i]&0x80 == 0 {
			return "an H.264 or H.265 elementary stream (Annex B) without PS"
		}
		return "start codes, but no program stream"
	case b[0] == 0x47:
		return "MPEG-TS, not PS"
	case len(b) >= 2 && (b[0] == 0x60 || b[0] == 0x62) && b[1] == 0x01:
		return "H.265 in RTP (RFC 7798), not PS"
	case b[0]&0x80 == 0 && (b[0]&0x1F >= 1 && b[0]&0x1F <= 24 || b[0]&0x1F == 28):
		return "H.264 in RTP (RFC 6184), not PS"
	}
	return "unrecognised"
}

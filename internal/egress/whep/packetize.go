package whep

import (
	"github.com/pion/rtp"
)

// maxPayload is the largest RTP payload sent. With the RTP header (12),
// SRTP tag (10), UDP and IP headers, packets stay under 1280 bytes, the IPv6
// minimum MTU, with room for header extensions and TURN.
const maxPayload = 1160

// rtpWriter is what packetWriter writes to; *webrtc.TrackLocalStaticRTP
// implements it. WriteRTP must not keep p or its payload after it returns.
type rtpWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// packetWriter numbers and writes the packets of one RTP stream. pion
// rewrites SSRC and payload type per binding; sequence numbers and
// timestamps are ours.
type packetWriter struct {
	w       rtpWriter
	pkt     rtp.Packet // reused: WriteRTP copies what it keeps
	seq     uint16
	packets uint64
}

func (pw *packetWriter) write(payload []byte, ts uint32, marker bool) error {
	pw.pkt.Header = rtp.Header{Version: 2, Marker: marker, SequenceNumber: pw.seq, Timestamp: ts}
	pw.pkt.Payload = payload
	pw.seq++
	pw.packets++
	return pw.w.WriteRTP(&pw.pkt)
}

// videoPacketizer turns the NAL units of an access unit into RTP packets.
type videoPacketizer interface {
	// nalus appends to dst the NAL units to send for u: u's own, without
	// access unit delimiters and filler, preceded on keyframes by the
	// parameter sets when u lacks them.
	nalus(dst [][]byte, payload [][]byte, key bool) [][]byte
	// send writes the NAL units of one access unit, all with timestamp ts;
	// the last packet has the marker bit.
	send(pw *packetWriter, nalus [][]byte, ts uint32) error
}

// h264Packetizer implements RFC 6184 packetization-mode=1 (non-interleaved,
// §6.3) with single NAL unit packets (§5.6) and FU-A (§5.8). STAP-A is not
// needed: the parameter sets go in their own small packets.
type h264Packetizer struct {
	sps, pps []byte // latest parameter sets; shared, never modified
	buf      [maxPayload]byte
}

// H.264 NAL unit types (ITU-T H.264 Table 7-1).
const (
	h264SPS    = 7
	h264PPS    = 8
	h264AUD    = 9
	h264Filler = 12
	h264FUA    = 28
)

func (p *h264Packetizer) nalus(dst [][]byte, payload [][]byte, key bool) [][]byte {
	var hasSPS, hasPPS bool
	for _, n := range payload {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1f {
		case h264SPS:
			p.sps, hasSPS = n, true
		case h264PPS:
			p.pps, hasPPS = n, true
		}
	}
	if key && !(hasSPS && hasPPS) && p.sps != nil && p.pps != nil {
		dst = append(dst, p.sps, p.pps)
	}
	for _, n := range payload {
		if len(n) == 0 {
			continue
		}
		if t := n[0] & 0x1f; t == h264AUD || t == h264Filler {
			continue
		}
		dst = append(dst, n)
	}
	return dst
}

func (p *h264Packetizer) send(pw *packetWriter, nalus [][]byte, ts uint32) error {
	// §5.8: FU indicator (F, NRI of the NAL unit, type 28), FU header (S, E,
	// R=0, the NAL unit type); the fragments carry the NAL unit without its
	// header byte.
	return sendNALUs(pw, p.buf[:], nalus, ts, 1, func(n, fu []byte) int {
		fu[0], fu[1] = n[0]&0xe0|h264FUA, n[0]&0x1f
		return 2
	})
}

// sendNALUs sends each NAL unit as the payload of one packet, straight from
// the shared buffer, when it fits (RFC 6184 §5.6, RFC 7798 §4.4.1), and in
// fragmentation units otherwise. prefix writes the FU prefix of n into fu and
// returns its length; its last byte takes the S (0x80) and E (0x40) bits.
// Fragments carry n without its first hdrLen bytes. buf is the packetizer's
// scratch buffer of maxPayload bytes.
func sendNALUs(pw *packetWriter, buf []byte, nalus [][]byte, ts uint32, hdrLen int, prefix func(n, fu []byte) int) error {
	for i, n := range nalus {
		last := i == len(nalus)-1
		if len(n) <= maxPayload {
			if err := pw.write(n, ts, last); err != nil {
				return err
			}
			continue
		}
		plen := prefix(n, buf)
		data := n[hdrLen:]
		start := true
		for len(data) > 0 {
			k := min(len(data), maxPayload-plen)
			fu := buf[:plen+k]
			prefix(n, fu)
			if start {
				fu[plen-1] |= 0x80
			}
			end := k == len(data)
			if end {
				fu[plen-1] |= 0x40
			}
			copy(fu[plen:], data[:k])
			if err := pw.write(fu, ts, last && end); err != nil {
				return err
			}
			data = data[k:]
			start = false
		}
	}
	return nil
}

// h265Packetizer implements RFC 7798 with single NAL unit packets (§4.4.1)
// and fragmentation units (§4.4.3), without DONL (sprop-max-don-diff=0).
type h265Packetizer struct {
	vps, sps, pps []byte // latest parameter sets; shared, never modified
	buf           [maxPayload]byte
}

// H.265 NAL unit types (ITU-T H.265 Table 7-1).
const (
	h265VPS    = 32
	h265SPS    = 33
	h265PPS    = 34
	h265AUD    = 35
	h265Filler = 38
	h265FU     = 49
)

func h265Type(n []byte) uint8 { return n[0] >> 1 & 0x3f }

func (p *h265Packetizer) nalus(dst [][]byte, payload [][]byte, key bool) [][]byte {
	var hasVPS, hasSPS, hasPPS bool
	for _, n := range payload {
		if len(n) < 2 {
			continue
		}
		switch h265Type(n) {
		case h265VPS:
			p.vps, hasVPS = n, true
		case h265SPS:
			p.sps, hasSPS = n, true
		case h265PPS:
			p.pps, hasPPS = n, true
		}
	}
	if key && !(hasVPS && hasSPS && hasPPS) && p.vps != nil && p.sps != nil && p.pps != nil {
		dst = append(dst, p.vps, p.sps, p.pps)
	}
	for _, n := range payload {
		if len(n) < 2 {
			continue
		}
		if t := h265Type(n); t == h265AUD || t == h265Filler {
			continue
		}
		dst = append(dst, n)
	}
	return dst
}

func (p *h265Packetizer) send(pw *packetWriter, nalus [][]byte, ts uint32) error {
	// §4.4.3: PayloadHdr is the NAL unit header with Type 49; the FU header
	// holds S, E and the NAL unit type; the fragments carry the NAL unit
	// without its two header bytes.
	return sendNALUs(pw, p.buf[:], nalus, ts, 2, func(n, fu []byte) int {
		fu[0], fu[1], fu[2] = n[0]&0x81|h265FU<<1, n[1], h265Type(n)
		return 3
	})
}

// g711Samples is the number of G.711 samples (bytes) per packet: 20 ms at
// 8 kHz, the default packet time of RFC 3551 §4.5.
const g711Samples = 160

// sendG711 writes G.711 samples (RFC 3551 §4.5.14) in packets of 20 ms, from
// the shared buffers. ts is the timestamp of the first sample; the marker bit
// is set on the first packet of the stream (RFC 3551 §4.1).
func sendG711(pw *packetWriter, payload [][]byte, ts uint32) error {
	for _, b := range payload {
		for len(b) > 0 {
			k := min(len(b), g711Samples)
			if err := pw.write(b[:k], ts, pw.packets == 0); err != nil {
				return err
			}
			ts += uint32(k)
			b = b[k:]
		}
	}
	return nil
}

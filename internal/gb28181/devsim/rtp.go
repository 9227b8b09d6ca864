package devsim

import "encoding/binary"

// RTP packetisation of the program stream (RFC 3550 §5.1; GB/T 28181-2016
// Annex C.2: PS over RTP, payload type 96, 90 kHz clock) and the RFC 4571
// §2 framing of RTP over TCP. Written here for the same reason as the PS
// muxer: the platform's readers are tested against it.

const (
	rtpVersion    = 2
	rtpHeaderLen  = 12
	payloadTypePS = 96
	// maxRTPPayload keeps packets within an Ethernet MTU with IP and UDP
	// headers, as devices do.
	maxRTPPayload = 1400
)

// rtpPacketizer numbers and stamps the packets of one stream. It is not
// safe for concurrent use.
type rtpPacketizer struct {
	pt   byte
	ssrc uint32
	seq  uint16 // of the next packet
}

// appendPackets cuts payload (one frame) into packets with timestamp ts,
// the marker bit on the last (RFC 3551 §4.1: the end of a frame), and
// appends them to dst. ends receives the end offset in dst of every packet.
// With framed, every packet is preceded by its 16-bit length (RFC 4571 §2)
// and dst can be written to the TCP connection as it is.
func (p *rtpPacketizer) appendPackets(dst []byte, ends []int, payload []byte, ts uint32, framed bool) ([]byte, []int) {
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), maxRTPPayload)
		last := n == len(payload)
		if framed {
			dst = binary.BigEndian.AppendUint16(dst, uint16(rtpHeaderLen+n))
		}
		b1 := p.pt & 0x7F
		if last {
			b1 |= 0x80 // marker
		}
		dst = append(dst, rtpVersion<<6, b1)
		dst = binary.BigEndian.AppendUint16(dst, p.seq)
		dst = binary.BigEndian.AppendUint32(dst, ts)
		dst = binary.BigEndian.AppendUint32(dst, p.ssrc)
		dst = append(dst, payload[:n]...)
		ends = append(ends, len(dst))
		payload = payload[n:]
		p.seq++
	}
	return dst, ends
}

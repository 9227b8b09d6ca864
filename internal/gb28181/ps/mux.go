package ps

import (
	"encoding/binary"

	"github.com/xueliang/xueliang/internal/media"
)

// muxRate is the program_mux_rate written in pack headers, in units of
// 50 bytes/s (§2.5.3.4): 20 Mbit/s, more than any GB/T 28181 camera sends.
const muxRate = 20_000_000 / 8 / 50

// Muxer writes frames as a program stream the way GB/T 28181 devices do: a
// pack header per frame, then on video keyframes a system header and a
// program stream map, then PES packets of at most MaxPESPayload bytes.
//
// The zero Muxer is ready to use; its fields select the quirks of real
// devices, for tests. A Muxer is not safe for concurrent use.
type Muxer struct {
	// OmitSystemHeader leaves out the system header, as many devices do.
	OmitSystemHeader bool
	// OmitPSM leaves out the program stream map.
	OmitPSM bool
	// UnboundedVideo writes each video frame as one PES packet with
	// PES_packet_length 0 (§2.4.3.7 allows it for video).
	UnboundedVideo bool
	// PTSOnEveryPES repeats the PTS on every PES packet of a frame; by
	// default only the first one carries it.
	PTSOnEveryPES bool
	// MaxPayload is the PES payload size limit; MaxPESPayload if 0 or larger.
	MaxPayload int

	streams []StreamInfo
	version byte
}

// AddStream declares a stream for the program stream map; Mux declares the
// streams of the frames it is given by itself. Declaring a new codec for a
// known stream changes it.
func (m *Muxer) AddStream(id byte, c media.Codec) {
	for i := range m.streams {
		if m.streams[i].ID == id {
			if m.streams[i].Codec != c {
				m.streams[i].Codec, m.streams[i].Type = c, streamTypeOf(c)
				m.version = (m.version + 1) & 0x1F
			}
			return
		}
	}
	m.streams = append(m.streams, StreamInfo{ID: id, Type: streamTypeOf(c), Codec: c})
	m.version = (m.version + 1) & 0x1F
}

// Mux appends f, as one pack, to dst and returns the extended buffer. A
// frame whose Stream is 0 goes to stream 0xE0 if it is video and 0xC0
// otherwise. Video Data must be Annex-B.
func (m *Muxer) Mux(dst []byte, f *Frame) []byte {
	id := f.Stream
	if id == 0 {
		id = 0xC0
		if f.Codec.IsVideo() {
			id = 0xE0
		}
	}
	m.AddStream(id, f.Codec)
	scr := f.DTS
	if !f.HasPTS {
		scr = 0
	} else if scr == 0 {
		scr = f.PTS
	}
	dst = appendPackHeader(dst, scr)
	if isVideo(id) && f.Key {
		if !m.OmitSystemHeader {
			dst = m.appendSystemHeader(dst)
		}
		if !m.OmitPSM {
			dst = m.appendPSM(dst)
		}
	}
	limit := m.MaxPayload
	if limit <= 0 || limit > MaxPESPayload {
		limit = MaxPESPayload
	}
	data := f.Data
	first := true
	for first || len(data) > 0 {
		withPTS := f.HasPTS && (first || m.PTSOnEveryPES)
		if m.UnboundedVideo && isVideo(id) {
			dst = appendPESHeader(dst, id, -1, withPTS, f.PTS, f.DTS)
			return append(dst, data...)
		}
		n := min(len(data), limit)
		dst = appendPESHeader(dst, id, n, withPTS, f.PTS, f.DTS)
		dst = append(dst, data[:n]...)
		data = data[n:]
		first = false
	}
	return dst
}

// appendPackHeader writes an MPEG-2 pack header, §2.5.3.3.
func appendPackHeader(dst []byte, scr int64) []byte {
	s := uint64(scr) & (1<<33 - 1)
	r := uint32(muxRate)
	return append(dst, 0, 0, 1, idPack,
		0x44|byte(s>>27)&0x38|byte(s>>28)&0x03,
		byte(s>>20),
		byte(s>>12)&0xF8|0x04|byte(s>>13)&0x03,
		byte(s>>5),
		byte(s<<3)&0xF8|0x04, // SCR_extension 0
		0x01,
		byte(r>>14), byte(r>>6), byte(r<<2)|0x03,
		0xF8) // no stuffing
}

// appendSystemHeader writes a system header, §2.5.3.5.
func (m *Muxer) appendSystemHeader(dst []byte) []byte {
	var audio, video byte
	for _, s := range m.streams {
		if isVideo(s.ID) {
			video++
		} else {
			audio++
		}
	}
	r := uint32(muxRate)
	dst = append(dst, 0, 0, 1, idSystemHeader)
	dst = binary.BigEndian.AppendUint16(dst, uint16(6+3*len(m.streams)))
	dst = append(dst,
		0x80|byte(r>>15), byte(r>>7), byte(r<<1)|0x01,
		audio<<2,        // audio_bound; fixed_flag and CSPS_flag 0
		0xE0|video&0x1F, // audio and video locked, marker, video_bound
		0x7F)            // packet_rate_restriction_flag 0, reserved
	for _, s := range m.streams {
		if isVideo(s.ID) {
			dst = append(dst, s.ID, 0xE0, 0x80) // scale 1 (1024-byte units): 128 KiB
		} else {
			dst = append(dst, s.ID, 0xC0, 0x20) // scale 0: 128-byte units, 4 KiB
		}
	}
	return dst
}

// appendPSM writes a program stream map, §2.5.4.1.
func (m *Muxer) appendPSM(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 1, idPSM, 0, 0,
		0x80|m.version, 0x01, // current_next_indicator, version; marker
		0, 0) // program_stream_info_length
	dst = binary.BigEndian.AppendUint16(dst, uint16(4*len(m.streams)))
	for _, s := range m.streams {
		dst = append(dst, s.Type, s.ID, 0, 0)
	}
	binary.BigEndian.PutUint16(dst[start+4:], uint16(len(dst)-start-6+4))
	return binary.BigEndian.AppendUint32(dst, crc32MPEG2(dst[start:]))
}

// appendPESHeader writes a PES header, §2.4.3.6, for a payload of n bytes
// (-1: unbounded, PES_packet_length 0).
func appendPESHeader(dst []byte, id byte, n int, withPTS bool, pts, dts int64) []byte {
	hdl := 0
	flags := byte(0)
	withDTS := withPTS && dts != pts && dts != 0
	switch {
	case withDTS:
		flags, hdl = 0xC0, 10
	case withPTS:
		flags, hdl = 0x80, 5
	}
	length := 0
	if n >= 0 {
		length = 3 + hdl + n
	}
	dst = append(dst, 0, 0, 1, id, byte(length>>8), byte(length), 0x80, flags, byte(hdl))
	switch {
	case withDTS:
		dst = appendTimestamp(dst, 0x30, pts)
		dst = appendTimestamp(dst, 0x10, dts)
	case withPTS:
		dst = appendTimestamp(dst, 0x20, pts)
	}
	return dst
}

func appendTimestamp(dst []byte, prefix byte, ts int64) []byte {
	t := uint64(ts) & (1<<33 - 1)
	return append(dst,
		prefix|byte(t>>29)&0x0E|0x01,
		byte(t>>22),
		byte(t>>14)|0x01,
		byte(t>>7),
		byte(t<<1)|0x01)
}

// crc32MPEG2 computes the CRC of ISO/IEC 13818-1 Annex A (non-reflected
// polynomial 0x04C11DB7, which hash/crc32 does not offer). Maps are short
// and written once per keyframe, so bitwise is fast enough.
func crc32MPEG2(b []byte) uint32 {
	crc := uint32(0xFFFFFFFF)
	for _, v := range b {
		crc ^= uint32(v) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

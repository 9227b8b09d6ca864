package devsim

// The devices' MPEG-2 program stream muxer (ISO/IEC 13818-1 §2.5, as GB/T
// 28181-2016 Annex C / GB/T 28181-2022 Annex C carry it). It is written
// here, from the standard, rather than taken from internal/gb28181/ps, so
// that the platform's demuxer is tested against an independent muxer; the
// tests demux its output with ps.Demuxer.
//
// Each frame becomes one pack: a pack header whose SCR is the frame's
// DTS; on keyframes a system header and a program stream map; then PES
// packets with PTS and DTS (DTS = PTS: the clips have no B-frames) on the
// first, the frame split into PES packets of at most maxPESPayload bytes.

// Stream types of the program stream map (ISO/IEC 13818-1 Table 2-34,
// GB/T 28181-2016 Annex C.2).
const (
	streamTypeH264 = 0x1B
	streamTypeH265 = 0x24
)

// videoStreamID is the PES stream_id of the video (ISO/IEC 13818-1 Table
// 2-22: 110x xxxx audio, 1110 xxxx video).
const videoStreamID = 0xE0

// maxPESPayload is the most payload put in one PES packet: PES_packet_length
// is 16 bits and counts the 3 flag bytes and the 10 bytes of PTS and DTS.
const maxPESPayload = 0xFFFF - 3 - 10

// psMuxRate is program_mux_rate and rate_bound, in units of 50 bytes/s
// (§2.5.3.4): 8 Mbit/s.
const psMuxRate = 8_000_000 / 8 / 50

// psMuxer writes the program stream of one video stream. It is not safe
// for concurrent use.
type psMuxer struct {
	streamType byte
	// maxPayload bounds the payload of one PES packet; maxPESPayload if 0.
	maxPayload int
}

// appendFrame appends one frame (an Annex-B access unit) as a pack to dst.
// pts is in 90 kHz units; only its low 33 bits are written.
func (m *psMuxer) appendFrame(dst, frame []byte, key bool, pts int64) []byte {
	dst = appendPackHeader(dst, pts)
	if key {
		dst = appendSystemHeader(dst)
		dst = m.appendPSM(dst)
	}
	limit := m.maxPayload
	if limit <= 0 || limit > maxPESPayload {
		limit = maxPESPayload
	}
	for first := true; first || len(frame) > 0; first = false {
		n := min(len(frame), limit)
		dst = appendPES(dst, videoStreamID, frame[:n], first, pts)
		frame = frame[n:]
	}
	return dst
}

// bitWriter appends fields of any width, most significant bit first, as
// the syntax tables of ISO/IEC 13818-1 lay them out.
type bitWriter struct {
	b    []byte
	nbit int // bits written since the start of this writer
}

func (w *bitWriter) put(width int, v uint64) {
	for i := width - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 != 0 {
			w.b[len(w.b)-1] |= 0x80 >> uint(w.nbit%8)
		}
		w.nbit++
	}
}

// putTimestamp writes a 33-bit PTS, DTS or SCR base as 3 + 15 + 15 bits,
// each part followed by a marker bit.
func (w *bitWriter) putTimestamp(t int64) {
	v := uint64(t) & (1<<33 - 1)
	w.put(3, v>>30)
	w.put(1, 1)
	w.put(15, v>>15&0x7FFF)
	w.put(1, 1)
	w.put(15, v&0x7FFF)
	w.put(1, 1)
}

// appendPackHeader writes pack_header() of §2.5.3.3 (MPEG-2, 14 bytes, no
// stuffing).
func appendPackHeader(dst []byte, scr int64) []byte {
	w := bitWriter{b: dst}
	w.put(32, 0x000001BA) // pack_start_code
	w.put(2, 0b01)
	w.putTimestamp(scr)  // system_clock_reference_base
	w.put(9, 0)          // system_clock_reference_extension
	w.put(1, 1)          // marker_bit
	w.put(22, psMuxRate) // program_mux_rate
	w.put(2, 0b11)       // marker_bit, marker_bit
	w.put(5, 0b11111)    // reserved
	w.put(3, 0)          // pack_stuffing_length
	return w.b
}

// appendSystemHeader writes system_header() of §2.5.3.5 for one video
// stream.
func appendSystemHeader(dst []byte) []byte {
	w := bitWriter{b: dst}
	w.put(32, 0x000001BB) // system_header_start_code
	w.put(16, 6+3)        // header_length: the fixed 6 bytes and one stream
	w.put(1, 1)
	w.put(22, psMuxRate) // rate_bound
	w.put(1, 1)
	w.put(6, 0) // audio_bound
	w.put(1, 0) // fixed_flag
	w.put(1, 0) // CSPS_flag
	w.put(1, 1) // system_audio_lock_flag
	w.put(1, 1) // system_video_lock_flag
	w.put(1, 1) // marker_bit
	w.put(5, 1) // video_bound
	w.put(1, 0) // packet_rate_restriction_flag
	w.put(7, 0x7F)
	w.put(8, videoStreamID)
	w.put(2, 0b11)
	w.put(1, 1)    // P-STD_buffer_bound_scale: units of 1024 bytes
	w.put(13, 512) // P-STD_buffer_size_bound: 512 KiB
	return w.b
}

// appendPSM writes program_stream_map() of §2.5.4.1 with one video stream.
func (m *psMuxer) appendPSM(dst []byte) []byte {
	start := len(dst)
	w := bitWriter{b: dst}
	w.put(24, 1)    // packet_start_code_prefix
	w.put(8, 0xBC)  // map_stream_id
	w.put(16, 10+4) // program_stream_map_length: the bytes after this field, CRC included
	w.put(1, 1)     // current_next_indicator
	w.put(2, 0b11)  // reserved
	w.put(5, 0)     // program_stream_map_version
	w.put(7, 0x7F)  // reserved
	w.put(1, 1)     // marker_bit
	w.put(16, 0)    // program_stream_info_length
	w.put(16, 4)    // elementary_stream_map_length
	w.put(8, uint64(m.streamType))
	w.put(8, videoStreamID)
	w.put(16, 0) // elementary_stream_info_length
	crc := crc32MPEG(w.b[start:])
	w.put(32, uint64(crc))
	return w.b
}

// appendPES writes a PES packet (§2.4.3.6) of stream id with payload; with
// timed, the header carries PTS and DTS (equal) and data_alignment_indicator
// (the payload starts an access unit).
func appendPES(dst []byte, id byte, payload []byte, timed bool, pts int64) []byte {
	hdl := 0
	if timed {
		hdl = 10
	}
	w := bitWriter{b: dst}
	w.put(24, 1) // packet_start_code_prefix
	w.put(8, uint64(id))
	w.put(16, uint64(3+hdl+len(payload))) // PES_packet_length
	w.put(2, 0b10)
	w.put(2, 0) // PES_scrambling_control
	w.put(1, 0) // PES_priority
	if timed {
		w.put(1, 1) // data_alignment_indicator
	} else {
		w.put(1, 0)
	}
	w.put(1, 0) // copyright
	w.put(1, 0) // original_or_copy
	if timed {
		w.put(2, 0b11) // PTS_DTS_flags
	} else {
		w.put(2, 0)
	}
	w.put(6, 0) // ESCR, ES_rate, DSM_trick_mode, additional_copy_info, PES_CRC, PES_extension
	w.put(8, uint64(hdl))
	if timed {
		w.put(4, 0b0011)
		w.putTimestamp(pts)
		w.put(4, 0b0001)
		w.putTimestamp(pts) // DTS
	}
	return append(w.b, payload...)
}

// crcTable is the table of the CRC of ISO/IEC 13818-1 Annex A: polynomial
// 0x04C11DB7, most significant bit first, initial value 0xFFFFFFFF, no
// final XOR (CRC-32/MPEG-2).
var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc32MPEG(b []byte) uint32 {
	c := uint32(0xFFFFFFFF)
	for _, v := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^v]
	}
	return c
}

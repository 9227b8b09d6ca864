package ps

import (
	"encoding/binary"
	"fmt"

	"github.com/xueliang/xueliang/internal/media"
)

// writeChunk bounds how much of one Write is buffered at a time, so that the
// demuxer's buffer stays below one PES packet plus writeChunk.
const writeChunk = 64 << 10

// Demuxer splits a program stream into frames.
//
// Feed it the RTP payloads of a GB/T 28181 session in sequence order with
// Write; it calls the function given to NewDemuxer with every complete frame.
// It does not rely on the RTP marker bit, which devices set inconsistently: a
// video frame ends when a PES packet of the same stream carries a different
// PTS, so the last frame is held until the next one starts. A caller that
// trusts the marker bit of its device can call Flush on it to cut that
// latency.
//
// Quirks of real devices that are accepted (GB/T 28181 allows fewer):
//   - video PES packets with PES_packet_length 0, read up to the next start
//     code of a pack, system header, map or PES packet;
//   - one frame split across many PES packets, with the PTS on the first one
//     only or repeated on each;
//   - no system header, and no program stream map: stream 0xE0–0xEF is then
//     taken for H.264 until H.265 parameter sets show up, and 0xC0–0xDF for
//     G.711 A-law unless the payload starts with an ADTS sync word;
//   - PES header extensions and stuffing (skipped by PES_header_data_length),
//     MPEG-1 pack headers, and a wrong CRC in the map (never checked);
//   - garbage between packets, skipped up to the next start code (but
//     garbage right after a PES packet without length cannot be told from
//     its payload and ends up in the frame), and a PES packet cut short by
//     RTP loss (detected for video when a start code appears inside the
//     length it announced).
//
// Streams of unsupported codecs (SVAC 0x80, G.722.1, G.723.1, G.729, ...)
// are parsed and dropped; Streams reports their types so the caller can say
// why there is no video. Private streams (0xBD, 0xBF) and padding are skipped.
//
// A Demuxer is not safe for concurrent use, and the frame function must not
// call the Demuxer.
type Demuxer struct {
	// MaxFrameSize bounds one frame; a larger frame is dropped with
	// ErrFrameTooLarge. DefaultMaxFrameSize if 0. Frames pending on all
	// streams together are bounded by twice this size.
	MaxFrameSize int

	onFrame func(Frame)
	buf     []byte
	pos     int   // start of the unparsed bytes in buf
	body    *elem // stream of the PES packet without length being read, if any
	elems   map[byte]*elem
	pending int // bytes of frames held on all streams
	skip    bool
	err     error // first error of the current Write
	stats   Stats
}

// elem is the state of one elementary stream.
type elem struct {
	id       byte
	typ      byte // PSM stream_type, 0 if none
	codec    media.Codec
	fromPSM  bool
	sniffed  bool
	active   bool // a frame is being collected
	dropping bool // the frame being collected was dropped
	hasPTS   bool
	raw      int64 // 33-bit PTS of the frame being collected
	dtsDelta int64 // DTS - PTS
	last     int64 // last raw PTS, for unwrapping
	ext      int64 // unwrapped PTS of last
	seenPTS  bool
	data     []byte
}

// NewDemuxer returns a Demuxer that calls onFrame with every frame.
func NewDemuxer(onFrame func(Frame)) *Demuxer {
	return &Demuxer{onFrame: onFrame, elems: make(map[byte]*elem)}
}

// Stats returns the counters.
func (d *Demuxer) Stats() Stats { return d.stats }

// Streams returns the elementary streams seen so far, by stream_id.
func (d *Demuxer) Streams() []StreamInfo {
	var out []StreamInfo
	for id := 0xC0; id <= 0xEF; id++ {
		if e := d.elems[byte(id)]; e != nil {
			out = append(out, StreamInfo{ID: e.id, Type: e.typ, Codec: e.codec})
		}
	}
	return out
}

// Write appends p to the stream and delivers the frames it completes.
// The error, if any, is the first problem met in p (ErrFrameTooLarge,
// ErrTruncatedPES, ErrBadHeader, wrapped); it is for logging only, as the
// demuxer has already recovered. Write does not keep p.
func (d *Demuxer) Write(p []byte) error {
	d.err = nil
	d.stats.Bytes += uint64(len(p))
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		d.buf = append(d.buf, p[:n]...)
		p = p[n:]
		d.parse()
		if d.pos > 0 {
			n = copy(d.buf, d.buf[d.pos:])
			d.buf, d.pos = d.buf[:n], 0
		}
	}
	return d.err
}

// Flush delivers the frames being collected on every stream, as if each had
// ended. Call it at the end of the stream, or on an RTP marker bit if the
// device sets it reliably.
func (d *Demuxer) Flush() {
	for id := 0xC0; id <= 0xEF; id++ {
		if e := d.elems[byte(id)]; e != nil {
			d.emit(e)
		}
	}
}

// Reset forgets buffered bytes and frames being collected, keeping the
// stream map, for a discontinuity such as a new SSRC or a seek.
func (d *Demuxer) Reset() {
	d.buf, d.pos, d.body, d.pending = d.buf[:0], 0, nil, 0
	for _, e := range d.elems {
		e.active, e.dropping, e.data, e.seenPTS = false, false, nil, false
	}
}

func (d *Demuxer) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Demuxer) skipBytes(n int) {
	if n <= 0 {
		return
	}
	d.pos += n
	d.stats.Skipped += uint64(n)
	if !d.skip {
		d.skip = true
		d.stats.Resyncs++
	}
}

func (d *Demuxer) consume(n int) {
	d.pos += n
	d.skip = false
}

// parse consumes as many whole structures from buf as it can.
func (d *Demuxer) parse() {
	for {
		b := d.buf[d.pos:]
		if e := d.body; e != nil {
			i, partial := indexSync(b)
			if i < 0 {
				d.appendPayload(e, b[:partial])
				d.pos += partial
				return
			}
			d.appendPayload(e, b[:i])
			d.pos += i
			d.body = nil
			d.endPES(e)
			continue
		}
		if len(b) < 4 {
			return
		}
		if b[0] != 0 || b[1] != 0 || b[2] != 1 || b[3] < idProgramEnd {
			i, partial := indexSync(b)
			if i < 0 {
				d.skipBytes(partial)
				return
			}
			d.skipBytes(i)
			continue
		}
		n := d.parseUnit(b)
		switch {
		case n == 0:
			return // need more bytes
		case n < 0:
			d.skipBytes(4)
		default:
			d.consume(n)
		}
	}
}

// parseUnit parses the structure starting with the start code at b[0]. It
// returns the bytes consumed, 0 if b is too short, or -1 if the header is
// malformed.
func (d *Demuxer) parseUnit(b []byte) int {
	id := b[3]
	switch id {
	case idProgramEnd:
		return 4
	case idPack: // §2.5.3.3
		if len(b) < 5 {
			return 0
		}
		switch {
		case b[4]&0xC0 == 0x40: // MPEG-2
			if len(b) < 14 {
				return 0
			}
			n := 14 + int(b[13]&7)
			if len(b) < n {
				return 0
			}
			d.stats.Packs++
			return n
		case b[4]&0xF0 == 0x20: // MPEG-1 (ISO/IEC 11172-1), seen on old encoders
			if len(b) < 12 {
				return 0
			}
			d.stats.Packs++
			return 12
		}
		d.fail(fmt.Errorf("%w: pack header marker %#02x", ErrBadHeader, b[4]))
		return -1
	}
	if len(b) < 6 {
		return 0
	}
	length := int(binary.BigEndian.Uint16(b[4:]))
	switch {
	case id == idPSM:
		if len(b) < 6+length {
			return 0
		}
		if !d.parsePSM(b[:6+length]) {
			d.fail(fmt.Errorf("%w: program stream map", ErrBadHeader))
			return -1
		}
		return 6 + length
	case isVideo(id) || isAudio(id):
		return d.parsePES(b, id, length)
	}
	// System header, private streams, padding and the rest: skip.
	if len(b) < 6+length {
		return 0
	}
	if id == idSystemHeader {
		d.stats.SystemHeaders++
	} else {
		d.stats.Skipped += uint64(6 + length)
	}
	return 6 + length
}

// parsePSM reads the program stream map, §2.5.4.1.
func (d *Demuxer) parsePSM(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	end := len(b) - 4 // CRC_32, never checked: devices get it wrong
	p := 10 + int(binary.BigEndian.Uint16(b[8:]))
	if p+2 > end {
		return false
	}
	mapEnd := min(p+2+int(binary.BigEndian.Uint16(b[p:])), end)
	p += 2
	for p+4 <= mapEnd {
		typ, id := b[p], b[p+1]
		p += 4 + int(binary.BigEndian.Uint16(b[p+2:]))
		if !isVideo(id) && !isAudio(id) {
			continue
		}
		e := d.elem(id)
		c := codecOf(typ)
		if e.fromPSM && e.typ == typ {
			continue
		}
		if e.codec != c {
			d.emit(e) // deliver what was collected under the old codec
		}
		e.typ, e.codec, e.fromPSM = typ, c, true
	}
	d.stats.PSMs++
	return true
}

func (d *Demuxer) elem(id byte) *elem {
	e := d.elems[id]
	if e == nil {
		e = &elem{id: id, codec: media.CodecH264}
		if isAudio(id) {
			e.codec = media.CodecPCMA
		}
		d.elems[id] = e
	}
	return e
}

// parsePES reads a PES packet header, §2.4.3.6, and its payload when its
// length is known.
func (d *Demuxer) parsePES(b []byte, id byte, length int) int {
	if len(b) < 9 {
		return 0
	}
	hdl := int(b[8])
	if b[6]&0xC0 != 0x80 || (length != 0 && 3+hdl > length) {
		d.fail(fmt.Errorf("%w: PES header of stream %#02x", ErrBadHeader, id))
		return -1
	}
	if len(b) < 9+hdl {
		return 0
	}
	if length != 0 && len(b) < 6+length {
		return 0
	}
	var hasPTS bool
	var pts, dts int64
	switch flags := b[7] >> 6; {
	case flags&2 != 0 && hdl >= 5:
		hasPTS = true
		pts = readTimestamp(b[9:])
		dts = pts
		if flags == 3 && hdl >= 10 {
			dts = readTimestamp(b[14:])
		}
	}
	d.stats.PES++
	e := d.elem(id)
	d.startPES(e, hasPTS, pts, dts)
	if length == 0 {
		d.body = e
		return 9 + hdl
	}
	payload := b[9+hdl : 6+length]
	if isVideo(id) {
		if i, _ := indexSync(payload); i >= 0 {
			d.stats.Truncated++
			d.fail(fmt.Errorf("%w: stream %#02x: start code %d bytes into a %d-byte payload", ErrTruncatedPES, id, i, len(payload)))
			d.appendPayload(e, payload[:i])
			return 9 + hdl + i
		}
	}
	d.appendPayload(e, payload)
	d.endPES(e)
	return 6 + length
}

// readTimestamp decodes a 33-bit PTS or DTS, §2.4.3.7, ignoring marker bits.
func readTimestamp(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

// startPES decides whether a PES packet starts a new frame of e.
func (d *Demuxer) startPES(e *elem, hasPTS bool, pts, dts int64) {
	switch {
	case isAudio(e.id):
		d.emit(e)
		e.dropping = false
	case hasPTS && (e.active || e.dropping) && (!e.hasPTS || pts != e.raw):
		d.emit(e)
		e.dropping = false
	}
	if e.active || e.dropping {
		return // continues the frame
	}
	e.active, e.hasPTS = true, hasPTS
	if hasPTS {
		e.raw, e.dtsDelta = pts, signed33(dts-pts)
	}
}

func (d *Demuxer) endPES(e *elem) {
	if isAudio(e.id) {
		d.emit(e)
	}
}

func (d *Demuxer) appendPayload(e *elem, p []byte) {
	if len(p) == 0 || !e.active || e.dropping {
		return
	}
	if e.fromPSM && e.codec == media.CodecUnknown {
		return
	}
	limit := d.MaxFrameSize
	if limit <= 0 {
		limit = DefaultMaxFrameSize
	}
	if len(e.data)+len(p) > limit || d.pending+len(p) > 2*limit {
		d.stats.TooLarge++
		d.fail(fmt.Errorf("%w: stream %#02x: over %d bytes", ErrFrameTooLarge, e.id, limit))
		d.pending -= len(e.data)
		e.data, e.active, e.dropping = nil, false, true
		return
	}
	e.data = append(e.data, p...)
	d.pending += len(p)
}

// emit delivers the frame being collected on e, if any.
func (d *Demuxer) emit(e *elem) {
	if !e.active {
		return
	}
	data := e.data
	e.active, e.data = false, nil
	d.pending -= len(data)
	if e.fromPSM && e.codec == media.CodecUnknown {
		d.stats.Unsupported++
		return
	}
	if len(data) == 0 {
		return
	}
	if !e.fromPSM && !e.sniffed {
		if isVideo(e.id) {
			if c := sniffVideo(data); c != media.CodecUnknown {
				e.codec, e.sniffed = c, true
			}
		} else {
			if len(data) >= 2 && data[0] == 0xFF && data[1]&0xF0 == 0xF0 {
				e.codec = media.CodecAAC
			}
			e.sniffed = true
		}
	}
	f := Frame{Stream: e.id, Codec: e.codec, HasPTS: e.hasPTS, Data: data}
	if e.hasPTS {
		if e.seenPTS {
			e.ext += signed33(e.raw - e.last)
		} else {
			e.ext, e.seenPTS = e.raw, true
		}
		e.last = e.raw
		f.PTS = e.ext
		f.DTS = e.ext + e.dtsDelta
	}
	if isVideo(e.id) {
		f.Key = isKey(e.codec, data)
	}
	d.stats.Frames++
	if d.onFrame != nil {
		d.onFrame(f)
	}
}

// signed33 interprets a difference of 33-bit timestamps as signed.
func signed33(v int64) int64 {
	v &= 1<<33 - 1
	if v >= 1<<32 {
		v -= 1 << 33
	}
	return v
}

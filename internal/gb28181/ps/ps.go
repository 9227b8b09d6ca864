// Package ps demultiplexes and multiplexes the MPEG-2 Program Stream
// (ISO/IEC 13818-1 §2.5) that GB/T 28181-2022 §5.3 / Annex C carries over RTP
// for live video, playback and download.
//
// Demuxer turns the payloads of consecutive RTP packets into frames: one
// access unit of video (Annex-B) or one PES payload of audio, with its 90 kHz
// PTS. It accepts what real devices send rather than only what the standard
// says; see Demuxer. Muxer writes the same kind of stream for tests and for the
// device simulator.
//
// The package does no I/O, never panics on any input and bounds the memory it
// holds.
package ps

import (
	"errors"

	"github.com/xueliang/xueliang/internal/media"
)

// Start code values (ISO/IEC 13818-1 Table 2-18 and §2.5.3).
const (
	idProgramEnd   = 0xB9
	idPack         = 0xBA
	idSystemHeader = 0xBB
	idPSM          = 0xBC
	idPrivate1     = 0xBD
	idPadding      = 0xBE
	idPrivate2     = 0xBF
)

// Stream types of the program stream map (ISO/IEC 13818-1 Table 2-34 and
// GB/T 28181-2022 Annex C.2).
const (
	StreamTypeH264  = 0x1B
	StreamTypeH265  = 0x24
	StreamTypeAAC   = 0x0F // ADTS
	StreamTypeSVAC  = 0x80 // GB/T 25724 video; not supported, frames are dropped
	StreamTypeG711A = 0x90
	StreamTypeG711U = 0x91
	StreamTypeG7221 = 0x92
	StreamTypeG7231 = 0x93
	StreamTypeG729  = 0x99
	StreamTypeSVACA = 0x9B // SVAC audio; not supported
)

// DefaultMaxFrameSize bounds a frame held by a Demuxer whose MaxFrameSize is 0.
const DefaultMaxFrameSize = 8 << 20

// MaxPESPayload is the largest PES payload Muxer puts in one PES packet.
const MaxPESPayload = 65400

// Errors returned by Demuxer.Write. None is fatal: the demuxer has already
// dropped what it could not use and resynchronised.
var (
	// ErrFrameTooLarge means a frame grew beyond MaxFrameSize and was dropped.
	ErrFrameTooLarge = errors.New("ps: frame too large")
	// ErrTruncatedPES means a video PES packet ended early: a start code
	// appeared inside the length it announced (a lost RTP packet, usually).
	// The frame keeps the bytes received.
	ErrTruncatedPES = errors.New("ps: truncated PES packet")
	// ErrBadHeader means a pack or PES header was malformed; its bytes were
	// skipped as garbage.
	ErrBadHeader = errors.New("ps: malformed header")
)

// Frame is one unit of an elementary stream.
type Frame struct {
	// Stream is the PES stream_id: 0xE0–0xEF video, 0xC0–0xDF audio.
	Stream byte
	Codec  media.Codec
	// PTS is the presentation time in 90 kHz units from the PES header,
	// unwrapped past 2^33 so that it keeps increasing. Valid if HasPTS.
	PTS    int64
	HasPTS bool
	// DTS is the decoding time; it equals PTS when the PES carried none.
	DTS int64
	// Key reports an H.264 IDR (NAL type 5) or H.265 IRAP (types 16–23).
	Key bool
	// Data is Annex-B for video (as the device sent it, start codes
	// included) and the PES payload for audio (ADTS frames for AAC, samples
	// for G.711). The receiver of a Frame owns Data.
	Data []byte
}

// StreamInfo describes an elementary stream seen by a Demuxer.
type StreamInfo struct {
	ID    byte // stream_id
	Type  byte // stream_type from the program stream map; 0 if none was seen
	Codec media.Codec
}

// Stats counts what a Demuxer did.
type Stats struct {
	Bytes         uint64 // bytes given to Write
	Packs         uint64 // pack headers
	SystemHeaders uint64
	PSMs          uint64 // program stream maps
	PES           uint64 // PES packets of audio and video
	Skipped       uint64 // bytes skipped: garbage, malformed headers, private and padding streams
	Resyncs       uint64 // times the demuxer lost and regained the start code sequence
	Truncated     uint64 // video PES packets cut short by a start code
	Frames        uint64 // frames delivered
	TooLarge      uint64 // frames dropped for exceeding MaxFrameSize
	Unsupported   uint64 // PES packets dropped because of their codec (SVAC, G.729, ...)
}

// codecOf maps a PSM stream type to a codec.
func codecOf(streamType byte) media.Codec {
	switch streamType {
	case StreamTypeH264:
		return media.CodecH264
	case StreamTypeH265:
		return media.CodecH265
	case StreamTypeAAC:
		return media.CodecAAC
	case StreamTypeG711A:
		return media.CodecPCMA
	case StreamTypeG711U:
		return media.CodecPCMU
	}
	return media.CodecUnknown
}

// streamTypeOf maps a codec to a PSM stream type.
func streamTypeOf(c media.Codec) byte {
	switch c {
	case media.CodecH264:
		return StreamTypeH264
	case media.CodecH265:
		return StreamTypeH265
	case media.CodecAAC:
		return StreamTypeAAC
	case media.CodecPCMA:
		return StreamTypeG711A
	case media.CodecPCMU:
		return StreamTypeG711U
	}
	return 0
}

func isVideo(id byte) bool { return id >= 0xE0 && id <= 0xEF }
func isAudio(id byte) bool { return id >= 0xC0 && id <= 0xDF }

// forEachNALU calls fn with the first header bytes of every NAL unit of an
// Annex-B buffer (up to 2 bytes); it stops when fn returns false.
func forEachNALU(b []byte, fn func(h0, h1 byte) bool) {
	for i := 0; i+3 < len(b); {
		j := indexStartCode(b[i:])
		if j < 0 {
			return
		}
		p := i + j + 3
		if p >= len(b) {
			return
		}
		var h1 byte
		if p+1 < len(b) {
			h1 = b[p+1]
		}
		if !fn(b[p], h1) {
			return
		}
		i = p
	}
}

// isKey reports whether an Annex-B access unit holds a random access point.
func isKey(c media.Codec, b []byte) (key bool) {
	forEachNALU(b, func(h0, _ byte) bool {
		switch c {
		case media.CodecH264:
			key = h0&0x1F == 5
		case media.CodecH265:
			t := (h0 >> 1) & 0x3F
			key = t >= 16 && t <= 23
		}
		return !key
	})
	return key
}

// sniffVideo guesses the codec of a video stream without a PSM from the
// parameter sets in b: an H.264 SPS header byte (0x27, 0x47, 0x67) is odd,
// which no layer-0 H.265 NAL header is, and an H.265 VPS/SPS/PPS header
// (0x40/0x42/0x44 then 0x01) is a reserved or data-partition type in H.264.
func sniffVideo(b []byte) media.Codec {
	c := media.CodecUnknown
	forEachNALU(b, func(h0, h1 byte) bool {
		switch {
		case h0&0x80 == 0 && h0&0x1F == 7 && h0&0x60 != 0:
			c = media.CodecH264
		case (h0 == 0x40 || h0 == 0x42 || h0 == 0x44) && h1 == 0x01:
			c = media.CodecH265
		}
		return c == media.CodecUnknown
	})
	return c
}

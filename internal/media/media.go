// Package media defines the codec-neutral units that flow through the media
// plane and the fan-out that delivers them from one source to many readers.
//
// A source (RTSP pull, RTP/PS receive) turns packets into Units and writes them
// to a Stream. Every reader of the Stream (LL-HLS muxer, WebRTC session,
// recorder) gets its own bounded queue. A reader that falls behind loses
// frames up to the next keyframe instead of slowing the source or the other
// readers; the loss is counted.
//
// The package imports no protocol package and does no I/O.
package media

import (
	"errors"
	"fmt"
	"time"
)

// Codec identifies the coding of a Track.
type Codec uint8

// Codecs known to the media plane.
const (
	CodecUnknown Codec = iota
	CodecH264
	CodecH265
	CodecAAC  // MPEG-4 Audio, AAC-LC and friends
	CodecPCMA // G.711 A-law
	CodecPCMU // G.711 µ-law
	CodecOpus
)

var codecNames = [...]string{
	CodecUnknown: "unknown",
	CodecH264:    "H264",
	CodecH265:    "H265",
	CodecAAC:     "AAC",
	CodecPCMA:    "PCMA",
	CodecPCMU:    "PCMU",
	CodecOpus:    "Opus",
}

// String returns the conventional name of the codec.
func (c Codec) String() string {
	if int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// IsVideo reports whether c is a video codec.
func (c Codec) IsVideo() bool { return c == CodecH264 || c == CodecH265 }

// Track describes one elementary stream of a Stream. A Track is immutable once
// the Stream that carries it is created.
type Track struct {
	Codec     Codec
	ClockRate int // RTP clock rate: 90000 for video, the sample rate for audio

	// Parameter sets for H.264 (SPS, PPS) and H.265 (VPS, SPS, PPS), without
	// start codes. They may be nil when the source sends them in-band only.
	VPS, SPS, PPS []byte

	// Config is the MPEG-4 AudioSpecificConfig for AAC.
	Config []byte
	// Channels is the channel count of audio tracks.
	Channels int
}

// String returns a short description such as "H264/90000".
func (t *Track) String() string { return fmt.Sprintf("%s/%d", t.Codec, t.ClockRate) }

// Unit is one access unit: a video frame or a group of audio frames.
//
// A Unit is immutable once written to a Stream: it is shared by every reader,
// and no reader may modify it or the byte slices it points to.
type Unit struct {
	Track int       // index into Stream.Tracks
	PTS   int64     // presentation time in the track's clock rate; increases across the life of a Stream
	NTP   time.Time // wall-clock time of capture, as well as the source knows it
	Key   bool      // a video random access point (IDR / IRAP); always false for audio

	// Payload holds the NAL units of a video frame (without start codes), the
	// access units of AAC, or a single buffer of G.711 samples.
	Payload [][]byte
}

// Size returns the number of payload bytes of u.
func (u *Unit) Size() int {
	n := 0
	for _, p := range u.Payload {
		n += len(p)
	}
	return n
}

// Duration converts a PTS difference in clockRate units into a time.Duration.
func Duration(ticks int64, clockRate int) time.Duration {
	if clockRate <= 0 {
		return 0
	}
	// Whole seconds and the remainder apart: ticks*time.Second overflows
	// after 28 hours of a 90 kHz clock.
	r := int64(clockRate)
	return time.Duration(ticks/r)*time.Second + time.Duration(ticks%r)*time.Second/time.Duration(r)
}

// Errors returned by the hub when a stream is asked for. Egress servers map
// them to protocol status codes (404, 503).
var (
	// ErrNoChannel means the channel does not exist or has no live source.
	ErrNoChannel = errors.New("media: no such channel")
	// ErrUnavailable means the source of the channel cannot be opened now;
	// the wrapped error says why (unreachable, auth failed, ...).
	ErrUnavailable = errors.New("media: source unavailable")
)

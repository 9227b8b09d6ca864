package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/bluenviron/gohlslib/v2/pkg/codecparams"
	hcodecs "github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mcodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/xueliang/xueliang/internal/media"
)

// errNoVideo means a stream has no video track that can be recorded.
var errNoVideo = media.Fail(media.ReasonNoVideo, errors.New("record: the stream has no H.264 or H.265 track"))

// Track IDs in recorded files.
const (
	videoID = 1
	audioID = 2

	videoTimescale = 90000
)

// track carries one input track into the files of a run.
type track struct {
	in        int // index in the stream
	id        int
	codec     media.Codec
	clock     int // input clock rate
	timescale int
	base      int64 // input PTS that is decode time 0

	aac           mpeg4audio.AudioSpecificConfig
	vps, sps, pps []byte // latest video parameter sets

	pending    fmp4.Sample // held back until the next sample gives its duration
	pendingPTS int64
	hasPending bool
	lastDur    uint32
	decode     uint64 // decode time of the next sample added to the part
	partBase   uint64 // decode time of samples[0]
	samples    []*fmp4.Sample

	// free holds payload buffers of video samples already written, for
	// reuse: a 2 Mbit/s camera would otherwise allocate (and the runtime
	// clear) 250 KB a second.
	free [][]byte
}

// maxFree bounds the buffers a track keeps for reuse: about a part.
const maxFree = 64

// buffer returns an empty buffer of at least size bytes.
func (t *track) buffer(size int) []byte {
	for n := len(t.free); n > 0; n = len(t.free) {
		b := t.free[n-1]
		t.free[n-1] = nil
		t.free = t.free[:n-1]
		if cap(b) >= size {
			return b[:0]
		}
	}
	return make([]byte, 0, size+size/4)
}

// recycle returns the payloads of written samples for reuse.
func (t *track) recycle(samples []*fmp4.Sample) {
	for _, s := range samples {
		if len(t.free) < maxFree && s.Payload != nil {
			t.free = append(t.free, s.Payload[:0])
		}
	}
}

// planTracks picks the first H.264/H.265 track and the first AAC, Opus or
// G.711 track of a stream.
func planTracks(in []*media.Track) (video, audio *track, err error) {
	for i, t := range in {
		if t.ClockRate <= 0 {
			continue
		}
		switch t.Codec {
		case media.CodecH264, media.CodecH265:
			if video == nil {
				video = &track{in: i, id: videoID, codec: t.Codec, clock: t.ClockRate, timescale: videoTimescale,
					vps: bytes.Clone(t.VPS), sps: bytes.Clone(t.SPS), pps: bytes.Clone(t.PPS)}
			}
		case media.CodecAAC:
			if audio == nil {
				a := &track{in: i, id: audioID, codec: t.Codec, clock: t.ClockRate}
				if a.aac.Unmarshal(t.Config) == nil {
					a.timescale = a.aac.SampleRate
					audio = a
				}
			}
		case media.CodecOpus:
			if audio == nil {
				audio = &track{in: i, id: audioID, codec: t.Codec, clock: t.ClockRate, timescale: 48000}
			}
		case media.CodecPCMA, media.CodecPCMU:
			if audio == nil {
				audio = &track{in: i, id: audioID, codec: t.Codec, clock: t.ClockRate, timescale: t.ClockRate}
			}
		}
	}
	if video == nil {
		return nil, nil, errNoVideo
	}
	return video, audio, nil
}

// ready reports whether the video parameter sets are known.
func (t *track) ready() bool {
	if t.codec == media.CodecH265 {
		return t.vps != nil && t.sps != nil && t.pps != nil
	}
	return t.sps != nil && t.pps != nil
}

// videoPayload returns the AVCC payload of a video unit. Keyframes always
// carry the parameter sets in-band, so that every fragment that starts on
// one decodes alone and a change of resolution mid-run is still playable.
func (t *track) videoPayload(u *media.Unit) []byte {
	var params [3][]byte // vps, sps, pps found in the unit
	for _, n := range u.Payload {
		switch media.KindOf(t.codec, n) {
		case media.NALUVPS:
			params[0], t.vps = n, n
		case media.NALUSPS:
			params[1], t.sps = n, n
		case media.NALUPPS:
			params[2], t.pps = n, n
		}
	}
	var prepend [][]byte
	if u.Key && (params[1] == nil || params[2] == nil || (t.codec == media.CodecH265 && params[0] == nil)) {
		prepend = [][]byte{t.sps, t.pps}
		if t.codec == media.CodecH265 {
			prepend = [][]byte{t.vps, t.sps, t.pps}
		}
	}
	// Left out: empty NAL units, delimiters, and in-band parameter sets
	// when the parameter sets are put first.
	keep := func(n []byte) bool {
		k := media.KindOf(t.codec, n)
		return len(n) > 0 && k != media.NALUAUD && (prepend == nil || k == media.NALUOther)
	}
	size := 0
	for _, n := range prepend {
		size += 4 + len(n)
	}
	for _, n := range u.Payload {
		if keep(n) {
			size += 4 + len(n)
		}
	}
	out := t.buffer(size)
	for _, n := range prepend {
		out = binary.BigEndian.AppendUint32(out, uint32(len(n)))
		out = append(out, n...)
	}
	for _, n := range u.Payload {
		if keep(n) {
			out = binary.BigEndian.AppendUint32(out, uint32(len(n)))
			out = append(out, n...)
		}
	}
	return out
}

// audioSamples returns the MP4 samples of an audio unit with their PTS in
// the track's timescale (before the base is subtracted).
func (t *track) audioSamples(u *media.Unit, pts int64, fn func(pts int64, payload []byte)) {
	switch t.codec {
	case media.CodecAAC:
		for i, au := range u.Payload {
			if len(au) != 0 {
				fn(pts+int64(i)*mpeg4audio.SamplesPerAccessUnit, au)
			}
		}
	case media.CodecOpus:
		for _, p := range u.Payload {
			if len(p) != 0 {
				fn(pts, p)
			}
		}
	case media.CodecPCMA, media.CodecPCMU:
		// MP4 has no widely played G.711 mapping: record 16-bit PCM.
		for _, p := range u.Payload {
			if len(p) == 0 {
				continue
			}
			if t.codec == media.CodecPCMA {
				var d g711.Alaw
				d.Unmarshal(p)
				fn(pts, d)
			} else {
				var d g711.Mulaw
				d.Unmarshal(p)
				fn(pts, d)
			}
			pts += int64(len(p))
		}
	}
}

// initSegment returns the ftyp+moov of the tracks and the RFC 6381 codecs
// of the recording.
func initSegment(video, audio *track) ([]byte, string, error) {
	var init fmp4.Init
	var codecs []string
	vt := &fmp4.InitTrack{ID: video.id, TimeScale: videoTimescale}
	if video.codec == media.CodecH264 {
		vt.Codec = &mcodecs.H264{SPS: video.sps, PPS: video.pps}
		codecs = append(codecs, codecparams.Marshal(&hcodecs.H264{SPS: video.sps, PPS: video.pps}))
	} else {
		vt.Codec = &mcodecs.H265{VPS: video.vps, SPS: video.sps, PPS: video.pps}
		codecs = append(codecs, codecparams.Marshal(&hcodecs.H265{VPS: video.vps, SPS: video.sps, PPS: video.pps}))
	}
	init.Tracks = append(init.Tracks, vt)
	if audio != nil {
		at := &fmp4.InitTrack{ID: audio.id, TimeScale: uint32(audio.timescale)}
		switch audio.codec {
		case media.CodecAAC:
			at.Codec = &mcodecs.MPEG4Audio{Config: audio.aac}
			codecs = append(codecs, codecparams.Marshal(&hcodecs.MPEG4Audio{Config: audio.aac}))
		case media.CodecOpus:
			at.Codec = &mcodecs.Opus{ChannelCount: 2}
			codecs = append(codecs, "opus")
		default:
			at.Codec = &mcodecs.LPCM{BitDepth: 16, SampleRate: audio.timescale, ChannelCount: 1}
			codecs = append(codecs, "ipcm")
		}
		init.Tracks = append(init.Tracks, at)
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, "", fmt.Errorf("record: init segment: %w", err)
	}
	return buf.Bytes(), strings.Join(codecs, ","), nil
}

package hls

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/xueliang/xueliang/internal/media"
)

// errNoPlayableTrack means that no track of a stream can be carried by HLS.
var errNoPlayableTrack = errors.New("hls: no track of the stream can be played over HLS")

// outTrack carries one media.Track into the gohlslib muxer.
type outTrack struct {
	in    int          // index of the track in the stream
	codec media.Codec  // codec of the track
	track *media.Track // the input track, read-only
	out   *gohlslib.Track

	// Latest parameter sets of a video track, without start codes. They
	// come from the media.Track or, when it has none, from the NAL units of
	// keyframes. The slices are never modified.
	vps, sps, pps []byte

	base int64 // PTS of the first unit of the muxer, in the input clock
}

// ready reports whether the parameter sets the muxer needs are known.
func (t *outTrack) ready() bool {
	switch t.codec {
	case media.CodecH264:
		return t.sps != nil && t.pps != nil
	case media.CodecH265:
		return t.vps != nil && t.sps != nil && t.pps != nil
	}
	return true
}

// learn records the parameter sets found among the NAL units of au.
func (t *outTrack) learn(au [][]byte) {
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch t.codec {
		case media.CodecH264:
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				t.sps = nalu
			case h264.NALUTypePPS:
				t.pps = nalu
			}
		case media.CodecH265:
			switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				t.vps = nalu
			case h265.NALUType_SPS_NUT:
				t.sps = nalu
			case h265.NALUType_PPS_NUT:
				t.pps = nalu
			}
		}
	}
}

// tracks is the mapping of the tracks of a stream to the tracks of a muxer.
type tracks struct {
	out   []*outTrack // in muxer order: video first
	byIn  []*outTrack // by stream track index; nil for skipped tracks
	video *outTrack   // nil for audio-only streams

	started bool  // whether the first unit has been written
	refPTS  int64 // PTS of the first unit written
	refRate int   // clock rate of the track of that unit
}

// planTracks chooses the tracks of a stream that HLS can carry: the first
// H.264 or H.265 track, and every AAC and Opus track. It logs one line for
// each track it leaves out.
func planTracks(in []*media.Track, log *slog.Logger) (*tracks, error) {
	ts := &tracks{byIn: make([]*outTrack, len(in))}
	var audio []*outTrack
	for i, t := range in {
		ot := &outTrack{in: i, codec: t.Codec, track: t}
		switch {
		case t.ClockRate <= 0:
			log.Info("track left out: no clock rate", "track", i, "codec", t.Codec.String())
			continue
		case t.Codec == media.CodecH264 || t.Codec == media.CodecH265:
			if ts.video != nil {
				log.Info("track left out: HLS carries one video track", "track", i, "codec", t.Codec.String())
				continue
			}
			ot.vps, ot.sps, ot.pps = bytes.Clone(t.VPS), bytes.Clone(t.SPS), bytes.Clone(t.PPS)
			ts.video = ot
		case t.Codec == media.CodecAAC:
			var conf mpeg4audio.AudioSpecificConfig
			if err := conf.Unmarshal(t.Config); err != nil {
				log.Info("track left out: invalid AAC config", "track", i, "err", err)
				continue
			}
			ot.out = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: conf}, ClockRate: conf.SampleRate}
			audio = append(audio, ot)
		case t.Codec == media.CodecOpus:
			ch := t.Channels
			if ch <= 0 {
				ch = 2
			}
			ot.out = &gohlslib.Track{Codec: &codecs.Opus{ChannelCount: ch}, ClockRate: 48000}
			audio = append(audio, ot)
		default:
			// G.711 and anything else: browsers cannot play it from fMP4.
			log.Info("track left out: codec not playable over HLS", "track", i, "codec", t.Codec.String())
			continue
		}
		ts.byIn[i] = ot
	}
	if ts.video != nil {
		ts.out = append(ts.out, ts.video)
	}
	ts.out = append(ts.out, audio...)
	if len(ts.out) == 0 {
		return nil, errNoPlayableTrack
	}
	return ts, nil
}

// ready reports whether the muxer can be created: the parameter sets of the
// video track are known.
func (ts *tracks) ready() bool { return ts.video == nil || ts.video.ready() }

// learn looks for parameter sets in u, a unit of the stream. It only looks at
// video keyframes, so that the muxer starts on a unit it can decode.
func (ts *tracks) learn(u *media.Unit) {
	if v := ts.video; v != nil && u.Track == v.in && u.Key {
		v.learn(u.Payload)
	}
}

// build creates the gohlslib tracks, once ready reports true. Its errors
// are wrapped by the caller.
func (ts *tracks) build() ([]*gohlslib.Track, error) {
	if v := ts.video; v != nil {
		switch v.codec {
		case media.CodecH264:
			var sps h264.SPS
			if err := sps.Unmarshal(v.sps); err != nil {
				return nil, fmt.Errorf("invalid H264 SPS: %w", err)
			}
			v.out = &gohlslib.Track{Codec: &codecs.H264{SPS: v.sps, PPS: v.pps}, ClockRate: 90000}
		case media.CodecH265:
			var sps h265.SPS
			if err := sps.Unmarshal(v.sps); err != nil {
				return nil, fmt.Errorf("invalid H265 SPS: %w", err)
			}
			v.out = &gohlslib.Track{Codec: &codecs.H265{VPS: v.vps, SPS: v.sps, PPS: v.pps}, ClockRate: 90000}
		}
	}
	out := make([]*gohlslib.Track, len(ts.out))
	for i, t := range ts.out {
		out[i] = t.out
	}
	return out, nil
}

// write hands u to the muxer. u is shared with the other readers of the
// stream and is not modified: gohlslib v2.2.5 only reads the NAL units and
// access units it is given (it copies them into AVCC samples and keeps
// references to parameter sets), and where a unit must be changed (empty NAL
// units dropped, parameter sets prepended to a keyframe) a new outer slice is
// built. Units of tracks the muxer does not carry are ignored.
func (ts *tracks) write(m *gohlslib.Muxer, u *media.Unit, now time.Time) error {
	if u.Track < 0 || u.Track >= len(ts.byIn) {
		return nil
	}
	t := ts.byIn[u.Track]
	if t == nil || len(u.Payload) == 0 {
		return nil
	}
	if !ts.started {
		// The first unit is a video keyframe (a reader starts on one), or
		// the first audio unit of an audio-only stream. Its time becomes 0.
		ts.started, ts.refPTS, ts.refRate = true, u.PTS, t.track.ClockRate
		for _, o := range ts.out {
			o.base = rescale(ts.refPTS, ts.refRate, o.track.ClockRate)
		}
	}
	// gohlslib wants timestamps in the time scale of the fMP4 track: 90 kHz
	// for video, the sample rate for AAC, 48 kHz for Opus. Timestamps
	// slightly before the first unit (audio captured just before the first
	// keyframe) are fine: gohlslib starts at 10 s.
	pts := rescale(u.PTS-t.base, t.track.ClockRate, t.out.ClockRate)
	ntp := u.NTP
	if ntp.IsZero() {
		ntp = now
	}
	switch t.codec {
	case media.CodecH264:
		return m.WriteH264(t.out, ntp, pts, t.accessUnit(u))
	case media.CodecH265:
		return m.WriteH265(t.out, ntp, pts, t.accessUnit(u))
	case media.CodecAAC:
		return m.WriteMPEG4Audio(t.out, ntp, pts, nonEmpty(u.Payload))
	case media.CodecOpus:
		return m.WriteOpus(t.out, ntp, pts, nonEmpty(u.Payload))
	}
	return nil
}

// accessUnit returns the NAL units of a video unit as the muxer needs them:
// without empty NAL units (gohlslib reads the first byte of each), and, for
// a keyframe, preceded by the parameter sets (the DTS extractor of gohlslib
// needs the SPS in the first keyframe; cameras that send parameter sets only
// out of band rely on this).
func (t *outTrack) accessUnit(u *media.Unit) [][]byte {
	au := nonEmpty(u.Payload)
	if !u.Key {
		return au
	}
	t.learn(au)
	if t.hasParams(au) {
		return au
	}
	params := [][]byte{t.sps, t.pps}
	if t.codec == media.CodecH265 {
		params = [][]byte{t.vps, t.sps, t.pps}
	}
	out := make([][]byte, 0, len(au)+len(params))
	out = append(out, params...)
	for _, nalu := range au {
		if !t.isParam(nalu) {
			out = append(out, nalu)
		}
	}
	return out
}

func (t *outTrack) isParam(nalu []byte) bool {
	if t.codec == media.CodecH264 {
		typ := h264.NALUType(nalu[0] & 0x1f)
		return typ == h264.NALUTypeSPS || typ == h264.NALUTypePPS
	}
	typ := h265.NALUType((nalu[0] >> 1) & 0x3f)
	return typ == h265.NALUType_VPS_NUT || typ == h265.NALUType_SPS_NUT || typ == h265.NALUType_PPS_NUT
}

// hasParams reports whether au carries every parameter set of its codec.
func (t *outTrack) hasParams(au [][]byte) bool {
	var vps, sps, pps bool
	for _, nalu := range au {
		if t.codec == media.CodecH264 {
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps = true
			case h264.NALUTypePPS:
				pps = true
			}
			continue
		}
		switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			vps = true
		case h265.NALUType_SPS_NUT:
			sps = true
		case h265.NALUType_PPS_NUT:
			pps = true
		}
	}
	return sps && pps && (vps || t.codec == media.CodecH264)
}

// nonEmpty returns p without its empty elements, p itself if it has none.
func nonEmpty(p [][]byte) [][]byte {
	for i, b := range p {
		if len(b) != 0 {
			continue
		}
		out := make([][]byte, 0, len(p)-1)
		out = append(out, p[:i]...)
		for _, b := range p[i+1:] {
			if len(b) != 0 {
				out = append(out, b)
			}
		}
		return out
	}
	return p
}

// rescale converts v ticks of a from-Hz clock into a to-Hz clock without
// overflowing for any timestamp of a stream that lasts less than centuries.
func rescale(v int64, from, to int) int64 {
	if from == to || from <= 0 {
		return v
	}
	f, t := int64(from), int64(to)
	return v/f*t + v%f*t/f
}

package llhls

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/codecparams"
	hcodecs "github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mcodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/xueliang/xueliang/internal/media"
)

// errNoPlayableTrack means that no track of a stream can be carried by HLS.
var errNoPlayableTrack = errors.New("llhls: no track of the stream can be played over HLS")

// Timescale of video tracks in the fMP4 files.
const videoTimescale = 90000

// outTrack carries one media.Track into the fMP4 fragments.
type outTrack struct {
	in        int          // index of the track in the stream
	id        uint32       // fMP4 track ID, from 1
	codec     media.Codec  // codec of the track
	track     *media.Track // the input track, read-only
	timescale int          // of the fMP4 track: 90000 for video, the sample rate for audio
	aac       mpeg4audio.AudioSpecificConfig

	// Latest parameter sets of a video track, without start codes. They
	// come from the media.Track or, when it has none, from the NAL units of
	// keyframes. The slices are never modified.
	vps, sps, pps []byte

	base int64 // PTS of the first unit of the muxer, in the input clock

	// Fragment state, owned by the muxer's goroutine.
	pending    sample    // the latest sample, held back until its duration is known
	hasPending bool      // whether pending is set
	pendingNTP time.Time // wall-clock time of pending
	samples    []sample  // the samples of the part being built
	started    bool      // whether a sample has been put in a part
	decode     uint64    // decode time of the next sample put in a part
	partBase   uint64    // decode time of samples[0]
	lastDur    uint32    // the duration of the previous sample
}

// planTracks chooses the tracks of a stream that the muxer carries: the
// first H.264 or H.265 track and the first AAC or Opus track. It logs one
// line for each track it leaves out.
func planTracks(in []*media.Track, log *slog.Logger) (video, audio *outTrack, err error) {
	for i, t := range in {
		ot := &outTrack{in: i, codec: t.Codec, track: t}
		switch {
		case t.ClockRate <= 0:
			log.Info("track left out: no clock rate", "track", i, "codec", t.Codec.String())
		case t.Codec == media.CodecH264 || t.Codec == media.CodecH265:
			if video != nil {
				log.Info("track left out: HLS carries one video track", "track", i, "codec", t.Codec.String())
				continue
			}
			ot.vps, ot.sps, ot.pps = bytes.Clone(t.VPS), bytes.Clone(t.SPS), bytes.Clone(t.PPS)
			ot.timescale = videoTimescale
			video = ot
		case t.Codec == media.CodecAAC || t.Codec == media.CodecOpus:
			if audio != nil {
				log.Info("track left out: one audio track is muxed", "track", i, "codec", t.Codec.String())
				continue
			}
			if t.Codec == media.CodecAAC {
				if err := ot.aac.Unmarshal(t.Config); err != nil {
					log.Info("track left out: invalid AAC config", "track", i, "err", err)
					continue
				}
				ot.timescale = ot.aac.SampleRate
			} else {
				ot.timescale = 48000
			}
			audio = ot
		default:
			log.Info("track left out: codec not playable over HLS", "track", i, "codec", t.Codec.String())
		}
	}
	if video == nil && audio == nil {
		return nil, nil, errNoPlayableTrack
	}
	id := uint32(1)
	for _, t := range []*outTrack{video, audio} {
		if t != nil {
			t.id = id
			id++
		}
	}
	return video, audio, nil
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

// learn records the parameter sets found among the NAL units of a keyframe
// and reports which of them the access unit carries.
func (t *outTrack) learn(au [][]byte) (vps, sps, pps bool) {
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch media.KindOf(t.codec, nalu) {
		case media.NALUVPS:
			t.vps, vps = nalu, true
		case media.NALUSPS:
			t.sps, sps = nalu, true
		case media.NALUPPS:
			t.pps, pps = nalu, true
		}
	}
	return vps, sps, pps
}

// videoSample turns a video unit into a sample: empty NAL units and access
// unit delimiters are left out and, for a keyframe that lacks them, the
// parameter sets are put first (they may change in-band). u is not
// modified; a new outer slice is built only when needed.
func (t *outTrack) videoSample(u *media.Unit) sample {
	au := u.Payload
	var params [][]byte
	if u.Key {
		vps, sps, pps := t.learn(au)
		if !sps || !pps || (t.codec == media.CodecH265 && !vps) {
			params = [][]byte{t.sps, t.pps}
			if t.codec == media.CodecH265 {
				params = [][]byte{t.vps, t.sps, t.pps}
			}
		}
	}
	// Left out: empty NAL units, delimiters, and in-band parameter sets
	// when the parameter sets are put first.
	drop := func(nalu []byte) bool {
		k := media.KindOf(t.codec, nalu)
		return len(nalu) == 0 || k == media.NALUAUD || (params != nil && k != media.NALUOther)
	}
	clean := true
	for _, nalu := range au {
		if drop(nalu) {
			clean = false
			break
		}
	}
	if !clean || params != nil {
		out := make([][]byte, 0, len(au)+len(params))
		out = append(out, params...)
		for _, nalu := range au {
			if !drop(nalu) {
				out = append(out, nalu)
			}
		}
		au = out
	}
	size := 0
	for _, nalu := range au {
		size += 4 + len(nalu)
	}
	return sample{nalus: au, size: uint32(size), sync: u.Key, avcc: true}
}

// audioSample turns an audio unit into a sample. An AAC unit may hold
// several access units: they become one sample each in the caller.
func audioSample(au []byte) sample {
	return sample{nalus: [][]byte{au}, size: uint32(len(au)), sync: true}
}

// initFile builds the fMP4 initialization segment of the tracks.
func initFile(video, audio *outTrack) ([]byte, error) {
	var init fmp4.Init
	if video != nil {
		it := &fmp4.InitTrack{ID: int(video.id), TimeScale: videoTimescale}
		if video.codec == media.CodecH264 {
			it.Codec = &mcodecs.H264{SPS: video.sps, PPS: video.pps}
		} else {
			it.Codec = &mcodecs.H265{VPS: video.vps, SPS: video.sps, PPS: video.pps}
		}
		init.Tracks = append(init.Tracks, it)
	}
	if audio != nil {
		it := &fmp4.InitTrack{ID: int(audio.id), TimeScale: uint32(audio.timescale)}
		if audio.codec == media.CodecAAC {
			it.Codec = &mcodecs.MPEG4Audio{Config: audio.aac}
		} else {
			it.Codec = &mcodecs.Opus{ChannelCount: opusChannels(audio.track)}
		}
		init.Tracks = append(init.Tracks, it)
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	return buf.Bytes(), nil
}

func opusChannels(t *media.Track) int {
	if t.Channels <= 0 {
		return 2
	}
	return t.Channels
}

// variantInfo is what the multivariant playlist says about the rendition.
type variantInfo struct {
	codecs        string // CODECS attribute, "avc1.42c01e,mp4a.40.2"
	width, height int    // 0 for audio-only
}

// describe returns the CODECS and RESOLUTION of the tracks (RFC 8216bis-16
// §4.4.6.2), and checks the video SPS.
func describe(video, audio *outTrack) (variantInfo, error) {
	var vi variantInfo
	var list []string
	if video != nil {
		switch video.codec {
		case media.CodecH264:
			var sps h264.SPS
			if err := sps.Unmarshal(video.sps); err != nil {
				return vi, fmt.Errorf("invalid H264 SPS: %w", err)
			}
			vi.width, vi.height = sps.Width(), sps.Height()
			list = append(list, codecparams.Marshal(&hcodecs.H264{SPS: video.sps, PPS: video.pps}))
		case media.CodecH265:
			var sps h265.SPS
			if err := sps.Unmarshal(video.sps); err != nil {
				return vi, fmt.Errorf("invalid H265 SPS: %w", err)
			}
			vi.width, vi.height = sps.Width(), sps.Height()
			list = append(list, codecparams.Marshal(&hcodecs.H265{VPS: video.vps, SPS: video.sps, PPS: video.pps}))
		}
	}
	if audio != nil {
		if audio.codec == media.CodecAAC {
			list = append(list, codecparams.Marshal(&hcodecs.MPEG4Audio{Config: audio.aac}))
		} else {
			list = append(list, codecparams.Marshal(&hcodecs.Opus{ChannelCount: opusChannels(audio.track)}))
		}
	}
	for i, c := range list {
		if i > 0 {
			vi.codecs += ","
		}
		vi.codecs += c
	}
	return vi, nil
}

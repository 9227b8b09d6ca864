package rtsp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/media"
)

// errMorePackets is returned by a binding's decode when the packet did not
// complete a unit. It is not a failure.
var errMorePackets = errors.New("more packets needed")

// binding ties one format of one RTSP media to one media.Track and knows how
// to turn its RTP packets into unit payloads.
type binding struct {
	media  *description.Media
	format format.Format
	index  int // index of track in the tracks given to ready
	track  *media.Track

	// decode returns the payload of the unit that pkt completes, or
	// errMorePackets. It is called with session.mu held.
	decode func(pkt *rtp.Packet) ([][]byte, error)
}

// isRandomAccess reports whether the video access unit au starts a GOP.
func (b *binding) isRandomAccess(au [][]byte) bool {
	switch b.track.Codec {
	case media.CodecH264:
		return h264.IsRandomAccess(au)
	case media.CodecH265:
		return h265.IsRandomAccess(au)
	}
	return false
}

// learnParams copies the parameter sets found in the video access unit au
// into the track, replacing older ones. It is used only before the track is
// handed to ready.
func (b *binding) learnParams(au [][]byte) {
	for _, nalu := range au {
		switch b.track.Codec {
		case media.CodecH264:
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				b.track.SPS = bytes.Clone(nalu)
			case h264.NALUTypePPS:
				b.track.PPS = bytes.Clone(nalu)
			}
		case media.CodecH265:
			switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				b.track.VPS = bytes.Clone(nalu)
			case h265.NALUType_SPS_NUT:
				b.track.SPS = bytes.Clone(nalu)
			case h265.NALUType_PPS_NUT:
				b.track.PPS = bytes.Clone(nalu)
			}
		}
	}
}

// hasParams reports whether the track has every parameter set its codec
// needs; audio tracks always have.
func (b *binding) hasParams() bool {
	t := b.track
	switch t.Codec {
	case media.CodecH264:
		return t.SPS != nil && t.PPS != nil
	case media.CodecH265:
		return t.VPS != nil && t.SPS != nil && t.PPS != nil
	}
	return true
}

// dropEmpty removes zero-length NAL units, which the codec helpers cannot
// take and no decoder needs.
func dropEmpty(au [][]byte) [][]byte {
	for i, n := range au {
		if len(n) == 0 {
			out := append([][]byte(nil), au[:i]...)
			for _, n := range au[i+1:] {
				if len(n) != 0 {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return au
}

// selectTracks picks the first H.264 or H.265 media of desc and at most one
// audio media (AAC, G.711 or Opus), and builds their bindings: video first,
// then audio. Medias it does not use are logged at debug level.
//
// It fails with media.ReasonCodecUnsupported when desc has video but none in
// H.264 or H.265, and with media.ReasonNoVideo when desc has no video at all.
func selectTracks(desc *description.Session, log *slog.Logger) ([]*binding, error) {
	var video, audio *binding
	var unsupported []string // codecs of video medias we cannot take

	for _, medi := range desc.Medias {
		if medi.IsBackChannel {
			continue
		}
		b, isVideo, err := bind(medi)
		switch {
		case err != nil:
			if isVideo {
				unsupported = append(unsupported, fmt.Sprintf("%s (%v)", strings.Join(codecNames(medi), "/"), err))
			}
			log.Debug("ignoring media", "type", medi.Type, "error", err)
		case b == nil:
			if medi.Type == description.MediaTypeVideo {
				unsupported = append(unsupported, codecNames(medi)...)
			}
			log.Debug("ignoring media with unsupported codec", "type", medi.Type, "codecs", codecNames(medi))
		case isVideo && video == nil:
			video = b
		case !isVideo && audio == nil:
			audio = b
		default:
			log.Debug("ignoring extra media", "type", medi.Type, "codec", b.track.Codec)
		}
	}

	if video == nil {
		if len(unsupported) > 0 {
			return nil, media.Fail(media.ReasonCodecUnsupported,
				fmt.Errorf("rtsp: video codec %s is not supported (want H264 or H265)", strings.Join(unsupported, ", ")))
		}
		return nil, media.Fail(media.ReasonNoVideo,
			fmt.Errorf("rtsp: camera offers no video track (medias: %s)", describeMedias(desc)))
	}
	video.index = 0
	bs := []*binding{video}
	if audio != nil {
		audio.index = 1
		bs = append(bs, audio)
	}
	return bs, nil
}

// bind returns a binding for the first format of medi that the media plane
// supports, and whether it is video. It returns a nil binding if there is no
// such format, and an error if a supported format cannot be decoded (for
// example H.264 with packetization-mode 2).
func bind(medi *description.Media) (b *binding, isVideo bool, err error) {
	for _, f := range medi.Formats {
		switch f := f.(type) {
		case *format.H264: // RTP payload: RFC 6184
			dec, err := f.CreateDecoder()
			if err != nil {
				return nil, true, err
			}
			sps, pps := f.SafeParams()
			t := &media.Track{Codec: media.CodecH264, ClockRate: f.ClockRate(), SPS: bytes.Clone(sps), PPS: bytes.Clone(pps)}
			return &binding{media: medi, format: f, track: t, decode: func(pkt *rtp.Packet) ([][]byte, error) {
				au, err := dec.Decode(pkt)
				if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
					return nil, errMorePackets
				}
				return au, err
			}}, true, nil

		case *format.H265: // RTP payload: RFC 7798
			dec, err := f.CreateDecoder()
			if err != nil {
				return nil, true, err
			}
			vps, sps, pps := f.SafeParams()
			t := &media.Track{Codec: media.CodecH265, ClockRate: f.ClockRate(),
				VPS: bytes.Clone(vps), SPS: bytes.Clone(sps), PPS: bytes.Clone(pps)}
			return &binding{media: medi, format: f, track: t, decode: func(pkt *rtp.Packet) ([][]byte, error) {
				au, err := dec.Decode(pkt)
				if errors.Is(err, rtph265.ErrMorePacketsNeeded) {
					return nil, errMorePackets
				}
				return au, err
			}}, true, nil

		case *format.MPEG4Audio: // RTP payload: RFC 3640 (AAC-hbr)
			if f.Config == nil {
				continue
			}
			conf, err := f.Config.Marshal()
			if err != nil {
				return nil, false, fmt.Errorf("AAC config: %w", err)
			}
			dec, err := f.CreateDecoder()
			if err != nil {
				return nil, false, err
			}
			t := &media.Track{Codec: media.CodecAAC, ClockRate: f.ClockRate(), Config: conf, Channels: aacChannels(f.Config)}
			return &binding{media: medi, format: f, track: t, decode: func(pkt *rtp.Packet) ([][]byte, error) {
				aus, err := dec.Decode(pkt)
				if errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
					return nil, errMorePackets
				}
				return aus, err
			}}, false, nil

		case *format.G711: // RTP payload: RFC 3551 §4.5.14
			dec, err := f.CreateDecoder()
			if err != nil {
				return nil, false, err
			}
			codec := media.CodecPCMA
			if f.MULaw {
				codec = media.CodecPCMU
			}
			t := &media.Track{Codec: codec, ClockRate: f.ClockRate(), Channels: f.ChannelCount}
			return &binding{media: medi, format: f, track: t, decode: func(pkt *rtp.Packet) ([][]byte, error) {
				samples, err := dec.Decode(pkt)
				if err != nil {
					return nil, err
				}
				return [][]byte{samples}, nil
			}}, false, nil

		case *format.Opus: // RTP payload: RFC 7587
			dec, err := f.CreateDecoder()
			if err != nil {
				return nil, false, err
			}
			t := &media.Track{Codec: media.CodecOpus, ClockRate: f.ClockRate(), Channels: f.ChannelCount}
			return &binding{media: medi, format: f, track: t, decode: func(pkt *rtp.Packet) ([][]byte, error) {
				packet, err := dec.Decode(pkt)
				if err != nil {
					return nil, err
				}
				return [][]byte{packet}, nil
			}}, false, nil
		}
	}
	return nil, false, nil
}

// aacChannels returns the channel count of an AudioSpecificConfig, or 0 when
// a program config element defines it (ISO/IEC 14496-3 §1.6.3.4, Table 1.19).
func aacChannels(c *mpeg4audio.AudioSpecificConfig) int {
	switch {
	case c.ChannelConfig >= 1 && c.ChannelConfig <= 6:
		return int(c.ChannelConfig)
	case c.ChannelConfig == 7:
		return 8
	}
	return 0
}

// codecNames returns the codec names of the formats of medi.
func codecNames(medi *description.Media) []string {
	names := make([]string, 0, len(medi.Formats))
	for _, f := range medi.Formats {
		names = append(names, f.Codec())
	}
	return names
}

// describeMedias returns "audio G711, application KLV" for desc.
func describeMedias(desc *description.Session) string {
	if len(desc.Medias) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(desc.Medias))
	for _, m := range desc.Medias {
		parts = append(parts, string(m.Type)+" "+strings.Join(codecNames(m), "/"))
	}
	return strings.Join(parts, ", ")
}

package whep

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/xueliang/xueliang/internal/media"
)

// Errors of offer parsing and codec negotiation, mapped to HTTP statuses by
// the handler.
var (
	errBadOffer   = errors.New("whep: bad offer")    // 400
	errNoCodec    = errors.New("whep: no codec")     // 422
	errH265Refuse = errors.New("whep: h265 refused") // 422
)

// h265Refusal is the message given when an H.265 channel meets an offer
// without H.265 (error code h265_not_offered).
const h265Refusal = "channel is H.265 and this player's offer has no H.265: WebRTC in this platform " +
	"sends H.265 only to players that offer it and never transcodes; " +
	"use LL-HLS (the hls URL) or a browser that decodes H.265"

// h264Profiles are the H.264 profile-level-ids the server answers with
// (RFC 6184 §8.1): constrained baseline, baseline, high 5.0, main. Only the
// profile part (the first two bytes) has to match the offer; the level part
// may differ (RFC 6184 §8.2.2, level-asymmetry-allowed).
var h264Profiles = []string{"42e01f", "42001f", "640032", "4d001f"}

// offer is what the server needs from an SDP offer.
type offer struct {
	video *offerMedia // first video section the player can receive on, or nil
	audio *offerMedia // first audio section the player can receive on, or nil
}

// offerMedia is one media section of an offer.
type offerMedia struct {
	codecs []offerCodec // in offer order, that is, in the player's preference
}

// offerCodec is one payload type of a media section.
type offerCodec struct {
	pt        uint8
	name      string // upper case: H264, H265, PCMA, ...
	clockRate uint32
	channels  uint16
	fmtp      string            // the a=fmtp parameters, verbatim
	params    map[string]string // the fmtp parameters, keys lower case
}

// maxOfferSections bounds the work done on a hostile offer.
const maxOfferSections = 64

// parseOffer parses an SDP offer. Errors wrap errBadOffer. It never panics,
// whatever b holds (FuzzOffer).
func parseOffer(b []byte) (*offer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadOffer, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media section", errBadOffer)
	}
	if len(sd.MediaDescriptions) > maxOfferSections {
		return nil, fmt.Errorf("%w: %d media sections", errBadOffer, len(sd.MediaDescriptions))
	}
	o := &offer{}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			if _, bundleOnly := md.Attribute("bundle-only"); !bundleOnly {
				continue // rejected section (RFC 3264 §6)
			}
		}
		if !canReceive(md) {
			continue
		}
		switch md.MediaName.Media {
		case "video":
			if o.video == nil {
				o.video = parseMedia(md)
			}
		case "audio":
			if o.audio == nil {
				o.audio = parseMedia(md)
			}
		}
	}
	if o.video == nil && o.audio == nil {
		return nil, fmt.Errorf("%w: no audio or video section the player can receive on", errBadOffer)
	}
	return o, nil
}

// canReceive reports whether the offerer accepts media on md (RFC 3264 §5.1:
// sendrecv is the default).
func canReceive(md *sdp.MediaDescription) bool {
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendonly", "inactive":
			return false
		}
	}
	return true
}

// parseMedia collects the payload types of md from its m= line, a=rtpmap and
// a=fmtp (RFC 8866 §6.6, §6.15). Unknown or malformed attributes are skipped.
func parseMedia(md *sdp.MediaDescription) *offerMedia {
	m := &offerMedia{}
	index := make(map[uint8]int)
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		if _, dup := index[uint8(pt)]; dup {
			continue
		}
		index[uint8(pt)] = len(m.codecs)
		c := offerCodec{pt: uint8(pt)}
		// Static payload types of RFC 3551 §6 need no rtpmap.
		switch pt {
		case 0:
			c.name, c.clockRate = "PCMU", 8000
		case 8:
			c.name, c.clockRate = "PCMA", 8000
		}
		m.codecs = append(m.codecs, c)
	}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" && a.Key != "fmtp" {
			continue
		}
		ptStr, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			continue
		}
		i, ok := index[uint8(pt)]
		if !ok {
			continue
		}
		c := &m.codecs[i]
		if a.Key == "rtpmap" {
			parts := strings.Split(strings.TrimSpace(rest), "/")
			c.name = strings.ToUpper(parts[0])
			c.clockRate, c.channels = 0, 0
			if len(parts) > 1 {
				if v, err := strconv.ParseUint(parts[1], 10, 32); err == nil {
					c.clockRate = uint32(v)
				}
			}
			if len(parts) > 2 {
				if v, err := strconv.ParseUint(parts[2], 10, 16); err == nil {
					c.channels = uint16(v)
				}
			}
		} else {
			c.fmtp = strings.TrimSpace(rest)
			c.params = parseFmtp(c.fmtp)
		}
	}
	return m
}

// parseFmtp splits "k1=v1;k2=v2" into a map with lower-case keys.
func parseFmtp(s string) map[string]string {
	p := make(map[string]string)
	for kv := range strings.SplitSeq(s, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			p[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return p
}

// plan is the outcome of negotiation: which tracks of the stream are sent,
// with which codec.
type plan struct {
	video      int // index of the video track sent, or -1
	videoCodec webrtc.RTPCodecParameters
	audio      int // index of the audio track sent, or -1
	audioCodec webrtc.RTPCodecParameters
	skipped    []string // tracks not sent, with why, for the log
}

// Feedback the server handles for video (RFC 4585 §4.2, RFC 5104 §7.1).
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
}

// negotiate picks what to send of tracks given what o accepts. Errors wrap
// errNoCodec or errH265Refuse. It never panics (FuzzOffer).
func negotiate(o *offer, tracks []*media.Track) (*plan, error) {
	p := &plan{video: -1, audio: -1}
	var videoErr error
	for i, t := range tracks {
		if t == nil {
			continue
		}
		switch t.Codec {
		case media.CodecH264, media.CodecH265:
			if p.video >= 0 || videoErr != nil {
				continue // only the first video track is sent
			}
			if o.video == nil {
				p.skipped = append(p.skipped, fmt.Sprintf("track %d %s: the offer has no video section", i, t))
				continue
			}
			var c webrtc.RTPCodecParameters
			var ok bool
			if t.Codec == media.CodecH264 {
				c, ok = chooseH264(o.video, t.SPS)
				if !ok {
					videoErr = fmt.Errorf("%w: channel is H.264 but the offer lists no H.264 with "+
						"packetization-mode=1 and profile-level-id %s", errNoCodec, strings.Join(h264Profiles, ", "))
				}
			} else {
				c, ok = chooseH265(o.video, t.SPS)
				if !ok {
					videoErr = fmt.Errorf("%w: %s", errH265Refuse, h265Refusal)
				}
			}
			if ok {
				p.video, p.videoCodec = i, c
			}
		case media.CodecPCMA, media.CodecPCMU:
			if p.audio >= 0 {
				continue
			}
			if o.audio == nil {
				p.skipped = append(p.skipped, fmt.Sprintf("track %d %s: the offer has no audio section", i, t))
				continue
			}
			if t.ClockRate != 8000 || t.Channels > 1 {
				p.skipped = append(p.skipped, fmt.Sprintf("track %d %s/%d: only 8 kHz mono G.711 is sent", i, t, t.Channels))
				continue
			}
			c, ok := chooseG711(o.audio, t.Codec)
			if !ok {
				p.skipped = append(p.skipped, fmt.Sprintf("track %d %s: the offer does not accept it", i, t))
				continue
			}
			p.audio, p.audioCodec = i, c
		case media.CodecAAC:
			p.skipped = append(p.skipped, fmt.Sprintf("track %d %s: AAC cannot be sent over WebRTC and is not transcoded", i, t))
		default:
			p.skipped = append(p.skipped, fmt.Sprintf("track %d %s: not sent over WebRTC", i, t))
		}
	}
	if videoErr != nil {
		// A channel with video is not offered as audio only: the player asked
		// for video and would show a black picture.
		return nil, videoErr
	}
	if p.video < 0 && p.audio < 0 {
		return nil, fmt.Errorf("%w: the channel has no track the offer accepts (%s)", errNoCodec, strings.Join(p.skipped, "; "))
	}
	return p, nil
}

// chooseH264 picks the offered H.264 payload type to send with. The offer
// order is the player's preference; a profile equal to the one of the
// stream's SPS (profile_idc, its second byte) wins over it, so that a High
// profile camera is announced as High where the player offers it.
func chooseH264(m *offerMedia, sps []byte) (webrtc.RTPCodecParameters, bool) {
	var first, same *offerCodec
	var firstPLID, samePLID string
	for i := range m.codecs {
		c := &m.codecs[i]
		if c.name != "H264" || c.clockRate != 90000 || c.params["packetization-mode"] != "1" {
			continue
		}
		offered, err := hex.DecodeString(c.params["profile-level-id"])
		if err != nil || len(offered) != 3 {
			continue
		}
		ours := ""
		for _, plid := range h264Profiles {
			b, _ := hex.DecodeString(plid)
			if b[0] == offered[0] && b[1] == offered[1] {
				ours = plid
				break
			}
		}
		if ours == "" {
			continue
		}
		if first == nil {
			first, firstPLID = c, ours
		}
		if same == nil && len(sps) >= 2 && sps[1] == offered[0] {
			same, samePLID = c, ours
		}
	}
	if same != nil {
		first, firstPLID = same, samePLID
	}
	if first == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType:     webrtc.MimeTypeH264,
			ClockRate:    90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + firstPLID,
			RTCPFeedback: videoFeedback,
		},
		PayloadType: webrtc.PayloadType(first.pt),
	}, true
}

// chooseH265 picks the offered H.265 payload type to send with
// (draft-ietf-avtcore-hevc-webrtc §2.1: profile-id, tier-flag and tx-mode
// must match, level-id need not). An offer whose profile-id equals the
// stream's general_profile_idc wins; otherwise the first Main or Main 10
// offer. The answer repeats the offered parameters.
func chooseH265(m *offerMedia, sps []byte) (webrtc.RTPCodecParameters, bool) {
	want := ""
	if id, ok := h265ProfileIDC(sps); ok {
		want = strconv.Itoa(int(id))
	}
	var first, same *offerCodec
	for i := range m.codecs {
		c := &m.codecs[i]
		if c.name != "H265" || c.clockRate != 90000 {
			continue
		}
		if tx, ok := c.params["tx-mode"]; ok && !strings.EqualFold(tx, "SRST") {
			continue
		}
		profile := c.params["profile-id"]
		if profile == "" {
			profile = "1" // RFC 7798 §7.1
		}
		if profile != "1" && profile != "2" {
			continue
		}
		if first == nil {
			first = c
		}
		if same == nil && profile == want {
			same = c
		}
	}
	if same != nil {
		first = same
	}
	if first == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType:     webrtc.MimeTypeH265,
			ClockRate:    90000,
			SDPFmtpLine:  first.fmtp,
			RTCPFeedback: videoFeedback,
		},
		PayloadType: webrtc.PayloadType(first.pt),
	}, true
}

// h265ProfileIDC returns general_profile_idc from an H.265 SPS NAL unit
// (ITU-T H.265 §7.3.2.2.1, §7.3.3): after the two-byte NAL header, one byte
// of sps_video_parameter_set_id, sps_max_sub_layers_minus1 and
// sps_temporal_id_nesting_flag, then general_profile_space(2),
// general_tier_flag(1), general_profile_idc(5).
func h265ProfileIDC(sps []byte) (uint8, bool) {
	if len(sps) < 4 {
		return 0, false
	}
	return sps[3] & 0x1f, true
}

func chooseG711(m *offerMedia, codec media.Codec) (webrtc.RTPCodecParameters, bool) {
	name, mime := "PCMA", webrtc.MimeTypePCMA
	if codec == media.CodecPCMU {
		name, mime = "PCMU", webrtc.MimeTypePCMU
	}
	for _, c := range m.codecs {
		if c.name == name && c.clockRate == 8000 && c.channels <= 1 {
			return webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 8000},
				PayloadType:        webrtc.PayloadType(c.pt),
			}, true
		}
	}
	return webrtc.RTPCodecParameters{}, false
}

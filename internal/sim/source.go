package sim

import (
	"fmt"
	"math"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
)

// Audio kinds of Camera.Audio.
const (
	AudioNone  = "none"
	AudioAAC   = "aac"   // AAC-LC, 16 kHz mono, from the embedded beep.aac
	AudioG711A = "g711a" // PCMA, 8 kHz mono, synthesised
	AudioG711U = "g711u" // PCMU, 8 kHz mono, synthesised
)

const (
	videoPT = 96
	aacPT   = 97
)

// A source is media packetized once into RTP payloads and then shared,
// read-only, by every camera that plays it: pacing a frame costs no
// allocation of ours, only gortsplib's per-packet marshalling.

// videoSource is a video clip as RTP payloads.
type videoSource struct {
	clip *VideoClip
	// units[i] holds the payloads of clip.Units[i]; the last one carries the marker bit.
	units [][][]byte
}

func newVideoSource(c *VideoClip) (*videoSource, error) {
	var encode func([][]byte) ([]*rtp.Packet, error)
	switch c.Codec {
	case CodecH264:
		e := &rtph264.Encoder{PayloadType: videoPT, PacketizationMode: 1}
		if err := e.Init(); err != nil {
			return nil, err
		}
		encode = e.Encode
	case CodecH265:
		e := &rtph265.Encoder{PayloadType: videoPT}
		if err := e.Init(); err != nil {
			return nil, err
		}
		encode = e.Encode
	}
	v := &videoSource{clip: c, units: make([][][]byte, len(c.Units))}
	for i, u := range c.Units {
		pkts, err := encode(u.NALUs)
		if err != nil {
			return nil, fmt.Errorf("packetize unit %d: %w", i, err)
		}
		v.units[i] = make([][]byte, len(pkts))
		for j, p := range pkts {
			v.units[i][j] = p.Payload
		}
	}
	return v, nil
}

// format returns a new RTP format for the clip; each camera has its own.
func (v *videoSource) format() format.Format {
	if v.clip.Codec == CodecH265 {
		return &format.H265{PayloadTyp: videoPT, VPS: v.clip.VPS, SPS: v.clip.SPS, PPS: v.clip.PPS}
	}
	return &format.H264{PayloadTyp: videoPT, PacketizationMode: 1, SPS: v.clip.SPS, PPS: v.clip.PPS}
}

// audioSource is a loop of audio as RTP payloads of equal duration.
type audioSource struct {
	clockRate   int
	samples     int      // samples per payload
	units       [][]byte // one RTP payload each
	payloadType uint8
	marker      bool // RTP marker bit of every packet
	format      func() format.Format
}

// newAACSource packetizes an AAC clip, one access unit per packet (RFC 3640 AAC-hbr).
func newAACSource(c *AudioClip) (*audioSource, error) {
	e := &rtpmpeg4audio.Encoder{PayloadType: aacPT, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
	if err := e.Init(); err != nil {
		return nil, err
	}
	// Each packet holds a whole access unit, so each is marked (RFC 3640 §3.2.2).
	a := &audioSource{
		clockRate: c.Config.SampleRate, samples: mpeg4audio.SamplesPerAccessUnit,
		payloadType: aacPT, marker: true,
	}
	for i, au := range c.Units {
		pkts, err := e.Encode([][]byte{au})
		if err != nil || len(pkts) != 1 {
			return nil, fmt.Errorf("packetize AAC unit %d: %v packets, %w", i, len(pkts), err)
		}
		a.units = append(a.units, pkts[0].Payload)
	}
	cfg := c.Config
	a.format = func() format.Format {
		return &format.MPEG4Audio{
			PayloadTyp: aacPT, ProfileLevelID: 1, Config: &cfg,
			SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
		}
	}
	return a, nil
}

// newG711Source synthesises one second of 8 kHz G.711 (ITU-T G.711; RTP
// payload types 0 PCMU and 8 PCMA, RFC 3551 §4.5.14): a 1 kHz beep for
// 200 ms, then silence, in 20 ms packets like most cameras send.
func newG711Source(muLaw bool) *audioSource {
	const rate, packet = 8000, 160
	lpcm := make([]byte, 2*rate) // 16-bit big-endian samples
	for i := range rate / 5 {
		v := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/rate))
		lpcm[2*i], lpcm[2*i+1] = byte(uint16(v)>>8), byte(v)
	}
	var enc []byte
	if muLaw {
		enc, _ = g711.Mulaw(lpcm).Marshal() // even length: cannot fail
	} else {
		enc, _ = g711.Alaw(lpcm).Marshal()
	}
	a := &audioSource{clockRate: rate, samples: packet}
	a.payloadType = 8
	if muLaw {
		a.payloadType = 0
	}
	for off := 0; off < len(enc); off += packet {
		a.units = append(a.units, enc[off:off+packet:off+packet])
	}
	a.format = func() format.Format {
		return &format.G711{PayloadTyp: a.payloadType, MULaw: muLaw, SampleRate: rate, ChannelCount: 1}
	}
	return a
}

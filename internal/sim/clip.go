package sim

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// The embedded clips are made by scripts/gen-clips.sh: Annex-B H.264 or H.265,
// 640x360, 15 fps, an IDR every 30 frames, 4 s; and one AAC-LC ADTS beep.
//
//go:embed clips
var clipFS embed.FS

// DefaultClip is the clip of a camera whose Clip is empty.
const DefaultClip = "testsrc.h264"

// audioClipAAC is the embedded ADTS clip used by cameras with Audio "aac".
const audioClipAAC = "beep.aac"

// defaultFPS is the frame rate of clips whose SPS carries no VUI timing info.
const defaultFPS = 15

// Codec is the video codec of a clip.
type Codec int

// Video codecs.
const (
	CodecH264 Codec = iota + 1
	CodecH265
)

// String implements fmt.Stringer.
func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "H264"
	case CodecH265:
		return "H265"
	}
	return fmt.Sprintf("Codec(%d)", int(c))
}

// AccessUnit is one coded picture: its NAL units without start codes and
// without access unit delimiters.
type AccessUnit struct {
	NALUs [][]byte
	// IDR reports a random access point (H.264 IDR; H.265 IDR or CRA). The
	// parameter sets are always among its NALUs.
	IDR bool
}

// VideoClip is a parsed video elementary stream. It is immutable once
// returned and may be shared by any number of cameras.
type VideoClip struct {
	Codec         Codec
	Width, Height int
	// FPS is the frame rate: from the SPS VUI timing info, or 15 when absent.
	FPS           float64
	VPS, SPS, PPS []byte // VPS is nil for H.264
	// Units starts with an IDR and holds at least one unit.
	Units []AccessUnit
}

// Duration is the playing time of one pass of the clip.
func (c *VideoClip) Duration() time.Duration {
	return time.Duration(float64(len(c.Units)) / c.FPS * float64(time.Second))
}

// AudioClip is a parsed AAC stream of 1024-sample access units.
type AudioClip struct {
	Config mpeg4audio.AudioSpecificConfig
	Units  [][]byte // raw AAC access units, without ADTS headers
}

// Duration is the playing time of one pass of the clip.
func (c *AudioClip) Duration() time.Duration {
	return time.Duration(len(c.Units)) * mpeg4audio.SamplesPerAccessUnit * time.Second /
		time.Duration(c.Config.SampleRate)
}

// Clips returns the names of the embedded video clips, sorted.
func Clips() []string {
	ents, _ := fs.ReadDir(clipFS, "clips") // embedded: cannot fail
	var names []string
	for _, e := range ents {
		if _, err := codecOf(e.Name()); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// LoadClip loads and parses a video clip. name is an embedded clip (see
// Clips; "street" is short for "street.h264") or else the path of a file.
// The codec follows the extension: .h264/.264 or .h265/.265/.hevc.
func LoadClip(name string) (*VideoClip, error) {
	c, err := loadClip(name)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return c, nil
}

func loadClip(name string) (*VideoClip, error) {
	if name == "" {
		name = DefaultClip
	}
	data, err := readClip(name)
	if err != nil {
		return nil, err
	}
	codec, err := codecOf(name)
	if err == nil {
		var c *VideoClip
		if c, err = parseAnnexB(codec, data); err == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("clip %q: %w", name, err)
}

// readClip returns an embedded clip or a file's contents.
func readClip(name string) ([]byte, error) {
	for _, n := range []string{name, name + ".h264"} {
		if !strings.Contains(n, "/") {
			if data, err := clipFS.ReadFile("clips/" + n); err == nil {
				return data, nil
			}
		}
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("clip %q is neither embedded nor readable: %w", name, err)
	}
	return data, nil
}

func codecOf(name string) (Codec, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".h264", ".264", "":
		return CodecH264, nil
	case ".h265", ".265", ".hevc":
		return CodecH265, nil
	}
	return 0, fmt.Errorf("%w: unknown extension %q", ErrBadClip, filepath.Ext(name))
}

// ParseAnnexB parses a whole Annex-B byte stream (ITU-T H.264 Annex B,
// H.265 Annex B) into access units. A new access unit starts at an access
// unit delimiter, at a parameter set or prefix SEI following a picture, or at
// a picture's first slice (H.264 first_mb_in_slice == 0, §7.4.3; H.265
// first_slice_segment_in_pic_flag, §7.4.7.1). Units before the first IDR are
// dropped, as are delimiters and end-of-sequence/stream NAL units (they
// would break looping), and the parameter sets are prepended to every IDR
// that lacks them. Errors wrap ErrBadClip; data of any shape never panics.
// NAL units alias data.
func ParseAnnexB(codec Codec, data []byte) (*VideoClip, error) {
	c, err := parseAnnexB(codec, data)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return c, nil
}

func parseAnnexB(codec Codec, data []byte) (*VideoClip, error) {
	var k naluKinds
	switch codec {
	case CodecH264:
		k = h264Kinds
	case CodecH265:
		k = h265Kinds
	default:
		return nil, fmt.Errorf("%w: unknown codec %v", ErrBadClip, codec)
	}
	nalus, err := splitAnnexB(data)
	if err != nil {
		return nil, err
	}

	c := &VideoClip{Codec: codec}
	var cur AccessUnit
	hasPic := false
	flush := func() {
		if hasPic && (cur.IDR || len(c.Units) > 0) {
			c.Units = append(c.Units, cur)
		}
		cur, hasPic = AccessUnit{}, false
	}
	for _, n := range nalus {
		if len(n) < k.headerLen {
			return nil, fmt.Errorf("%w: NAL unit of %d bytes", ErrBadClip, len(n))
		}
		t := k.typ(n)
		switch {
		case t == k.aud:
			flush()
			continue
		case t == k.eos || t == k.eob:
			continue
		case k.isVCL(t):
			if hasPic && len(n) > k.headerLen && n[k.headerLen]&0x80 != 0 {
				flush()
			}
			hasPic = true
			cur.IDR = cur.IDR || k.isIDR(t)
		case k.startsAU(t):
			if hasPic {
				flush()
			}
		}
		switch t {
		case k.vps:
			c.VPS = n
		case k.sps:
			c.SPS = n
		case k.pps:
			c.PPS = n
		}
		cur.NALUs = append(cur.NALUs, n)
	}
	flush()

	if len(c.Units) == 0 {
		return nil, fmt.Errorf("%w: no IDR picture", ErrBadClip)
	}
	if c.SPS == nil || c.PPS == nil || (codec == CodecH265 && c.VPS == nil) {
		return nil, fmt.Errorf("%w: missing parameter sets", ErrBadClip)
	}
	if err := c.parseSPS(); err != nil {
		return nil, err
	}
	params := [][]byte{c.SPS, c.PPS}
	if codec == CodecH265 {
		params = [][]byte{c.VPS, c.SPS, c.PPS}
	}
	for i := range c.Units {
		if u := &c.Units[i]; u.IDR && !hasType(k, u.NALUs, k.sps) {
			u.NALUs = append(append([][]byte(nil), params...), u.NALUs...)
		}
	}
	return c, nil
}

func (c *VideoClip) parseSPS() error {
	if c.Codec == CodecH264 {
		var sps h264.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return fmt.Errorf("%w: SPS: %w", ErrBadClip, err)
		}
		c.Width, c.Height, c.FPS = sps.Width(), sps.Height(), sps.FPS()
	} else {
		var sps h265.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return fmt.Errorf("%w: SPS: %w", ErrBadClip, err)
		}
		c.Width, c.Height, c.FPS = sps.Width(), sps.Height(), sps.FPS()
	}
	if !(c.FPS >= 1 && c.FPS <= 240) { // absent, or nonsense
		c.FPS = defaultFPS
	}
	return nil
}

func hasType(k naluKinds, nalus [][]byte, t int) bool {
	for _, n := range nalus {
		if k.typ(n) == t {
			return true
		}
	}
	return false
}

// naluKinds describes the NAL unit types of one codec.
type naluKinds struct {
	headerLen                    int
	typ                          func([]byte) int
	isVCL, isIDR, startsAU       func(int) bool
	aud, eos, eob, vps, sps, pps int
}

var h264Kinds = naluKinds{
	headerLen: 1,
	typ:       func(n []byte) int { return int(n[0] & 0x1f) },
	isVCL:     func(t int) bool { return t >= 1 && t <= 5 },
	isIDR:     func(t int) bool { return t == int(h264.NALUTypeIDR) },
	// SEI, SPS, PPS, prefix NAL, subset SPS, depth PS, reserved (§7.4.1.2.3).
	startsAU: func(t int) bool { return t >= 6 && t <= 8 || t >= 14 && t <= 18 },
	aud:      int(h264.NALUTypeAccessUnitDelimiter),
	eos:      int(h264.NALUTypeEndOfSequence),
	eob:      int(h264.NALUTypeEndOfStream),
	vps:      -1,
	sps:      int(h264.NALUTypeSPS),
	pps:      int(h264.NALUTypePPS),
}

var h265Kinds = naluKinds{
	headerLen: 2,
	typ:       func(n []byte) int { return int(n[0]>>1) & 0x3f },
	isVCL:     func(t int) bool { return t < 32 },
	isIDR: func(t int) bool {
		return t == int(h265.NALUType_IDR_W_RADL) || t == int(h265.NALUType_IDR_N_LP) ||
			t == int(h265.NALUType_CRA_NUT)
	},
	// VPS, SPS, PPS, prefix SEI, reserved (§7.4.2.4.4).
	startsAU: func(t int) bool { return t >= 32 && t <= 34 || t == 39 || t >= 41 && t <= 44 || t >= 48 && t <= 55 },
	aud:      int(h265.NALUType_AUD_NUT),
	eos:      int(h265.NALUType_EOS_NUT),
	eob:      int(h265.NALUType_EOB_NUT),
	vps:      int(h265.NALUType_VPS_NUT),
	sps:      int(h265.NALUType_SPS_NUT),
	pps:      int(h265.NALUType_PPS_NUT),
}

var startCode = []byte{0, 0, 1}

// splitAnnexB splits a byte stream into NAL units. It is used instead of
// mediacommon's h264.AnnexB, which is meant for one access unit and caps the
// input at 8 MiB. Zero bytes before a start code (leading_zero_8bits,
// trailing_zero_8bits, the first byte of a 4-byte start code) are dropped.
func splitAnnexB(data []byte) ([][]byte, error) {
	i := bytes.Index(data, startCode)
	if i < 0 || bytes.ContainsFunc(data[:i], func(r rune) bool { return r != 0 }) {
		return nil, fmt.Errorf("%w: not an Annex-B stream (no leading start code)", ErrBadClip)
	}
	var nalus [][]byte
	for rest := data[i+3:]; len(rest) > 0; {
		n := rest
		if j := bytes.Index(rest, startCode); j >= 0 {
			n, rest = rest[:j], rest[j+3:]
		} else {
			rest = nil
		}
		if n = bytes.TrimRight(n, "\x00"); len(n) > 0 {
			nalus = append(nalus, n[:len(n):len(n)])
		}
	}
	if len(nalus) == 0 {
		return nil, fmt.Errorf("%w: no NAL units", ErrBadClip)
	}
	return nalus, nil
}

// ParseADTS parses an ADTS stream (ISO/IEC 14496-3 §1.A.2) into AAC access
// units. Every frame must share one configuration and carry no CRC. Errors
// wrap ErrBadClip; data of any shape never panics. Units alias data.
func ParseADTS(data []byte) (*AudioClip, error) {
	c, err := parseADTS(data)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return c, nil
}

func parseADTS(data []byte) (*AudioClip, error) {
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("%w: ADTS: %w", ErrBadClip, err)
	}
	if len(pkts) == 0 {
		return nil, fmt.Errorf("%w: ADTS: no frames", ErrBadClip)
	}
	p0 := pkts[0]
	c := &AudioClip{Config: mpeg4audio.AudioSpecificConfig{
		Type:          p0.Type,
		SampleRate:    p0.SampleRate,
		ChannelConfig: p0.ChannelConfig,
	}}
	for _, p := range pkts {
		if p.Type != p0.Type || p.SampleRate != p0.SampleRate || p.ChannelConfig != p0.ChannelConfig {
			return nil, fmt.Errorf("%w: ADTS: configuration changes mid-stream", ErrBadClip)
		}
		c.Units = append(c.Units, p.AU)
	}
	if c.Config.ChannelConfig == 0 {
		return nil, fmt.Errorf("%w: ADTS: channel layout in a PCE is not supported", ErrBadClip)
	}
	return c, nil
}

package sim

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustClip(t testing.TB, name string) []byte {
	t.Helper()
	data, err := clipFS.ReadFile("clips/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// annexB joins NAL units with 4-byte start codes.
func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(append(b, 0, 0, 0, 1), n...)
	}
	return b
}

// mixedAnnexB joins NAL units with alternating 3-byte start codes and
// zero-padded 4-byte ones, after leading zero bytes.
func mixedAnnexB(nalus [][]byte) []byte {
	b := []byte{0, 0}
	for i, n := range nalus {
		if i%2 == 0 {
			b = append(b, 0, 0, 1)
		} else {
			b = append(b, 0, 0, 0, 0, 0, 1)
		}
		b = append(b, n...)
	}
	return append(b, 0, 0)
}

// reencode rewrites a clip's units from the given one on as a byte stream,
// with no access unit delimiters.
func reencode(c *VideoClip, from int) []byte {
	var nalus [][]byte
	for _, u := range c.Units[from:] {
		nalus = append(nalus, u.NALUs...)
	}
	return annexB(nalus...)
}

func TestEmbeddedClips(t *testing.T) {
	names := Clips()
	if len(names) < 5 {
		t.Fatalf("Clips() = %v, want at least 4 H.264 and 1 H.265", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			c, err := LoadClip(name)
			if err != nil {
				t.Fatal(err)
			}
			if c.Width != 640 || c.Height != 360 || c.FPS != 15 {
				t.Errorf("%dx%d at %v fps, want 640x360 at 15", c.Width, c.Height, c.FPS)
			}
			if len(c.Units)%30 != 0 || c.Duration() < 4*time.Second || c.Duration() > 6*time.Second {
				t.Errorf("%d units (%v), want whole 30-frame GOPs over 4-6 s", len(c.Units), c.Duration())
			}
			k := h264Kinds
			if c.Codec == CodecH265 {
				k = h265Kinds
			}
			for i, u := range c.Units {
				if u.IDR != (i%30 == 0) {
					t.Fatalf("unit %d: IDR = %v, want IDR exactly every 30 frames", i, u.IDR)
				}
				if u.IDR && !hasType(k, u.NALUs, k.sps) {
					t.Fatalf("unit %d: IDR without SPS", i)
				}
				if hasType(k, u.NALUs, k.aud) {
					t.Fatalf("unit %d: delimiter left in", i)
				}
			}
		})
	}
	if c, err := LoadClip("street"); err != nil || c.Codec != CodecH264 {
		t.Errorf(`LoadClip("street") = %v, %v; want street.h264`, c, err)
	}
	if _, err := LoadClip("no-such-clip"); err == nil {
		t.Error("LoadClip of a missing clip succeeded")
	}
	a, err := ParseADTS(mustClip(t, audioClipAAC))
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.SampleRate != 16000 || a.Config.ChannelConfig != 1 || a.Duration() < 3*time.Second {
		t.Errorf("beep.aac: %+v, %v", a.Config, a.Duration())
	}
}

func TestLoadClipFile(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadClip("testsrc.h265")
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/copy.hevc"
	if err := os.WriteFile(path, reencode(c, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadClip(path)
	if err != nil || got.Codec != CodecH265 || len(got.Units) != len(c.Units) {
		t.Fatalf("LoadClip(%s) = %v, %v", path, got, err)
	}
	if _, err := LoadClip(dir + "/x.mp4"); err == nil {
		t.Error("LoadClip of a missing file succeeded")
	}
}

type annexBCase struct {
	name      string
	codec     Codec
	data      []byte
	wantUnits int // 0: an error wrapping ErrBadClip; -1: fewer than the whole clip
}

func nalusOf(c *VideoClip) [][][]byte {
	var out [][][]byte
	for _, u := range c.Units {
		out = append(out, u.NALUs)
	}
	return out
}

func annexBCases(t testing.TB) []annexBCase {
	h264Data, h265Data := mustClip(t, "testsrc.h264"), mustClip(t, "testsrc.h265")
	c264, err := ParseAnnexB(CodecH264, h264Data)
	if err != nil {
		t.Fatal(err)
	}
	c265, err := ParseAnnexB(CodecH265, h265Data)
	if err != nil {
		t.Fatal(err)
	}
	n := len(c264.Units)
	idr := c264.Units[0].NALUs
	return []annexBCase{
		{"h264", CodecH264, h264Data, n},
		{"h265", CodecH265, h265Data, len(c265.Units)},
		{"h264 without delimiters", CodecH264, reencode(c264, 0), n},
		{"h265 without delimiters", CodecH265, reencode(c265, 0), len(c265.Units)},
		{"leading P-frames dropped", CodecH264, reencode(c264, 1), n - 30},
		{"3-byte start codes and zero padding", CodecH264, mixedAnnexB(slices.Concat(nalusOf(c264)...)), n},
		{"one IDR", CodecH264, annexB(idr...), 1},
		{"truncated mid-stream", CodecH264, h264Data[:len(h264Data)/2], -1},
		{"truncated in the SPS", CodecH264, h264Data[:12], 0},
		{"empty", CodecH264, nil, 0},
		{"start code only", CodecH264, []byte{0, 0, 0, 1}, 0},
		{"garbage", CodecH264, []byte("GET / HTTP/1.1\r\nHost: camera\r\n\r\n"), 0},
		{"garbage after a start code", CodecH264, append([]byte{0, 0, 1}, strings.Repeat("\xff\x01", 40)...), 0},
		{"no SPS", CodecH264, annexB(idr[1:]...), 0},
		{"corrupt SPS", CodecH264, annexB(append([][]byte{{0x67, 0xff, 0xff}}, idr[1:]...)...), 0},
		{"1-byte H.265 NAL unit", CodecH265, []byte{0, 0, 1, 0x40}, 0},
		{"H.265 read as H.264", CodecH264, h265Data, 0},
		{"unknown codec", Codec(9), h264Data, 0},
	}
}

func TestParseAnnexB(t *testing.T) {
	for _, tc := range annexBCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseAnnexB(tc.codec, tc.data)
			if tc.wantUnits == 0 {
				if !errors.Is(err, ErrBadClip) || !strings.HasPrefix(err.Error(), "sim: ") {
					t.Fatalf("err = %v, want a sim: error wrapping ErrBadClip", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.Units[0].IDR {
				t.Fatal("first unit is not an IDR")
			}
			if tc.wantUnits > 0 && len(c.Units) != tc.wantUnits || tc.wantUnits < 0 && len(c.Units) >= 60 {
				t.Fatalf("%d units, want %d", len(c.Units), tc.wantUnits)
			}
		})
	}
}

func FuzzParseAnnexB(f *testing.F) {
	for _, tc := range annexBCases(f) {
		data := tc.data
		if len(data) > 4<<10 { // keep the seeds quick to mutate and minimize
			data = data[:4<<10]
		}
		f.Add(uint8(tc.codec), data)
	}
	f.Fuzz(func(t *testing.T, codec uint8, data []byte) {
		c, err := ParseAnnexB(Codec(codec), data)
		if err != nil {
			return
		}
		if len(c.Units) == 0 || !c.Units[0].IDR || c.SPS == nil || c.PPS == nil || !(c.FPS > 0) {
			t.Fatalf("accepted an unplayable clip: %+v", c)
		}
		if _, err := newVideoSource(c); err != nil {
			t.Logf("packetize: %v", err) // legal, reported by Start
		}
	})
}

type adtsCase struct {
	name      string
	data      []byte
	wantUnits int // 0: an error wrapping ErrBadClip
}

func adtsCases(t testing.TB) []adtsCase {
	data := mustClip(t, audioClipAAC)
	c, err := ParseADTS(data)
	if err != nil {
		t.Fatal(err)
	}
	crc := bytes.Clone(data[:64])
	crc[1] &^= 1 // protection_absent = 0
	mixed := bytes.Clone(data)
	frame := 7 + len(c.Units[0])
	mixed[frame+2] ^= 1 << 2 // second frame: another sample rate index
	return []adtsCase{
		{"beep", data, len(c.Units)},
		{"one frame", data[:frame], 1},
		{"truncated", data[:len(data)-3], 0},
		{"empty", nil, 0},
		{"garbage", []byte("not an ADTS stream at all"), 0},
		{"CRC", crc, 0},
		{"configuration change", mixed, 0},
		{"zero frame length", []byte{0xff, 0xf1, 0x50, 0x80, 0x00, 0x1f, 0xfc, 0x00}, 0},
	}
}

func TestParseADTS(t *testing.T) {
	for _, tc := range adtsCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseADTS(tc.data)
			if tc.wantUnits == 0 {
				if !errors.Is(err, ErrBadClip) {
					t.Fatalf("err = %v, want ErrBadClip", err)
				}
				return
			}
			if err != nil || len(c.Units) != tc.wantUnits {
				t.Fatalf("ParseADTS = %v, %v; want %d units", c, err, tc.wantUnits)
			}
		})
	}
}

func FuzzParseADTS(f *testing.F) {
	for _, tc := range adtsCases(f) {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseADTS(data)
		if err != nil {
			return
		}
		if len(c.Units) == 0 || c.Config.SampleRate == 0 {
			t.Fatalf("accepted an unplayable clip: %+v", c)
		}
		if _, err := newAACSource(c); err != nil {
			t.Logf("packetize: %v", err)
		}
	})
}

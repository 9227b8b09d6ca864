package ptz

import (
	"errors"
	"strings"
	"testing"
)

// PTZCmd strings. "A50F010800FA00B7" (up, tilt speed 0xFA) and
// "A50F0100000000B5" (stop) are the examples commonly cited in public
// GB/T 28181 material; every string here, those two included, was also
// computed independently from the rules of GB/T 28181-2016 A.3 (byte 2 =
// 0x0F for version 0; byte 8 = sum of bytes 1–7 mod 256).
var cases = []struct {
	name string
	hex  string
	cmd  Command
}{
	{"stop", "A50F0100000000B5", Command{Op: OpPTZ, Address: 1}},
	{"up", "A50F010800FA00B7", Command{Op: OpPTZ, Address: 1, Tilt: 1, TiltSpeed: 0xFA}},
	{"down", "A50F0104004000F9", Command{Op: OpPTZ, Address: 1, Tilt: -1, TiltSpeed: 0x40}},
	{"left", "A50F01021F0000D6", Command{Op: OpPTZ, Address: 1, Pan: -1, PanSpeed: 0x1F}},
	{"right", "A50F010180000036", Command{Op: OpPTZ, Address: 1, Pan: 1, PanSpeed: 0x80}},
	{"up right", "A50F01092030000E", Command{Op: OpPTZ, Address: 1, Pan: 1, Tilt: 1, PanSpeed: 0x20, TiltSpeed: 0x30}},
	{"zoom in", "A50F0110000010D5", Command{Op: OpPTZ, Address: 1, Zoom: 1, ZoomSpeed: 1}},
	{"zoom out", "A50F01200000F0C5", Command{Op: OpPTZ, Address: 1, Zoom: -1, ZoomSpeed: 15}},
	{"address 0", "A50F0000000000B4", Command{Op: OpPTZ}},
	{"address 4095", "A50FFF0000000FC2", Command{Op: OpPTZ, Address: 4095}},
	{"focus far", "A50F014180000076", Command{Op: OpFI, Address: 1, Focus: 1, FocusSpeed: 0x80}},
	{"focus near", "A50F014280000077", Command{Op: OpFI, Address: 1, Focus: -1, FocusSpeed: 0x80}},
	{"iris open", "A50F014400800079", Command{Op: OpFI, Address: 1, Iris: 1, IrisSpeed: 0x80}},
	{"iris close", "A50F01480080007D", Command{Op: OpFI, Address: 1, Iris: -1, IrisSpeed: 0x80}},
	{"fi stop", "A50F0140000000F5", Command{Op: OpFI, Address: 1}},
	{"preset set 5", "A50F01810005003B", Command{Op: OpPresetSet, Address: 1, Preset: 5}},
	{"preset call 1", "A50F018200010038", Command{Op: OpPresetCall, Address: 1, Preset: 1}},
	{"preset delete 255", "A50F018300FF0037", Command{Op: OpPresetDelete, Address: 1, Preset: 255}},
	{"cruise add", "A50F01840103003D", Command{Op: OpCruiseAdd, Address: 1, Group: 1, Preset: 3}},
	{"cruise delete all", "A50F01850100003B", Command{Op: OpCruiseDelete, Address: 1, Group: 1}},
	{"cruise speed", "A50F018601342090", Command{Op: OpCruiseSpeed, Address: 1, Group: 1, Value: 0x234}},
	{"cruise dwell", "A50F0187010A0047", Command{Op: OpCruiseDwell, Address: 1, Group: 1, Value: 10}},
	{"cruise start", "A50F01880100003E", Command{Op: OpCruiseStart, Address: 1, Group: 1}},
	{"scan start", "A50F018902000040", Command{Op: OpScanStart, Address: 1, Group: 2}},
	{"scan left", "A50F018902010041", Command{Op: OpScanLeft, Address: 1, Group: 2}},
	{"scan right", "A50F018902020042", Command{Op: OpScanRight, Address: 1, Group: 2}},
	{"scan speed", "A50F018A02FFF030", Command{Op: OpScanSpeed, Address: 1, Group: 2, Value: 0xFFF}},
}

func TestEncode(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.hex {
				t.Errorf("Encode(%+v) = %s, want %s", tc.cmd, got, tc.hex)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []string{tc.hex, strings.ToLower(tc.hex)} {
				got, err := Decode(s)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.cmd {
					t.Errorf("Decode(%s) = %+v, want %+v", s, got, tc.cmd)
				}
			}
		})
	}
}

func TestStop(t *testing.T) {
	s, err := Encode(Stop)
	if err != nil || s != "A50F0000000000B4" {
		t.Fatalf("Encode(Stop) = %s, %v", s, err)
	}
}

// TestDecodeLenient checks that bytes an instruction does not use are
// ignored, and that another version with a correct check nibble decodes.
func TestDecodeLenient(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		cmd  Command
	}{
		{"preset with data1 set", "A50F0182070100" + "3F", Command{Op: OpPresetCall, Address: 1, Preset: 1}},
		{"version 1", "A51001" + "0800FA00" + "B8", Command{Op: OpPTZ, Address: 1, Tilt: 1, TiltSpeed: 0xFA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.cmd {
				t.Errorf("Decode(%s) = %+v, want %+v", tc.hex, got, tc.cmd)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
		msg  string
	}{
		{"empty", "", ErrFormat, `ptz: decode "": PTZCmd must be 16 hexadecimal digits, got 0 characters`},
		{"short", "A50F010800FA00B", ErrFormat, ""},
		{"not hex", "A50F010800FA00BX", ErrFormat, ""},
		{"header", "A60F010800FA00B8", ErrHeader, "ptz: decode A60F010800FA00B8: byte 1 must be A5, got A6"},
		{"version check", "A50E010800FA00B6", ErrVersionCheck, "ptz: decode A50E010800FA00B6: byte 2 check nibble mismatch: byte 2 is 0E, want 0F for version 0"},
		{"checksum", "A50F010800FA00B6", ErrChecksum, "ptz: decode A50F010800FA00B6: byte 8 checksum mismatch: byte 8 is B6, want B7"},
		{"left and right", "A50F0103000000B8", ErrInvalid, "ptz: decode A50F0103000000B8: invalid command: instruction 03 sets opposite directions together"},
		{"zoom in and out", "A50F0130000000E5", ErrInvalid, ""},
		{"focus both", "A50F0143000000F8", ErrInvalid, ""},
		{"preset 0", "A50F018200000037", ErrInvalid, "ptz: decode A50F018200000037: invalid command: preset number (byte 6) must be 1-255, got 0"},
		{"cruise add preset 0", "A50F01840100003A", ErrInvalid, ""},
		{"scan byte 6", "A50F018902030043", ErrInvalid, ""},
		{"unknown 0x50", "A50F015000000005", ErrInstruction, "ptz: decode A50F015000000005: unknown instruction code 50"},
		{"unknown 0x8C", "A50F018C00000041", ErrInstruction, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%q) = %v, want %v", tc.in, err, tc.want)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message\n got %s\nwant %s", err, tc.msg)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
		msg  string
	}{
		{"address", Command{Address: 4096}, "ptz: encode: invalid command: address 4096 exceeds 4095"},
		{"pan 2", Command{Pan: 2}, "ptz: encode: invalid command: Pan must be -1, 0 or +1, got 2"},
		{"tilt", Command{Tilt: -2}, ""},
		{"zoom", Command{Zoom: 5}, ""},
		{"zoom speed", Command{Zoom: 1, ZoomSpeed: 16}, "ptz: encode: invalid command: ZoomSpeed 16 exceeds 15"},
		{"focus", Command{Op: OpFI, Focus: 3}, ""},
		{"iris", Command{Op: OpFI, Iris: -3}, ""},
		{"preset 0", Command{Op: OpPresetCall}, "ptz: encode: invalid command: preset-call needs Preset 1-255"},
		{"cruise add preset 0", Command{Op: OpCruiseAdd, Group: 1}, ""},
		{"value", Command{Op: OpCruiseDwell, Value: 4096}, "ptz: encode: invalid command: cruise-dwell Value 4096 exceeds 4095"},
		{"op", Command{Op: 99}, "ptz: encode: invalid command: unknown Op Op(99)"},
		{"pan on preset", Command{Op: OpPresetCall, Preset: 1, Pan: 1}, "ptz: encode: invalid command: preset-call does not use Pan, Tilt, Zoom or their speeds"},
		{"iris on ptz", Command{IrisSpeed: 1}, "ptz: encode: invalid command: ptz does not use Focus, Iris or their speeds"},
		{"preset on ptz", Command{Preset: 1}, ""},
		{"group on preset", Command{Op: OpPresetSet, Preset: 1, Group: 1}, ""},
		{"value on cruise start", Command{Op: OpCruiseStart, Value: 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Encode(tc.cmd)
			if !errors.Is(err, ErrInvalid) || s != "" {
				t.Fatalf("Encode(%+v) = %q, %v; want ErrInvalid", tc.cmd, s, err)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message\n got %s\nwant %s", err, tc.msg)
			}
		})
	}
}

// TestRoundTrip encodes every direction and speed combination of OpPTZ
// and OpFI and every preset, and decodes them back.
func TestRoundTrip(t *testing.T) {
	dirs := []int{-1, 0, 1}
	for _, p := range dirs {
		for _, ti := range dirs {
			for _, z := range dirs {
				for _, addr := range []uint16{0, 1, 0x1FF, 4095} {
					c := Command{Op: OpPTZ, Address: addr, Pan: p, Tilt: ti, Zoom: z, PanSpeed: 0x7F, TiltSpeed: 0xFF, ZoomSpeed: 9}
					roundTrip(t, c)
					roundTrip(t, Command{Op: OpFI, Address: addr, Focus: p, Iris: ti, FocusSpeed: 3, IrisSpeed: 200})
				}
			}
		}
	}
	for n := 1; n <= 255; n++ {
		for _, op := range []Op{OpPresetSet, OpPresetCall, OpPresetDelete} {
			roundTrip(t, Command{Op: op, Address: 7, Preset: uint8(n)})
		}
		roundTrip(t, Command{Op: OpCruiseAdd, Group: uint8(n), Preset: uint8(n)})
	}
}

func roundTrip(t *testing.T, c Command) {
	t.Helper()
	s, err := Encode(c)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", c, err)
	}
	got, err := Decode(s)
	if err != nil {
		t.Fatalf("Decode(%s): %v", s, err)
	}
	if got != c {
		t.Fatalf("round trip of %+v via %s = %+v", c, s, got)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range cases {
		f.Add(tc.hex)
	}
	f.Add("")
	f.Add("A50F0182070100" + "3F")
	f.Add("a50f010800fa00b7")
	f.Add("A50F0103000000B8")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Decode(s)
		if err != nil {
			if c != (Command{}) {
				t.Fatalf("Decode(%q) failed (%v) but returned %+v", s, err, c)
			}
			return
		}
		e, err := Encode(c)
		if err != nil {
			t.Fatalf("Decode(%q) = %+v, which does not encode: %v", s, c, err)
		}
		c2, err := Decode(e)
		if err != nil || c2 != c {
			t.Fatalf("Decode(Encode(%+v)) = %+v, %v", c, c2, err)
		}
		// The bytes an instruction uses survive: same header, address
		// and instruction code.
		if !strings.EqualFold(e[4:8], s[4:8]) {
			t.Fatalf("Encode(Decode(%q)) = %s changed address or instruction", s, e)
		}
	})
}

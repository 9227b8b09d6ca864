// Package ptz encodes and decodes the PTZCmd field of a MANSCDP
// DeviceControl message: the front-end device control instruction of
// GB/T 28181-2016 Annex A.3 (kept by GB/T 28181-2022), 8 bytes written as
// 16 hexadecimal digits:
//
//	byte 1  0xA5 (instruction header)
//	byte 2  combination code 1: high nibble version (0), low nibble check
//	        = (byte1 high nibble + byte1 low nibble + byte2 high nibble) % 16
//	byte 3  address, low 8 bits
//	byte 4  instruction code
//	byte 5  data 1
//	byte 6  data 2
//	byte 7  combination code 2: high nibble data 3, low nibble address high 4 bits
//	byte 8  checksum = (byte1 + ... + byte7) % 256
//
// The package does no I/O and is safe for concurrent use.
package ptz

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header is byte 1 of every instruction.
const Header = 0xA5

// MaxAddress is the largest 12-bit device address.
const MaxAddress = 0xFFF

// Errors, wrapped with details by Encode and Decode.
var (
	// ErrFormat means the text is not 16 hexadecimal digits.
	ErrFormat = errors.New("PTZCmd must be 16 hexadecimal digits")
	// ErrHeader means byte 1 is not 0xA5.
	ErrHeader = errors.New("byte 1 must be A5")
	// ErrVersionCheck means the low nibble of byte 2 does not match.
	ErrVersionCheck = errors.New("byte 2 check nibble mismatch")
	// ErrChecksum means byte 8 is not the sum of bytes 1–7 mod 256.
	ErrChecksum = errors.New("byte 8 checksum mismatch")
	// ErrInstruction means byte 4 is not an instruction this package knows.
	ErrInstruction = errors.New("unknown instruction code")
	// ErrInvalid means a field is out of range or contradicts itself.
	ErrInvalid = errors.New("invalid command")
)

// Op is the kind of instruction (byte 4).
type Op uint8

// Instructions of GB/T 28181-2016 A.3.2–A.3.6.
const (
	// OpPTZ moves pan, tilt and zoom (A.3.2, codes 0x00–0x3F). A command
	// with Pan, Tilt and Zoom all 0 is Stop.
	OpPTZ Op = iota
	// OpFI drives focus and iris (A.3.3, codes 0x40–0x4F). All 0 stops.
	OpFI
	OpPresetSet    // 0x81 set preset Preset (A.3.4)
	OpPresetCall   // 0x82 call preset Preset
	OpPresetDelete // 0x83 delete preset Preset
	OpCruiseAdd    // 0x84 add preset Preset to cruise Group (A.3.5)
	OpCruiseDelete // 0x85 delete preset Preset from cruise Group; Preset 0 deletes the cruise
	OpCruiseSpeed  // 0x86 set cruise Group's speed to Value (12 bits)
	OpCruiseDwell  // 0x87 set cruise Group's dwell time to Value seconds (12 bits)
	OpCruiseStart  // 0x88 start cruise Group
	OpScanStart    // 0x89 data2 0x00: start auto scan Group (A.3.6)
	OpScanLeft     // 0x89 data2 0x01: set scan Group's left border here
	OpScanRight    // 0x89 data2 0x02: set scan Group's right border here
	OpScanSpeed    // 0x8A set scan Group's speed to Value (12 bits)
)

var opNames = [...]string{
	OpPTZ: "ptz", OpFI: "fi",
	OpPresetSet: "preset-set", OpPresetCall: "preset-call", OpPresetDelete: "preset-delete",
	OpCruiseAdd: "cruise-add", OpCruiseDelete: "cruise-delete", OpCruiseSpeed: "cruise-speed",
	OpCruiseDwell: "cruise-dwell", OpCruiseStart: "cruise-start",
	OpScanStart: "scan-start", OpScanLeft: "scan-left", OpScanRight: "scan-right", OpScanSpeed: "scan-speed",
}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Command is one decoded instruction. Which fields matter depends on Op;
// the others must be zero for Encode and are zero after Decode.
type Command struct {
	Op      Op
	Address uint16 // device address, 0–4095 (bytes 3 and 7)

	// OpPTZ. Directions are -1, 0 or +1.
	Pan       int   // -1 left, +1 right (bits 1 and 0)
	Tilt      int   // -1 down, +1 up (bits 2 and 3)
	Zoom      int   // -1 out/wide (bit 5), +1 in/tele (bit 4)
	PanSpeed  uint8 // byte 5
	TiltSpeed uint8 // byte 6
	ZoomSpeed uint8 // 0–15, high nibble of byte 7

	// OpFI. Directions are -1, 0 or +1.
	Focus      int   // -1 near (bit 1), +1 far (bit 0)
	Iris       int   // -1 close/smaller (bit 3), +1 open/larger (bit 2)
	FocusSpeed uint8 // byte 5
	IrisSpeed  uint8 // byte 6

	// Presets, cruise and scan.
	Preset uint8  // preset number, 1–255 (byte 6)
	Group  uint8  // cruise or scan group number (byte 5)
	Value  uint16 // 12-bit speed or dwell seconds: byte 6 low 8 bits, byte 7 high nibble high 4 bits
}

// Stop is the command that stops pan, tilt and zoom at address 0.
var Stop = Command{Op: OpPTZ}

// instruction codes, byte 4.
const (
	codePresetSet    = 0x81
	codePresetCall   = 0x82
	codePresetDelete = 0x83
	codeCruiseAdd    = 0x84
	codeCruiseDelete = 0x85
	codeCruiseSpeed  = 0x86
	codeCruiseDwell  = 0x87
	codeCruiseStart  = 0x88
	codeScan         = 0x89
	codeScanSpeed    = 0x8A
)

// Encode returns c as 16 upper-case hex digits, with version 0 and both
// checks filled in. It fails, wrapping ErrInvalid, when a field is out of
// range for c.Op or set although c.Op does not use it.
func Encode(c Command) (string, error) {
	b, err := encode(c)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("ptz: encode: %w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

func encode(c Command) ([8]byte, error) {
	var b [8]byte
	if c.Address > MaxAddress {
		return b, invalid("address %d exceeds %d", c.Address, MaxAddress)
	}
	var code, d1, d2, d3 byte
	// Which fields c.Op reads; the others must be zero.
	ptz, fi, preset, group, value := false, false, false, false, false
	switch c.Op {
	case OpPTZ:
		ptz = true
		var err error
		if code, err = bits(c.Pan, 0x01, 0x02, "Pan"); err != nil {
			return b, err
		}
		t, err := bits(c.Tilt, 0x08, 0x04, "Tilt")
		if err != nil {
			return b, err
		}
		z, err := bits(c.Zoom, 0x10, 0x20, "Zoom")
		if err != nil {
			return b, err
		}
		if c.ZoomSpeed > 15 {
			return b, invalid("ZoomSpeed %d exceeds 15", c.ZoomSpeed)
		}
		code |= t | z
		d1, d2, d3 = c.PanSpeed, c.TiltSpeed, c.ZoomSpeed
	case OpFI:
		fi = true
		f, err := bits(c.Focus, 0x01, 0x02, "Focus")
		if err != nil {
			return b, err
		}
		i, err := bits(c.Iris, 0x04, 0x08, "Iris")
		if err != nil {
			return b, err
		}
		code, d1, d2 = 0x40|f|i, c.FocusSpeed, c.IrisSpeed
	case OpPresetSet, OpPresetCall, OpPresetDelete:
		preset = true
		if c.Preset == 0 {
			return b, invalid("%v needs Preset 1-255", c.Op)
		}
		code, d2 = codePresetSet+byte(c.Op-OpPresetSet), c.Preset
	case OpCruiseAdd, OpCruiseDelete:
		preset, group = true, true
		if c.Op == OpCruiseAdd && c.Preset == 0 {
			return b, invalid("%v needs Preset 1-255", c.Op)
		}
		code, d1, d2 = codeCruiseAdd+byte(c.Op-OpCruiseAdd), c.Group, c.Preset
	case OpCruiseSpeed, OpCruiseDwell, OpScanSpeed:
		group, value = true, true
		if c.Value > 0xFFF {
			return b, invalid("%v Value %d exceeds 4095", c.Op, c.Value)
		}
		switch c.Op {
		case OpCruiseSpeed:
			code = codeCruiseSpeed
		case OpCruiseDwell:
			code = codeCruiseDwell
		default:
			code = codeScanSpeed
		}
		d1, d2, d3 = c.Group, byte(c.Value), byte(c.Value>>8)
	case OpCruiseStart:
		group = true
		code, d1 = codeCruiseStart, c.Group
	case OpScanStart, OpScanLeft, OpScanRight:
		group = true
		code, d1, d2 = codeScan, c.Group, byte(c.Op-OpScanStart)
	default:
		return b, invalid("unknown Op %v", c.Op)
	}
	switch {
	case !ptz && (c.Pan != 0 || c.Tilt != 0 || c.Zoom != 0 || c.PanSpeed != 0 || c.TiltSpeed != 0 || c.ZoomSpeed != 0):
		return b, invalid("%v does not use Pan, Tilt, Zoom or their speeds", c.Op)
	case !fi && (c.Focus != 0 || c.Iris != 0 || c.FocusSpeed != 0 || c.IrisSpeed != 0):
		return b, invalid("%v does not use Focus, Iris or their speeds", c.Op)
	case !preset && c.Preset != 0:
		return b, invalid("%v does not use Preset", c.Op)
	case !group && c.Group != 0:
		return b, invalid("%v does not use Group", c.Op)
	case !value && c.Value != 0:
		return b, invalid("%v does not use Value", c.Op)
	}
	b[0] = Header
	b[1] = versionByte(0)
	b[2] = byte(c.Address)
	b[3] = code
	b[4] = d1
	b[5] = d2
	b[6] = d3<<4 | byte(c.Address>>8)
	b[7] = sum(b)
	return b, nil
}

// bits maps a direction -1/0/+1 to the bit for +1 or -1.
func bits(dir int, plus, minus byte, name string) (byte, error) {
	switch dir {
	case 0:
		return 0, nil
	case 1:
		return plus, nil
	case -1:
		return minus, nil
	}
	return 0, invalid("%s must be -1, 0 or +1, got %d", name, dir)
}

// versionByte returns byte 2 for version v (0–15).
func versionByte(v byte) byte {
	check := (Header>>4 + Header&0x0F + v) % 16
	return v<<4 | check
}

func sum(b [8]byte) byte {
	var s byte
	for _, x := range b[:7] {
		s += x
	}
	return s
}

// Decode parses 16 hex digits (either case). It verifies the header, the
// check nibble of byte 2 (for any version) and the checksum of byte 8, and
// reports errors wrapping ErrFormat, ErrHeader, ErrVersionCheck,
// ErrChecksum, ErrInstruction or ErrInvalid. Bytes that an instruction
// does not use are ignored, as devices fill them inconsistently.
func Decode(s string) (Command, error) {
	var c Command
	if len(s) != 16 {
		return c, fmt.Errorf("ptz: decode %s: %w, got %d characters", quote(s), ErrFormat, len(s))
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return c, fmt.Errorf("ptz: decode %s: %w: %v", quote(s), ErrFormat, err)
	}
	if b[0] != Header {
		return c, fmt.Errorf("ptz: decode %s: %w, got %02X", s, ErrHeader, b[0])
	}
	if want := versionByte(b[1] >> 4); b[1] != want {
		return c, fmt.Errorf("ptz: decode %s: %w: byte 2 is %02X, want %02X for version %d",
			s, ErrVersionCheck, b[1], want, b[1]>>4)
	}
	if want := sum(b); b[7] != want {
		return c, fmt.Errorf("ptz: decode %s: %w: byte 8 is %02X, want %02X", s, ErrChecksum, b[7], want)
	}
	c.Address = uint16(b[6]&0x0F)<<8 | uint16(b[2])
	code, d1, d2, d3 := b[3], b[4], b[5], b[6]>>4
	bad := func(format string, a ...any) (Command, error) {
		return Command{}, fmt.Errorf("ptz: decode %s: %w: %s", s, ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case code&0xC0 == 0x00:
		if code&0x03 == 0x03 || code&0x0C == 0x0C || code&0x30 == 0x30 {
			return bad("instruction %02X sets opposite directions together", code)
		}
		c.Op = OpPTZ
		c.Pan = dir(code, 0x01, 0x02)
		c.Tilt = dir(code, 0x08, 0x04)
		c.Zoom = dir(code, 0x10, 0x20)
		c.PanSpeed, c.TiltSpeed, c.ZoomSpeed = d1, d2, d3
	case code&0xF0 == 0x40:
		if code&0x03 == 0x03 || code&0x0C == 0x0C {
			return bad("instruction %02X sets opposite directions together", code)
		}
		c.Op = OpFI
		c.Focus = dir(code, 0x01, 0x02)
		c.Iris = dir(code, 0x04, 0x08)
		c.FocusSpeed, c.IrisSpeed = d1, d2
	case code >= codePresetSet && code <= codePresetDelete:
		if d2 == 0 {
			return bad("preset number (byte 6) must be 1-255, got 0")
		}
		c.Op = OpPresetSet + Op(code-codePresetSet)
		c.Preset = d2
	case code == codeCruiseAdd || code == codeCruiseDelete:
		if code == codeCruiseAdd && d2 == 0 {
			return bad("preset number (byte 6) must be 1-255, got 0")
		}
		c.Op = OpCruiseAdd + Op(code-codeCruiseAdd)
		c.Group, c.Preset = d1, d2
	case code == codeCruiseSpeed || code == codeCruiseDwell || code == codeScanSpeed:
		switch code {
		case codeCruiseSpeed:
			c.Op = OpCruiseSpeed
		case codeCruiseDwell:
			c.Op = OpCruiseDwell
		default:
			c.Op = OpScanSpeed
		}
		c.Group, c.Value = d1, uint16(d3)<<8|uint16(d2)
	case code == codeCruiseStart:
		c.Op, c.Group = OpCruiseStart, d1
	case code == codeScan:
		if d2 > 2 {
			return bad("auto scan (89) byte 6 must be 00 start, 01 left border or 02 right border, got %02X", d2)
		}
		c.Op, c.Group = OpScanStart+Op(d2), d1
	default:
		return Command{}, fmt.Errorf("ptz: decode %s: %w %02X", s, ErrInstruction, code)
	}
	return c, nil
}

func dir(code, plus, minus byte) int {
	switch {
	case code&plus != 0:
		return 1
	case code&minus != 0:
		return -1
	}
	return 0
}

func quote(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

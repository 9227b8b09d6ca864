package devsim

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// Commands recorded in Control.Cmd.
const (
	CmdPTZ          = "ptz"           // pan, tilt, zoom; all three 0 is a stop
	CmdFocusIris    = "focus_iris"    // focus and iris (A.3.3); all 0 is a stop
	CmdPresetSet    = "preset_set"    // A.3.4
	CmdPresetCall   = "preset_call"   //
	CmdPresetDelete = "preset_delete" //
	CmdCruise       = "cruise"        // A.3.5, instructions 0x84–0x88 (Raw has the details)
	CmdScan         = "scan"          // A.3.6, instructions 0x89–0x8A
	CmdIFrame       = "iframe"        // IFameCmd Send: live streams send an IDR next
	CmdReboot       = "reboot"        // TeleBoot Boot: the device goes offline for RebootDelay
	CmdRecordStart  = "record_start"  // RecordCmd Record
	CmdRecordStop   = "record_stop"   // RecordCmd StopRecord
	CmdGuardSet     = "guard_set"     // GuardCmd SetGuard
	CmdGuardReset   = "guard_reset"   // GuardCmd ResetGuard
	CmdAlarmReset   = "alarm_reset"   // AlarmCmd ResetAlarm
	CmdHomePosition = "home_position" // HomePosition (GB/T 28181-2016 A.2.3.1.8)
)

// Control is one DeviceControl command a device received (GB/T
// 28181-2016 A.2.3), decoded. Directions are -1, 0 or +1.
type Control struct {
	Time time.Time `json:"time"` // when it arrived, by Config.Now
	Cmd  string    `json:"cmd"`  // one of the Cmd constants
	// Pan is -1 left, +1 right; Tilt +1 up, -1 down; Zoom +1 in (tele),
	// -1 out (wide). Speeds are bytes 5 and 6 (0–255) and the high nibble
	// of byte 7 (0–15) of the PTZCmd.
	Pan       int `json:"pan"`
	Tilt      int `json:"tilt"`
	Zoom      int `json:"zoom"`
	PanSpeed  int `json:"pan_speed"`
	TiltSpeed int `json:"tilt_speed"`
	ZoomSpeed int `json:"zoom_speed"`
	// Focus is +1 far, -1 near; Iris +1 open, -1 close (CmdFocusIris).
	Focus int `json:"focus,omitempty"`
	Iris  int `json:"iris,omitempty"`
	// Preset is the preset number of preset commands and of an enabled
	// HomePosition.
	Preset int `json:"preset,omitempty"`
	// Raw is the PTZCmd as sent, or the value of the command element.
	Raw string `json:"raw,omitempty"`
}

// Controls returns the commands a channel (or a device's own code)
// received, oldest first; the last 1,000 are kept.
func (s *Sim) Controls(channelID string) []Control {
	d := s.byID[channelID]
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.state[d.canonical(channelID)]; st != nil {
		return append([]Control(nil), st.controls...)
	}
	return nil
}

// simpleCommands are the DeviceControl elements with a fixed vocabulary
// (GB/T 28181-2016 A.2.3.1), in the order they are read, and whether the
// device answers them with a Response (RecordCmd, GuardCmd, AlarmCmd).
var simpleCommands = []struct {
	elem   string
	values map[string]string // element text -> Cmd
	any    string            // Cmd for any text (AlarmCmd)
	want   string            // for the error
	answer bool
}{
	{elem: "TeleBoot", values: map[string]string{"Boot": CmdReboot}, want: "Boot"},
	{elem: "RecordCmd", values: map[string]string{"Record": CmdRecordStart, "StopRecord": CmdRecordStop}, want: "Record or StopRecord", answer: true},
	{elem: "GuardCmd", values: map[string]string{"SetGuard": CmdGuardSet, "ResetGuard": CmdGuardReset}, want: "SetGuard or ResetGuard", answer: true},
	{elem: "AlarmCmd", any: CmdAlarmReset, answer: true},
	{elem: "IFameCmd", values: map[string]string{"Send": CmdIFrame}, want: "Send"},
}

// errPTZ wraps the reasons a PTZCmd is refused.
var errPTZ = errors.New("PTZCmd")

// decodePTZ decodes a PTZCmd, the 8-byte front-end instruction of GB/T
// 28181-2016 A.3 written as 16 hex digits:
//
//	byte 1  A5
//	byte 2  high nibble version, low nibble (A + 5 + version) mod 16
//	byte 3  address, low 8 bits
//	byte 4  instruction
//	byte 5  data 1 (pan speed; group number)
//	byte 6  data 2 (tilt speed; preset number)
//	byte 7  high nibble data 3 (zoom speed), low nibble address high 4 bits
//	byte 8  (byte 1 + ... + byte 7) mod 256
//
// Instruction bits of A.3.2 (pan, tilt, zoom): bit 0 right, 1 left, 2
// down, 3 up, 4 zoom in, 5 zoom out, bits 6 and 7 zero; of A.3.3 (0x4X):
// bit 0 focus far, 1 near, 2 iris open, 3 close; A.3.4 presets 0x81 set,
// 0x82 call, 0x83 delete; A.3.5 cruise 0x84–0x88; A.3.6 scan 0x89–0x8A.
func decodePTZ(s string) (Control, error) {
	c := Control{Raw: s}
	var b [8]byte
	if len(s) != 16 {
		return c, fmt.Errorf("%w %q: want 16 hex digits, got %d characters", errPTZ, trunc(s), len(s))
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return c, fmt.Errorf("%w %q: not hex", errPTZ, s)
	}
	if b[0] != 0xA5 {
		return c, fmt.Errorf("%w %s: byte 1 is %02X, want A5", errPTZ, s, b[0])
	}
	if want := (0xA + 0x5 + b[1]>>4) & 0x0F; b[1]&0x0F != want {
		return c, fmt.Errorf("%w %s: byte 2 check nibble is %X, want %X", errPTZ, s, b[1]&0x0F, want)
	}
	var sum byte
	for _, v := range b[:7] {
		sum += v
	}
	if b[7] != sum {
		return c, fmt.Errorf("%w %s: checksum byte 8 is %02X, want %02X", errPTZ, s, b[7], sum)
	}
	op := b[3]
	pair := func(plus, minus byte) (int, error) {
		switch {
		case op&plus != 0 && op&minus != 0:
			return 0, fmt.Errorf("%w %s: instruction %02X sets opposite directions", errPTZ, s, op)
		case op&plus != 0:
			return 1, nil
		case op&minus != 0:
			return -1, nil
		}
		return 0, nil
	}
	var err error
	switch {
	case op&0xC0 == 0:
		c.Cmd = CmdPTZ
		if c.Pan, err = pair(0x01, 0x02); err != nil {
			return c, err
		}
		if c.Tilt, err = pair(0x08, 0x04); err != nil {
			return c, err
		}
		if c.Zoom, err = pair(0x10, 0x20); err != nil {
			return c, err
		}
		c.PanSpeed, c.TiltSpeed, c.ZoomSpeed = int(b[4]), int(b[5]), int(b[6]>>4)
	case op&0xF0 == 0x40:
		c.Cmd = CmdFocusIris
		if c.Focus, err = pair(0x01, 0x02); err != nil {
			return c, err
		}
		if c.Iris, err = pair(0x04, 0x08); err != nil {
			return c, err
		}
	case op >= 0x81 && op <= 0x83:
		c.Cmd = [...]string{CmdPresetSet, CmdPresetCall, CmdPresetDelete}[op-0x81]
		c.Preset = int(b[5])
		if c.Preset == 0 {
			return c, fmt.Errorf("%w %s: preset number (byte 6) is 0, want 1-255", errPTZ, s)
		}
	case op >= 0x84 && op <= 0x88:
		c.Cmd = CmdCruise
		c.Preset = int(b[5])
	case op == 0x89 || op == 0x8A:
		c.Cmd = CmdScan
	default:
		return c, fmt.Errorf("%w %s: unknown instruction %02X", errPTZ, s, op)
	}
	return c, nil
}

// onControl carries out a DeviceControl (GB/T 28181-2016 §9.3, A.2.3):
// 200 OK, the command recorded, and a Response MESSAGE for the commands
// that want one (RecordCmd, GuardCmd, AlarmCmd, HomePosition; not
// PTZCmd, TeleBoot or IFameCmd). A command it cannot read is answered 400
// with the reason. DeviceConfig is answered Result OK and not applied.
func (s *Sim) onControl(d *device, m *manscdp.Message, req *sip.Request, tx sip.ServerTransaction) {
	id := d.target(m)
	switch m.CmdType {
	case cmdDeviceControl:
	case cmdDeviceConfig:
		respond(tx, req, 200, "OK")
		s.respondResult(d, cmdDeviceConfig, m.SN, id)
		return
	default:
		respond(tx, req, 200, "OK")
		return
	}
	now := s.cfg.Now()
	var got []Control
	var answer, reboot bool
	bad := func(format string, a ...any) {
		respond(tx, req, 400, "Bad Request: "+fmt.Sprintf(format, a...))
	}
	if v, ok := m.Text("PTZCmd"); ok {
		c, err := decodePTZ(v)
		if err != nil {
			bad("%v", err)
			return
		}
		got = append(got, c)
	}
	for _, e := range simpleCommands {
		v, ok := m.Text(e.elem)
		if !ok {
			continue
		}
		cmd, known := e.values[v]
		if e.any != "" {
			cmd, known = e.any, true
		}
		if !known {
			bad("%s %q: want %s", e.elem, trunc(v), e.want)
			return
		}
		got = append(got, Control{Cmd: cmd, Raw: v})
		answer = answer || e.answer
		reboot = reboot || cmd == CmdReboot
	}
	if _, ok := m.Text("HomePosition"); ok {
		enabled, _ := m.Text("HomePosition/Enabled")
		c := Control{Cmd: CmdHomePosition, Raw: "Enabled=" + enabled}
		if enabled == "1" {
			p, _ := m.Text("HomePosition/PresetIndex")
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 255 {
				bad("HomePosition/PresetIndex %q: want 1-255", trunc(p))
				return
			}
			c.Preset = n
		}
		got, answer = append(got, c), true
	}
	if len(got) == 0 {
		respond(tx, req, 200, "OK")
		s.log.Info("DeviceControl without a known command", "device", d.id, "body", trunc(string(m.Raw)))
		return
	}
	// Recorded before the 200 OK: what the platform sends next sees it.
	d.mu.Lock()
	st := d.stateLocked(id)
	if st != nil {
		for i := range got {
			c := &got[i]
			c.Time = now
			switch c.Cmd {
			case CmdPresetSet:
				if _, ok := st.presets[c.Preset]; !ok {
					st.presets[c.Preset] = fmt.Sprintf("预置位%d", c.Preset)
				}
			case CmdPresetDelete:
				delete(st.presets, c.Preset)
			case CmdRecordStart, CmdRecordStop:
				st.recording = c.Cmd == CmdRecordStart
			case CmdGuardSet, CmdGuardReset:
				st.guard = c.Cmd == CmdGuardSet
			}
			if len(st.controls) >= maxControls {
				st.controls = append(st.controls[:0], st.controls[1:]...)
			}
			st.controls = append(st.controls, *c)
		}
	}
	d.mu.Unlock()
	respond(tx, req, 200, "OK")
	for _, c := range got {
		s.log.Info("control", "device", d.id, "target", id, "cmd", c.Cmd, "raw", c.Raw)
		if c.Cmd == CmdIFrame {
			s.forceKeyframe(d, id)
		}
	}
	if answer {
		s.respondResult(d, cmdDeviceControl, m.SN, id)
	}
	if reboot {
		select {
		case d.reboot <- struct{}{}:
		default:
		}
	}
}

// respondResult sends a Response with Result OK to the platform.
func (s *Sim) respondResult(d *device, cmd string, sn int, id string) {
	b, err := d.body(&resultBody{XMLName: xml.Name{Local: "Response"}, CmdType: cmd, SN: sn, DeviceID: id, Result: resultOK})
	if err != nil {
		s.log.Warn("encode response", "device", d.id, "cmd", cmd, "err", err)
		return
	}
	s.deliver(d, cmd, [][]byte{b}, nil)
}

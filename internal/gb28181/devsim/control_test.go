package devsim

import (
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/ptz"
	"github.com/xueliang/xueliang/internal/gb28181/sipserver"
	"github.com/xueliang/xueliang/internal/sim"
)

// ptzCases are commands encoded by the platform's ptz package and what the
// device must decode from them.
var ptzCases = []struct {
	name string
	cmd  ptz.Command
	want Control
}{
	{"right fast", ptz.Command{Op: ptz.OpPTZ, Pan: 1, PanSpeed: 200}, Control{Cmd: CmdPTZ, Pan: 1, PanSpeed: 200}},
	{"left", ptz.Command{Op: ptz.OpPTZ, Pan: -1, PanSpeed: 1}, Control{Cmd: CmdPTZ, Pan: -1, PanSpeed: 1}},
	{"up", ptz.Command{Op: ptz.OpPTZ, Tilt: 1, TiltSpeed: 50}, Control{Cmd: CmdPTZ, Tilt: 1, TiltSpeed: 50}},
	{"down left", ptz.Command{Op: ptz.OpPTZ, Tilt: -1, Pan: -1, PanSpeed: 10, TiltSpeed: 20}, Control{Cmd: CmdPTZ, Pan: -1, Tilt: -1, PanSpeed: 10, TiltSpeed: 20}},
	{"zoom in", ptz.Command{Op: ptz.OpPTZ, Zoom: 1, ZoomSpeed: 15}, Control{Cmd: CmdPTZ, Zoom: 1, ZoomSpeed: 15}},
	{"zoom out", ptz.Command{Op: ptz.OpPTZ, Zoom: -1, ZoomSpeed: 3}, Control{Cmd: CmdPTZ, Zoom: -1, ZoomSpeed: 3}},
	{"stop", ptz.Stop, Control{Cmd: CmdPTZ}},
	{"address", ptz.Command{Op: ptz.OpPTZ, Pan: 1, PanSpeed: 9, Address: 0xABC}, Control{Cmd: CmdPTZ, Pan: 1, PanSpeed: 9}},
	{"focus far", ptz.Command{Op: ptz.OpFI, Focus: 1, FocusSpeed: 9}, Control{Cmd: CmdFocusIris, Focus: 1}},
	{"iris close", ptz.Command{Op: ptz.OpFI, Iris: -1}, Control{Cmd: CmdFocusIris, Iris: -1}},
	{"preset set", ptz.Command{Op: ptz.OpPresetSet, Preset: 7}, Control{Cmd: CmdPresetSet, Preset: 7}},
	{"preset call", ptz.Command{Op: ptz.OpPresetCall, Preset: 255}, Control{Cmd: CmdPresetCall, Preset: 255}},
	{"preset delete", ptz.Command{Op: ptz.OpPresetDelete, Preset: 7}, Control{Cmd: CmdPresetDelete, Preset: 7}},
	{"cruise start", ptz.Command{Op: ptz.OpCruiseStart, Group: 2}, Control{Cmd: CmdCruise}},
	{"scan", ptz.Command{Op: ptz.OpScanStart, Group: 1}, Control{Cmd: CmdScan}},
}

func TestDecodePTZ(t *testing.T) {
	for _, tc := range ptzCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ptz.Encode(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodePTZ(s)
			tc.want.Raw = s
			if err != nil || got != tc.want {
				t.Errorf("decode %s: %+v %v, want %+v", s, got, err, tc.want)
			}
			if got, err := decodePTZ(strings.ToLower(s)); err != nil || got.Cmd != tc.want.Cmd {
				t.Errorf("lower case %s: %+v %v", s, got, err)
			}
		})
	}
	for s, why := range map[string]string{
		"A50F0100":         "16 hex digits",
		"A50F01XX00000000": "hex",
		"B50F010000000000": "A5",
		"A5000100000000A6": "check nibble",
		"A50F0100000000FF": "checksum",
		"A50F0103000000B8": "opposite",
		"A50F018100000036": "preset number",
		"A50F01C000000075": "unknown instruction",
	} {
		if _, err := decodePTZ(s); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want %q", s, err, why)
		}
	}
}

// TestDeviceControl sends the platform's DeviceControl bodies to a
// channel and reads back what the device recorded and answered.
func TestDeviceControl(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices, c.ChannelsPerDevice = 1, 2 })
	waitOnline(t, p, s, 5*time.Second)
	dev := s.DeviceIDs()[0]
	ch := s.Channels(dev)[1]
	addr := deviceAddr(t, p, dev)
	pr := newPeer(t)

	presets := func(sn int) []manscdp.Preset {
		t.Helper()
		pr.send(t, addr, dev, manscdp.PresetQuery(sn, ch))
		pl, err := nextMsg(t, p, manscdp.CmdPresetQuery, 5*time.Second).PresetList()
		if err != nil || pl.DeviceID != ch || pl.Num != len(pl.Items) {
			t.Fatalf("presets %+v %v", pl, err)
		}
		return pl.Items
	}
	if ps := presets(1); len(ps) != 2 || ps[0].PresetID != "1" || ps[0].PresetName != "大门" || ps[1].PresetID != "2" {
		t.Errorf("initial presets %+v", ps)
	}

	for i, tc := range ptzCases {
		s, _ := ptz.Encode(tc.cmd)
		pr.send(t, addr, dev, manscdp.PTZControl(10+i, ch, s, 3))
	}
	got := s.Controls(ch)
	if len(got) != len(ptzCases) {
		t.Fatalf("%d controls recorded, want %d: %+v", len(got), len(ptzCases), got)
	}
	for i, tc := range ptzCases {
		c := got[i]
		if c.Time.IsZero() {
			t.Errorf("%s: no time", tc.name)
		}
		c.Time, c.Raw = time.Time{}, ""
		if c != tc.want {
			t.Errorf("%s: recorded %+v, want %+v", tc.name, c, tc.want)
		}
	}
	// Preset 7 was set, then deleted.
	if ps := presets(2); len(ps) != 2 {
		t.Errorf("presets after set and delete %+v", ps)
	}
	cmd, _ := ptz.Encode(ptz.Command{Op: ptz.OpPresetSet, Preset: 9})
	pr.send(t, addr, dev, manscdp.PTZControl(40, ch, cmd, 0))
	if ps := presets(3); len(ps) != 3 || ps[2].PresetID != "9" {
		t.Errorf("presets after set %+v", ps)
	}
	if code, reason := pr.sendCode(t, addr, dev, manscdp.PTZControl(41, ch, "A50F0100000000FF", 0)); code != 400 || !strings.Contains(reason, "checksum") {
		t.Errorf("bad PTZCmd: %d %s", code, reason)
	}

	// Commands answered with a Response.
	for _, tc := range []struct {
		body any
		cmd  string
	}{
		{manscdp.RecordControl(50, ch, true), CmdRecordStart},
		{manscdp.RecordControl(51, ch, false), CmdRecordStop},
		{manscdp.GuardControl(52, ch, true), CmdGuardSet},
		{manscdp.GuardControl(53, ch, false), CmdGuardReset},
		{[]byte(`<?xml version="1.0" encoding="GB2312"?><Control><CmdType>DeviceControl</CmdType><SN>54</SN><DeviceID>` + ch +
			`</DeviceID><HomePosition><Enabled>1</Enabled><ResetTime>30</ResetTime><PresetIndex>2</PresetIndex></HomePosition></Control>`), CmdHomePosition},
	} {
		pr.send(t, addr, dev, tc.body)
		m := nextMsg(t, p, manscdp.CmdDeviceControl, 5*time.Second)
		if r, _ := m.Text("Result"); m.Root != manscdp.RootResponse || r != "OK" || m.DeviceID != ch {
			t.Errorf("%s: answer %s Result %q", tc.cmd, m, r)
		}
		if cs := s.Controls(ch); cs[len(cs)-1].Cmd != tc.cmd {
			t.Errorf("recorded %+v, want %s", cs[len(cs)-1], tc.cmd)
		}
	}
	if cs := s.Controls(ch); cs[len(cs)-1].Preset != 2 {
		t.Errorf("home position %+v", cs[len(cs)-1])
	}
	pr.send(t, addr, dev, manscdp.KeyFrameControl(60, ch))
	if cs := s.Controls(ch); cs[len(cs)-1].Cmd != CmdIFrame {
		t.Errorf("recorded %+v", cs[len(cs)-1])
	}
	if s.Controls(s.Channels(dev)[0]) != nil || s.Controls("nope") != nil {
		t.Error("controls of another channel")
	}

	// ConfigDownload BasicParam.
	pr.send(t, addr, dev, manscdp.ConfigDownloadQuery(70, dev))
	m := nextMsg(t, p, manscdp.CmdConfigDownload, 5*time.Second)
	hb, _ := m.Text("BasicParam/HeartBeatInterval")
	count, _ := m.Text("BasicParam/HeartBeatCount")
	exp, _ := m.Text("BasicParam/Expiration")
	name, _ := m.Text("BasicParam/Name")
	if r, _ := m.Text("Result"); r != "OK" || hb != "1" || count != "3" || exp != "3600" || name != "模拟设备 1" {
		t.Errorf("config %q: Result %q interval %q count %q expiration %q name %q", m.Raw, r, hb, count, exp, name)
	}
}

// TestTeleBoot: the device goes silent (the platform marks it offline)
// and registers again.
func TestTeleBoot(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, 100*time.Millisecond)
	s := startSim(t, p, func(c *Config) {
		c.Devices, c.ChannelsPerDevice = 1, 1
		c.KeepaliveInterval = 100 * time.Millisecond
		c.RebootDelay = 800 * time.Millisecond
	})
	waitOnline(t, p, s, 5*time.Second)
	dev := s.DeviceIDs()[0]
	addr := deviceAddr(t, p, dev)
	pr := newPeer(t)
	pr.send(t, addr, dev, manscdp.TeleBootControl(1, dev))
	if cs := s.Controls(dev); len(cs) != 1 || cs[0].Cmd != CmdReboot {
		t.Errorf("controls %+v", cs)
	}
	for _, want := range []sipserver.State{sipserver.StateOffline, sipserver.StateOnline} {
		select {
		case e := <-p.events:
			if e.State != want {
				t.Fatalf("event %+v, want %s", e, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event; stats %+v", want, s.Stats())
		}
	}
	waitFor(t, 2*time.Second, "registered again", func() bool {
		st := s.Stats()
		return st.Registrations == 2 && st.Registered == 1
	})
	if err := s.RaiseAlarm(dev, Alarm{Priority: 1, Method: 2}); err != nil {
		t.Errorf("alarm after reboot: %v", err)
	}
}

// TestCivilCodeAndClips: the catalog's CivilCode, and the embedded H.264
// clips given to the channels in turn.
func TestCivilCodeAndClips(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices, c.ChannelsPerDevice, c.CivilCode = 1, 5, "441821101" })
	waitOnline(t, p, s, 5*time.Second)
	dev := s.DeviceIDs()[0]
	newPeer(t).send(t, deviceAddr(t, p, dev), dev, manscdp.CatalogQuery(1, dev))
	cat, err := nextMsg(t, p, manscdp.CmdCatalog, 5*time.Second).Catalog()
	if err != nil || cat.Items[0].CivilCode != "441821101" {
		t.Errorf("catalog %+v %v", cat, err)
	}
	if len(s.clips) != 4 {
		t.Fatalf("%d clips, want the 4 embedded H.264 ones", len(s.clips))
	}
	d := s.byID[dev]
	seen := map[*clipData]bool{}
	for j := range 4 {
		seen[d.clip(j)] = true
		if d.clip(j).codec != sim.CodecH264 {
			t.Errorf("channel %d: %v", j, d.clip(j).codec)
		}
	}
	if len(seen) != 4 || d.clip(4) != d.clip(0) {
		t.Errorf("clips not given in turn")
	}
}

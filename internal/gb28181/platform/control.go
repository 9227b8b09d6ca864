package platform

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/ptz"
)

// Control commands of GB/T 28181-2016 §9.3 (DeviceControl), sent to a
// channel through its device.

// Errors of control commands and queries.
var (
	// ErrBadCommand means a control request was malformed.
	ErrBadCommand = errors.New("platform: bad command")
	// ErrRefused means the device answered with a Result other than OK.
	ErrRefused = errors.New("platform: the device refused")
)

// PTZ moves a channel's camera: pan -1 left / +1 right, tilt -1 down / +1
// up, zoom -1 out / +1 in, speeds 0–255 (zoom 0–15); all directions 0
// stops. The device answers nothing but its 200 OK.
func (p *Platform) PTZ(ctx context.Context, device, channel string, pan, tilt, zoom int, speed uint8) error {
	zs := speed >> 4
	if zoom != 0 && zs == 0 {
		zs = 1
	}
	cmd := ptz.Command{Op: ptz.OpPTZ, Pan: pan, Tilt: tilt, Zoom: zoom}
	if pan != 0 {
		cmd.PanSpeed = speed
	}
	if tilt != 0 {
		cmd.TiltSpeed = speed
	}
	if zoom != 0 {
		cmd.ZoomSpeed = zs
	}
	return p.ptzCommand(ctx, device, channel, cmd)
}

// Preset sets, calls or deletes preset n (1–255) of a channel; op is
// "set", "call" or "delete".
func (p *Platform) Preset(ctx context.Context, device, channel, op string, n int) error {
	if n < 1 || n > 255 {
		return fmt.Errorf("%w: preset must be 1-255, got %d", ErrBadCommand, n)
	}
	var o ptz.Op
	switch op {
	case "set":
		o = ptz.OpPresetSet
	case "call":
		o = ptz.OpPresetCall
	case "delete":
		o = ptz.OpPresetDelete
	default:
		return fmt.Errorf("%w: preset action must be set, call or delete, got %q", ErrBadCommand, op)
	}
	return p.ptzCommand(ctx, device, channel, ptz.Command{Op: o, Preset: uint8(n)})
}

func (p *Platform) ptzCommand(ctx context.Context, device, channel string, c ptz.Command) error {
	s, err := ptz.Encode(c)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	return p.send(ctx, device, channel, manscdp.PTZControl(p.nextSN(), channel, s, 5))
}

// Command sends a simple DeviceControl: "iframe", "reboot",
// "record_start", "record_stop", "guard_set", "guard_reset". Record and
// guard wait for the device's Response (GB/T 28181-2016 A.2.3: it carries
// a Result) up to the context's deadline.
func (p *Platform) Command(ctx context.Context, device, channel, cmd string) error {
	sn := p.nextSN()
	var c *manscdp.Control
	wait := false
	switch cmd {
	case "iframe":
		c = manscdp.KeyFrameControl(sn, channel)
	case "reboot":
		c = manscdp.TeleBootControl(sn, device)
		channel = device
	case "record_start", "record_stop":
		c, wait = manscdp.RecordControl(sn, channel, cmd == "record_start"), true
	case "guard_set", "guard_reset":
		c, wait = manscdp.GuardControl(sn, channel, cmd == "guard_set"), true
	default:
		return fmt.Errorf("%w: unknown command %q (iframe, reboot, record_start, record_stop, guard_set, guard_reset)", ErrBadCommand, cmd)
	}
	if !wait {
		return p.send(ctx, device, channel, c)
	}
	ctx, cancel := withDefaultTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := p.ask(ctx, device, channel, sn, c)
	if err != nil {
		return err
	}
	if r, ok := m.Text("Result"); ok && r != "" && r != manscdp.StatusOK {
		return fmt.Errorf("%w %s: device %s answered Result %s", ErrRefused, cmd, device, r)
	}
	return nil
}

// Preset is a preset position a device knows.
type Preset struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// Presets asks a channel for its presets.
func (p *Platform) Presets(ctx context.Context, device, channel string) ([]Preset, error) {
	ctx, cancel := withDefaultTimeout(ctx, 5*time.Second)
	defer cancel()
	sn := p.nextSN()
	m, err := p.ask(ctx, device, channel, sn, manscdp.PresetQuery(sn, channel))
	if err != nil {
		return nil, err
	}
	list, err := m.PresetList()
	if err != nil {
		return nil, fmt.Errorf("platform: preset list of %s: %w", channel, err)
	}
	out := make([]Preset, 0, len(list.Items))
	for _, it := range list.Items {
		n, _ := strconv.Atoi(it.PresetID)
		out = append(out, Preset{ID: n, Name: trimName(it.PresetName)})
	}
	return out, nil
}

// Recording is one recording a device holds (RecordInfo item).
type Recording struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Type     string    `json:"type"` // time, alarm, manual
	Name     string    `json:"name,omitempty"`
	FilePath string    `json:"file_path,omitempty"`
	Size     int64     `json:"size,omitempty"`
}

// DeviceRecordings is the answer to a RecordInfo query.
type DeviceRecordings struct {
	Items []Recording `json:"items"`
	// Complete is false when the device did not send every message it
	// announced (SumNum) before the deadline.
	Complete bool `json:"complete"`
}

// Recordings asks a device which recordings a channel has between start
// and end (GB/T 28181-2016 §9.5, RecordInfo), gathering multi-message
// answers. Items are sorted by start.
func (p *Platform) Recordings(ctx context.Context, device, channel string, start, end time.Time) (DeviceRecordings, error) {
	ctx, cancel := withDefaultTimeout(ctx, 10*time.Second)
	defer cancel()
	sn := p.nextSN()
	// Responses carry the channel's code as DeviceID.
	ch, done := waitFor(p, p.records, waitKey{channel, sn})
	defer done()
	if err := p.send(ctx, device, channel, manscdp.RecordInfoQuery(sn, channel, start.In(p.cfg.Location), end.In(p.cfg.Location), "all", "")); err != nil {
		return DeviceRecordings{}, err
	}
	var c *manscdp.Collection
	select {
	case c = <-ch:
	case <-ctx.Done():
		// Take what arrived.
		var ok bool
		if c, ok = p.asm.Finish(manscdp.CmdRecordInfo, channel, sn); !ok {
			return DeviceRecordings{}, fmt.Errorf("platform: device %s sent no RecordInfo for %s: %w", device, channel, ctx.Err())
		}
	}
	out := DeviceRecordings{Complete: c.Complete, Items: make([]Recording, 0, len(c.Records))}
	for _, r := range c.Records {
		rs, err1 := manscdp.ParseTime(r.StartTime, p.cfg.Location)
		re, err2 := manscdp.ParseTime(r.EndTime, p.cfg.Location)
		if err1 != nil || err2 != nil || !re.After(rs) {
			continue
		}
		out.Items = append(out.Items, Recording{Start: rs.UTC(), End: re.UTC(), Type: r.Type,
			Name: trimName(r.Name), FilePath: r.FilePath, Size: r.FileSize})
	}
	sort.Slice(out.Items, func(i, j int) bool { return out.Items[i].Start.Before(out.Items[j].Start) })
	return out, nil
}

// BasicParam is a device's basic configuration (ConfigDownload
// BasicParam, GB/T 28181-2016 A.2.6.9).
type BasicParam struct {
	Name              string `json:"name"`
	DeviceID          string `json:"device_id"`
	SIPServerID       string `json:"sip_server_id"`
	SIPServerIP       string `json:"sip_server_ip"`
	SIPServerPort     int    `json:"sip_server_port"`
	DomainName        string `json:"domain_name"`
	Expiration        int    `json:"expiration"`         // registration lifetime, s
	HeartBeatInterval int    `json:"heartbeat_interval"` // keepalive period, s
	HeartBeatCount    int    `json:"heartbeat_count"`    // missed keepalives before offline
}

// Config asks a device for its basic configuration.
func (p *Platform) Config(ctx context.Context, device string) (BasicParam, error) {
	ctx, cancel := withDefaultTimeout(ctx, 5*time.Second)
	defer cancel()
	sn := p.nextSN()
	m, err := p.ask(ctx, device, "", sn, manscdp.ConfigDownloadQuery(sn, device))
	if err != nil {
		return BasicParam{}, err
	}
	if r, ok := m.Text("Result"); ok && r != "" && r != manscdp.StatusOK {
		return BasicParam{}, fmt.Errorf("%w ConfigDownload: device %s answered Result %s", ErrRefused, device, r)
	}
	str := func(name string) string { v, _ := m.Text("BasicParam/" + name); return trimName(v) }
	num := func(name string) int { n, _ := strconv.Atoi(str(name)); return n }
	if _, ok := m.Text("BasicParam"); !ok {
		return BasicParam{}, fmt.Errorf("%w ConfigDownload: device %s answered without BasicParam", ErrRefused, device)
	}
	return BasicParam{
		Name: str("Name"), DeviceID: str("DeviceID"), SIPServerID: str("SIPServerID"), SIPServerIP: str("SIPServerIP"),
		SIPServerPort: num("SIPServerPort"), DomainName: str("DomainName"), Expiration: num("Expiration"),
		HeartBeatInterval: num("HeartBeatInterval"), HeartBeatCount: num("HeartBeatCount"),
	}, nil
}

// withDefaultTimeout bounds ctx by d unless it has a deadline already: a
// device's answer is waited for that long at most.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

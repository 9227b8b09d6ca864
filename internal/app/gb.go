package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/xueliang/xueliang/internal/api"
	gbp "github.com/xueliang/xueliang/internal/gb28181/platform"
	"github.com/xueliang/xueliang/internal/gb28181/sipserver"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// The GB/T 28181 side of the app: the platform (SIP server, catalogs,
// media sessions), device-side playbacks as streams of the hub, and the
// api.GB implementation.

// Stream IDs of the hub beyond channel IDs, which no channel will ever
// have: device-side playbacks from devicePlaybackBase, and the sub-stream
// of channel N at subStreamBase+N.
const (
	devicePlaybackBase = int64(1) << 40
	subStreamBase      = int64(1) << 41
)

// gbSide holds the running GB/T 28181 platform and its playbacks.
type gbSide struct {
	a *App
	p *gbp.Platform

	mu        sync.Mutex
	next      int64
	playbacks map[int64]*devicePlayback
}

type devicePlayback struct {
	channel int64
	src     *gbp.Source
	created time.Time
}

// startGB starts the GB/T 28181 platform if configured.
func (a *App) startGB(ctx context.Context) error {
	g := a.cfg.GB
	if !g.Enabled {
		return nil
	}
	pw := map[string]string{}
	for _, dp := range g.DevicePasswords {
		id, p, _ := strings.Cut(dp, ":")
		pw[id] = p
	}
	loc, err := time.LoadLocation(g.Timezone)
	if err != nil {
		return fmt.Errorf("app: gb28181.timezone: %w", err)
	}
	p, err := gbp.New(gbp.Config{
		Location: loc,
		Store:    a.store,
		SIPAddr:  g.SIPAddr, SIPHost: g.SIPHost, ID: g.ID, Realm: g.Domain,
		Password: g.Password, DevicePasswords: pw, AllowUnknown: g.AllowUnknown,
		KeepaliveInterval: g.KeepaliveInterval.D(),
		MediaIP:           g.MediaIP, MediaBind: g.MediaBind, RTPPortMin: g.RTPPortMin, RTPPortMax: g.RTPPortMax,
		Transport: g.Transport, IgnoreSSRC: g.IgnoreSSRC,
		InviteTimeout: g.InviteTimeout.D(), MediaTimeout: g.MediaTimeout.D(), ReadTimeout: a.cfg.Streams.ReadTimeout.D(),
		OnAlarm: func(al model.Alarm) { a.events.Publish("alarm", al) },
		OnDevice: func(code string, online bool, reason string) {
			a.events.Publish("device", map[string]any{"code": code, "online": online, "reason": reason})
		},
		Log:        a.log,
		Registerer: a.reg,
	})
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return fmt.Errorf("%w (is another SIP server using %s? set gb28181.sip_addr)", err, g.SIPAddr)
	}
	a.gb = &gbSide{a: a, p: p, next: devicePlaybackBase, playbacks: map[int64]*devicePlayback{}}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.gb.reapPlaybacks(a.runCtx)
	}()
	return nil
}

// GB returns the GB/T 28181 platform of a started App, or nil.
func (a *App) GB() *gbp.Platform {
	if a.gb == nil {
		return nil
	}
	return a.gb.p
}

// gbSource returns the source of a channel reached over GB/T 28181: its
// main stream, or its sub-stream.
func (g *gbSide) gbSource(ch *model.Channel, dev *model.Device, sub bool) media.Source {
	transport := ""
	switch ch.Transport {
	case model.TransportTCP:
		transport = gbp.TransportTCPPassive
	case model.TransportUDP:
		transport = gbp.TransportUDP
	case model.TransportTCPActive:
		transport = gbp.TransportTCPActive
	}
	if sub {
		return g.p.SubStreamSource(dev.Code, ch.Code, transport)
	}
	return g.p.LiveSource(dev.Code, ch.Code, transport)
}

// SubStream implements api.GB.
func (g *gbSide) SubStream(ctx context.Context, channelID int64) (int64, error) {
	if _, _, err := g.target(ctx, channelID); err != nil {
		return 0, err
	}
	return subStreamBase + channelID, nil
}

// playbackSource resolves a device-playback stream ID.
func (g *gbSide) playbackSource(id int64) (media.Source, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pb := g.playbacks[id]
	if pb == nil {
		return nil, fmt.Errorf("app: device playback %d: %w", id, media.ErrNoChannel)
	}
	return pb.src, nil
}

// reapPlaybacks forgets device playbacks nobody watches any more.
func (g *gbSide) reapPlaybacks(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		for id, pb := range g.playbacks {
			if time.Since(pb.created) > time.Minute && !g.a.hub.Active(id) {
				delete(g.playbacks, id)
			}
		}
		g.mu.Unlock()
	}
}

// target resolves a channel to its GB/T 28181 device and channel codes.
func (g *gbSide) target(ctx context.Context, channelID int64) (device, channel string, err error) {
	ch, err := g.a.store.GetChannel(ctx, channelID)
	if err != nil {
		return "", "", err
	}
	if ch.DeviceID == 0 {
		return "", "", notGB(ch.Code)
	}
	dev, err := g.a.store.GetDevice(ctx, ch.DeviceID)
	if err != nil {
		return "", "", err
	}
	if dev.Kind == model.DeviceKindRTSP {
		return "", "", notGB(ch.Code)
	}
	return dev.Code, ch.Code, nil
}

func notGB(code string) error {
	return &api.Error{Status: http.StatusBadRequest, Code: "not_gb28181",
		Message: fmt.Sprintf("channel %s is not reached over GB/T 28181; control and device recordings need a GB/T 28181 device", code)}
}

// gbError maps the platform's errors to API errors.
func gbError(err error) error {
	var se *sipserver.StatusError
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sipserver.ErrNotOnline):
		return &api.Error{Status: http.StatusConflict, Code: model.ReasonDeviceOffline, Message: "the device is not registered: " + err.Error()}
	case errors.Is(err, gbp.ErrBadCommand):
		return &api.Error{Status: http.StatusBadRequest, Code: "invalid", Message: strings.TrimPrefix(err.Error(), "platform: bad command: ")}
	case errors.Is(err, gbp.ErrNotPlaying):
		return &api.Error{Status: http.StatusConflict, Code: "not_playing", Message: "the playback is not running (it starts with its first viewer and stops after the last one leaves)"}
	case errors.As(err, &se), errors.Is(err, gbp.ErrRefused):
		return &api.Error{Status: http.StatusBadGateway, Code: "device_refused", Message: err.Error()}
	case errors.Is(err, sipserver.ErrNoAnswer), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &api.Error{Status: http.StatusGatewayTimeout, Code: "device_timeout", Message: "the device did not answer in time: " + err.Error()}
	}
	return err
}

// PTZ implements api.GB.
func (g *gbSide) PTZ(ctx context.Context, channelID int64, pan, tilt, zoom int, speed uint8) error {
	dev, ch, err := g.target(ctx, channelID)
	if err != nil {
		return err
	}
	return gbError(g.p.PTZ(ctx, dev, ch, pan, tilt, zoom, speed))
}

// Preset implements api.GB.
func (g *gbSide) Preset(ctx context.Context, channelID int64, action string, preset int) error {
	dev, ch, err := g.target(ctx, channelID)
	if err != nil {
		return err
	}
	return gbError(g.p.Preset(ctx, dev, ch, action, preset))
}

// Presets implements api.GB.
func (g *gbSide) Presets(ctx context.Context, channelID int64) (any, error) {
	dev, ch, err := g.target(ctx, channelID)
	if err != nil {
		return nil, err
	}
	p, err := g.p.Presets(ctx, dev, ch)
	return p, gbError(err)
}

// ChannelCommand implements api.GB.
func (g *gbSide) ChannelCommand(ctx context.Context, channelID int64, command string) error {
	if command == "reboot" {
		return &api.Error{Status: http.StatusBadRequest, Code: "invalid", Message: "reboot is a device command: POST /api/v1/devices/{id}/control"}
	}
	dev, ch, err := g.target(ctx, channelID)
	if err != nil {
		return err
	}
	return gbError(g.p.Command(ctx, dev, ch, command))
}

// DeviceCommand implements api.GB.
func (g *gbSide) DeviceCommand(ctx context.Context, deviceID int64, command string) error {
	dev, err := g.a.store.GetDevice(ctx, deviceID)
	if err != nil {
		return err
	}
	if dev.Kind == model.DeviceKindRTSP {
		return &api.Error{Status: http.StatusBadRequest, Code: "not_gb28181", Message: "device " + dev.Name + " is an RTSP device"}
	}
	switch command {
	case "reboot":
		return gbError(g.p.Command(ctx, dev.Code, dev.Code, "reboot"))
	case "catalog", "status":
		return gbError(g.p.Refresh(ctx, dev.Code, command))
	}
	return &api.Error{Status: http.StatusBadRequest, Code: "invalid", Message: fmt.Sprintf("command must be reboot, catalog or status, got %q", command)}
}

// DeviceConfig implements api.GB.
func (g *gbSide) DeviceConfig(ctx context.Context, deviceID int64) (any, error) {
	dev, err := g.a.store.GetDevice(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	if dev.Kind == model.DeviceKindRTSP {
		return nil, &api.Error{Status: http.StatusBadRequest, Code: "not_gb28181", Message: "device " + dev.Name + " is an RTSP device"}
	}
	c, err := g.p.Config(ctx, dev.Code)
	if err != nil {
		return nil, gbError(err)
	}
	return c, nil
}

// DeviceRecordings implements api.GB.
func (g *gbSide) DeviceRecordings(ctx context.Context, channelID int64, from, to time.Time) (any, error) {
	dev, ch, err := g.target(ctx, channelID)
	if err != nil {
		return nil, err
	}
	r, err := g.p.Recordings(ctx, dev, ch, from, to)
	return r, gbError(err)
}

// StartDevicePlayback implements api.GB.
func (g *gbSide) StartDevicePlayback(ctx context.Context, channelID int64, from, to time.Time, speed int) (int64, error) {
	dev, ch, err := g.target(ctx, channelID)
	if err != nil {
		return 0, err
	}
	if !g.p.Online(dev) {
		return 0, gbError(fmt.Errorf("%w: %s", sipserver.ErrNotOnline, dev))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next++
	id := g.next
	g.playbacks[id] = &devicePlayback{channel: channelID, src: g.p.PlaybackSource(dev, ch, from, to, speed), created: time.Now()}
	return id, nil
}

// ControlDevicePlayback implements api.GB.
func (g *gbSide) ControlDevicePlayback(ctx context.Context, streamID int64, action string, value float64) error {
	g.mu.Lock()
	pb := g.playbacks[streamID]
	g.mu.Unlock()
	if pb == nil {
		return &api.Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no device playback %d", streamID)}
	}
	return gbError(pb.src.Control(ctx, action, value))
}

// DevicePlaybackChannel implements api.GB.
func (g *gbSide) DevicePlaybackChannel(streamID int64) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if pb := g.playbacks[streamID]; pb != nil {
		return pb.channel, nil
	}
	return 0, fmt.Errorf("device playback %d: %w", streamID, store.ErrNotFound)
}

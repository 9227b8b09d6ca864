package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/gb28181/devsim"
	"github.com/xueliang/xueliang/internal/gb28181/sipserver"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/sim"
	"github.com/xueliang/xueliang/internal/store"
)

// Demo is the platform and a simulated city in one process.
type Demo struct {
	App     *App
	Sim     *sim.Server
	Cameras []DemoCamera
	// GB holds the simulated GB/T 28181 NVRs, one per town.
	GB []*devsim.Sim
}

// DemoOptions configures StartDemo.
type DemoOptions struct {
	Config   config.Config // HTTP address, data folder, ...
	RTSPAddr string        // where the simulated cameras listen; "" = 127.0.0.1:0
	Logger   *slog.Logger
}

// StartDemo starts the camera simulator and the platform, and seeds the
// Qingyuan hierarchy and its cameras into the platform's store. Seeding is
// idempotent: a second start with the same data folder updates the cameras'
// addresses and keeps everything else.
func StartDemo(ctx context.Context, opts DemoOptions) (d *Demo, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d = &Demo{Cameras: DemoCameras()}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	rtspAddr := opts.RTSPAddr
	if rtspAddr == "" {
		rtspAddr = "127.0.0.1:0"
	}
	scfg := sim.Config{Addr: rtspAddr, Logger: log}
	for _, c := range d.Cameras {
		scfg.Cameras = append(scfg.Cameras, sim.Camera{
			Path: "cam/" + c.Code, Clip: c.Clip, Label: c.Name, Audio: c.Audio,
			Username: c.Username, Password: c.Password,
		})
	}
	d.Sim = sim.NewServer(scfg)
	if err := d.Sim.Start(); err != nil {
		return d, fmt.Errorf("demo: camera simulator: %w", err)
	}
	if d.App, err = New(opts.Config, log); err != nil {
		return d, err
	}
	if err := d.App.Start(ctx); err != nil {
		return d, err
	}
	if err := d.seed(ctx); err != nil {
		return d, fmt.Errorf("demo: seed: %w", err)
	}
	if err := d.startGB(ctx, log); err != nil {
		return d, fmt.Errorf("demo: GB/T 28181 devices: %w", err)
	}
	return d, nil
}

// DemoSIPAddr is the default SIP address of the demo platform.
const DemoSIPAddr = "127.0.0.1:5060"

// DemoGBPassword is the registration password of the demo platform.
const DemoGBPassword = "xueliang28181"

// demoNVRs are the simulated GB/T 28181 NVRs of the demo: one per town,
// 8 cameras each. The centre code is the first 8 digits of the town code,
// and the catalog's CivilCode (the town) places the cameras in the tree.
var demoNVRs = []struct{ town, name string }{
	{"441802001", "凤城街道"},
	{"441803101", "太和镇"},
	{"441821101", "汤塘镇"},
	{"441823100", "阳城镇"},
	{"441881100", "英城街道"},
	{"441882108", "龙坪镇"},
}

// DemoNVRChannels is the number of cameras of each simulated NVR.
const DemoNVRChannels = 8

// startGB starts the simulated NVRs, which register by themselves.
func (d *Demo) startGB(ctx context.Context, log *slog.Logger) error {
	p := d.App.GB()
	if p == nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(p.SIPAddr())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	for _, nvr := range demoNVRs {
		s, err := devsim.Start(ctx, devsim.Config{
			Server: net.JoinHostPort(host, port), PlatformID: p.ID(), Password: d.App.cfg.GB.Password,
			Devices: 1, ChannelsPerDevice: DemoNVRChannels, DivisionCode: nvr.town[:8], CivilCode: nvr.town,
			CatalogPageSize: 4, KeepaliveInterval: 30 * time.Second, Log: log,
		})
		if err != nil {
			return err
		}
		d.GB = append(d.GB, s)
	}
	return nil
}

// CameraURL returns the RTSP URL of a demo camera, with its credentials.
func (d *Demo) CameraURL(c DemoCamera) string {
	u := url.URL{Scheme: "rtsp", Host: d.Sim.Addr(), Path: "/cam/" + c.Code}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, c.Password)
	}
	return u.String()
}

func (d *Demo) seed(ctx context.Context) error {
	st := d.App.Store()
	if err := st.UpsertDivisions(ctx, DemoDivisions()); err != nil {
		return err
	}
	for i, c := range d.Cameras {
		ch, err := st.GetChannelByCode(ctx, c.Code)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ch = &model.Channel{
				Code: c.Code, Name: c.Name, DivisionCode: c.Division,
				Lat: c.Lat, Lng: c.Lng, Heading: c.Heading, FOV: 90, Range: 80,
				Transport: model.TransportTCP,
				Status:    model.ChannelStatusIdle, // until the prober has seen it
			}
			ch.SourceURL = d.CameraURL(c)
			if err := st.CreateChannel(ctx, ch); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			ch.SourceURL = d.CameraURL(c) // the simulator's port changes between runs
			if err := st.UpdateChannel(ctx, ch); err != nil {
				return err
			}
		}
		if i < DemoRecorded {
			// Record the first cameras unless the user changed their plan.
			p, err := st.RecordPlan(ctx, ch.ID)
			if err != nil {
				return err
			}
			if p.UpdatedAt.IsZero() {
				p.Mode = model.RecordContinuous
				if err := d.App.rec.SetPlan(ctx, &p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// DemoRecorded is how many of the demo's cameras (the first ones) record
// continuously.
const DemoRecorded = 8

// Close stops the platform, then the simulator.
func (d *Demo) Close() error {
	var errs []error
	for _, s := range d.GB {
		s.Close()
	}
	if d.App != nil {
		errs = append(errs, d.App.Close())
	}
	if d.Sim != nil {
		errs = append(errs, d.Sim.Close())
	}
	return errors.Join(errs...)
}

// PrintBanner tells the user where to look.
func (d *Demo) PrintBanner(w io.Writer) {
	fmt.Fprintf(w, `
  雪亮 Xueliang demo is running (Ctrl-C to stop)

    console   %s/
    API       %s/api/v1/channels
    metrics   %s/metrics
    cameras   %d simulated cameras of 清远市 (Qingyuan) at rtsp://%s/cam/<code>
    recording the first %d cameras, kept for %s (playback works after a minute)
    data      %s
`, d.App.URL(), d.App.URL(), d.App.URL(), len(d.Cameras), d.Sim.Addr(), DemoRecorded, d.App.cfg.Record.Retention, d.App.cfg.DataDir)
	if p := d.App.GB(); p != nil {
		fmt.Fprintf(w, `
  GB/T 28181: %d simulated NVRs of %d cameras register by themselves. A real
  camera or NVR joins with these settings (SIP server / 平台 SIP 服务器):
    SIP server address   %s (UDP and TCP)
    SIP server ID        %s
    SIP domain           %s
    password             %s
`, len(d.GB), DemoNVRChannels, reachableAddr(p.SIPAddr()), p.ID(), p.Realm(), d.App.cfg.GB.Password)
	}
	fmt.Fprintln(w)
}

// reachableAddr names a listening address the way a device on the network
// must dial it: an unspecified IP (0.0.0.0) becomes the machine's LAN IP.
func reachableAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		if lan := sipserver.LocalIP(""); lan != "" {
			return net.JoinHostPort(lan, port)
		}
	}
	return addr
}

// demoProbeInterval keeps the demo's camera list fresh.
const demoProbeInterval = 30 * time.Second

// DemoConfig returns the configuration of `xueliang demo`.
func DemoConfig(httpAddr, dataDir string) config.Config {
	c := config.Default()
	if httpAddr != "" {
		c.HTTP.Addr = httpAddr
	}
	if dataDir != "" {
		c.DataDir = dataDir
	}
	c.Streams.ProbeInterval = config.Duration(demoProbeInterval)
	// Recordings of a few hours, and never more than 2 GB, so that the
	// demo does not fill a laptop's disk.
	c.Record.Retention = config.Duration(3 * time.Hour)
	c.Record.MaxMB = 2048
	// GB/T 28181: the simulated NVRs, and any real device told the
	// printed password, may register.
	c.GB.Enabled = true
	c.GB.SIPAddr = DemoSIPAddr
	c.GB.Password = DemoGBPassword
	c.GB.AllowUnknown = true
	// A demo on a loopback address keeps WebRTC's UDP port there too; one
	// opened to the network opens it on every interface.
	if host, _, err := net.SplitHostPort(c.HTTP.Addr); err == nil {
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			c.Live.WebRTCUDPAddr = "127.0.0.1:8189"
		}
	}
	return c
}

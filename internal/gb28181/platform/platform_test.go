package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/devsim"
	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/rtprecv"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// End-to-end tests on loopback: the platform against simulated devices
// (internal/gb28181/devsim, which shares no parser or muxer with the
// platform), with a real SQLite database.

const (
	testID       = "44180000002000000001"
	testPassword = "secret-28181"
)

type testPlatform struct {
	*Platform
	st     *store.Store
	mu     sync.Mutex
	alarms []model.Alarm
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func startPlatform(t *testing.T, edit func(*Config)) *testPlatform {
	t.Helper()
	st, err := store.Open(t.Context(), store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.UpsertDivisions(t.Context(), []model.Division{
		{Code: "440000", Name: "广东省", Level: model.DivisionLevelProvince},
		{Code: "441800", Name: "清远市", Level: model.DivisionLevelCity, ParentCode: "440000"},
		{Code: "441821", Name: "佛冈县", Level: model.DivisionLevelCounty, ParentCode: "441800"},
		{Code: "441821101", Name: "汤塘镇", Level: model.DivisionLevelTown, ParentCode: "441821"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPlatform{st: st}
	cfg := Config{
		Store: st, SIPAddr: "127.0.0.1:0", SIPHost: "127.0.0.1", ID: testID, Password: testPassword, AllowUnknown: true,
		KeepaliveInterval: 2 * time.Second, MediaIP: "127.0.0.1", MediaBind: "127.0.0.1",
		RTPPortMin: 0, RTPPortMax: 0, InviteTimeout: 5 * time.Second, MediaTimeout: 2 * time.Second,
		FlushInterval: time.Second, StateDelay: 50 * time.Millisecond, CatalogTimeout: 2 * time.Second,
		OnAlarm: func(a model.Alarm) {
			tp.mu.Lock()
			tp.alarms = append(tp.alarms, a)
			tp.mu.Unlock()
		},
		Log: testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	tp.Platform = p
	return tp
}

func startSim(t *testing.T, p *testPlatform, edit func(*devsim.Config)) *devsim.Sim {
	t.Helper()
	cfg := devsim.Config{
		Server: p.SIPAddr(), PlatformID: testID, Password: testPassword,
		Devices: 1, ChannelsPerDevice: 4, DivisionCode: "44182110", CivilCode: "441821101",
		KeepaliveInterval: time.Second, CatalogPageSize: 2, LocalIP: "127.0.0.1", Log: testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := devsim.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// eventually polls cond every 50 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitChannels waits until the device's catalog is in the database.
func waitChannels(t *testing.T, p *testPlatform, device string, n int) []model.Channel {
	t.Helper()
	var chs []model.Channel
	eventually(t, 20*time.Second, fmt.Sprintf("%d channels of %s in the database", n, device), func() bool {
		d, err := p.st.GetDeviceByCode(t.Context(), device)
		if err != nil {
			return false
		}
		chs, err = p.st.ListChannels(t.Context(), store.ChannelFilter{DeviceID: d.ID})
		return err == nil && len(chs) == n
	})
	return chs
}

func TestRegisterAndCatalog(t *testing.T) {
	p := startPlatform(t, nil)
	// A 200-channel NVR that sends its catalog in 20 messages, in GB2312.
	s := startSim(t, p, func(c *devsim.Config) { c.ChannelsPerDevice, c.CatalogPageSize = 200, 10 })
	dev := s.DeviceIDs()[0]
	if err := s.SetFault(dev, devsim.Fault{GB2312: true}); err != nil {
		t.Fatal(err)
	}
	chs := waitChannels(t, p, dev, 200)
	for _, c := range chs {
		if c.DivisionCode != "441821101" || c.Status != model.ChannelStatusIdle || c.ParentCode == "" || c.SourceURL != "" {
			t.Fatalf("channel %+v", c)
		}
	}
	eventually(t, 10*time.Second, "device info and clock stored", func() bool {
		d, err := p.st.GetDeviceByCode(t.Context(), dev)
		return err == nil && d.Status == "online" && d.Manufacturer != "" && d.ClockOffsetMS != nil && d.Transport == "UDP"
	})
	d, _ := p.st.GetDeviceByCode(t.Context(), dev)
	if d.DivisionCode != "441821" || d.Kind != model.DeviceKindGB28181 {
		t.Errorf("device %+v", d)
	}
	if off := *d.ClockOffsetMS; off > 2000 || off < -2000 {
		t.Errorf("clock offset of a device on this machine: %d ms", off)
	}
}

func TestWrongPasswordAndUnknownDevices(t *testing.T) {
	p := startPlatform(t, func(c *Config) {
		c.AllowUnknown = false
		c.DevicePasswords = map[string]string{"44182110001180000001": testPassword}
	})
	good := startSim(t, p, nil) // its ID is 44182110001180000001
	bad := startSim(t, p, func(c *devsim.Config) { c.DivisionCode = "44182120"; c.Password = testPassword })
	wrong := startSim(t, p, func(c *devsim.Config) { c.DivisionCode = "44182130"; c.Password = "nope" })
	eventually(t, 10*time.Second, "the known device online", func() bool { return p.Online(good.DeviceIDs()[0]) })
	time.Sleep(500 * time.Millisecond)
	for _, s := range []*devsim.Sim{bad, wrong} {
		if p.Online(s.DeviceIDs()[0]) {
			t.Errorf("device %s registered", s.DeviceIDs()[0])
		}
		if _, err := p.st.GetDeviceByCode(t.Context(), s.DeviceIDs()[0]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused device %s in the database: %v", s.DeviceIDs()[0], err)
		}
		if st := s.Stats(); st.Failures == 0 || st.Registered != 0 {
			t.Errorf("simulator of a refused device: %+v", st)
		}
	}
}

func TestKeepaliveLoss(t *testing.T) {
	p := startPlatform(t, nil) // keepalive interval 2 s
	s := startSim(t, p, nil)
	dev := s.DeviceIDs()[0]
	waitChannels(t, p, dev, 4)
	if err := s.SetFault(dev, devsim.Fault{DropKeepalives: true}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Three intervals, plus 5 s.
	eventually(t, 3*2*time.Second+5*time.Second, "device offline after its keepalives stopped", func() bool {
		d, err := p.st.GetDeviceByCode(t.Context(), dev)
		return err == nil && d.Status == "offline" && strings.Contains(d.StatusReason, "keepalives missed")
	})
	t.Logf("offline %v after the keepalives stopped", time.Since(start).Round(100*time.Millisecond))
	chs, _ := p.st.ListChannels(t.Context(), store.ChannelFilter{Status: model.ChannelStatusOffline})
	if len(chs) != 4 || chs[0].Reason != store.ReasonDeviceOffline {
		t.Errorf("channels of the offline device: %d, %+v", len(chs), chs)
	}
	// Keepalives again: online again (the device re-registers or is
	// revived by a keepalive).
	if err := s.SetFault(dev, devsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "device online again", func() bool {
		d, err := p.st.GetDeviceByCode(t.Context(), dev)
		return err == nil && d.Status == "online"
	})
}

// readUnits runs src until it delivered n video units with a keyframe
// among them, and returns the tracks.
func readUnits(t *testing.T, src media.Source, n int, within time.Duration) ([]*media.Track, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	var tracks []*media.Track
	got := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- src.Run(ctx, func(tr []*media.Track) *media.Stream {
			tracks = tr
			s := media.NewStream(tr)
			r := s.AddReader("test", 256)
			go func() {
				video, keys := 0, 0
				var last int64 = -1
				for u := range r.C() {
					if tr[u.Track].Codec.IsVideo() {
						if u.PTS <= last {
							t.Errorf("PTS %d after %d", u.PTS, last)
						}
						last = u.PTS
						video++
						if u.Key {
							keys++
						}
					}
					if video >= n && keys > 0 {
						close(got)
						return
					}
				}
			}()
			return s
		})
	}()
	select {
	case <-got:
		cancel()
		if err := <-errc; err != nil {
			return tracks, err
		}
		return tracks, nil
	case err := <-errc:
		if err == nil {
			err = errors.New("source ended without media")
		}
		return tracks, err
	}
}

func TestLive(t *testing.T) {
	p := startPlatform(t, nil)
	s := startSim(t, p, nil)
	dev := s.DeviceIDs()[0]
	chs := waitChannels(t, p, dev, 4)
	for i, tr := range []string{TransportUDP, TransportTCPPassive, TransportTCPActive} {
		t.Run(tr, func(t *testing.T) {
			start := time.Now()
			tracks, err := readUnits(t, p.LiveSource(dev, chs[i].Code, tr), 25, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(tracks) == 0 || !tracks[0].Codec.IsVideo() || tracks[0].SPS == nil {
				t.Fatalf("tracks %v", tracks)
			}
			t.Logf("%s: 25 frames in %v", tr, time.Since(start).Round(time.Millisecond))
		})
	}
	eventually(t, 5*time.Second, "streams stopped after BYE", func() bool { return s.Stats().ActiveStreams == 0 })
}

func TestInviteFailures(t *testing.T) {
	p := startPlatform(t, nil)
	s := startSim(t, p, nil)
	dev := s.DeviceIDs()[0]
	chs := waitChannels(t, p, dev, 4)
	for _, tc := range []struct {
		name      string
		fault     devsim.Fault
		transport string
		channel   string
		want      media.Reason
	}{
		{"no media", devsim.Fault{NoMedia: true}, TransportUDP, chs[0].Code, rtprecv.ReasonNoPackets},
		{"wrong ssrc", devsim.Fault{WrongSSRC: true}, TransportUDP, chs[0].Code, rtprecv.ReasonWrongSSRC},
		{"not ps", devsim.Fault{NotPS: true}, TransportUDP, chs[0].Code, rtprecv.ReasonNotPS},
		{"no tcp connection", devsim.Fault{NoTCPConnect: true}, TransportTCPPassive, chs[0].Code, rtprecv.ReasonNoTCPConnection},
		{"tcp active refused", devsim.Fault{NoTCPConnect: true}, TransportTCPActive, chs[0].Code, media.ReasonUnreachable},
		{"unknown channel", devsim.Fault{}, TransportUDP, "44182110001319999999", ReasonInviteRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.SetFault(dev, tc.fault); err != nil {
				t.Fatal(err)
			}
			_, err := readUnits(t, p.LiveSource(dev, tc.channel, tc.transport), 1, 15*time.Second)
			if got := media.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
	if err := s.SetFault(dev, devsim.Fault{}); err != nil {
		t.Fatal(err)
	}
	_, err := readUnits(t, p.LiveSource("44182110001189999999", chs[0].Code, TransportUDP), 1, 5*time.Second)
	if got := media.ReasonOf(err); got != ReasonDeviceOffline {
		t.Errorf("unknown device: reason %q (%v)", got, err)
	}
}

func TestControlAndAlarms(t *testing.T) {
	p := startPlatform(t, nil)
	s := startSim(t, p, nil)
	dev := s.DeviceIDs()[0]
	chs := waitChannels(t, p, dev, 4)
	ch := chs[1].Code
	ctx := t.Context()
	if err := p.PTZ(ctx, dev, ch, -1, 1, 0, 200); err != nil {
		t.Fatal(err)
	}
	if err := p.PTZ(ctx, dev, ch, 0, 0, 1, 0x30); err != nil {
		t.Fatal(err)
	}
	if err := p.PTZ(ctx, dev, ch, 0, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Preset(ctx, dev, ch, "set", 7); err != nil {
		t.Fatal(err)
	}
	if err := p.Preset(ctx, dev, ch, "call", 7); err != nil {
		t.Fatal(err)
	}
	if err := p.Command(ctx, dev, ch, "iframe"); err != nil {
		t.Fatal(err)
	}
	if err := p.Command(ctx, dev, ch, "record_start"); err != nil {
		t.Fatal(err)
	}
	if err := p.Command(ctx, dev, ch, "guard_set"); err != nil {
		t.Fatal(err)
	}
	want := []devsim.Control{
		{Cmd: devsim.CmdPTZ, Pan: -1, Tilt: 1, PanSpeed: 200, TiltSpeed: 200},
		{Cmd: devsim.CmdPTZ, Zoom: 1, ZoomSpeed: 3},
		{Cmd: devsim.CmdPTZ},
		{Cmd: devsim.CmdPresetSet, Preset: 7},
		{Cmd: devsim.CmdPresetCall, Preset: 7},
		{Cmd: devsim.CmdIFrame},
		{Cmd: devsim.CmdRecordStart},
		{Cmd: devsim.CmdGuardSet},
	}
	var got []devsim.Control
	eventually(t, 5*time.Second, "commands at the simulator", func() bool {
		got = s.Controls(ch)
		return len(got) >= len(want)
	})
	for i, w := range want {
		g := got[i]
		if g.Cmd != w.Cmd || g.Pan != w.Pan || g.Tilt != w.Tilt || g.Zoom != w.Zoom || g.PanSpeed != w.PanSpeed ||
			g.TiltSpeed != w.TiltSpeed || g.ZoomSpeed != w.ZoomSpeed || g.Preset != w.Preset {
			t.Errorf("command %d = %+v, want %+v", i, g, w)
		}
	}
	presets, err := p.Presets(ctx, dev, ch)
	if err != nil || len(presets) == 0 {
		t.Errorf("presets %v, %v", presets, err)
	}
	bp, err := p.Config(ctx, dev)
	if err != nil || bp.HeartBeatInterval != 1 || bp.HeartBeatCount != 3 || bp.SIPServerID != testID || bp.Expiration == 0 {
		t.Errorf("config %+v, %v", bp, err)
	}
	if err := p.Preset(ctx, dev, ch, "jump", 1); !errors.Is(err, ErrBadCommand) {
		t.Errorf("bad preset action: %v", err)
	}

	if err := s.RaiseAlarm(ch, devsim.Alarm{Priority: 1, Method: 5, Type: 6, Description: "区域入侵"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "alarm delivered", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.alarms) == 1
	})
	a := p.alarms[0]
	if a.ChannelCode != ch || a.ChannelID != chs[1].ID || a.Priority != 1 || a.Method != 5 || a.Type != "video:6" || a.Description != "区域入侵" {
		t.Errorf("alarm %+v", a)
	}
	stored, err := p.st.ListAlarms(ctx, store.AlarmFilter{})
	if err != nil || len(stored) != 1 || stored[0].ID != a.ID {
		t.Errorf("stored alarms %+v, %v", stored, err)
	}

	// Catalog events.
	if err := s.NotifyCatalog(dev, "OFF", ch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "catalog OFF applied", func() bool {
		c, err := p.st.GetChannelByCode(ctx, ch)
		return err == nil && c.CatalogStatus == "OFF" && c.Status == model.ChannelStatusOffline
	})
}

func TestDeviceRecordings(t *testing.T) {
	p := startPlatform(t, nil)
	s := startSim(t, p, nil)
	dev := s.DeviceIDs()[0]
	chs := waitChannels(t, p, dev, 4)
	ch := chs[0].Code
	end := time.Now().Add(-time.Hour).Truncate(time.Hour)
	start := end.Add(-3 * time.Hour)
	recs, err := p.Recordings(t.Context(), dev, ch, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if !recs.Complete || len(recs.Items) < 3 {
		t.Fatalf("recordings %+v", recs)
	}
	for i := 1; i < len(recs.Items); i++ {
		if recs.Items[i].Start.Before(recs.Items[i-1].Start) {
			t.Errorf("not sorted: %+v", recs.Items)
		}
	}
	// Play 20 s of the first recording at 1x, then seek.
	r := recs.Items[0]
	src := p.PlaybackSource(dev, ch, r.Start, r.Start.Add(20*time.Second), 1)
	if _, err := readUnits(t, src, 10, 15*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestRealWorldBodies feeds bodies shaped like real devices' (the
// manscdp testdata: GB2312, split catalogs, quirks) through the platform
// as if a registered device had sent them.
func TestRealWorldBodies(t *testing.T) {
	p := startPlatform(t, nil)
	const nvr = "44182100001180000001"
	if _, err := p.st.SaveDeviceStates(t.Context(), []store.DeviceState{{Code: nvr, Online: true, Registered: true}}); err != nil {
		t.Fatal(err)
	}
	feed := func(name string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "manscdp", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := manscdp.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p.onMessage(nvr, m)
	}
	feed("catalog_nvr_2.xml") // the second half first
	feed("catalog_nvr_1.xml")
	var chs []model.Channel
	eventually(t, 5*time.Second, "the catalog's 4 channels stored", func() bool {
		chs, _ = p.st.ListChannels(t.Context(), store.ChannelFilter{})
		return len(chs) == 4
	})
	for _, c := range chs {
		if c.DivisionCode != "441821" || c.Name == "" || c.Name == c.Code {
			t.Errorf("channel %+v", c)
		}
	}
	feed("catalog_notify_del.xml")
	eventually(t, 5*time.Second, "the DEL event applied", func() bool {
		c, err := p.st.GetChannelByCode(t.Context(), "44182100001310000004")
		return err == nil && c.CatalogStatus == "DEL"
	})
	feed("deviceinfo.xml")
	eventually(t, 5*time.Second, "device info stored", func() bool {
		d, err := p.st.GetDeviceByCode(t.Context(), nvr)
		return err == nil && d.Manufacturer == "Hikvision"
	})
	feed("alarm_notify.xml")
	eventually(t, 5*time.Second, "alarm stored", func() bool {
		a, _ := p.st.ListAlarms(t.Context(), store.AlarmFilter{})
		return len(a) == 1 && a[0].Priority > 0 && !a[0].OccurredAt.IsZero()
	})
}

// TestIgnoreSSRC: with the check off, a device that streams with another
// SSRC than the y= it answered still plays.
func TestIgnoreSSRC(t *testing.T) {
	p := startPlatform(t, func(c *Config) { c.IgnoreSSRC = true })
	s := startSim(t, p, nil)
	dev := s.DeviceIDs()[0]
	chs := waitChannels(t, p, dev, 4)
	if err := s.SetFault(dev, devsim.Fault{WrongSSRC: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := readUnits(t, p.LiveSource(dev, chs[0].Code, TransportUDP), 10, 15*time.Second); err != nil {
		t.Fatal(err)
	}
}

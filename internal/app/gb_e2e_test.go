package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/gb28181/devsim"
	"github.com/xueliang/xueliang/internal/model"
)

// End to end over loopback: the whole platform with GB/T 28181 enabled and
// `xueliang sim gb`'s devices, through the HTTP API, LL-HLS and WHEP.

const gbTestPassword = "gb-e2e-secret"

func startGBPlatform(t *testing.T) (*platform, *devsim.Sim) {
	t.Helper()
	p := startPlatform(t, nil, func(c *config.Config) {
		c.GB.Enabled = true
		c.GB.SIPAddr = "127.0.0.1:0"
		c.GB.SIPHost = "127.0.0.1"
		c.GB.MediaIP = "127.0.0.1"
		c.GB.MediaBind = "127.0.0.1"
		c.GB.Password = gbTestPassword
		c.GB.AllowUnknown = true
		c.GB.KeepaliveInterval = config.Duration(2 * time.Second)
		c.GB.MediaTimeout = config.Duration(3 * time.Second)
	})
	s, err := devsim.Start(t.Context(), devsim.Config{
		Server: p.app.GB().SIPAddr(), PlatformID: p.app.GB().ID(), Password: gbTestPassword,
		Devices: 1, ChannelsPerDevice: 3, DivisionCode: "44182110", CivilCode: "441821101",
		KeepaliveInterval: time.Second, CatalogPageSize: 2, LocalIP: "127.0.0.1", Log: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return p, s
}

// gbChannels waits until the device's channels are listed by the API.
func (p *platform) gbChannels(n int) []model.Channel {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct {
			Channels []model.Channel `json:"channels"`
		}
		p.call("GET", "/api/v1/channels?division=441821101", nil, &list)
		var out []model.Channel
		for _, c := range list.Channels {
			if c.SourceURL == "" && c.DeviceID != 0 {
				out = append(out, c)
			}
		}
		if len(out) == n {
			return out
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%d GB/T 28181 channels listed, want %d", len(out), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGBLiveEveryTransportInHLSAndWHEP(t *testing.T) {
	p, s := startGBPlatform(t)
	chs := p.gbChannels(3)
	for i, tr := range []string{model.TransportUDP, model.TransportTCP, model.TransportTCPActive} {
		t.Run(tr, func(t *testing.T) {
			ch := chs[i]
			ch.Transport = tr
			if st := p.call("PATCH", fmt.Sprintf("/api/v1/channels/%d", ch.ID), map[string]any{"transport": tr}, nil); st != 200 {
				t.Fatalf("PATCH transport: %d", st)
			}
			l := p.live(ch.ID)
			packets, whepDone := readWHEP(t, l.WHEP, 6*time.Second)
			res := readHLS(t, l.HLS, 6*time.Second)
			if err := <-whepDone; err != nil {
				t.Fatalf("WHEP: %v", err)
			}
			t.Logf("%s: HLS %d frames, %d keyframes, first after %s; WHEP %d video RTP packets", tr, res.frames, res.keys, res.firstAfter, *packets)
			if res.frames < 25 || res.keys < 1 || !res.monotonic || *packets < 25 {
				t.Fatalf("HLS %+v, WHEP %d packets", res, *packets)
			}
			p.waitStatus(ch.ID, model.ChannelStatusOnline, "", 5*time.Second)
		})
	}
	// The sub-stream is another session, under its own stream ID.
	var sub liveURLs
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/live?stream=sub", chs[0].ID), nil, &sub); st != 200 || !strings.Contains(sub.HLS, fmt.Sprintf("/live/%d/", subStreamBase+chs[0].ID)) {
		t.Fatalf("sub-stream live: %d %+v", st, sub)
	}
	if res := readHLS(t, sub.HLS, 5*time.Second); res.frames < 20 {
		t.Fatalf("sub-stream over HLS: %+v", res)
	}
	if st := s.Stats(); st.Invites < 4 {
		t.Errorf("simulator answered %d INVITEs, want one per transport (one shared session each)", st.Invites)
	}
}

func TestGBFailedInviteSaysWhy(t *testing.T) {
	p, s := startGBPlatform(t)
	chs := p.gbChannels(3)
	dev := s.DeviceIDs()[0]
	if err := s.SetFault(dev, devsim.Fault{NoMedia: true}); err != nil {
		t.Fatal(err)
	}
	l := p.live(chs[0].ID)
	go func() { // a viewer keeps the source wanted
		res, err := http.Get(l.HLS)
		if err == nil {
			res.Body.Close()
		}
	}()
	ch := p.waitStatus(chs[0].ID, model.ChannelStatusOffline, "no_packets", 15*time.Second)
	if !strings.Contains(ch.LastError, "udp port") {
		t.Errorf("last error %q does not say what to check", ch.LastError)
	}
}

func TestGBControlAlarmsAndEvents(t *testing.T) {
	p, s := startGBPlatform(t)
	chs := p.gbChannels(3)
	ch := chs[1]

	// The SSE stream first, so that the alarm is seen.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", p.app.URL()+"/api/v1/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("events content type %q", ct)
	}
	alarms := make(chan model.Alarm, 4)
	go func() {
		sc := bufio.NewScanner(res.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "alarm":
				var ev struct {
					Data model.Alarm `json:"data"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev) == nil {
					alarms <- ev.Data
				}
			}
		}
	}()

	// PTZ through the API arrives decoded at the device.
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/ptz", ch.ID), map[string]any{"pan": 1, "tilt": -1, "speed": 100}, nil); st != 204 {
		t.Fatalf("ptz: %d", st)
	}
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/ptz", ch.ID), map[string]any{"pan": 2}, nil); st != 400 {
		t.Errorf("bad ptz: %d", st)
	}
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/preset", ch.ID), map[string]any{"action": "call", "preset": 3}, nil); st != 204 {
		t.Fatalf("preset: %d", st)
	}
	var got []devsim.Control
	deadline := time.Now().Add(5 * time.Second)
	for got = s.Controls(ch.Code); len(got) < 2 && time.Now().Before(deadline); got = s.Controls(ch.Code) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(got) < 2 || got[0].Cmd != devsim.CmdPTZ || got[0].Pan != 1 || got[0].Tilt != -1 || got[0].PanSpeed != 100 ||
		got[1].Cmd != devsim.CmdPresetCall || got[1].Preset != 3 {
		t.Fatalf("controls at the device: %+v", got)
	}

	var cfg struct {
		HeartBeatInterval int `json:"heartbeat_interval"`
	}
	if st := p.call("GET", fmt.Sprintf("/api/v1/devices/%d/config", ch.DeviceID), nil, &cfg); st != 200 || cfg.HeartBeatInterval != 1 {
		t.Errorf("device config: %d %+v", st, cfg)
	}

	// An alarm reaches the event stream and the alarm list.
	start := time.Now()
	if err := s.RaiseAlarm(ch.Code, devsim.Alarm{Priority: 2, Method: 5, Type: 2, Description: "移动侦测"}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-alarms:
		if a.ChannelID != ch.ID || a.Description != "移动侦测" || a.Priority != 2 {
			t.Errorf("alarm on the stream: %+v", a)
		}
		t.Logf("alarm on the event stream %v after it was raised", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("no alarm on the event stream within 5 s")
	}
	var list struct {
		Alarms []model.Alarm `json:"alarms"`
	}
	// The event comes after the alarm is stored.
	if st := p.call("GET", fmt.Sprintf("/api/v1/alarms?channel_id=%d", ch.ID), nil, &list); st != 200 || len(list.Alarms) != 1 {
		t.Errorf("alarm list: %d %+v", st, list)
	}

	// A device that goes offline refuses control with a clear error.
	if err := s.SetFault(s.DeviceIDs()[0], devsim.Fault{DropKeepalives: true}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3*2*time.Second + 5*time.Second)
	for {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/ptz", ch.ID), map[string]any{}, &e)
		if st == 409 && e.Error.Code == "device_offline" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ptz to an offline device: %d %+v", st, e)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestGBDevicePlayback(t *testing.T) {
	p, _ := startGBPlatform(t)
	chs := p.gbChannels(3)
	ch := chs[2]
	end := time.Now().Add(-time.Hour).Truncate(time.Hour)
	start := end.Add(-2 * time.Hour)
	var recs struct {
		Source     string `json:"source"`
		Recordings struct {
			Complete bool `json:"complete"`
			Items    []struct {
				Start, End time.Time
			} `json:"items"`
		} `json:"recordings"`
	}
	q := fmt.Sprintf("/api/v1/channels/%d/device-recordings?start=%s&end=%s", ch.ID, start.Format(time.RFC3339), end.Format(time.RFC3339))
	if st := p.call("GET", q, nil, &recs); st != 200 || recs.Source != "device" || !recs.Recordings.Complete || len(recs.Recordings.Items) < 2 {
		t.Fatalf("device recordings: %d %+v", st, recs)
	}
	// The same timeline API as the platform's recordings, with the
	// device's beside them.
	var tl struct {
		Recorded []any `json:"recorded"`
		Device   struct {
			Source     string `json:"source"`
			Recordings struct {
				Items []any `json:"items"`
			} `json:"recordings"`
		} `json:"device"`
		DeviceError string `json:"device_error"`
	}
	q = fmt.Sprintf("/api/v1/channels/%d/recordings?start=%s&end=%s&device=true", ch.ID, start.Format(time.RFC3339), end.Format(time.RFC3339))
	if st := p.call("GET", q, nil, &tl); st != 200 || tl.Device.Source != "device" || len(tl.Device.Recordings.Items) != len(recs.Recordings.Items) || tl.DeviceError != "" {
		t.Fatalf("timeline with device recordings: %d %+v", st, tl)
	}
	from := recs.Recordings.Items[0].Start
	var pb struct {
		Stream int64  `json:"stream"`
		HLS    string `json:"hls"`
	}
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/device-playback", ch.ID),
		map[string]any{"start": from, "end": from.Add(2 * time.Minute)}, &pb); st != 200 || pb.Stream == 0 {
		t.Fatalf("device playback: %d %+v", st, pb)
	}
	// Seek, pause, resume and change speed through MANSRTSP while a
	// viewer plays it.
	done := make(chan hlsResult)
	go func() { done <- readHLS(t, pb.HLS, 8*time.Second) }()
	time.Sleep(4 * time.Second)
	for _, c := range []map[string]any{{"action": "seek", "offset": 60}, {"action": "pause"}, {"action": "resume"}, {"action": "speed", "speed": 2}} {
		if st := p.call("POST", fmt.Sprintf("/api/v1/device-playback/%d", pb.Stream), c, nil); st != 204 {
			t.Errorf("%v: %d", c, st)
		}
	}
	res := <-done
	if res.frames < 25 || !res.monotonic {
		t.Fatalf("device playback over HLS: %+v", res)
	}
	if st := p.call("POST", fmt.Sprintf("/api/v1/device-playback/%d", pb.Stream), map[string]any{"action": "seek", "offset": 9999}, nil); st != 400 {
		t.Errorf("seek out of range: %d", st)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSimGBCommand runs `xueliang sim gb` against a platform and drives
// it through its control API.
func TestSimGBCommand(t *testing.T) {
	p := startPlatform(t, nil, func(c *config.Config) {
		c.GB.Enabled = true
		c.GB.SIPAddr = "127.0.0.1:0"
		c.GB.SIPHost = "127.0.0.1"
		c.GB.Password = gbTestPassword
		c.GB.AllowUnknown = true
	})
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- cmdSimGB(ctx, []string{"--server", p.app.GB().SIPAddr(), "--password", gbTestPassword,
			"--devices", "2", "--channels", "3", "--division", "44182110", "--civil-code", "441821101",
			"--keepalive", "1s", "--control", "127.0.0.1:0"}, &out, &errOut)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim gb: %v", err)
		}
	}()
	chs := p.gbChannels(6)
	var ctl string
	for deadline := time.Now().Add(5 * time.Second); ctl == ""; {
		for _, line := range strings.Split(out.String(), "\n") {
			if a, ok := strings.CutPrefix(line, "control API at "); ok {
				ctl = strings.TrimSuffix(a, "/devices")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control API address in %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := http.Get(ctl + "/devices")
	if err != nil {
		t.Fatal(err)
	}
	var devs []devsim.DeviceState
	json.NewDecoder(res.Body).Decode(&devs)
	res.Body.Close()
	if len(devs) != 2 || !devs[0].Online || len(devs[0].Channels) != 3 {
		t.Fatalf("GET /devices: %+v", devs)
	}
	// An alarm raised on command reaches the platform.
	res, err = http.Post(ctl+"/channels/"+chs[0].Code+"/alarm", "application/json",
		strings.NewReader(`{"priority":1,"method":5,"type":6,"description":"区域入侵"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("POST alarm: %d", res.StatusCode)
	}
	// The SIP 200 OK precedes the platform's handling: poll.
	for deadline := time.Now().Add(5 * time.Second); ; {
		var list struct {
			Alarms []model.Alarm `json:"alarms"`
		}
		st := p.call("GET", "/api/v1/alarms", nil, &list)
		if st == 200 && len(list.Alarms) == 1 && list.Alarms[0].ChannelCode == chs[0].Code {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarms: %d %+v", st, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

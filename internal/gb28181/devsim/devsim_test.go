package devsim

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/codes"
	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/sipserver"
)

const (
	platformID = "44180000002000000001"
	division   = "44182110"
	password   = "12345678"
)

type platform struct {
	*sipserver.Server
	events chan sipserver.Event
	msgs   chan *manscdp.Message
}

func startPlatform(t testing.TB, keepalive time.Duration) *platform {
	t.Helper()
	p := &platform{events: make(chan sipserver.Event, 10000), msgs: make(chan *manscdp.Message, 1000)}
	s, err := sipserver.New(sipserver.Config{ID: platformID, Password: password, AllowUnknown: true,
		KeepaliveInterval: keepalive,
		OnEvent:           func(e sipserver.Event) { p.events <- e },
		OnMessage:         func(_ string, m *manscdp.Message) { p.msgs <- m },
		Log:               slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Listen takes the UDP port it gets for TCP too, which another socket
	// may hold: try another.
	for i := 0; ; i++ {
		err := s.Listen("127.0.0.1:0")
		if err == nil {
			break
		}
		if i == 10 {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Close() })
	p.Server = s
	return p
}

func startSim(t testing.TB, p *platform, edit func(*Config)) *Sim {
	t.Helper()
	cfg := Config{Server: p.Addr(), PlatformID: platformID, Password: password, Devices: 20, ChannelsPerDevice: 4,
		DivisionCode: division, KeepaliveInterval: 200 * time.Millisecond, RegisterExpires: 3600,
		CatalogPageSize: 3, RetryInterval: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if edit != nil {
		edit(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitOnline waits until every device of s had an online event.
func waitOnline(t testing.TB, p *platform, s *Sim, within time.Duration) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range s.DeviceIDs() {
		want[id] = true
	}
	deadline := time.After(within)
	for len(want) > 0 {
		select {
		case e := <-p.events:
			if e.State != sipserver.StateOnline {
				t.Fatalf("event %+v", e)
			}
			delete(want, e.DeviceID)
		case <-deadline:
			t.Fatalf("%d devices not online within %v; stats %+v", len(want), within, s.Stats())
		}
	}
	// The devices know it a moment after the platform.
	for s.Stats().Registered < len(s.DeviceIDs()) {
		select {
		case <-deadline:
			t.Fatalf("devices not registered within %v; stats %+v", within, s.Stats())
		case <-time.After(time.Millisecond):
		}
	}
}

func TestRegisterAndStayOnline(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, nil)
	waitOnline(t, p, s, 10*time.Second)
	for _, id := range s.DeviceIDs() {
		c, err := codes.Parse(id)
		if err != nil || c.Type != typeNVR || c.Centre() != division {
			t.Errorf("device code %s: %+v %v", id, c, err)
		}
		if len(s.Channels(id)) != 4 {
			t.Errorf("%s: %d channels", id, len(s.Channels(id)))
		}
	}
	// Keepalives keep them online well past three intervals.
	select {
	case e := <-p.events:
		t.Fatalf("event while keepalives run: %+v", e)
	case <-time.After(time.Second):
	}
	st := s.Stats()
	if st.Registered != 20 || st.Devices != 20 || st.Keepalives < 20 || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
	for _, d := range p.Devices() {
		if d.State != sipserver.StateOnline {
			t.Errorf("platform sees %+v", d)
		}
	}
}

func TestReregisterBeforeExpiry(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices = 2; c.RegisterExpires = 1 })
	waitOnline(t, p, s, 5*time.Second)
	time.Sleep(2 * time.Second)
	select {
	case e := <-p.events:
		t.Fatalf("event %+v: re-registration came too late", e)
	default:
	}
	if st := s.Stats(); st.Registrations < 6 || st.Failures != 0 {
		t.Errorf("stats %+v, want a re-registration every 2/3 s", st)
	}
}

func TestStartRate(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	start := time.Now()
	s := startSim(t, p, func(c *Config) { c.Devices = 6; c.StartRate = 10 })
	waitOnline(t, p, s, 5*time.Second)
	if took := time.Since(start); took < 450*time.Millisecond {
		t.Errorf("6 devices at 10/s online after %v", took)
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	before := runtime.NumGoroutine()
	s := startSim(t, p, func(c *Config) { c.Devices = 10 })
	waitOnline(t, p, s, 5*time.Second)
	s.Close()
	s.Close() // idempotent
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Start(ctx, Config{Server: "127.0.0.1:9", PlatformID: platformID, DivisionCode: division, Devices: 2})
	if err == nil {
		s.Close()
		t.Error("no error")
	}
}

func TestWrongPassword(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Password = "wrong"; c.Devices = 3 })
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Failures < 6 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Stats(); st.Failures < 6 || st.Registered != 0 || st.Registrations != 0 {
		t.Errorf("stats %+v, want failures and no registration", st)
	}
	select {
	case e := <-p.events:
		t.Errorf("event %+v", e)
	default:
	}
}

func TestOfflineWhenKeepalivesStop(t *testing.T) {
	p := startPlatform(t, 100*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices = 5; c.KeepaliveInterval = 100 * time.Millisecond })
	waitOnline(t, p, s, 10*time.Second)
	s.Close() // a power cut: no unregistration
	if st := s.Stats(); st.Registered != 0 {
		t.Errorf("after Close: %+v", st)
	}
	offline := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for len(offline) < 5 {
		select {
		case e := <-p.events:
			if e.State != sipserver.StateOffline || !strings.Contains(e.Reason, "keepalives missed") {
				t.Fatalf("event %+v", e)
			}
			offline[e.DeviceID] = true
		case <-deadline:
			t.Fatalf("only %d devices offline", len(offline))
		}
	}
}

func TestReregisterAfter403(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices = 1 })
	waitOnline(t, p, s, 5*time.Second)
	// The platform forgets the device (restarted): the device's next
	// keepalive gets 403 and it registers again.
	p.Close()
	p2 := startPlatformAt(t, p.Addr())
	select {
	case e := <-p2.events:
		if e.State != sipserver.StateOnline || e.Reason != "registered" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no re-registration; stats %+v", s.Stats())
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.Stats().Registrations < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.Registrations < 2 || st.Registered != 1 {
		t.Errorf("stats %+v", st)
	}
}

func startPlatformAt(t *testing.T, addr string) *platform {
	t.Helper()
	p := &platform{events: make(chan sipserver.Event, 100), msgs: make(chan *manscdp.Message, 100)}
	s, err := sipserver.New(sipserver.Config{ID: platformID, Password: password, AllowUnknown: true,
		KeepaliveInterval: 200 * time.Millisecond,
		OnEvent:           func(e sipserver.Event) { p.events <- e },
		Log:               slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var lerr error
	for range 50 { // the old socket may linger a moment
		if lerr = s.Listen(addr); lerr == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lerr != nil {
		t.Skipf("cannot listen again on %s: %v", addr, lerr)
	}
	t.Cleanup(func() { s.Close() })
	p.Server = s
	return p
}

// query sends a MESSAGE Query to a device as the platform would.
func query(t *testing.T, c *sipgo.Client, addr string, q *manscdp.Query) {
	t.Helper()
	body, err := manscdp.Marshal(q, "GB2312")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := sip.ParseAddr(addr)
	req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: q.DeviceID, Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: platformID, Host: platformID[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: q.DeviceID, Host: platformID[:10]}})
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("%s query: %d", q.CmdType, res.StatusCode)
	}
}

func TestQueries(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices = 2; c.ChannelsPerDevice = 7 })
	waitOnline(t, p, s, 5*time.Second)
	id := s.DeviceIDs()[1]
	dev, ok := p.Device(id)
	if !ok {
		t.Fatal("platform does not know the device")
	}
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}

	query(t, c, dev.Addr, manscdp.CatalogQuery(77, id))
	asm := manscdp.NewAssembler(manscdp.AssemblerOptions{})
	var got *manscdp.Collection
	var msgs []*manscdp.Message
	deadline := time.After(5 * time.Second)
	for got == nil || !got.Complete {
		select {
		case m := <-p.msgs:
			msgs = append(msgs, m)
			col, done, err := asm.Add(m)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				got = col
			}
		case <-deadline:
			t.Fatalf("catalog incomplete: %+v", got)
		}
	}
	// 7 channels, at most 3 a page, and fewer where 3 would not fit in a
	// UDP datagram that sipgo sends.
	if len(msgs) < 3 || len(msgs) > 7 {
		t.Errorf("%d messages, want 3 to 7", len(msgs))
	}
	for _, m := range msgs {
		cat, err := m.Catalog()
		if err != nil || cat.SumNum != 7 || cat.Num != len(cat.Items) || cat.Num > 3 || m.SN != 77 || cat.DeviceID != id {
			t.Errorf("page %+v %v", cat, err)
		}
		if len(m.Raw)+500 > sip.UDPMTUSize-200 {
			t.Errorf("page of %d bytes", len(m.Raw))
		}
	}
	cat, err := msgs[0].Catalog()
	if err != nil {
		t.Fatal(err)
	}
	it := cat.Items[0]
	if it.Name != "模拟通道 1" || it.Manufacturer != "Xueliang" || it.Model != "SIM-NVR" || it.CivilCode != division ||
		it.Parental != 0 || it.ParentID != id || !it.Online() || it.Longitude == 0 || it.Latitude == 0 ||
		it.DeviceID != s.Channels(id)[0] {
		t.Errorf("item %+v", it)
	}
	if len(got.Catalog) != 7 {
		t.Errorf("%d items", len(got.Catalog))
	}

	query(t, c, dev.Addr, manscdp.DeviceInfoQuery(78, id))
	m := next(t, p.msgs)
	di, err := m.DeviceInfo()
	if err != nil || di.DeviceID != id || di.Manufacturer != "Xueliang" || di.Channel != 7 || di.Result != "OK" {
		t.Errorf("device info %+v %v", di, err)
	}
	query(t, c, dev.Addr, manscdp.DeviceStatusQuery(79, id))
	m = next(t, p.msgs)
	ds, err := m.DeviceStatus()
	if err != nil || ds.DeviceID != id || ds.Online != "ONLINE" || ds.Time.IsZero() || time.Since(ds.Time).Abs() > 5*time.Second {
		t.Errorf("device status %+v %v", ds, err)
	}
	deadline2 := time.Now().Add(2 * time.Second)
	for s.Stats().Queries < 2 && time.Now().Before(deadline2) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.CatalogQueries != 1 || st.Queries != 2 {
		t.Errorf("stats %+v", st)
	}
}

func next(t *testing.T, ch chan *manscdp.Message) *manscdp.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	return nil
}

func TestConfigErrors(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"no server":    func(c *Config) { c.Server = "" },
		"platform id":  func(c *Config) { c.PlatformID = "123" },
		"division":     func(c *Config) { c.DivisionCode = "4418" },
		"no devices":   func(c *Config) { c.Devices = 0 },
		"too many ids": func(c *Config) { c.Devices = 500000; c.ChannelsPerDevice = 2 },
		"civil code":   func(c *Config) { c.CivilCode = "4418x" },
		"media ip":     func(c *Config) { c.MediaIP = "::1" },
		"clip":         func(c *Config) { c.Clip = "no-such-clip.h264" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Server: "127.0.0.1:5060", PlatformID: platformID, DivisionCode: division, Devices: 1}
			edit(&cfg)
			if _, err := Start(context.Background(), cfg); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestRegistrationStorm registers XUELIANG_BENCH_DEVICES (default 3,000)
// devices at once and reports the time until all are online.
func TestRegistrationStorm(t *testing.T) {
	if os.Getenv("XUELIANG_BENCH") != "1" {
		t.Skip("set XUELIANG_BENCH=1")
	}
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("XUELIANG_BENCH_DEVICES")); err == nil && v > 0 {
		n = v
	}
	uaPerDevice = os.Getenv("XUELIANG_BENCH_UA") == "device"
	defer func() { uaPerDevice = false }()
	p := startPlatform(t, 60*time.Second)
	start := time.Now()
	s := startSim(t, p, func(c *Config) {
		c.Devices = n
		c.ChannelsPerDevice = 11
		c.KeepaliveInterval = 60 * time.Second
		c.RetryInterval = time.Second
	})
	started := time.Since(start)
	waitOnline(t, p, s, 120*time.Second)
	took := time.Since(start)
	var once sync.Once
	once.Do(func() {
		t.Logf("%d devices (UA per device: %v): sockets opened in %v, all online after %v (%.0f registrations/s); stats %+v",
			n, uaPerDevice, started, took, float64(n)/took.Seconds(), s.Stats())
	})
	fmt.Fprintf(os.Stderr, "BENCH registration storm: %d devices online in %v\n", n, took)
}

// testWriter sends the simulation's log to the test's, until the test's
// cleanup ends: sipgo's goroutines may log while they wind down after
// Close, and the testing package forbids logging after a test.
type testWriter struct {
	t    testing.TB
	mu   *sync.Mutex
	done *bool
}

// newTestWriter must be called before the simulation is started, so that
// its cleanup runs after the simulation's Close.
func newTestWriter(t testing.TB) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() {
		w.mu.Lock()
		*w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

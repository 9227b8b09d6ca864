package sipserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

const platformID = "44180000002000000001"

func startServer(t *testing.T, edit func(*Config)) (*Server, chan Event) {
	t.Helper()
	evs := make(chan Event, 100)
	cfg := Config{ID: platformID, Password: "12345678", KeepaliveInterval: 200 * time.Millisecond,
		OnEvent: func(e Event) { evs <- e }, Log: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, evs
}

// device is a minimal GB/T 28181 device: a sipgo client.
type device struct {
	t      *testing.T
	id     string
	client *sipgo.Client
	server string
}

func newDevice(t *testing.T, id, server string) *device {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-ipc"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ua.Close() })
	return &device{t: t, id: id, client: c, server: server}
}

func (d *device) request(method sip.RequestMethod, body []byte, headers ...sip.Header) *sip.Request {
	var to sip.Uri
	if err := sip.ParseUri(fmt.Sprintf("sip:%s@%s", platformID, d.server), &to); err != nil {
		d.t.Fatal(err)
	}
	req := sip.NewRequest(method, to)
	if strings.Contains(d.server, "transport=tcp") {
		req.SetTransport("TCP")
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: platformID[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: platformID[:10]}, Params: sip.NewParams()})
	for _, h := range headers {
		req.AppendHeader(h)
	}
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
		req.SetBody(body)
	}
	return req
}

// register sends REGISTER, answers the challenge with password, and
// returns the final response.
func (d *device) register(password string, expires int) *sip.Response {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := d.request(sip.REGISTER, nil, sip.NewHeader("Expires", fmt.Sprint(expires)),
		&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: "127.0.0.1", Port: 5060}})
	res, err := d.client.Do(ctx, req)
	if err != nil {
		d.t.Fatal(err)
	}
	if res.StatusCode != 401 {
		d.t.Fatalf("first REGISTER: %d, want a 401 challenge", res.StatusCode)
	}
	if h := res.GetHeader("WWW-Authenticate"); h == nil || !strings.Contains(h.Value(), "MD5") || !strings.Contains(h.Value(), `realm="4418000000"`) {
		d.t.Fatalf("challenge: %v", h)
	}
	res, err = d.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: d.id, Password: password})
	if err != nil {
		d.t.Fatal(err)
	}
	return res
}

func (d *device) keepalive(sn int) *sip.Response {
	d.t.Helper()
	body, err := manscdp.Marshal(struct {
		XMLName  struct{} `xml:"Notify"`
		CmdType  string
		SN       int
		DeviceID string
		Status   string
	}{CmdType: "Keepalive", SN: sn, DeviceID: d.id, Status: "OK"}, "GB2312")
	if err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := d.client.Do(ctx, d.request(sip.MESSAGE, body))
	if err != nil {
		d.t.Fatal(err)
	}
	return res
}

func next(t *testing.T, evs chan Event, within time.Duration) Event {
	t.Helper()
	select {
	case e := <-evs:
		return e
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return Event{}
}

func TestRegisterKeepaliveAndOffline(t *testing.T) {
	s, evs := startServer(t, nil)
	dev := newDevice(t, "44182110101320000001", s.Addr())

	res := dev.register("12345678", 3600)
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER with the right password: %d %s", res.StatusCode, res.Reason)
	}
	date := res.GetHeader("Date")
	if date == nil {
		t.Fatal("the 200 OK has no Date header: devices set their clocks from it")
	}
	if d, err := time.ParseInLocation(DateLayout, date.Value(), time.Local); err != nil || time.Since(d).Abs() > 5*time.Second {
		t.Errorf("Date %q: %v", date.Value(), err)
	}
	if e := next(t, evs, time.Second); e.State != StateOnline || e.Reason != "registered" || e.DeviceID != dev.id {
		t.Errorf("event %+v", e)
	}
	// Keepalives keep it online; then silence makes it offline after
	// three intervals.
	var last time.Time
	for i := range 5 {
		last = time.Now()
		if res := dev.keepalive(i + 1); res.StatusCode != 200 {
			t.Fatalf("keepalive: %d", res.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case e := <-evs:
		t.Fatalf("an event while keepalives arrive: %+v", e)
	default:
	}
	e := next(t, evs, 5*time.Second)
	if e.State != StateOffline || !strings.Contains(e.Reason, "3 keepalives missed") {
		t.Errorf("event %+v", e)
	}
	// Never before three intervals (it may be later on a busy machine).
	if took := time.Since(last); took < 600*time.Millisecond {
		t.Errorf("offline %v after the last keepalive, before 3 intervals (600 ms)", took)
	}
	// A keepalive brings it back.
	if res := dev.keepalive(9); res.StatusCode != 200 {
		t.Fatalf("keepalive: %d", res.StatusCode)
	}
	if e := next(t, evs, time.Second); e.State != StateOnline || e.Reason != "keepalive" {
		t.Errorf("event %+v", e)
	}
	// Expires: 0 unregisters.
	if res := dev.register("12345678", 0); res.StatusCode != 200 {
		t.Fatalf("unregister: %d", res.StatusCode)
	}
	if e := next(t, evs, time.Second); e.State != StateOffline || e.Reason != "unregistered" {
		t.Errorf("event %+v", e)
	}
	// A keepalive from a device that is not registered is refused, so
	// that it registers again.
	if res := dev.keepalive(10); res.StatusCode != 403 {
		t.Errorf("keepalive of an unregistered device: %d", res.StatusCode)
	}
}

func TestRegisterRefusals(t *testing.T) {
	known := map[string]string{"44182110101320000002": "per-device"}
	s, evs := startServer(t, func(c *Config) {
		c.DevicePassword = func(id string) (string, bool) { p, ok := known[id]; return p, ok }
	})
	// A wrong password: 403.
	if res := newDevice(t, "44182110101320000002", s.Addr()).register("12345678", 3600); res.StatusCode != 403 {
		t.Errorf("wrong password: %d", res.StatusCode)
	}
	// Unknown devices are refused unless allowed.
	if res := newDevice(t, "44182110101320000003", s.Addr()).register("12345678", 3600); res.StatusCode != 403 {
		t.Errorf("unknown device: %d", res.StatusCode)
	}
	// The per-device password works.
	if res := newDevice(t, "44182110101320000002", s.Addr()).register("per-device", 3600); res.StatusCode != 200 {
		t.Errorf("per-device password: %d", res.StatusCode)
	}
	if e := next(t, evs, time.Second); e.State != StateOnline {
		t.Errorf("event %+v", e)
	}
	if _, ok := s.Device("44182110101320000003"); ok {
		t.Error("a refused device is listed")
	}
}

func TestNonces(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	s, err := New(Config{ID: platformID, Password: "x", Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := s.nonce()
	if !s.nonceValid(n) {
		t.Fatal("a fresh nonce is refused")
	}
	for _, bad := range []string{"", "abc", n + "0", "x." + strings.Split(n, ".")[1]} {
		if s.nonceValid(bad) {
			t.Errorf("nonce %q accepted", bad)
		}
	}
	now = now.Add(6 * time.Minute)
	if s.nonceValid(n) {
		t.Error("a 6-minute-old nonce is accepted")
	}
}

func TestMessagesReachTheCaller(t *testing.T) {
	got := make(chan *manscdp.Message, 1)
	s, evs := startServer(t, func(c *Config) {
		c.OnMessage = func(id string, m *manscdp.Message) { got <- m }
	})
	dev := newDevice(t, "44182110101320000004", s.Addr())
	if res := dev.register("12345678", 3600); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	next(t, evs, time.Second)
	body := []byte(`<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>DeviceInfo</CmdType><SN>7</SN><DeviceID>44182110101320000004</DeviceID><Result>OK</Result></Response>`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := dev.client.Do(ctx, dev.request(sip.MESSAGE, body))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %v %v", res, err)
	}
	select {
	case m := <-got:
		if m.CmdType != "DeviceInfo" || m.SN != 7 {
			t.Errorf("message %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("the message did not reach OnMessage")
	}
	// A body that is not MANSCDP: 400 with a reason.
	res, err = dev.client.Do(ctx, dev.request(sip.MESSAGE, []byte("hello")))
	if err != nil || res.StatusCode != 400 {
		t.Errorf("garbage body: %v %v", res, err)
	}
}

package devsim

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/sdp"
)

func TestRaiseAlarm(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, 200*time.Millisecond)
	at := time.Date(2025, 3, 10, 8, 0, 0, 0, time.Local)
	s := startSim(t, p, func(c *Config) { c.Devices, c.ChannelsPerDevice = 2, 3 })
	waitOnline(t, p, s, 5*time.Second)
	ch := s.Channels(s.DeviceIDs()[1])[2]
	if err := s.RaiseAlarm(ch, Alarm{Priority: 2, Method: 5, Type: 2, Description: "区域入侵", Time: at, Longitude: 113.1, Latitude: 23.7}); err != nil {
		t.Fatal(err)
	}
	m := nextMsg(t, p, manscdp.CmdAlarm, 5*time.Second)
	a, err := m.Alarm()
	if err != nil || a.DeviceID != ch || a.AlarmPriority != 2 || a.AlarmMethod != 5 || a.AlarmType != 2 ||
		a.AlarmDescription != "区域入侵" || !a.Time.Equal(at) || a.Longitude != 113.1 || a.Latitude != 23.7 {
		t.Errorf("alarm %+v %v", a, err)
	}
	// Defaults: now and the channel's position.
	if err := s.RaiseAlarm(ch, Alarm{Priority: 4, Method: 6}); err != nil {
		t.Fatal(err)
	}
	a, err = nextMsg(t, p, manscdp.CmdAlarm, 5*time.Second).Alarm()
	if err != nil || time.Since(a.Time).Abs() > 5*time.Second || a.Longitude == 0 || a.AlarmType != 0 {
		t.Errorf("alarm %+v %v", a, err)
	}
	if st := s.Stats(); st.Alarms != 2 {
		t.Errorf("stats %+v", st)
	}
	for _, tc := range []struct {
		id   string
		a    Alarm
		want error
	}{
		{ch, Alarm{Priority: 0, Method: 1}, ErrInvalid},
		{ch, Alarm{Priority: 1, Method: 8}, ErrInvalid},
		{"nope", Alarm{Priority: 1, Method: 1}, ErrUnknownChannel},
	} {
		if err := s.RaiseAlarm(tc.id, tc.a); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.a, err, tc.want)
		}
	}
}

// subscribe sends a SUBSCRIBE for kind (Catalog or Alarm) to a device and
// returns the response.
func (p *peer) subscribe(t testing.TB, addr, dev, kind string, expires int, callID string) *sip.Response {
	t.Helper()
	q := manscdp.CatalogQuery(1, dev)
	q.CmdType = kind
	body, err := manscdp.Marshal(q, "GB2312")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := sip.ParseAddr(addr)
	req := sip.NewRequest(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: dev, Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: platformID, Host: platformID[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", "sub"+kind)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: dev, Host: platformID[:10]}})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(sip.HeaderClone(&p.contact))
	req.AppendHeader(sip.NewHeader("Event", kind+";id=1"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCatalogSubscription: a catalog subscription gets its events as
// NOTIFYs; without one they come as MESSAGEs. The device's catalog and
// INVITEs follow the events.
func TestCatalogSubscription(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices, c.ChannelsPerDevice = 1, 4; c.CatalogPageSize = 3 })
	waitOnline(t, p, s, 5*time.Second)
	dev := s.DeviceIDs()[0]
	chs := s.Channels(dev)
	addr := deviceAddr(t, p, dev)
	pr := newPeer(t)

	res := pr.subscribe(t, addr, dev, "Catalog", 600, "catalog-sub-1")
	if res.StatusCode != 200 || res.GetHeader("Expires") == nil || res.GetHeader("Expires").Value() != "600" {
		t.Fatalf("SUBSCRIBE: %s", res)
	}
	m, err := manscdp.Parse(res.Body())
	if r, _ := m.Text("Result"); err != nil || m.Root != manscdp.RootResponse || m.CmdType != "Catalog" || r != "OK" {
		t.Errorf("SUBSCRIBE answer %q: %v", res.Body(), err)
	}

	if err := s.NotifyCatalog(dev, "off", chs[1]); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-pr.notifies:
		if string(*req.CallID()) != "catalog-sub-1" || req.GetHeader("Event").Value() != "Catalog;id=1" ||
			req.GetHeader("Subscription-State") == nil {
			t.Errorf("NOTIFY %s", req)
		}
		if tag, _ := req.To().Params.Get("tag"); tag != "subCatalog" {
			t.Errorf("NOTIFY To tag %q", tag)
		}
		if tag, _ := req.From().Params.Get("tag"); tag == "" {
			t.Error("NOTIFY without From tag")
		} else if want, _ := res.To().Params.Get("tag"); tag != want {
			t.Errorf("NOTIFY From tag %q, the 200 OK said %q", tag, want)
		}
		m, err := manscdp.Parse(req.Body())
		if err != nil {
			t.Fatal(err)
		}
		cat, err := m.Catalog()
		if err != nil || m.Root != manscdp.RootNotify || cat.SumNum != 1 || len(cat.Items) != 1 ||
			cat.Items[0].DeviceID != chs[1] || cat.Items[0].Event != "OFF" || cat.Items[0].Online() {
			t.Errorf("NOTIFY catalog %+v %v", cat, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY")
	}
	// An INVITE for the channel that is off.
	_, err = pr.invite(t, addr, chs[1], sdp.LiveOffer(platformID, chs[1], "127.0.0.1", 40000, false, "", ssrc(t, true, 1)))
	if res := refusal(t, err); res.StatusCode != 480 {
		t.Errorf("INVITE of an OFF channel: %d %s", res.StatusCode, res.Reason)
	}

	// Unsubscribed: events come as MESSAGEs, paged.
	if res := pr.subscribe(t, addr, dev, "Catalog", 0, "catalog-sub-1"); res.StatusCode != 200 {
		t.Fatalf("unSUBSCRIBE: %s", res)
	}
	if err := s.NotifyCatalog(dev, "DEL"); err != nil {
		t.Fatal(err)
	}
	var items int
	for items < 4 {
		m := nextMsg(t, p, manscdp.CmdCatalog, 5*time.Second)
		cat, err := m.Catalog()
		if err != nil || m.Root != manscdp.RootNotify || cat.SumNum != 4 || cat.Num > 3 {
			t.Fatalf("catalog message %+v %v", cat, err)
		}
		for _, it := range cat.Items {
			if it.Event != "DEL" {
				t.Errorf("item %+v", it)
			}
		}
		items += len(cat.Items)
	}
	select {
	case req := <-pr.notifies:
		t.Errorf("NOTIFY after unsubscribing: %s", req)
	default:
	}
	// Deleted channels are out of the catalog; ADD brings one back.
	if err := s.NotifyCatalog(dev, "ADD", chs[3]); err != nil {
		t.Fatal(err)
	}
	nextMsg(t, p, manscdp.CmdCatalog, 5*time.Second)
	pr.send(t, addr, dev, manscdp.CatalogQuery(5, dev))
	cat, err := nextMsg(t, p, manscdp.CmdCatalog, 5*time.Second).Catalog()
	if err != nil || cat.SumNum != 1 || len(cat.Items) != 1 || cat.Items[0].DeviceID != chs[3] || !cat.Items[0].Online() {
		t.Errorf("catalog after DEL and ADD: %+v %v", cat, err)
	}

	for _, tc := range []struct {
		dev, event string
		chs        []string
		want       error
	}{
		{dev, "GONE", nil, ErrInvalid},
		{chs[0], "ON", nil, ErrUnknownDevice},
		{dev, "ON", []string{"nope"}, ErrUnknownChannel},
	} {
		if err := s.NotifyCatalog(tc.dev, tc.event, tc.chs...); !errors.Is(err, tc.want) {
			t.Errorf("%s %s %v: %v, want %v", tc.dev, tc.event, tc.chs, err, tc.want)
		}
	}
}

// TestAlarmSubscription: a subscribed platform gets alarms as NOTIFY too.
func TestAlarmSubscription(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices, c.ChannelsPerDevice = 1, 1 })
	waitOnline(t, p, s, 5*time.Second)
	dev := s.DeviceIDs()[0]
	pr := newPeer(t)
	if res := pr.subscribe(t, deviceAddr(t, p, dev), dev, "Alarm", 60, "alarm-sub"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %s", res)
	}
	if err := s.RaiseAlarm(s.Channels(dev)[0], Alarm{Priority: 1, Method: 2, Description: "door"}); err != nil {
		t.Fatal(err)
	}
	sn := nextMsg(t, p, manscdp.CmdAlarm, 5*time.Second).SN
	select {
	case req := <-pr.notifies:
		m, err := manscdp.Parse(req.Body())
		if err != nil {
			t.Fatal(err)
		}
		if a, err := m.Alarm(); err != nil || a.AlarmDescription != "door" || m.SN != sn {
			t.Errorf("NOTIFY alarm %+v %v", a, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY")
	}
}

// TestCatalogOf200Channels: an NVR of 200 channels with 10 items a page
// answers in 20 MESSAGEs, each one UDP datagram.
func TestCatalogOf200Channels(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices, c.ChannelsPerDevice = 1, 200; c.CatalogPageSize = 10 })
	waitOnline(t, p, s, 5*time.Second)
	dev := s.DeviceIDs()[0]
	pr := newPeer(t)
	pr.send(t, deviceAddr(t, p, dev), dev, manscdp.CatalogQuery(7, dev))
	asm := manscdp.NewAssembler(manscdp.AssemblerOptions{})
	var msgs int
	for {
		m := nextMsg(t, p, manscdp.CmdCatalog, 5*time.Second)
		msgs++
		cat, err := m.Catalog()
		if err != nil || cat.Num != 10 || len(cat.Items) != 10 || cat.SumNum != 200 {
			t.Fatalf("page %d: %+v %v", msgs, cat, err)
		}
		col, done, err := asm.Add(m)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			if len(col.Catalog) != 200 || col.Duplicates != 0 {
				t.Errorf("collection of %d items, %d duplicates", len(col.Catalog), col.Duplicates)
			}
			break
		}
	}
	if msgs != 20 {
		t.Errorf("%d messages, want 20", msgs)
	}
}

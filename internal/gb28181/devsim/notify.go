package devsim

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// Alarm is an alarm a device raises (GB/T 28181-2016 §9.4, A.2.5.3).
type Alarm struct {
	Priority int `json:"priority"` // AlarmPriority: 1 (highest) to 4
	// Method is AlarmMethod: 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6
	// device fault, 7 other.
	Method int `json:"method"`
	// Type is Info/AlarmType, whose meaning depends on Method (for video
	// alarms, GB/T 28181-2016 A.2.5.3: 1 manual, 2 motion, 3 left object,
	// 4 removed object, 5 tripwire, 6 intrusion, ...); 0 leaves it out.
	Type        int    `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
	// Time is AlarmTime; zero means now (Config.Now).
	Time time.Time `json:"time,omitzero"`
	// Longitude and Latitude default to the channel's position.
	Longitude float64 `json:"longitude,omitempty"`
	Latitude  float64 `json:"latitude,omitempty"`
}

type alarmBody struct {
	XMLName          xml.Name `xml:"Notify"`
	CmdType          string
	SN               int
	DeviceID         string
	AlarmPriority    int
	AlarmMethod      int
	AlarmTime        string
	AlarmDescription string
	Longitude        string
	Latitude         string
	Info             *alarmInfo `xml:",omitempty"`
}

type alarmInfo struct {
	AlarmType int
}

// RaiseAlarm sends a MESSAGE Notify Alarm from a channel (or a device's
// own code) to the platform and returns once the platform answered 200
// OK. A platform subscribed to the device's alarms also gets it as a
// NOTIFY within the subscription, with the same SN. It fails with
// ErrUnknownChannel, ErrInvalid (priority or method out of range),
// ErrOffline, or ErrRefused.
func (s *Sim) RaiseAlarm(channelID string, a Alarm) error {
	d := s.byID[channelID]
	switch {
	case d == nil:
		return fmt.Errorf("%w: %q", ErrUnknownChannel, channelID)
	case a.Priority < 1 || a.Priority > 4:
		return fmt.Errorf("%w: alarm priority %d, want 1-4", ErrInvalid, a.Priority)
	case a.Method < 1 || a.Method > 7:
		return fmt.Errorf("%w: alarm method %d, want 1-7", ErrInvalid, a.Method)
	case !d.online.Load():
		return fmt.Errorf("%w: %s", ErrOffline, d.id)
	}
	if a.Time.IsZero() {
		a.Time = s.cfg.Now()
	}
	if a.Longitude == 0 && a.Latitude == 0 {
		a.Longitude, a.Latitude = d.position(d.channelIndex(channelID))
	}
	body := alarmBody{CmdType: cmdAlarm, SN: s.nextSN(), DeviceID: channelID, AlarmPriority: a.Priority,
		AlarmMethod: a.Method, AlarmTime: formatTime(a.Time, s.cfg.Location), AlarmDescription: a.Description,
		Longitude: fmt.Sprintf("%.6f", a.Longitude), Latitude: fmt.Sprintf("%.6f", a.Latitude)}
	if a.Type != 0 {
		body.Info = &alarmInfo{AlarmType: a.Type}
	}
	b, err := d.body(&body)
	if err != nil {
		return err
	}
	code, err := d.send(s.ctx, b)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("%w: alarm of %s answered %d", ErrRefused, channelID, code)
	}
	s.alarms.Add(1)
	s.log.Info("alarm raised", "channel", channelID, "priority", a.Priority, "method", a.Method, "type", a.Type)
	for _, sub := range d.subscriptions(cmdAlarm) {
		if code, err := d.notify(s.ctx, sub, b); err != nil || code != 200 {
			s.log.Warn("alarm NOTIFY not delivered", "device", d.id, "code", code, "err", err)
		}
	}
	return nil
}

// subscription is a platform's SUBSCRIBE to a device (GB/T 28181-2016
// §9.11: catalog and alarm subscriptions; RFC 6665). The device is the
// notifier: its NOTIFYs go within the dialog the SUBSCRIBE created.
type subscription struct {
	kind      string // cmdCatalog or cmdAlarm
	callID    string
	event     string  // the Event header, as the subscriber wrote it
	target    sip.Uri // the subscriber's Contact
	local     sip.Uri // our side of the dialog (the SUBSCRIBE's To)
	localTag  string
	remote    sip.Uri // the subscriber (the SUBSCRIBE's From)
	remoteTag string
	expires   time.Time
	cseq      uint32 // of our last NOTIFY
}

// defaultSubscribeExpires is used when a SUBSCRIBE has no Expires.
const defaultSubscribeExpires = 3600

// onSubscribe accepts a Catalog or Alarm subscription (the CmdType of its
// Query body, else its Event header): 200 OK with Expires and a Response
// with Result OK. Expires 0 ends it.
func (s *Sim) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	d := s.deviceOf(req)
	if d == nil {
		respond(tx, req, 404, "Not Found")
		return
	}
	if d.rebooting.Load() {
		return
	}
	event := ""
	if h := req.GetHeader("Event"); h != nil {
		event = strings.TrimSpace(h.Value())
	}
	var kind string
	sn, id := 0, d.id
	if len(req.Body()) > 0 {
		m, err := manscdp.Parse(req.Body())
		if err != nil {
			respond(tx, req, 400, "Bad Request: "+firstLine(err.Error()))
			return
		}
		kind, sn = m.CmdType, m.SN
		if m.DeviceID != "" {
			id = m.DeviceID
		}
	} else {
		name, _, _ := strings.Cut(event, ";")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "catalog":
			kind = cmdCatalog
		case "alarm", "presence":
			kind = cmdAlarm
		}
	}
	if kind != cmdCatalog && kind != cmdAlarm {
		respond(tx, req, 489, "Bad Event: subscribe to Catalog or Alarm")
		return
	}
	expires := defaultSubscribeExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			respond(tx, req, 400, "Bad Request: Expires")
			return
		}
		expires = n
	}
	contact := req.Contact()
	from, to, callID := req.From(), req.To(), req.CallID()
	if contact == nil || from == nil || to == nil || callID == nil {
		respond(tx, req, 400, "Bad Request: SUBSCRIBE without Contact, From, To or Call-ID")
		return
	}
	body, err := d.body(&resultBody{XMLName: xml.Name{Local: "Response"}, CmdType: kind, SN: sn, DeviceID: id, Result: resultOK})
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res.AppendHeader(sip.NewHeader("Content-Type", contentTypeMANSCDP))
	res.AppendHeader(sip.HeaderClone(&d.dialogs.ContactHDR))
	localTag, _ := res.To().Params.Get("tag")
	remoteTag, _ := from.Params.Get("tag")
	key := string(*callID)
	d.mu.Lock()
	if expires == 0 {
		delete(d.subs, key)
	} else {
		sub := d.subs[key]
		if sub == nil {
			sub = &subscription{kind: kind, callID: key, local: to.Address, localTag: localTag,
				remote: from.Address, remoteTag: remoteTag}
			d.subs[key] = sub
		}
		sub.event, sub.target = event, contact.Address
		sub.expires = time.Now().Add(time.Duration(expires) * time.Second)
	}
	d.mu.Unlock()
	tx.Respond(res)
	s.log.Info("SUBSCRIBE", "device", d.id, "kind", kind, "expires", expires)
}

// subscriptions returns the live subscriptions of a kind.
func (d *device) subscriptions(kind string) []*subscription {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var out []*subscription
	for k, sub := range d.subs {
		switch {
		case now.After(sub.expires):
			delete(d.subs, k)
		case sub.kind == kind:
			out = append(out, sub)
		}
	}
	return out
}

// notify sends a NOTIFY within a subscription (RFC 6665 §4.2.2).
func (d *device) notify(ctx context.Context, sub *subscription, body []byte) (int, error) {
	d.mu.Lock()
	sub.cseq++
	cseq := sub.cseq
	left := max(0, int(time.Until(sub.expires).Seconds()))
	target, event := sub.target, sub.event
	d.mu.Unlock()
	req := sip.NewRequest(sip.NOTIFY, target)
	from := &sip.FromHeader{Address: sub.local, Params: sip.NewParams()}
	from.Params.Add("tag", sub.localTag)
	to := &sip.ToHeader{Address: sub.remote, Params: sip.NewParams()}
	if sub.remoteTag != "" {
		to.Params.Add("tag", sub.remoteTag)
	}
	callID := sip.CallIDHeader(sub.callID)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.NOTIFY})
	if event == "" {
		event = sub.kind
	}
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Subscription-State", "active;expires="+strconv.Itoa(left)))
	req.AppendHeader(sip.HeaderClone(&d.dialogs.ContactHDR))
	req.AppendHeader(sip.NewHeader("Content-Type", contentTypeMANSCDP))
	req.SetBody(body)
	return d.sendRequest(ctx, req)
}

// Catalog events of a catalog notification (GB/T 28181-2016 §9.5.3,
// A.2.5.5; Item/Event).
var catalogEvents = map[string]bool{"ON": true, "OFF": true, "VLOST": true, "DEFECT": true, "ADD": true, "DEL": true, "UPDATE": true}

// NotifyCatalog tells the platform that channels of a device changed:
// event is ON, OFF, VLOST, DEFECT, ADD, DEL or UPDATE; no channelIDs means
// all of the device's. It sends Notify Catalog bodies whose items carry
// Event, CatalogPageSize items each: as NOTIFYs within the platform's
// catalog subscription when there is one, else as MESSAGEs (as many
// devices do). The device's catalog follows the event: OFF marks the
// channels OFF (and INVITEs for them are answered 480), ON and ADD mark
// them ON, DEL takes them out of the catalog (ADD puts them back).
func (s *Sim) NotifyCatalog(deviceID string, event string, channelIDs ...string) error {
	d := s.byID[deviceID]
	if d == nil || d.id != deviceID {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, deviceID)
	}
	event = strings.ToUpper(strings.TrimSpace(event))
	if !catalogEvents[event] {
		return fmt.Errorf("%w: catalog event %q, want ON, OFF, VLOST, DEFECT, ADD, DEL or UPDATE", ErrInvalid, event)
	}
	if len(channelIDs) == 0 {
		channelIDs = d.channels
	}
	idx := make([]int, len(channelIDs))
	for i, c := range channelIDs {
		if idx[i] = d.channelIndex(c); idx[i] < 0 || c == d.id {
			return fmt.Errorf("%w: %q is not a channel of %s", ErrUnknownChannel, c, deviceID)
		}
	}
	if !d.online.Load() {
		return fmt.Errorf("%w: %s", ErrOffline, d.id)
	}
	items := make([]catalogItem, len(idx))
	d.mu.Lock()
	for i, j := range idx {
		st := d.state[d.channels[j]]
		switch event {
		case "ON":
			st.status = statusOn
		case "OFF":
			st.status = statusOff
		case "ADD":
			st.status, st.deleted = statusOn, false
		case "DEL":
			st.deleted = true
		}
		items[i] = d.itemLocked(j)
		items[i].Event = event
	}
	d.mu.Unlock()
	bodies, err := d.catalogPages(xml.Name{Local: "Notify"}, s.nextSN(), items)
	if err != nil {
		return err
	}
	subs := d.subscriptions(cmdCatalog)
	if len(subs) == 0 {
		if err := d.sendAll(s.ctx, "catalog notification", bodies); err != nil {
			return err
		}
	}
	for _, sub := range subs {
		for i, b := range bodies {
			code, err := d.notify(s.ctx, sub, b)
			if err != nil {
				return err
			}
			if code != 200 {
				return fmt.Errorf("%w: catalog NOTIFY %d of %d answered %d", ErrRefused, i+1, len(bodies), code)
			}
		}
	}
	s.log.Info("catalog notified", "device", d.id, "event", event, "channels", len(items), "messages", len(bodies), "subscribed", len(subs) > 0)
	return nil
}

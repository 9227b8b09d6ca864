package platform

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/model"
)

// alarm stores a device's Alarm notify, answers it (GB/T 28181-2016
// §9.4.2: a Response with Result OK after the 200 OK) and hands it on.
func (p *Platform) alarm(device string, m *manscdp.Message) {
	a, err := m.Alarm()
	if err != nil {
		p.log.Warn("bad alarm notify", "device", device, "err", err)
		return
	}
	if p.seenAlarm(device, m.SN, a.DeviceID, a.AlarmTime) {
		// A device with an alarm subscription sends each alarm twice:
		// as a MESSAGE and as a NOTIFY of the subscription, same SN.
		return
	}
	p.ackNotify(device, m)

	al := model.Alarm{
		Source: "gb28181", DeviceCode: device, ChannelCode: a.DeviceID,
		Priority: a.AlarmPriority, Method: a.AlarmMethod, Description: trimName(a.AlarmDescription),
		Lat: a.Latitude, Lng: a.Longitude, ReceivedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if t, err := manscdp.ParseTime(a.AlarmTime, p.cfg.Location); err == nil {
		al.OccurredAt = t.UTC()
	}
	al.Type = model.AlarmMethodName(a.AlarmMethod)
	if a.AlarmType != 0 {
		al.Type += ":" + strconv.Itoa(a.AlarmType)
	}
	if al.OccurredAt.IsZero() {
		al.OccurredAt = al.ReceivedAt
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := p.st.InsertAlarm(ctx, &al); err != nil {
		p.log.Error("cannot store an alarm", "device", device, "channel", a.DeviceID, "err", err)
		return
	}
	p.metrics.alarms.Inc()
	p.log.Info("alarm", "device", device, "channel", a.DeviceID, "priority", al.Priority, "type", al.Type, "description", al.Description)
	if p.cfg.OnAlarm != nil {
		p.cfg.OnAlarm(al)
	}
}

// ackNotify answers a device's Notify with a Response Result OK (GB/T
// 28181-2016 §A.2.6: after an alarm or a catalog notify), without making
// the caller wait for the device's 200 OK.
func (p *Platform) ackNotify(device string, m *manscdp.Message) {
	go func() {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		if err := p.send(ctx, device, "", manscdp.NotifyResponse(m)); err != nil {
			p.log.Debug("answer a notify", "device", device, "cmd", m.CmdType, "err", err)
		}
	}()
}

// seenAlarm reports whether this alarm arrived in the last minute, and
// remembers it.
func (p *Platform) seenAlarm(device string, sn int, channel, at string) bool {
	k := device + "/" + strconv.Itoa(sn) + "/" + channel + "/" + at
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.alarmsSeen[k]; ok && now.Sub(t) < time.Minute {
		return true
	}
	if len(p.alarmsSeen) > 10000 {
		for k, t := range p.alarmsSeen {
			if now.Sub(t) >= time.Minute {
				delete(p.alarmsSeen, k)
			}
		}
	}
	p.alarmsSeen[k] = now
	return false
}

// SubscribeAlarms asks a device to notify its alarms for expires seconds
// (GB/T 28181-2016 §9.7; most devices notify without it).
func (p *Platform) SubscribeAlarms(ctx context.Context, device string, expires int) error {
	body, err := manscdp.Marshal(&alarmSubscribe{CmdType: manscdp.CmdAlarm, SN: p.nextSN(), DeviceID: device,
		StartAlarmPriority: 1, EndAlarmPriority: 4, AlarmMethod: 0}, "GB2312")
	if err != nil {
		return err
	}
	_, err = p.sip.Subscribe(ctx, device, "presence", expires, body)
	return err
}

type alarmSubscribe struct {
	XMLName            struct{} `xml:"Query"`
	CmdType            string
	SN                 int
	DeviceID           string
	StartAlarmPriority int
	EndAlarmPriority   int
	AlarmMethod        int
}

// metrics are the platform's Prometheus metrics.
type metrics struct {
	messages         *prometheus.CounterVec
	catalogItems     prometheus.Counter
	alarms           prometheus.Counter
	stateBatches     prometheus.Counter
	keepaliveFlushes prometheus.Counter
	invites          *prometheus.CounterVec
	noncompliant     *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xueliang_gb_messages_total",
			Help: "MANSCDP messages received from devices (keepalives excluded), by CmdType."}, []string{"cmd"}),
		catalogItems: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_gb_catalog_channels_total",
			Help: "Channels written from devices' catalogs."}),
		alarms: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_gb_alarms_total",
			Help: "Alarms received from devices."}),
		stateBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_gb_state_batches_total",
			Help: "Transactions that stored device state changes."}),
		keepaliveFlushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "xueliang_gb_keepalive_flushes_total",
			Help: "Transactions that stored keepalive times."}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xueliang_gb_invites_total",
			Help: "Media sessions asked of devices, by kind (live, playback, download) and result (ok or a reason)."}, []string{"kind", "result"}),
		noncompliant: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xueliang_gb_noncompliant_codes_total",
			Help: "Device codes (at registration) and channel codes (in catalogs) that break GB/T 28181 Annex D, by kind."}, []string{"kind"}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.messages.Describe(ch)
	m.catalogItems.Describe(ch)
	m.alarms.Describe(ch)
	m.stateBatches.Describe(ch)
	m.keepaliveFlushes.Describe(ch)
	m.invites.Describe(ch)
	m.noncompliant.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.messages.Collect(ch)
	m.catalogItems.Collect(ch)
	m.alarms.Collect(ch)
	m.stateBatches.Collect(ch)
	m.keepaliveFlushes.Collect(ch)
	m.invites.Collect(ch)
	m.noncompliant.Collect(ch)
}

// Package platform is the GB/T 28181 side of Xueliang: it runs the SIP
// server that devices register with, keeps the database in step with what
// devices say (registration state, catalogs, device info, clock), opens
// media sessions (live, playback, download) as sources of the stream hub,
// sends control commands (PTZ, presets, reboot, ...) and receives alarms.
//
// Writes are batched: registration state changes are written in one
// transaction per batch (a registration storm of 3,000 devices is a few
// dozen transactions), keepalives only move an in-memory clock that is
// flushed every FlushInterval, and each catalog is one transaction.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/gb28181/codes"
	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/rtprecv"
	"github.com/xueliang/xueliang/internal/gb28181/sipserver"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// Config configures a Platform. Store, ID and a password are required.
type Config struct {
	Store *store.Store
	// SIPAddr is where the SIP server listens (UDP and TCP).
	SIPAddr string
	// SIPHost is what devices reach the platform at; see sipserver.Config.
	SIPHost string
	// ID is the platform's 20-digit SIP ID; Realm its SIP domain (default
	// the first 10 digits of ID).
	ID    string
	Realm string
	// Password is the registration password; DevicePasswords overrides it
	// per device. Unless AllowUnknown, only devices in the database or in
	// DevicePasswords may register.
	Password        string
	DevicePasswords map[string]string
	AllowUnknown    bool
	// KeepaliveInterval is the devices' keepalive period (default 60 s).
	KeepaliveInterval time.Duration

	// MediaIP is the IP devices send media to (the c= line of offers);
	// default this machine's IP on the route to the device. MediaBind is
	// the IP the RTP sockets bind to (default 0.0.0.0).
	MediaIP   string
	MediaBind string
	// RTPPortMin and RTPPortMax bound the media ports (default
	// 30000–30999).
	RTPPortMin, RTPPortMax int
	// Transport is the default media transport: "udp", "tcp-passive" or
	// "tcp-active".
	Transport string
	// InviteTimeout bounds the wait for an answer to INVITE (default 10 s);
	// MediaTimeout the wait for usable media after it (default 5 s).
	InviteTimeout time.Duration
	MediaTimeout  time.Duration
	// ReadTimeout fails a session whose media stops (default 10 s).
	ReadTimeout time.Duration
	// IgnoreSSRC takes media of any SSRC instead of the SDP's y= only.
	IgnoreSSRC bool
	// Location is the time zone of devices' clocks: MANSCDP times carry
	// none (default time.Local).
	Location *time.Location

	// FlushInterval is how often keepalive times are written (default
	// 30 s); state changes are written within StateDelay (default 200 ms).
	FlushInterval time.Duration
	StateDelay    time.Duration
	// CatalogTimeout is how long an incomplete catalog waits for its
	// missing messages before what arrived is written (default 5 s).
	CatalogTimeout time.Duration

	// OnAlarm is called for every stored alarm. It must not block.
	OnAlarm func(model.Alarm)
	// OnDevice is called after a batch of device state changes is stored.
	OnDevice func(code string, online bool, reason string)

	Log        *slog.Logger
	Registerer prometheus.Registerer
}

func (c *Config) defaults() error {
	if c.Store == nil {
		return errors.New("platform: Store is required")
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = 60 * time.Second
	}
	if c.MediaBind == "" {
		c.MediaBind = "0.0.0.0"
	}
	if c.RTPPortMin == 0 && c.RTPPortMax == 0 {
		c.RTPPortMin, c.RTPPortMax = 30000, 30999
	}
	switch c.Transport {
	case "":
		c.Transport = TransportUDP
	case TransportUDP, TransportTCPPassive, TransportTCPActive:
	default:
		return fmt.Errorf("platform: transport must be udp, tcp-passive or tcp-active, got %q", c.Transport)
	}
	if c.InviteTimeout <= 0 {
		c.InviteTimeout = 10 * time.Second
	}
	if c.MediaTimeout <= 0 {
		c.MediaTimeout = 5 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 30 * time.Second
	}
	if c.StateDelay <= 0 {
		c.StateDelay = 200 * time.Millisecond
	}
	if c.CatalogTimeout <= 0 {
		c.CatalogTimeout = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	return nil
}

// Media transports of Config.Transport.
const (
	TransportUDP        = "udp"
	TransportTCPPassive = "tcp-passive"
	TransportTCPActive  = "tcp-active"
)

// Platform is a running GB/T 28181 platform.
type Platform struct {
	cfg     Config
	log     *slog.Logger
	st      *store.Store
	sip     *sipserver.Server
	ports   *rtprecv.PortPool
	metrics *metrics
	// recvMetrics are the media receivers' (nil without a Registerer).
	recvMetrics *rtprecv.Metrics
	asm         *manscdp.Assembler
	sn          atomic.Int64
	ssrcSeq     atomic.Uint32

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	events  queue[sipserver.Event]
	queries chan string                // devices to query after they registered
	catalog queue[*manscdp.Collection] // finished catalogs to store

	mu         sync.Mutex
	ids        map[string]int64     // device code -> device ID
	known      map[string]bool      // device codes that may register (in the database)
	divisions  map[string]bool      // division codes in the database
	missing    map[string]time.Time // codes found missing, and when
	refused    map[string]time.Time // unknown devices that tried to register, and when
	alarmsSeen map[string]time.Time // recent alarms, against duplicates
	waiters    map[waitKey]chan *manscdp.Message
	records    map[waitKey]chan *manscdp.Collection
	sessions   map[string]*Source // playbacks by device/channel, for MediaStatus
}

// New returns a Platform; Start starts it.
func New(cfg Config) (*Platform, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	p := &Platform{
		cfg: cfg, log: cfg.Log.With("component", "gb28181"), st: cfg.Store,
		asm:        manscdp.NewAssembler(manscdp.AssemblerOptions{}),
		queries:    make(chan string, 1<<16),
		ids:        map[string]int64{},
		known:      map[string]bool{},
		divisions:  map[string]bool{},
		missing:    map[string]time.Time{},
		refused:    map[string]time.Time{},
		alarmsSeen: map[string]time.Time{},
		waiters:    map[waitKey]chan *manscdp.Message{},
		records:    map[waitKey]chan *manscdp.Collection{},
		sessions:   map[string]*Source{},
	}
	p.events.init()
	p.catalog.init()
	var err error
	if p.ports, err = rtprecv.NewPortPool(cfg.RTPPortMin, cfg.RTPPortMax); err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	p.metrics = newMetrics()
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(p.metrics); err != nil {
			return nil, fmt.Errorf("platform: register metrics: %w", err)
		}
		if p.recvMetrics, err = rtprecv.NewMetrics(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("platform: %w", err)
		}
	}
	p.sip, err = sipserver.New(sipserver.Config{
		ID: cfg.ID, Realm: cfg.Realm, Host: cfg.SIPHost,
		Password: cfg.Password, DevicePassword: p.devicePassword, AllowUnknown: cfg.AllowUnknown,
		KeepaliveInterval: cfg.KeepaliveInterval,
		OnEvent:           func(ev sipserver.Event) { p.events.push(ev) },
		OnMessage:         p.onMessage,
		Log:               cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Start loads what it needs from the database and starts the SIP server.
func (p *Platform) Start(ctx context.Context) error {
	divs, err := p.st.ListDivisions(ctx)
	if err != nil {
		return err
	}
	for _, d := range divs {
		p.divisions[d.Code] = true
	}
	devs, err := p.st.ListDevices(ctx, store.DeviceFilter{})
	if err != nil {
		return err
	}
	for _, d := range devs {
		if d.Code != "" && (d.Kind == model.DeviceKindGB28181 || d.Kind == model.DeviceKindPlatform) {
			p.known[d.Code] = true
			p.ids[d.Code] = d.ID
		}
	}
	if err := p.markAllOffline(ctx, devs); err != nil {
		return err
	}
	if err := p.sip.Listen(p.cfg.SIPAddr); err != nil {
		return err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(3)
	go func() { defer p.wg.Done(); p.writeStates() }()
	go func() { defer p.wg.Done(); p.writeCatalogs() }()
	go func() { defer p.wg.Done(); p.flushKeepalives() }()
	const queryWorkers = 16
	for range queryWorkers {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.queryDevices() }()
	}
	return nil
}

// markAllOffline writes every GB/T 28181 device offline at start: whatever
// was online before belongs to the previous run, and devices register
// again within their keepalive interval.
func (p *Platform) markAllOffline(ctx context.Context, devs []model.Device) error {
	var states []store.DeviceState
	for _, d := range devs {
		if d.Code != "" && d.Status == string(sipserver.StateOnline) && d.Kind != model.DeviceKindRTSP {
			states = append(states, store.DeviceState{Code: d.Code, Reason: "platform restarted, waiting for the device to register"})
		}
	}
	_, err := p.st.SaveDeviceStates(ctx, states)
	return err
}

// Close stops the platform: media sessions end, the SIP server stops.
func (p *Platform) Close() {
	if p.cancel != nil {
		p.cancel()
	}
	p.events.close()
	p.wg.Wait()
	p.sip.Close()
	if p.cfg.Registerer != nil {
		p.cfg.Registerer.Unregister(p.metrics)
	}
}

// SIPAddr returns the UDP address the SIP server listens on.
func (p *Platform) SIPAddr() string { return p.sip.Addr() }

// ID returns the platform's SIP ID.
func (p *Platform) ID() string { return p.cfg.ID }

// Realm returns the platform's SIP domain.
func (p *Platform) Realm() string {
	if p.cfg.Realm != "" {
		return p.cfg.Realm
	}
	return p.cfg.ID[:10]
}

// Online reports whether a device is registered and alive.
func (p *Platform) Online(deviceCode string) bool {
	d, ok := p.sip.Device(deviceCode)
	return ok && d.State == sipserver.StateOnline
}

// devicePassword answers the SIP server: the device's own password, or
// the global one for devices in the database.
func (p *Platform) devicePassword(id string) (string, bool) {
	if pw, ok := p.cfg.DevicePasswords[id]; ok {
		return pw, true
	}
	p.mu.Lock()
	known, missed := p.known[id], p.refused[id]
	p.mu.Unlock()
	if !known && !p.cfg.AllowUnknown && time.Since(missed) > refusedFor {
		// Added through the API since start? (A device that is not is
		// not looked up again for refusedFor: a scanner's REGISTERs
		// must not become database reads.)
		d, err := p.st.GetDeviceByCode(context.Background(), id)
		known = err == nil && d.Kind != model.DeviceKindRTSP
		p.mu.Lock()
		if known {
			p.known[id] = true
		} else {
			if len(p.refused) > 10000 { // a scanner trying many IDs
				for k, t := range p.refused {
					if time.Since(t) > refusedFor {
						delete(p.refused, k)
					}
				}
			}
			p.refused[id] = time.Now()
		}
		p.mu.Unlock()
	}
	if known {
		return p.cfg.Password, p.cfg.Password != ""
	}
	return "", false
}

// refusedFor is how long a device found missing from the database is
// refused without looking again.
const refusedFor = 10 * time.Second

// nextSN returns a new MANSCDP serial number.
func (p *Platform) nextSN() int { return int(p.sn.Add(1)) }

// writeStates stores registration state changes in batches.
func (p *Platform) writeStates() {
	for {
		batch, ok := p.events.wait()
		if !ok {
			return
		}
		// Let a storm gather into one transaction.
		select {
		case <-time.After(p.cfg.StateDelay):
		case <-p.ctx.Done():
		}
		batch = append(batch, p.events.drain()...)
		states := make([]store.DeviceState, 0, len(batch))
		for _, ev := range batch {
			st := store.DeviceState{
				Code: ev.DeviceID, Online: ev.State == sipserver.StateOnline, Reason: ev.Reason,
				RemoteAddr: ev.Addr, Transport: ev.Transport, At: ev.At, Registered: ev.Registered,
			}
			p.mu.Lock()
			_, stored := p.ids[ev.DeviceID]
			p.mu.Unlock()
			if ev.Registered && !stored {
				// Only a new device takes its kind and division from its
				// code; a stored one keeps what it has.
				if c, err := codes.Parse(ev.DeviceID); err == nil {
					st.DivisionCode = p.placeDevice(c)
					if c.IsPlatform() {
						st.Kind = model.DeviceKindPlatform
					}
				}
			}
			states = append(states, st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ids, err := p.st.SaveDeviceStates(ctx, states)
		cancel()
		if err != nil {
			p.log.Error("cannot store device states; they will be stored with the next change", "devices", len(states), "err", err)
			continue
		}
		p.metrics.stateBatches.Inc()
		p.mu.Lock()
		for code, id := range ids {
			p.ids[code] = id
			p.known[code] = true
		}
		p.mu.Unlock()
		for _, st := range states {
			if p.cfg.OnDevice != nil {
				p.cfg.OnDevice(st.Code, st.Online, st.Reason)
			}
			if st.Online && st.Registered {
				if problems := p.checkCode("device", st.Code); problems != "" {
					p.log.Warn("device code does not follow GB/T 28181 Annex D", "device", st.Code, "problems", problems)
				}
				select {
				case p.queries <- st.Code:
				default:
					p.log.Warn("query queue full; the catalog of this device is read at its next registration", "device", st.Code)
				}
			}
		}
	}
}

// queryDevices asks newly registered devices for their catalog, info and
// clock.
func (p *Platform) queryDevices() {
	for {
		var code string
		select {
		case <-p.ctx.Done():
			return
		case code = <-p.queries:
		}
		for _, what := range []string{"catalog", "status"} {
			if err := p.Refresh(p.ctx, code, what); err != nil {
				p.log.Warn("query a device", "device", code, "query", what, "err", err)
				break
			}
		}
		// Subscribe to catalog changes and alarms for as long as a
		// registration lasts (devices register again within it, and the
		// subscriptions are renewed then). Devices that do not support
		// subscriptions notify anyway or not at all: nothing to do.
		if err := p.subscribeCatalog(p.ctx, code, subscriptionExpires); err != nil {
			p.log.Debug("catalog subscription refused", "device", code, "err", err)
		}
		if err := p.SubscribeAlarms(p.ctx, code, subscriptionExpires); err != nil {
			p.log.Debug("alarm subscription refused", "device", code, "err", err)
		}
	}
}

// subscriptionExpires is the lifetime asked for catalog and alarm
// subscriptions, the default registration lifetime.
const subscriptionExpires = 3600

// subscribeCatalog subscribes to a device's catalog changes (GB/T
// 28181-2016 §9.11: SUBSCRIBE with a Catalog query, Event: Catalog).
func (p *Platform) subscribeCatalog(ctx context.Context, device string, expires int) error {
	body, err := manscdp.Marshal(manscdp.CatalogQuery(p.nextSN(), device), "GB2312")
	if err != nil {
		return err
	}
	_, err = p.sip.Subscribe(ctx, device, "Catalog", expires, body)
	return err
}

// send marshals a query or control body and sends it in a MESSAGE.
func (p *Platform) send(ctx context.Context, device, to string, v any) error {
	body, err := manscdp.Marshal(v, "GB2312")
	if err != nil {
		return err
	}
	return p.sip.Message(ctx, device, to, body)
}

// flushKeepalives writes when devices were last heard from, in one
// transaction per FlushInterval.
func (p *Platform) flushKeepalives() {
	t := time.NewTicker(p.cfg.FlushInterval)
	defer t.Stop()
	flushed := map[string]time.Time{}
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		seen := map[string]time.Time{}
		for _, d := range p.sip.Devices() {
			if d.State == sipserver.StateOnline && d.LastKeepalive.After(flushed[d.ID]) {
				seen[d.ID] = d.LastKeepalive
			}
		}
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		err := p.st.TouchDevices(ctx, seen)
		cancel()
		if err != nil {
			p.log.Warn("cannot store keepalive times", "devices", len(seen), "err", err)
			continue
		}
		for id, at := range seen {
			flushed[id] = at
		}
		p.metrics.keepaliveFlushes.Inc()
	}
}

// onMessage handles the MANSCDP bodies of devices' MESSAGEs and NOTIFYs
// (keepalives are handled by the SIP server).
func (p *Platform) onMessage(device string, m *manscdp.Message) {
	p.metrics.messages.WithLabelValues(m.CmdType).Inc()
	switch {
	case m.CmdType == manscdp.CmdCatalog && m.Root == manscdp.RootNotify:
		p.catalogNotify(device, m)
	case m.CmdType == manscdp.CmdCatalog, m.CmdType == manscdp.CmdRecordInfo:
		c, done, err := p.asm.Add(m)
		if err != nil {
			p.log.Warn("bad "+m.CmdType+" response", "device", device, "err", err)
			return
		}
		if done {
			p.collected(c)
		}
	case m.CmdType == manscdp.CmdDeviceInfo && m.Root == manscdp.RootResponse:
		p.deviceInfo(device, m)
		p.deliver(device, m)
	case m.CmdType == manscdp.CmdDeviceStatus && m.Root == manscdp.RootResponse:
		p.deviceStatus(device, m)
		p.deliver(device, m)
	case m.CmdType == manscdp.CmdAlarm && m.Root == manscdp.RootNotify:
		p.alarm(device, m)
	case m.CmdType == manscdp.CmdMediaStatus:
		p.mediaStatus(device, m)
	case m.Root == manscdp.RootResponse:
		p.deliver(device, m)
	default:
		p.log.Debug("MANSCDP message not handled", "device", device, "root", m.Root, "cmd", m.CmdType)
	}
}

// collected routes a finished Catalog or RecordInfo collection.
func (p *Platform) collected(c *manscdp.Collection) {
	if c.CmdType == manscdp.CmdRecordInfo {
		p.mu.Lock()
		ch := p.records[waitKey{c.DeviceID, c.SN}]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- c:
			default:
			}
		}
		return
	}
	p.catalog.push(c)
}

// deviceInfo stores what a device says it is.
func (p *Platform) deviceInfo(device string, m *manscdp.Message) {
	info, err := m.DeviceInfo()
	if err != nil {
		p.log.Warn("bad DeviceInfo response", "device", device, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := p.st.SetDeviceInfo(ctx, device, info.DeviceName, info.Manufacturer, info.Model, info.Firmware); err != nil {
		p.log.Warn("store device info", "device", device, "err", err)
	}
}

// deviceStatus measures the device's clock against ours (DeviceTime is
// local time with seconds; the offset is exact to about a second plus the
// network delay).
func (p *Platform) deviceStatus(device string, m *manscdp.Message) {
	s, err := m.DeviceStatus()
	if err != nil {
		p.log.Warn("bad DeviceStatus response", "device", device, "err", err)
		return
	}
	devTime, err := manscdp.ParseTime(s.DeviceTime, p.cfg.Location)
	if err != nil {
		return
	}
	now := time.Now()
	offset := devTime.Sub(now).Round(time.Second)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := p.st.SetDeviceClock(ctx, device, offset, now); err != nil {
		p.log.Warn("store device clock", "device", device, "err", err)
	}
	if offset > 2*time.Second || offset < -2*time.Second {
		p.log.Info("device clock is off", "device", device, "offset", offset)
	}
}

// waitKey names an outstanding query by device and SN.
type waitKey struct {
	device string
	sn     int
}

// deliver hands a response to whoever waits for its SN.
func (p *Platform) deliver(device string, m *manscdp.Message) {
	p.mu.Lock()
	ch := p.waiters[waitKey{device, m.SN}]
	p.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

// waitFor registers a channel for the answer named k in m (guarded by
// p.mu) and returns it with the function that unregisters it.
func waitFor[T any](p *Platform, m map[waitKey]chan T, k waitKey) (chan T, func()) {
	ch := make(chan T, 1)
	p.mu.Lock()
	m[k] = ch
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(m, k)
		p.mu.Unlock()
	}
}

// ask sends a query and waits for the response with its SN.
func (p *Platform) ask(ctx context.Context, device, to string, sn int, q any) (*manscdp.Message, error) {
	ch, done := waitFor(p, p.waiters, waitKey{device, sn})
	defer done()
	if err := p.send(ctx, device, to, q); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("platform: device %s sent no response: %w", device, ctx.Err())
	}
}

// queue is an unbounded FIFO that never blocks its producer.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{}
	closed bool
}

func (q *queue[T]) init() { q.signal = make(chan struct{}, 1) }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, v)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// wait blocks until items are queued and takes them; ok is false once
// closed.
func (q *queue[T]) wait() ([]T, bool) {
	for {
		if items := q.drain(); len(items) > 0 {
			return items, true
		}
		q.mu.Lock()
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.signal
	}
}

func (q *queue[T]) drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// trimName keeps names printable: devices send padding and control bytes.
func trimName(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s))
}

// Refresh asks a device again for its catalog ("catalog") or its info and
// clock ("status").
func (p *Platform) Refresh(ctx context.Context, device, what string) error {
	switch what {
	case "catalog":
		return p.send(ctx, device, "", manscdp.CatalogQuery(p.nextSN(), device))
	case "status":
		if err := p.send(ctx, device, "", manscdp.DeviceInfoQuery(p.nextSN(), device)); err != nil {
			return err
		}
		return p.send(ctx, device, "", manscdp.DeviceStatusQuery(p.nextSN(), device))
	}
	return fmt.Errorf("%w: refresh %q", ErrBadCommand, what)
}

// checkCode counts a code that does not follow GB/T 28181 Annex D (the
// inspection of coding compliance reads the metric) and returns its
// problems in words, "" when it is compliant.
func (p *Platform) checkCode(kind, code string) string {
	var msgs []string
	for _, pr := range codes.Validate(code, nil) {
		if pr.Severity == codes.SeverityError {
			msgs = append(msgs, pr.String())
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	p.metrics.noncompliant.WithLabelValues(kind).Inc()
	return strings.Join(msgs, "; ")
}

// Package devsim simulates GB/T 28181 devices (IPCs and NVRs) against a
// platform: each device registers with digest authentication (GB/T
// 28181-2016 §9.1, RFC 3261 §22), keeps itself online with keepalive
// MESSAGEs (§9.6) and answers the platform's Catalog, DeviceInfo and
// DeviceStatus queries (§9.5, Annex A.2.4/A.2.6). It is the core of
// `xueliang sim gb` and of the registration-storm benchmark.
//
// All devices share one sipgo UserAgent (one transaction layer, one SIP
// server); each device has its own UDP socket, served by that server and
// used by the device's client for its requests, so that the platform
// reaches a device at the address it registered from. This costs one
// reading goroutine and one control goroutine per device. (A UserAgent per
// device costs the same here: 3,000 devices register in about 1 s of CPU
// and 180 MB either way; see TestRegistrationStorm.)
//
// Catalog pages hold CatalogPageSize items at most, and fewer where a page
// would not fit in a UDP datagram that sipgo agrees to send (about 1,300
// bytes with the headers, which is one item of GB2312 XML).
//
// Close stops the devices without unregistering them, as a power cut would:
// the platform sees them go offline when their keepalives stop.
package devsim

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// Errors returned by Start.
var (
	ErrConfig = errors.New("devsim: invalid config")
)

// Config configures a simulation.
type Config struct {
	Server            string // the platform's SIP address, host:port (UDP)
	PlatformID        string // the platform's 20-digit SIP ID
	Password          string // registration password of every device
	Devices           int
	ChannelsPerDevice int           // default 1; more than 1 makes the devices NVRs (type 118)
	DivisionCode      string        // 8-digit centre code that starts every generated code
	KeepaliveInterval time.Duration // default 60 s
	RegisterExpires   int           // seconds, default 3600
	CatalogPageSize   int           // items per Catalog Response MESSAGE, default 2 (GB/T 28181 devices often send 1–4)
	// StartRate spreads the first REGISTERs: devices started per second.
	// 0 starts all at once (a registration storm).
	StartRate int
	// RetryInterval is the wait after a failed REGISTER. Default 10 s.
	RetryInterval time.Duration
	// LocalIP is the address the devices' sockets bind to. Default
	// 127.0.0.1.
	LocalIP string
	Log     *slog.Logger
}

// Stats counts what the devices did since Start.
type Stats struct {
	Devices        int
	Registered     int   // devices currently registered
	Registrations  int64 // successful REGISTERs, re-registrations included
	Keepalives     int64 // keepalives answered 200 OK
	Failures       int64 // REGISTERs refused or unanswered, keepalives not answered 200 OK, responses not delivered
	CatalogQueries int64 // Catalog queries answered
	Queries        int64 // DeviceInfo and DeviceStatus queries answered
}

// Sim is a running set of simulated devices. Its methods are safe for
// concurrent use.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	uas     []*sipgo.UserAgent // one, or one per device
	devices []*device
	byID    map[string]*device // read-only after Start
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once

	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup

	registered     atomic.Int64
	registrations  atomic.Int64
	keepalives     atomic.Int64
	failures       atomic.Int64
	catalogQueries atomic.Int64
	queries        atomic.Int64
	sn             atomic.Int64
}

type device struct {
	sim      *Sim
	id       string
	index    int
	channels []string
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	conn     net.PacketConn
	addr     string // local host:port
	client   *sipgo.Client
	online   atomic.Bool
}

func (c *Config) defaults() error {
	if c.ChannelsPerDevice <= 0 {
		c.ChannelsPerDevice = 1
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = 60 * time.Second
	}
	if c.RegisterExpires <= 0 {
		c.RegisterExpires = 3600
	}
	if c.CatalogPageSize <= 0 {
		c.CatalogPageSize = 2
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 10 * time.Second
	}
	if c.LocalIP == "" {
		c.LocalIP = "127.0.0.1"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Server == "":
		return fmt.Errorf("%w: no Server", ErrConfig)
	case !digits(c.PlatformID, 20):
		return fmt.Errorf("%w: PlatformID %q is not 20 digits", ErrConfig, c.PlatformID)
	case !digits(c.DivisionCode, 8):
		return fmt.Errorf("%w: DivisionCode %q is not 8 digits", ErrConfig, c.DivisionCode)
	case c.Devices <= 0:
		return fmt.Errorf("%w: Devices %d", ErrConfig, c.Devices)
	case c.Devices*c.ChannelsPerDevice+c.Devices > 999999:
		return fmt.Errorf("%w: more codes than 6-digit serials", ErrConfig)
	}
	return nil
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Codes of GB/T 28181-2016 Annex D: centre(8) industry(2) type(3) network(1)
// serial(6). Devices take serials 1..Devices, channels the ones after.
const (
	typeNVR    = 118
	typeIPC    = 132
	typeCamera = 131
)

func code(division string, typ, serial int) string {
	return fmt.Sprintf("%s00%03d0%06d", division, typ, serial)
}

// DeviceIDs returns the devices' codes, in order.
func (s *Sim) DeviceIDs() []string {
	ids := make([]string, len(s.devices))
	for i, d := range s.devices {
		ids[i] = d.id
	}
	return ids
}

// Channels returns the channel codes of a device.
func (s *Sim) Channels(deviceID string) []string {
	if d := s.byID[deviceID]; d != nil {
		return append([]string(nil), d.channels...)
	}
	return nil
}

// Start opens a socket per device and starts them; they register at once
// (a registration storm) unless StartRate spreads them. ctx bounds the simulation's life as Close does.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("devsim: start: %w", err)
	}
	s := &Sim{cfg: cfg, log: cfg.Log.With("component", "devsim"), byID: make(map[string]*device, cfg.Devices)}
	typ := typeIPC
	if cfg.ChannelsPerDevice > 1 {
		typ = typeNVR
	}
	var ua *sipgo.UserAgent
	var srv *sipgo.Server
	for i := range cfg.Devices {
		d := &device{sim: s, index: i, id: code(cfg.DivisionCode, typ, i+1)}
		for j := range cfg.ChannelsPerDevice {
			d.channels = append(d.channels, code(cfg.DivisionCode, typeCamera, cfg.Devices+i*cfg.ChannelsPerDevice+j+1))
		}
		if ua == nil || uaPerDevice {
			var err error
			if ua, srv, err = s.newUA(); err != nil {
				s.closeAll()
				return nil, err
			}
		}
		d.ua, d.srv = ua, srv
		conn, err := net.ListenPacket("udp4", net.JoinHostPort(cfg.LocalIP, "0"))
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("devsim: device %d socket: %w", i, err)
		}
		d.conn = conn
		d.addr = conn.LocalAddr().String()
		s.devices = append(s.devices, d)
		s.byID[d.id] = d
		d.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(s.log),
			sipgo.WithClientAddr(d.addr), sipgo.WithClientConnectionAddr(d.addr))
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("devsim: device %d client: %w", i, err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	for _, d := range s.devices {
		s.goTracked(func(context.Context) { d.srv.ServeUDP(d.conn) })
	}
	// A device's client finds its socket in the transport layer's pool
	// once ServeUDP has put it there; before, it would open another.
	for _, d := range s.devices {
		tp := d.ua.TransportLayer()
		for c, _ := tp.GetConnection("udp", d.addr); c == nil; c, _ = tp.GetConnection("udp", d.addr) {
			if err := s.ctx.Err(); err != nil {
				s.Close()
				return nil, fmt.Errorf("devsim: start: %w", err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for _, d := range s.devices {
		s.goTracked(d.run)
	}
	return s, nil
}

// uaPerDevice gives every device its own sipgo UserAgent (transaction and
// transport layers) instead of one shared by all; the registration-storm
// test compares the two.
var uaPerDevice = false

func (s *Sim) newUA() (*sipgo.UserAgent, *sipgo.Server, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Xueliang SIM"), sipgo.WithUserAgentHostname(s.cfg.PlatformID[:10]),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(s.log)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(s.log)))
	if err != nil {
		return nil, nil, fmt.Errorf("devsim: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		ua.Close()
		return nil, nil, fmt.Errorf("devsim: server: %w", err)
	}
	srv.OnMessage(s.onMessage)
	s.uas = append(s.uas, ua)
	return ua, srv, nil
}

// closeAll closes the user agents and the sockets (which ends ServeUDP).
func (s *Sim) closeAll() {
	for _, ua := range s.uas {
		ua.Close()
	}
	for _, d := range s.devices {
		d.conn.Close()
	}
}

// goTracked runs f in a goroutine that Close waits for; after Close it
// does nothing.
func (s *Sim) goTracked(f func(ctx context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// Close stops every device (without unregistering) and waits for their
// goroutines. It is safe to call more than once.
func (s *Sim) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.closeAll()
		s.wg.Wait()
	})
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	return Stats{
		Devices:        len(s.devices),
		Registered:     int(s.registered.Load()),
		Registrations:  s.registrations.Load(),
		Keepalives:     s.keepalives.Load(),
		Failures:       s.failures.Load(),
		CatalogQueries: s.catalogQueries.Load(),
		Queries:        s.queries.Load(),
	}
}

func (d *device) setOnline(on bool) {
	if d.online.Swap(on) != on {
		if on {
			d.sim.registered.Add(1)
		} else {
			d.sim.registered.Add(-1)
		}
	}
}

// run is the device's life: register, then keepalives and re-registration.
func (d *device) run(ctx context.Context) {
	s := d.sim
	defer d.setOnline(false)
	keepalive := time.NewTimer(time.Hour)
	keepalive.Stop()
	var first time.Duration
	if r := s.cfg.StartRate; r > 0 {
		first = time.Duration(d.index) * time.Second / time.Duration(r)
	}
	reregister := time.NewTimer(first)
	defer keepalive.Stop()
	defer reregister.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reregister.C:
			keepalive.Stop()
			expires, err := d.register(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d.setOnline(false)
				s.failures.Add(1)
				s.log.Warn("register failed", "device", d.id, "err", err)
				reregister.Reset(s.cfg.RetryInterval)
				continue
			}
			d.setOnline(true)
			s.registrations.Add(1)
			// Re-register at two thirds of the expiry (RFC 3261 §10.2.4
			// leaves the margin to the client).
			reregister.Reset(expires * 2 / 3)
			keepalive.Reset(s.cfg.KeepaliveInterval)
		case <-keepalive.C:
			code, err := d.keepalive(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err == nil && code == 200:
				s.keepalives.Add(1)
			case code == 403:
				// GB/T 28181: the platform does not know us any more.
				s.failures.Add(1)
				s.log.Info("keepalive refused, registering again", "device", d.id)
				d.setOnline(false)
				reregister.Reset(0)
				continue
			default:
				s.failures.Add(1)
				s.log.Warn("keepalive failed", "device", d.id, "code", code, "err", err)
			}
			keepalive.Reset(s.cfg.KeepaliveInterval)
		}
	}
}

func (d *device) request(method sip.RequestMethod, body []byte) *sip.Request {
	cfg := &d.sim.cfg
	host, port, _ := sip.ParseAddr(cfg.Server)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: cfg.PlatformID, Host: host, Port: port})
	realm := cfg.PlatformID[:10]
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: realm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: realm}, Params: sip.NewParams()}
	if method != sip.REGISTER {
		to.Address.User = cfg.PlatformID
	}
	req.AppendHeader(to)
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
		req.SetBody(body)
	}
	return req
}

const requestTimeout = 10 * time.Second

// register sends REGISTER, answers the digest challenge (RFC 3261 §22.2)
// and returns the granted expiry.
func (d *device) register(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req := d.request(sip.REGISTER, nil)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(d.sim.cfg.RegisterExpires)))
	lhost, lport, _ := sip.ParseAddr(d.addr)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: lhost, Port: lport}})
	res, err := d.client.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("devsim: register %s: %w", d.id, err)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		res, err = d.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: d.id, Password: d.sim.cfg.Password})
		if err != nil {
			return 0, fmt.Errorf("devsim: register %s: %w", d.id, err)
		}
	}
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("devsim: register %s: %d %s", d.id, res.StatusCode, res.Reason)
	}
	// The registrar may shorten the expiry (RFC 3261 §10.3 step 7).
	expires := time.Duration(d.sim.cfg.RegisterExpires) * time.Second
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 && time.Duration(n)*time.Second < expires {
			expires = time.Duration(n) * time.Second
		}
	}
	return expires, nil
}

type keepaliveBody struct {
	XMLName  xml.Name `xml:"Notify"`
	CmdType  string
	SN       int
	DeviceID string
	Status   string
}

// keepalive sends a Notify Keepalive (GB/T 28181-2016 §9.6, A.2.5.2).
func (d *device) keepalive(ctx context.Context) (int, error) {
	body, err := manscdp.Marshal(&keepaliveBody{CmdType: manscdp.CmdKeepalive, SN: d.sim.nextSN(), DeviceID: d.id, Status: "OK"}, "GB2312")
	if err != nil {
		return 0, err
	}
	return d.send(ctx, body)
}

// send sends a MESSAGE to the platform and returns the final status.
func (d *device) send(ctx context.Context, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := d.client.Do(ctx, d.request(sip.MESSAGE, body))
	if err != nil {
		return 0, fmt.Errorf("devsim: message from %s: %w", d.id, err)
	}
	return res.StatusCode, nil
}

func (s *Sim) nextSN() int { return int(s.sn.Add(1)) }

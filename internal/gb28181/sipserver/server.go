// Package sipserver is the SIP side of a GB/T 28181 platform: devices
// (cameras, NVRs, lower platforms) REGISTER with digest authentication
// (MD5, RFC 2617/3261 §22) and keep themselves online with keepalive
// MESSAGEs; their other MESSAGEs (catalog, device info, alarms, ...) are
// handed to the caller.
//
// The server keeps the registration and liveness state of every device
// in memory and reports each change as an Event; it writes nothing to a
// database itself, so that a city's keepalives (33,000 channels on ~3,000
// devices, one MESSAGE a minute each) cost no writes: the caller batches
// what it stores.
//
// Nonces are stateless (a timestamp and an HMAC), so a challenge survives
// retransmissions and devices that answer it from another source port.
package sipserver

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// Config configures a Server.
type Config struct {
	// ID is the platform's 20-digit SIP ID; Realm defaults to its first
	// 10 digits (the SIP domain of GB/T 28181).
	ID    string
	Realm string
	// Host is the address put in Via and Contact of the platform's
	// requests (what devices send their requests back to); default the
	// listening IP, or the machine's first non-loopback IPv4 address.
	Host string
	// Password is the registration password of every device, unless
	// DevicePassword knows one for the device.
	Password       string
	DevicePassword func(deviceID string) (password string, ok bool)
	// AllowUnknown admits devices that DevicePassword does not know,
	// with Password; otherwise they are refused (403).
	AllowUnknown bool
	// KeepaliveInterval is the devices' keepalive period; three missed
	// ones make a device offline. Default 60 s.
	KeepaliveInterval time.Duration
	// OnEvent receives every change of a device's state, in order per
	// device. It must not block for long.
	OnEvent func(Event)
	// OnMessage receives the MANSCDP bodies of MESSAGEs other than
	// keepalives, from registered devices; the server answers 200 OK.
	OnMessage func(deviceID string, m *manscdp.Message)
	Log       *slog.Logger
	Now       func() time.Time
}

// State is the state of a device.
type State string

// States of a device.
const (
	StateOnline  State = "online"
	StateOffline State = "offline"
)

// Event is a change of a device's state.
type Event struct {
	DeviceID string
	State    State
	// Reason says why, in words: "registered", "unregistered",
	// "keepalive", "3 keepalives missed (60s interval)", "registration
	// expired".
	Reason string
	// Registered is set on the event of a successful REGISTER.
	Registered bool
	Addr       string // where the device's requests come from
	Transport  string // UDP or TCP, of its last request
	At         time.Time
}

// Device is what the server knows of a device.
type Device struct {
	ID            string
	State         State
	Addr          string // source address of its last request
	Transport     string // UDP or TCP
	Contact       string
	RegisteredAt  time.Time
	Expires       time.Time // of the registration
	LastKeepalive time.Time
}

// Server is a GB/T 28181 SIP server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	key    []byte // nonce MAC key
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	udp    net.PacketConn
	tcp    net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup

	out *outbound // requests to devices; nil until Listen

	mu      sync.Mutex
	devices map[string]*Device
}

// GB/T 28181 devices send catalogs and record lists larger than sipgo's
// limits over UDP (loopback and LANs carry the fragmented datagrams): send
// up to 64 KiB and read whole 64 KiB datagrams. The variables are
// sipgo's package globals, set once before any sipgo socket exists.
func init() {
	sip.UDPMTUSize = 65535
	sip.TransportBufferReadSize = 65535
}

// New returns a Server; Listen starts it.
func New(cfg Config) (*Server, error) {
	if len(cfg.ID) != 20 {
		return nil, fmt.Errorf("sipserver: the platform SIP ID must be 20 digits, got %q", cfg.ID)
	}
	if cfg.Realm == "" {
		cfg.Realm = cfg.ID[:10]
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Password == "" && cfg.DevicePassword == nil {
		return nil, errors.New("sipserver: set a registration password (or per-device passwords)")
	}
	key := make([]byte, 32)
	rand.Read(key)
	// sipgo's layers log through the default logger unless told: route
	// them to ours (a scanner's garbage would otherwise flood stderr).
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Xueliang"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(cfg.Log)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(cfg.Log)))
	if err != nil {
		return nil, fmt.Errorf("sipserver: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Log))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("sipserver: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, key: key, ua: ua, srv: srv, devices: map[string]*Device{}}
	srv.OnRegister(s.onRegister)
	srv.OnMessage(s.onMessage)
	srv.OnNotify(s.onMessage) // catalog and alarm subscriptions notify
	srv.OnBye(s.onBye)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnNoRoute(s.methodNotAllowed)
	return s, nil
}

// Listen serves SIP on UDP and TCP at addr ("host:port"; port 0 picks
// one, the same for both where possible).
func (s *Server) Listen(addr string) error {
	udp, tcp, err := listenPair(addr)
	if err != nil {
		return err
	}
	// A registration storm (thousands of devices after a power cut)
	// overflows the default receive buffer and every lost REGISTER waits
	// for the device's retry: ask for 4 MB (the kernel caps it at
	// net.core.rmem_max).
	if uc, ok := udp.(*net.UDPConn); ok {
		if err := uc.SetReadBuffer(udpReadBuffer); err != nil {
			s.log.Warn("SIP: cannot enlarge the UDP receive buffer", "err", err)
		}
	}
	s.udp, s.tcp = udp, tcp
	if err := s.initOutbound(); err != nil {
		udp.Close()
		tcp.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.srv.ServeUDP(udp) }()
	go func() { defer s.wg.Done(); s.srv.ServeTCP(tcp) }()
	go func() { defer s.wg.Done(); s.watch(ctx) }()
	s.log.Info("SIP server listening", "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String(), "id", s.cfg.ID, "realm", s.cfg.Realm)
	return nil
}

// listenPair opens the UDP and TCP sockets of addr. With port 0 both get
// the same port: the system picks the UDP one, which may be taken for TCP,
// so a few picks are tried.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("sipserver: listen on %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("sipserver: listen udp %s: %w (is another SIP server using the port?)", addr, err)
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
		tcp, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if i+1 >= tries {
			return nil, nil, fmt.Errorf("sipserver: listen tcp %s: %w (is another SIP server using the port?)", tcpAddr, err)
		}
	}
}

// Addr returns the UDP address the server listens on.
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Close stops the server.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	err := s.srv.Close()
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	s.ua.Close()
	s.wg.Wait()
	return err
}

// Devices returns a snapshot of the devices the server knows.
func (s *Server) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, *d)
	}
	return out
}

// Device returns what the server knows of one device.
func (s *Server) Device(id string) (Device, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// nonce returns a fresh nonce: a timestamp and its MAC.
func (s *Server) nonce() string {
	ts := strconv.FormatInt(s.cfg.Now().UnixNano(), 36)
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(ts))
	return ts + "." + hex.EncodeToString(m.Sum(nil)[:12])
}

// nonceValid reports whether n is one of ours and less than 5 minutes old.
func (s *Server) nonceValid(n string) bool {
	ts, mac, ok := strings.Cut(n, ".")
	if !ok {
		return false
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(ts))
	if !hmac.Equal([]byte(mac), []byte(hex.EncodeToString(m.Sum(nil)[:12]))) {
		return false
	}
	v, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return false
	}
	age := s.cfg.Now().Sub(time.Unix(0, v))
	return age >= -time.Minute && age < 5*time.Minute
}

// password returns the registration password of a device.
func (s *Server) password(id string) (string, bool) {
	if s.cfg.DevicePassword != nil {
		if p, ok := s.cfg.DevicePassword(id); ok {
			return p, true
		}
	}
	if s.cfg.AllowUnknown || s.cfg.DevicePassword == nil {
		return s.cfg.Password, s.cfg.Password != ""
	}
	return "", false
}

func (s *Server) challenge(req *sip.Request, tx sip.ServerTransaction, stale bool) {
	ch := digest.Challenge{Realm: s.cfg.Realm, Nonce: s.nonce(), Algorithm: "MD5", Stale: stale}
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", ch.String()))
	tx.Respond(res)
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// verify checks a digest response (RFC 2617 §3.2.2, with or without qop).
func verify(c *digest.Credentials, method, password string) bool {
	ha1 := md5hex(c.Username + ":" + c.Realm + ":" + password)
	ha2 := md5hex(method + ":" + c.URI)
	var want string
	if c.QOP == "auth" {
		want = md5hex(ha1 + ":" + c.Nonce + ":" + fmt.Sprintf("%08x", c.Nc) + ":" + c.Cnonce + ":auth:" + ha2)
	} else {
		want = md5hex(ha1 + ":" + c.Nonce + ":" + ha2)
	}
	return hmac.Equal([]byte(strings.ToLower(c.Response)), []byte(want))
}

// udpReadBuffer is the receive buffer asked for the SIP UDP socket.
const udpReadBuffer = 4 << 20

// DateLayout is the Date header of GB/T 28181 (local time, milliseconds):
// devices set their clocks from the 200 OK of REGISTER.
const DateLayout = "2006-01-02T15:04:05.000"

// deviceID returns the device ID of a request (the user of its From), or
// answers 400.
func deviceID(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	from := req.From()
	if from == nil || from.Address.User == "" {
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request: no From user (the device ID)", nil))
		return "", false
	}
	return from.Address.User, true
}

func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	id, ok := deviceID(req, tx)
	if !ok {
		return
	}
	log := s.log.With("device", id, "addr", req.Source())
	h := req.GetHeader("Authorization")
	if h == nil {
		s.challenge(req, tx, false)
		return
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		log.Warn("REGISTER with a malformed Authorization header", "err", err)
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request: malformed Authorization", nil))
		return
	}
	if !s.nonceValid(cred.Nonce) {
		s.challenge(req, tx, true) // expired or foreign nonce: ask again
		return
	}
	password, known := s.password(id)
	if !known {
		log.Warn("REGISTER from an unknown device refused (give it a password, or allow unknown devices)")
		tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden: unknown device", nil))
		return
	}
	if cred.Username != id && cred.Username != "" {
		// Some devices authenticate with another user name; the digest
		// is computed over it, so verify as sent.
		log.Debug("REGISTER username differs from the From user", "username", cred.Username)
	}
	if !verify(cred, string(req.Method), password) {
		log.Warn("REGISTER with a wrong password refused")
		tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden: wrong password", nil))
		return
	}
	expires := registerExpires(req)
	now := s.cfg.Now()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Date", now.Format(DateLayout)))
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if c := req.Contact(); c != nil {
		res.AppendHeader(c.Clone())
	}
	tx.Respond(res)

	s.mu.Lock()
	d, ok := s.devices[id]
	if !ok {
		d = &Device{ID: id}
		s.devices[id] = d
	}
	d.Addr, d.Transport = req.Source(), req.Transport()
	if c := req.Contact(); c != nil {
		d.Contact = c.Address.String()
	}
	var ev *Event
	if expires == 0 {
		d.Expires = now
		if d.State == StateOnline {
			d.State = StateOffline
			ev = &Event{DeviceID: id, State: StateOffline, Reason: "unregistered", Addr: d.Addr, At: now}
		}
	} else {
		d.Expires = now.Add(time.Duration(expires) * time.Second)
		d.RegisteredAt, d.LastKeepalive = now, now
		if d.State != StateOnline {
			d.State = StateOnline
			ev = &Event{DeviceID: id, State: StateOnline, Reason: "registered", Registered: true, Addr: d.Addr, Transport: d.Transport, At: now}
		}
	}
	s.mu.Unlock()
	if ev != nil {
		log.Info("device "+ev.Reason, "expires", expires, "transport", req.Transport())
		s.emit(*ev)
	}
}

// registerExpires reads the Expires header or the Contact's expires
// parameter; 3600 when neither is given.
func registerExpires(req *sip.Request) int {
	if h := req.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v >= 0 {
			return v
		}
	}
	if c := req.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return n
			}
		}
	}
	return 3600
}

func (s *Server) emit(ev Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

func (s *Server) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	id, ok := deviceID(req, tx)
	if !ok {
		return
	}
	id = s.dialogDevice(req, id)
	m, err := manscdp.Parse(req.Body())
	if err != nil {
		s.log.Warn("MESSAGE with a body that is not MANSCDP", "device", id, "addr", req.Source(), "err", err)
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request: "+firstLine(err.Error()), nil))
		return
	}
	keepalive := m.CmdType == manscdp.CmdKeepalive // Parse canonicalises known CmdTypes
	now := s.cfg.Now()
	s.mu.Lock()
	d, ok := s.devices[id]
	registered := ok && d.Expires.After(now)
	var ev *Event
	if registered {
		d.Addr = req.Source()
		if keepalive {
			d.LastKeepalive = now
			if d.State != StateOnline {
				d.State = StateOnline
				ev = &Event{DeviceID: id, State: StateOnline, Reason: "keepalive", Addr: d.Addr, At: now}
			}
		}
	}
	s.mu.Unlock()
	if !registered {
		// Make it register again (GB/T 28181 devices do on a 403).
		tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden: not registered", nil))
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if ev != nil {
		s.emit(*ev)
	}
	if !keepalive && s.cfg.OnMessage != nil {
		s.cfg.OnMessage(id, m)
	}
}

// methodNotAllowed answers the methods without a handler: 405 with the
// Allow header that RFC 3261 §8.2.1 requires (sipgo's default has none).
func (s *Server) methodNotAllowed(req *sip.Request, tx sip.ServerTransaction) {
	methods := s.srv.RegisteredMethods()
	slices.Sort(methods)
	res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
	res.AppendHeader(sip.NewHeader("Allow", strings.Join(methods, ", ")))
	tx.Respond(res)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// watch makes devices offline when they miss three keepalives or their
// registration expires.
func (s *Server) watch(ctx context.Context) {
	// A scan reads every device (1-2.5 µs each, cold, for a city's 3,000
	// it is most of the keepalive load): every 1/20 of the interval, at
	// least every 3 s and at most every second (or quarter interval, for
	// short intervals), keeps "offline after three intervals" exact to a
	// few seconds.
	i := s.cfg.KeepaliveInterval
	tick := time.NewTicker(min(max(i/20, min(i/4, time.Second)), 3*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := s.cfg.Now()
		var evs []Event
		s.mu.Lock()
		for _, d := range s.devices {
			if d.State != StateOnline {
				continue
			}
			switch {
			case now.After(d.Expires):
				d.State = StateOffline
				evs = append(evs, Event{DeviceID: d.ID, State: StateOffline, Reason: "registration expired", Addr: d.Addr, At: now})
			case now.Sub(d.LastKeepalive) > 3*s.cfg.KeepaliveInterval:
				d.State = StateOffline
				evs = append(evs, Event{DeviceID: d.ID, State: StateOffline,
					Reason: fmt.Sprintf("3 keepalives missed (%v interval)", s.cfg.KeepaliveInterval), Addr: d.Addr, At: now})
			}
		}
		s.mu.Unlock()
		for _, ev := range evs {
			s.log.Info("device offline", "device", ev.DeviceID, "reason", ev.Reason)
			s.emit(ev)
		}
	}
}

// Package devsim simulates GB/T 28181 devices (IPCs and NVRs) against a
// platform, as the platform's counterpart in `xueliang sim gb`, the demo
// and the tests. Each device:
//
//   - registers with digest authentication (GB/T 28181-2016 §9.1, RFC 3261
//     §22), keeps itself online with keepalive MESSAGEs (§9.6) and
//     re-registers before its registration expires;
//   - answers Catalog, DeviceInfo, DeviceStatus, RecordInfo, PresetQuery
//     and ConfigDownload queries (§9.5, Annex A.2.4/A.2.6), splitting
//     lists over several MESSAGEs as real devices do;
//   - answers INVITEs for its channels (and, for an IPC, its own code)
//     for live video, playback and download (§9.2, §9.8, §9.9) with PS
//     over RTP (Annex C) over UDP or TCP (active or passive, RFC 4571),
//     paced in real time from a clip of internal/sim; takes MANSRTSP INFO
//     (pause, play, seek, scale; Annex B) and says MediaStatus 121 at the
//     end of a file;
//   - records the DeviceControl commands it receives (PTZ decoded from
//     Annex A.3, presets, reboot, recording, guard, I-frame, home
//     position; see Controls), and reboots on TeleBoot;
//   - raises alarms (RaiseAlarm), takes SUBSCRIBEs for Catalog and Alarm,
//     and notifies catalog changes (NotifyCatalog);
//   - misbehaves on command (SetFault): GB2312 bodies, no keepalives, a
//     wrong SSRC, no media, media that is not PS, no TCP connection.
//
// The PS muxer, RTP packetiser, RFC 4571 framing, SDP reader and writer,
// MANSRTSP reader, PTZ decoder and the XML bodies are written here and
// share no code with the platform's packages (internal/gb28181/ps, sdp,
// rtpframe, ptz, manscdp's encoder): the simulator is the platform's
// independent counterpart, and a bug shared by both sides would hide. The
// tests read what the simulator sends with the platform's decoders. The
// simulator uses manscdp only to parse the MANSCDP bodies it receives.
//
// All devices share one sipgo UserAgent (one transaction layer, one SIP
// server); each device has its own UDP socket, served by that server and
// used by the device's client for its requests, so that the platform
// reaches a device at the address it registered from. This costs one
// reading goroutine and one control goroutine per device, and one
// goroutine per stream. (A UserAgent per device costs the same here:
// 3,000 devices register in about 1 s of CPU and 180 MB either way; see
// TestRegistrationStorm.)
//
// Catalog pages hold CatalogPageSize items at most, and fewer where a page
// would be larger than maxBody. Start raises sipgo's UDP message limit
// (see RaiseSIPUDPLimit) so that pages of 10 items go out as one datagram.
//
// Close stops the devices without unregistering them, as a power cut would:
// the platform sees them go offline when their keepalives stop, and
// streams stop without a BYE.
//
// Locks: device.mu and Sim.sessMu are never held together, nor while
// sending anything.
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
)

// Errors returned by Start and by the methods of Sim, wrapped with details.
var (
	// ErrConfig means Start was given an unusable Config.
	ErrConfig = errors.New("devsim: invalid config")
	// ErrUnknownDevice means no simulated device has the code.
	ErrUnknownDevice = errors.New("devsim: no such device")
	// ErrUnknownChannel means no simulated device or channel has the code.
	ErrUnknownChannel = errors.New("devsim: no such channel")
	// ErrInvalid means an argument is out of range (an alarm priority, a
	// catalog event, ...).
	ErrInvalid = errors.New("devsim: invalid argument")
	// ErrOffline means the device is not registered (not yet, or
	// rebooting) and cannot send.
	ErrOffline = errors.New("devsim: device offline")
	// ErrRefused means the platform did not answer 200 OK.
	ErrRefused = errors.New("devsim: platform refused")
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
	CatalogPageSize   int           // items per Catalog Response MESSAGE, default 2 (GB/T 28181 devices often send 1–10)
	// StartRate spreads the first REGISTERs: devices started per second.
	// 0 starts all at once (a registration storm).
	StartRate int
	// RetryInterval is the wait after a failed REGISTER. Default 10 s.
	RetryInterval time.Duration
	// LocalIP is the address the devices' sockets bind to. Default
	// 127.0.0.1.
	LocalIP string
	// MediaIP is the address the media sockets bind to and the SDP
	// answers name. Default LocalIP.
	MediaIP string
	// Clip is the video every channel streams: a clip embedded in
	// internal/sim (see sim.Clips) or a file of the same kind. Empty
	// gives the channels the embedded H.264 clips in turn (by channel
	// serial), so that a video wall shows different pictures.
	Clip string
	// CivilCode is the CivilCode of the channels in the catalog (GB/T
	// 2260 code of their place, 2 to 12 digits, e.g. a 9-digit town).
	// Default DivisionCode.
	CivilCode string
	// RecordPageSize is the number of items per RecordInfo Response
	// MESSAGE. Default 4.
	RecordPageSize int
	// RecordDays is how far back the simulated recordings go. Default 7.
	RecordDays int
	// MaxStreams is the number of streams a channel sends at once; a
	// further INVITE is answered 486 Busy Here. Default 4.
	MaxStreams int
	// RebootDelay is how long a device stays silent after TeleBoot before
	// it registers again. Default 5 s.
	RebootDelay time.Duration
	// MediaTimeout bounds the TCP connection of a stream (connecting, or
	// waiting for the platform to connect), how long UDP send errors
	// (ICMP port unreachable) are tolerated, and the wait for the
	// platform's BYE after the end of a playback. Default 10 s.
	MediaTimeout time.Duration
	// Location is the zone of the times in MANSCDP bodies. Default
	// time.Local.
	Location *time.Location
	// Now is the clock of the recording schedule, of DeviceTime and of
	// alarms. Default time.Now. Streams are paced by the real clock.
	Now func() time.Time
	// Fault is every device's initial fault set; see SetFault.
	Fault Fault
	Log   *slog.Logger
}

// Fault makes a device misbehave as real devices do; see SetFault. The
// zero Fault is a well-behaved device.
type Fault struct {
	// GB2312 encodes the device's XML bodies in GB2312 and declares
	// encoding="GB2312"; otherwise they are UTF-8.
	GB2312 bool `json:"gb2312"`
	// DropKeepalives stops the keepalives: the platform should mark the
	// device offline after three intervals.
	DropKeepalives bool `json:"drop_keepalives"`
	// WrongSSRC answers INVITEs with the offered y= and then streams
	// with another SSRC.
	WrongSSRC bool `json:"wrong_ssrc"`
	// NoMedia answers INVITEs 200 OK and then sends nothing (over TCP the
	// connection is made, and stays silent).
	NoMedia bool `json:"no_media"`
	// NotPS sends the raw H.264/H.265 byte stream as RTP payload instead
	// of a program stream.
	NotPS bool `json:"not_ps"`
	// NoTCPConnect never makes the TCP connection: the device does not
	// connect (offer a=setup:passive), or refuses connections to the
	// port of its answer (offer a=setup:active).
	NoTCPConnect bool `json:"no_tcp_connect"`
}

// Stats counts what the devices did since Start.
type Stats struct {
	Devices        int
	Registered     int   // devices currently registered
	Registrations  int64 // successful REGISTERs, re-registrations included
	Keepalives     int64 // keepalives answered 200 OK
	Failures       int64 // REGISTERs refused or unanswered, keepalives not answered 200 OK, responses not delivered
	CatalogQueries int64 // Catalog queries answered
	Queries        int64 // other queries answered (DeviceInfo, DeviceStatus, RecordInfo, PresetQuery, ConfigDownload)
	Invites        int64 // INVITEs answered 200 OK
	Rejected       int64 // INVITEs answered with an error
	ActiveStreams  int   // streams being sent now
	BytesSent      int64 // RTP bytes sent, RFC 4571 length prefixes included
	Alarms         int64 // alarms the platform answered 200 OK
}

// Sim is a running set of simulated devices. Its methods are safe for
// concurrent use.
type Sim struct {
	cfg      Config
	log      *slog.Logger
	clips    []*clipData        // channel serial n streams clips[n % len(clips)]
	uas      []*sipgo.UserAgent // one, or one per device
	devices  []*device
	byID     map[string]*device // devices and channels; read-only after Start
	ctx      context.Context
	cancel   context.CancelFunc
	once     sync.Once
	platform sip.Uri // where the devices send their requests

	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup

	sessMu   sync.Mutex          // guards sessions
	sessions map[string]*session // by SIP dialog ID

	registered     atomic.Int64
	registrations  atomic.Int64
	keepalives     atomic.Int64
	failures       atomic.Int64
	catalogQueries atomic.Int64
	queries        atomic.Int64
	invites        atomic.Int64
	rejected       atomic.Int64
	active         atomic.Int64
	bytesSent      atomic.Int64
	alarms         atomic.Int64
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
	dialogs  sipgo.DialogUA
	online   atomic.Bool
	fault    atomic.Pointer[Fault]
	// rebooting is set from TeleBoot until the device registers again;
	// meanwhile it answers nothing.
	rebooting atomic.Bool
	reboot    chan struct{} // TeleBoot to run; capacity 1

	mu    sync.Mutex            // guards state and subs
	state map[string]*chanState // by canonical code (see canonical)
	subs  map[string]*subscription
}

// chanState is what a device remembers of one of its channels (or, for
// controls sent to an NVR's own code, of itself).
type chanState struct {
	status    string // "ON" or "OFF", for the catalog
	deleted   bool   // a DEL event was notified: the channel is out of the catalog
	presets   map[int]string
	controls  []Control
	recording bool // RecordCmd Record
	guard     bool // GuardCmd SetGuard
}

// maxControls bounds the commands remembered per channel; older ones are
// forgotten.
const maxControls = 1000

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
	if c.RecordPageSize <= 0 {
		c.RecordPageSize = 4
	}
	if c.RecordDays <= 0 {
		c.RecordDays = 7
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 4
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 10 * time.Second
	}
	if c.RebootDelay <= 0 {
		c.RebootDelay = 5 * time.Second
	}
	if c.MediaTimeout <= 0 {
		c.MediaTimeout = 10 * time.Second
	}
	if c.LocalIP == "" {
		c.LocalIP = "127.0.0.1"
	}
	if c.MediaIP == "" {
		c.MediaIP = c.LocalIP
	}
	if c.CivilCode == "" {
		c.CivilCode = c.DivisionCode
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.Now == nil {
		c.Now = time.Now
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
	case len(c.CivilCode) < 2 || len(c.CivilCode) > 12 || !digits(c.CivilCode, len(c.CivilCode)):
		return fmt.Errorf("%w: CivilCode %q is not 2 to 12 digits", ErrConfig, c.CivilCode)
	case net.ParseIP(c.MediaIP) == nil || net.ParseIP(c.MediaIP).To4() == nil:
		return fmt.Errorf("%w: MediaIP %q is not an IPv4 address", ErrConfig, c.MediaIP)
	}
	if _, _, err := sip.ParseAddr(c.Server); err != nil {
		return fmt.Errorf("%w: Server %q: %w", ErrConfig, c.Server, err)
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
	if d := s.byID[deviceID]; d != nil && d.id == deviceID {
		return append([]string(nil), d.channels...)
	}
	return nil
}

// sipUDPLimit is the UDP message size RaiseSIPUDPLimit sets.
const sipUDPLimit = 65535

var raiseOnce sync.Once

// RaiseSIPUDPLimit raises sipgo's limit on the SIP messages it sends over
// UDP (sip.UDPMTUSize, 1500 by default, of which sipgo keeps 200 bytes
// spare) to 65535 bytes. GB/T 28181 devices send catalogs and record
// lists of several kilobytes in one UDP datagram, which the IP layer
// fragments and loopback and LANs carry; with sipgo's default a MESSAGE
// holds one catalog item. Start calls it once. sipgo reads the variable
// without synchronisation, so a process that also runs other sipgo users
// (a platform, as `xueliang demo` does) should call it before starting
// them.
func RaiseSIPUDPLimit() {
	raiseOnce.Do(func() {
		if sip.UDPMTUSize < sipUDPLimit {
			sip.UDPMTUSize = sipUDPLimit
		}
	})
}

// Start opens a socket per device and starts them; they register at once
// (a registration storm) unless StartRate spreads them. ctx bounds the
// simulation's life as Close does.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("devsim: start: %w", err)
	}
	RaiseSIPUDPLimit()
	clips, err := loadClips(cfg.Clip)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	host, port, _ := sip.ParseAddr(cfg.Server)
	s := &Sim{cfg: cfg, log: cfg.Log.With("component", "devsim"), clips: clips,
		byID:     make(map[string]*device, cfg.Devices*(1+cfg.ChannelsPerDevice)),
		sessions: make(map[string]*session),
		platform: sip.Uri{Scheme: "sip", User: cfg.PlatformID, Host: host, Port: port}}
	typ := typeIPC
	if cfg.ChannelsPerDevice > 1 {
		typ = typeNVR
	}
	var ua *sipgo.UserAgent
	var srv *sipgo.Server
	for i := range cfg.Devices {
		d := &device{sim: s, index: i, id: code(cfg.DivisionCode, typ, i+1),
			reboot: make(chan struct{}, 1), state: map[string]*chanState{}, subs: map[string]*subscription{}}
		f := cfg.Fault
		d.fault.Store(&f)
		for j := range cfg.ChannelsPerDevice {
			id := code(cfg.DivisionCode, typeCamera, cfg.Devices+i*cfg.ChannelsPerDevice+j+1)
			d.channels = append(d.channels, id)
			d.state[id] = newChanState()
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
		for _, c := range d.channels {
			s.byID[c] = d
		}
		d.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(s.log),
			sipgo.WithClientAddr(d.addr), sipgo.WithClientConnectionAddr(d.addr))
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("devsim: device %d client: %w", i, err)
		}
		lhost, lport, _ := sip.ParseAddr(d.addr)
		d.dialogs = sipgo.DialogUA{Client: d.client,
			ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.id, Host: lhost, Port: lport}}}
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

func newChanState() *chanState {
	// Two presets, as set up by an installer.
	return &chanState{status: statusOn, presets: map[int]string{1: "大门", 2: "路口"}}
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
	srv.OnMessage(s.tracked(s.onMessage))
	srv.OnInvite(s.tracked(s.onInvite))
	srv.OnAck(s.tracked(s.onAck))
	srv.OnBye(s.tracked(s.onBye))
	srv.OnInfo(s.tracked(s.onInfo))
	srv.OnSubscribe(s.tracked(s.onSubscribe))
	srv.OnOptions(s.tracked(s.onOptions))
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

// goTracked runs f in a goroutine that Close waits for, and reports
// whether it did: after Close it does nothing.
func (s *Sim) goTracked(f func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
	return true
}

// tracked makes a SIP handler a goroutine Close waits for; after Close
// requests are dropped.
func (s *Sim) tracked(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		h(req, tx)
	}
}

// Close stops every device (without unregistering, and streams without
// BYE) and waits for their goroutines. It is safe to call more than once.
func (s *Sim) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.closeAll()
		s.wg.Wait()
		// Streams whose ACK had not come yet.
		for _, ss := range s.takeSessions(nil) {
			ss.release()
		}
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
		Invites:        s.invites.Load(),
		Rejected:       s.rejected.Load(),
		ActiveStreams:  int(s.active.Load()),
		BytesSent:      s.bytesSent.Load(),
		Alarms:         s.alarms.Load(),
	}
}

// SetFault replaces the faults of a device (and of all its channels). It
// applies to what the device does next: the next keepalive, body and
// INVITE; streams already running keep the faults they started with.
func (s *Sim) SetFault(deviceID string, f Fault) error {
	d := s.byID[deviceID]
	if d == nil || d.id != deviceID {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, deviceID)
	}
	d.fault.Store(&f)
	s.log.Info("faults set", "device", deviceID, "fault", f)
	return nil
}

// Faults returns the faults of a device.
func (s *Sim) Faults(deviceID string) (Fault, error) {
	d := s.byID[deviceID]
	if d == nil || d.id != deviceID {
		return Fault{}, fmt.Errorf("%w: %q", ErrUnknownDevice, deviceID)
	}
	return *d.fault.Load(), nil
}

func (d *device) faults() Fault { return *d.fault.Load() }

// body encodes a MANSCDP body in the device's charset.
func (d *device) body(v any) ([]byte, error) { return marshalBody(v, d.faults().GB2312) }

// canonical maps a code the platform names to the code the device keeps
// state under: an IPC's own code stands for its one channel.
func (d *device) canonical(id string) string {
	if id == d.id && len(d.channels) == 1 {
		return d.channels[0]
	}
	return id
}

// channelIndex returns the index of a channel (by canonical code), or -1.
func (d *device) channelIndex(id string) int {
	id = d.canonical(id)
	for i, c := range d.channels {
		if c == id {
			return i
		}
	}
	return -1
}

// stateLocked returns the state of a code of the device, creating it for
// the device's own code. d.mu must be held.
func (d *device) stateLocked(id string) *chanState {
	id = d.canonical(id)
	st := d.state[id]
	if st == nil && id == d.id {
		st = newChanState()
		st.presets = map[int]string{}
		d.state[id] = st
	}
	return st
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

// run is the device's life: register, then keepalives and re-registration;
// TeleBoot takes it offline for RebootDelay.
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
		case <-d.reboot:
			// A reboot: silence (no keepalives, no answers, streams cut
			// without BYE), then a fresh registration.
			s.log.Info("rebooting", "device", d.id, "for", s.cfg.RebootDelay)
			d.rebooting.Store(true)
			d.setOnline(false)
			keepalive.Stop()
			for _, ss := range s.takeSessions(d) {
				ss.stop()
			}
			d.mu.Lock()
			clear(d.subs)
			d.mu.Unlock()
			reregister.Reset(s.cfg.RebootDelay)
		case <-reregister.C:
			d.rebooting.Store(false)
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
			if d.faults().DropKeepalives {
				keepalive.Reset(s.cfg.KeepaliveInterval)
				continue
			}
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

// request builds a request from the device to the platform.
func (d *device) request(method sip.RequestMethod, body []byte) *sip.Request {
	cfg := &d.sim.cfg
	req := sip.NewRequest(method, d.sim.platform)
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
		req.AppendHeader(sip.NewHeader("Content-Type", contentTypeMANSCDP))
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
	req.AppendHeader(sip.HeaderClone(&d.dialogs.ContactHDR))
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
	body, err := d.body(&keepaliveBody{CmdType: cmdKeepalive, SN: d.sim.nextSN(), DeviceID: d.id, Status: "OK"})
	if err != nil {
		return 0, err
	}
	return d.send(ctx, body)
}

// send sends a MESSAGE to the platform and returns the final status.
func (d *device) send(ctx context.Context, body []byte) (int, error) {
	return d.sendRequest(ctx, d.request(sip.MESSAGE, body))
}

// sendRequest sends a request to the platform and returns the final
// status.
func (d *device) sendRequest(ctx context.Context, req *sip.Request) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := d.client.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("devsim: %s from %s: %w", req.Method, d.id, err)
	}
	return res.StatusCode, nil
}

// sendAll sends bodies as MESSAGEs, one after the other, each once the
// previous one is answered 200 OK.
func (d *device) sendAll(ctx context.Context, what string, bodies [][]byte) error {
	for i, b := range bodies {
		code, err := d.send(ctx, b)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("%w: %s message %d of %d answered %d", ErrRefused, what, i+1, len(bodies), code)
		}
	}
	return nil
}

func (s *Sim) nextSN() int { return int(s.sn.Add(1)) }

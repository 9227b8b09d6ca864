package sipserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Requests from the platform to devices: MANSCDP MESSAGEs (queries and
// control), SUBSCRIBE, and INVITE dialogs for media. Every request goes to
// the address the device's last request came from, over the same
// transport, from the server's own socket (devices behind NAT, and devices
// that only accept requests from the address they registered with).

// Errors of outgoing requests.
var (
	// ErrNotOnline means the device is unknown or not registered.
	ErrNotOnline = errors.New("sipserver: device is not online")
	// ErrNoAnswer means the device did not answer in time.
	ErrNoAnswer = errors.New("sipserver: device did not answer")
)

// StatusError is a final non-2xx answer of a device.
type StatusError struct {
	Method string
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("sipserver: device answered %s with %d %s", e.Method, e.Code, e.Reason)
}

// outbound holds what sending requests needs; built at Listen.
type outbound struct {
	udp     *sipgo.Client // sends from the server's UDP socket
	tcp     *sipgo.Client // finds the device's TCP connection in the pool
	dialUDP *sipgo.DialogClientCache
	dialTCP *sipgo.DialogClientCache
	port    int

	mu    sync.Mutex
	calls map[string]*Call // by Call-ID
}

func (s *Server) initOutbound() error {
	udpAddr := s.udp.LocalAddr().(*net.UDPAddr)
	port := udpAddr.Port
	host := s.advertisedHost(udpAddr.IP)
	udp, err := sipgo.NewClient(s.ua, sipgo.WithClientLogger(s.log), sipgo.WithClientHostname(host),
		sipgo.WithClientPort(port), sipgo.WithClientConnectionAddr(s.udp.LocalAddr().String()))
	if err != nil {
		return fmt.Errorf("sipserver: client: %w", err)
	}
	tcp, err := sipgo.NewClient(s.ua, sipgo.WithClientLogger(s.log), sipgo.WithClientHostname(host), sipgo.WithClientPort(port))
	if err != nil {
		return fmt.Errorf("sipserver: client: %w", err)
	}
	contact := func() sip.ContactHeader {
		return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.cfg.ID, Host: host, Port: port}}
	}
	s.out = &outbound{
		udp: udp, tcp: tcp, port: port,
		dialUDP: sipgo.NewDialogClientCache(udp, contact()),
		dialTCP: sipgo.NewDialogClientCache(tcp, contact()),
		calls:   map[string]*Call{},
	}
	return nil
}

// advertisedHost is the host put in Via and Contact: Config.Host, else the
// listening IP, else the first non-loopback IPv4 address of the machine.
func (s *Server) advertisedHost(ip net.IP) string {
	if s.cfg.Host != "" {
		return s.cfg.Host
	}
	if ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	if ip := LocalIP(""); ip != "" {
		return ip
	}
	return "127.0.0.1"
}

// LocalIP returns the local IPv4 address the machine would use to reach
// remote ("host:port"; "" means any non-loopback address), or "".
func LocalIP(remote string) string {
	if remote != "" {
		c, err := net.Dial("udp4", remote) // sends nothing
		if err == nil {
			defer c.Close()
			return c.LocalAddr().(*net.UDPAddr).IP.String()
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

// target resolves a device to where its requests go.
func (s *Server) target(deviceID string) (Device, error) {
	d, ok := s.Device(deviceID)
	if !ok || d.State != StateOnline {
		return Device{}, fmt.Errorf("%w: %s", ErrNotOnline, deviceID)
	}
	if s.out == nil {
		return Device{}, errors.New("sipserver: not listening")
	}
	return d, nil
}

// newRequest builds a request to user (a device or one of its channels)
// of device d.
func (s *Server) newRequest(method sip.RequestMethod, d Device, user string) *sip.Request {
	host, port, _ := sip.ParseAddr(d.Addr)
	uri := sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
	if strings.EqualFold(d.Transport, "TCP") {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(method, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: s.cfg.ID, Host: s.cfg.Realm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: s.cfg.Realm}, Params: sip.NewParams()})
	req.SetDestination(d.Addr)
	req.SetTransport(strings.ToUpper(d.Transport))
	return req
}

func (s *Server) client(d Device) *sipgo.Client {
	if strings.EqualFold(d.Transport, "TCP") {
		return s.out.tcp
	}
	return s.out.udp
}

// requestTimeout bounds an outgoing non-INVITE transaction when the
// caller's context has no deadline (SIP's own Timer F is 32 s).
const requestTimeout = 10 * time.Second

// do sends req and waits for its final response, which must be 2xx.
func (s *Server) do(ctx context.Context, c *sipgo.Client, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := withDefaultTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sip.ErrTransactionTimeout) {
			return nil, fmt.Errorf("%w: %s to %s: %v", ErrNoAnswer, req.Method, req.Destination(), err)
		}
		return nil, fmt.Errorf("sipserver: %s to %s: %w", req.Method, req.Destination(), err)
	}
	if !res.IsSuccess() {
		return res, &StatusError{Method: string(req.Method), Code: res.StatusCode, Reason: res.Reason}
	}
	return res, nil
}

// Message sends a MANSCDP body (a query or a control command) to a device
// in a MESSAGE and waits for its 200 OK; the device's answer to a query
// arrives later as a MESSAGE of its own (Config.OnMessage). to is the
// device or channel the command is for; "" means the device.
func (s *Server) Message(ctx context.Context, deviceID, to string, body []byte) error {
	d, err := s.target(deviceID)
	if err != nil {
		return err
	}
	if to == "" {
		to = deviceID
	}
	req := s.newRequest(sip.MESSAGE, d, to)
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	_, err = s.do(ctx, s.client(d), req)
	return err
}

// Subscribe sends a SUBSCRIBE for event ("Catalog", or "presence" for alarms; GB/T
// 28181-2016 §9.11, §9.7) with a MANSCDP query body and returns the
// expiry the device granted. expires 0 cancels a subscription.
func (s *Server) Subscribe(ctx context.Context, deviceID, event string, expires int, body []byte) (int, error) {
	d, err := s.target(deviceID)
	if err != nil {
		return 0, err
	}
	req := s.newRequest(sip.SUBSCRIBE, d, deviceID)
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.cfg.ID, Host: s.out.udp.Hostname(), Port: s.out.port}})
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	res, err := s.do(ctx, s.client(d), req)
	if err != nil {
		return 0, err
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			granted = n
		}
	}
	return granted, nil
}

// Call is an established INVITE dialog with a device: a live, playback or
// download media session.
type Call struct {
	s        *Server
	dlg      *sipgo.DialogClientSession
	DeviceID string
	Channel  string
	// Answer is the SDP body of the device's 200 OK.
	Answer []byte
	// Remote is the device's address (where its SIP requests came from).
	Remote string

	done     chan struct{}
	doneOnce sync.Once
	byDevice bool
}

// inviteTimeout bounds the wait for a device's answer to INVITE when the
// caller's context has no deadline.
const inviteTimeout = 10 * time.Second

// Invite opens a media session with a channel of a device: it sends
// INVITE with the SDP offer and a Subject header ("channel:ssrc,platform:0",
// GB/T 28181-2016 §9.2.2), waits for a 2xx answer and ACKs it. The caller
// must Bye the Call when done; Done is closed if the device ends it first.
func (s *Server) Invite(ctx context.Context, deviceID, channel string, subject string, offer []byte) (*Call, error) {
	d, err := s.target(deviceID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, inviteTimeout)
	defer cancel()
	req := s.newRequest(sip.INVITE, d, channel)
	req.AppendHeader(sip.NewHeader("Subject", subject))
	req.AppendHeader(sip.NewHeader("Content-Type", "APPLICATION/SDP"))
	req.SetBody(offer)
	cache := s.out.dialUDP
	if strings.EqualFold(d.Transport, "TCP") {
		cache = s.out.dialTCP
	}
	dlg, err := cache.WriteInvite(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("sipserver: INVITE %s at %s: %w", channel, d.Addr, err)
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		dlg.Close()
		var de *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &de):
			return nil, &StatusError{Method: "INVITE", Code: de.Res.StatusCode, Reason: de.Res.Reason}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, sip.ErrTransactionTimeout):
			return nil, fmt.Errorf("%w: INVITE %s at %s", ErrNoAnswer, channel, d.Addr)
		}
		return nil, fmt.Errorf("sipserver: INVITE %s at %s: %w", channel, d.Addr, err)
	}
	// ACK (and later INFO and BYE) go to the Contact of the answer as the
	// Request-URI, but to the address the device's requests come from:
	// devices behind NAT, or with a wrong Contact, are reached there.
	ack := sip.NewRequest(sip.ACK, remoteTarget(dlg))
	ack.SetTransport(dlg.InviteRequest.Transport())
	ack.SetDestination(d.Addr)
	ack.Laddr = dlg.InviteRequest.Laddr
	if err := dlg.WriteAck(ctx, ack); err != nil {
		dlg.Close()
		return nil, fmt.Errorf("sipserver: ACK %s at %s: %w", channel, d.Addr, err)
	}
	c := &Call{s: s, dlg: dlg, DeviceID: deviceID, Channel: channel, Answer: dlg.InviteResponse.Body(),
		Remote: d.Addr, done: make(chan struct{})}
	s.out.mu.Lock()
	s.out.calls[dlg.InviteRequest.CallID().Value()] = c
	s.out.mu.Unlock()
	go func() {
		// The dialog's context ends only when a BYE succeeds; a BYE to a
		// vanished device fails, and Bye ends the Call itself.
		select {
		case <-dlg.Context().Done():
			c.end()
		case <-c.done:
		}
	}()
	return c, nil
}

// remoteTarget is the Request-URI of requests inside the dialog: the
// Contact of the device's answer, else the INVITE's Request-URI.
func remoteTarget(dlg *sipgo.DialogClientSession) sip.Uri {
	if ct := dlg.InviteResponse.Contact(); ct != nil {
		return *ct.Address.Clone()
	}
	return *dlg.InviteRequest.Recipient.Clone()
}

// Done is closed when the dialog ends, by Bye or by the device.
func (c *Call) Done() <-chan struct{} { return c.done }

// EndedByDevice reports whether the device sent BYE.
func (c *Call) EndedByDevice() bool {
	select {
	case <-c.done:
		return c.byDevice
	default:
		return false
	}
}

func (c *Call) end() {
	c.doneOnce.Do(func() {
		c.s.out.mu.Lock()
		delete(c.s.out.calls, c.dlg.InviteRequest.CallID().Value())
		c.s.out.mu.Unlock()
		close(c.done)
	})
}

// Info sends an INFO inside the dialog: MANSRTSP playback control (GB/T
// 28181-2016 §9.9: PLAY, PAUSE, Range, Scale).
func (c *Call) Info(ctx context.Context, contentType string, body []byte) error {
	ctx, cancel := withDefaultTimeout(ctx, requestTimeout)
	defer cancel()
	req := sip.NewRequest(sip.INFO, remoteTarget(c.dlg))
	req.SetDestination(c.Remote)
	req.SetTransport(c.dlg.InviteRequest.Transport())
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	req.SetBody(body)
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("sipserver: INFO to %s: %w", c.Channel, err)
	}
	if !res.IsSuccess() {
		return &StatusError{Method: "INFO", Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}

// Bye ends the dialog (unless the device already did).
func (c *Call) Bye(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	ctx, cancel := withDefaultTimeout(ctx, 5*time.Second)
	defer cancel()
	bye := sip.NewRequest(sip.BYE, remoteTarget(c.dlg))
	bye.SetTransport(c.dlg.InviteRequest.Transport())
	bye.SetDestination(c.Remote)
	err := c.dlg.WriteBye(ctx, bye)
	c.dlg.Close()
	c.end()
	if err != nil {
		return fmt.Errorf("sipserver: BYE to %s: %w", c.Channel, err)
	}
	return nil
}

// onBye handles a BYE from a device ending a media session.
func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if s.out == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	s.out.mu.Lock()
	c := s.out.calls[req.CallID().Value()]
	if c != nil {
		c.byDevice = true
	}
	s.out.mu.Unlock()
	if c == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if err := c.dlg.ReadBye(req, tx); err != nil {
		s.log.Debug("BYE from a device", "device", c.DeviceID, "err", err)
	}
	c.end()
}

// dialogDevice returns the device a request comes from: the From user,
// unless that is no device we know and the request belongs to one of our
// media dialogs (devices send MediaStatus inside the playback's dialog,
// many with the channel as From).
func (s *Server) dialogDevice(req *sip.Request, from string) string {
	s.mu.Lock()
	_, known := s.devices[from]
	s.mu.Unlock()
	if known || s.out == nil || req.CallID() == nil {
		return from
	}
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	if c := s.out.calls[req.CallID().Value()]; c != nil {
		return c.DeviceID
	}
	return from
}

// withDefaultTimeout bounds ctx by d unless it has a deadline already.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

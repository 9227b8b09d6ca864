package whep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/media"
)

// Hub gives access to the live stream of a channel (implemented by internal/streams).
type Hub interface {
	// Acquire returns the live stream of the channel, starting its source if needed and
	// waiting until it is ready or ctx ends. release must be called exactly once when the
	// caller stops reading. Errors wrap media.ErrNoChannel or media.ErrUnavailable.
	Acquire(ctx context.Context, channelID int64) (s *media.Stream, release func(), err error)
}

// Errors of the package. Config.Authorize returns errors wrapping
// ErrUnauthorized or ErrForbidden; the others are returned by Server methods.
var (
	// ErrUnauthorized means the request carries no valid credentials (401).
	ErrUnauthorized = errors.New("whep: unauthorized")
	// ErrForbidden means the credentials do not allow watching the channel (403).
	ErrForbidden = errors.New("whep: forbidden")
	// ErrServerClosed is returned by Start after Close.
	ErrServerClosed = errors.New("whep: server closed")
	// ErrNotStarted is returned by ServeHTTP (as 503) before Start.
	ErrNotStarted = errors.New("whep: server not started")
)

// Defaults of Config.
const (
	DefaultSessionTimeout = 15 * time.Second
	DefaultAcquireTimeout = 10 * time.Second
	DefaultQueueSize      = 512
)

// Config configures a Server. The zero value of each optional field selects
// its default.
type Config struct {
	// Hub gives the live streams. Required.
	Hub Hub

	// Authorize decides whether r may watch channelID; nil allows everyone.
	// It receives the POST request and reads the token from the token query
	// parameter or the Authorization: Bearer header. It returns nil to allow,
	// an error wrapping ErrUnauthorized (401) or ErrForbidden (403) to refuse;
	// any other error is a failure of the authorizer and answers 500.
	// DELETE needs no authorization: the session URL is the credential.
	Authorize func(r *http.Request, channelID int64) error

	// Logger receives the logs of the server and of pion; nil discards them.
	Logger *slog.Logger

	// Registerer registers the metrics of the server; nil does not register
	// them (they are still counted).
	Registerer prometheus.Registerer

	// UDPAddr is the one UDP address all sessions share through pion's ICE UDP
	// mux, such as ":8189". With an unspecified IP and a fixed port, one socket
	// is bound per local interface, loopback included. "127.0.0.1:0" picks a
	// free port (see Server.UDPAddr). Required.
	UDPAddr string

	// AdditionalHosts are IP addresses advertised as extra host candidates
	// with the port of UDPAddr, for a server behind 1:1 NAT (a cloud VM with
	// a public IP). Hostnames are not accepted.
	AdditionalHosts []string

	// SessionTimeout closes a session whose peer connection (ICE and DTLS)
	// is not connected within it. Default DefaultSessionTimeout.
	SessionTimeout time.Duration

	// AcquireTimeout bounds how long a POST waits for Hub.Acquire. Default
	// DefaultAcquireTimeout.
	AcquireTimeout time.Duration

	// QueueSize is the per-session reader queue in units (media.Stream.AddReader).
	// Default DefaultQueueSize.
	QueueSize int

	// OnKeyframeRequest, if set, is called when a player asks for a keyframe
	// (RTCP PLI or FIR), at most once a second per session. It is called from
	// a session goroutine and must not block. A GB/T 28181 source can send
	// an IFrame command from here.
	OnKeyframeRequest func(channelID int64)
}

// Server serves WHEP sessions. It is an http.Handler meant to be mounted on
// both "/live/{id}/whep" (the endpoint) and "/live/{id}/whep/" (the session
// resources). All methods are safe for concurrent use.
type Server struct {
	conf    Config
	log     *slog.Logger
	metrics *metrics

	settings webrtc.SettingEngine // copied into every session's API; read-only after Start

	ctx    context.Context // cancelled by Close; parent of every session
	cancel context.CancelCauseFunc

	// wg counts in-flight POST handlers and session goroutines. Add is only
	// called with mu held and closed false, so Close's Wait cannot race it.
	wg sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	started  bool
	closed   bool
	udpMux   ice.UDPMux
	udpAddr  net.Addr
	sessions map[string]*session
	nextID   uint64 // log id of the next session
}

// NewServer checks conf and returns a Server that does nothing until Start.
func NewServer(conf Config) (*Server, error) {
	if conf.Hub == nil {
		return nil, errors.New("whep: config: Hub is required")
	}
	if conf.UDPAddr == "" {
		return nil, errors.New("whep: config: UDPAddr is required")
	}
	if _, err := net.ResolveUDPAddr("udp", conf.UDPAddr); err != nil {
		return nil, fmt.Errorf("whep: config: UDPAddr %q: %w", conf.UDPAddr, err)
	}
	for _, h := range conf.AdditionalHosts {
		if net.ParseIP(h) == nil {
			return nil, fmt.Errorf("whep: config: AdditionalHosts: %q is not an IP address", h)
		}
	}
	if conf.SessionTimeout <= 0 {
		conf.SessionTimeout = DefaultSessionTimeout
	}
	if conf.AcquireTimeout <= 0 {
		conf.AcquireTimeout = DefaultAcquireTimeout
	}
	if conf.QueueSize <= 0 {
		conf.QueueSize = DefaultQueueSize
	}
	log := conf.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "whep")

	m := newMetrics()
	if conf.Registerer != nil {
		if err := m.register(conf.Registerer); err != nil {
			return nil, fmt.Errorf("whep: register metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Server{
		conf:     conf,
		log:      log,
		metrics:  m,
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[string]*session),
	}, nil
}

// Start binds the ICE UDP port. It may be called once.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrServerClosed
	case s.started:
		return errors.New("whep: server already started")
	}
	mux, addr, err := listenUDPMux(s.conf.UDPAddr, newPionLoggerFactory(s.log))
	if err != nil {
		return err
	}

	var se webrtc.SettingEngine
	se.LoggerFactory = newPionLoggerFactory(s.log)
	se.SetICEUDPMux(mux)
	// Only UDP host candidates on the shared port: no ephemeral ports, no
	// STUN, no TCP.
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A peer silent for 5 s is disconnected and 10 s later failed; the
	// session then ends (keepalives are 2 s).
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if len(s.conf.AdditionalHosts) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        s.conf.AdditionalHosts,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteAppend,
		})
		if err != nil {
			_ = mux.Close()
			return fmt.Errorf("whep: additional hosts: %w", err)
		}
	}

	s.settings = se
	s.udpMux = mux
	s.udpAddr = addr
	s.started = true
	s.log.Info("listening", "udp", addr.String())
	return nil
}

// listenUDPMux binds the shared ICE port. An unspecified IP with a fixed port
// gets one socket per interface, so that every candidate is answered from its
// own address; otherwise one socket is bound.
func listenUDPMux(addr string, lf *pionLoggerFactory) (ice.UDPMux, net.Addr, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("whep: listen %q: %w", addr, err)
	}
	if (ua.IP == nil || ua.IP.IsUnspecified()) && ua.Port != 0 {
		mux, err := ice.NewMultiUDPMuxFromPort(ua.Port,
			ice.UDPMuxFromPortWithLoopback(),
			ice.UDPMuxFromPortWithLogger(lf.NewLogger("udpmux")))
		if err != nil {
			return nil, nil, fmt.Errorf("whep: listen %q: %w", addr, err)
		}
		return mux, ua, nil
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, nil, fmt.Errorf("whep: listen %q: %w", addr, err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: lf.NewLogger("udpmux")})
	return mux, conn.LocalAddr(), nil
}

// UDPAddr returns the address of the shared ICE UDP port, or nil before
// Start. With an unspecified IP it is the configured address.
func (s *Server) UDPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udpAddr
}

// Sessions returns the number of sessions set up and not yet closed.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every session, releases their leases, waits for in-flight
// requests and every goroutine the Server started, and closes the UDP port.
// It is safe to call at any time, more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.cancel(errServerClosing)
	s.wg.Wait()

	s.mu.Lock()
	mux := s.udpMux
	s.udpMux = nil
	s.mu.Unlock()
	if mux != nil {
		if err := mux.Close(); err != nil {
			return fmt.Errorf("whep: close udp mux: %w", err)
		}
	}
	s.log.Info("closed")
	return nil
}

// enter registers an in-flight request with the wait group. It fails once
// the server is closed or before it is started.
func (s *Server) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrServerClosed
	case !s.started:
		return ErrNotStarted
	}
	s.wg.Add(1)
	return nil
}

// addSession registers ss and counts its goroutine. It fails when the server
// is closing.
func (s *Server) addSession(ss *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.sessions[ss.secret] = ss
	s.wg.Add(1)
	s.metrics.active.Inc()
	return nil
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.secret] == ss {
		delete(s.sessions, ss.secret)
		s.metrics.active.Dec()
	}
}

func (s *Server) lookup(secret string, channelID int64) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[secret]
	if ss == nil || ss.channelID != channelID {
		return nil
	}
	return ss
}

func (s *Server) newLogID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return "w" + strconv.FormatUint(s.nextID, 10)
}

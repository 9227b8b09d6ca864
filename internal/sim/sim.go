// Package sim simulates RTSP IP cameras for the demo, `xueliang sim`, the
// end-to-end tests and the benchmarks.
//
// A Server serves any number of cameras on one RTSP port (TCP and UDP
// transports, RFC 2326). Each camera loops a short H.264 or H.265 clip,
// optionally with AAC or G.711 audio, like a real camera: RTP timestamps
// start at a random offset and keep increasing across loops, and RTCP sender
// reports map them to wall-clock time. A camera costs nothing while nobody
// watches it: it streams only while it has at least one reader, from one
// pacing goroutine that writes every packet once to a stream shared by all
// its readers. A reader joining a camera that is already streaming starts at
// the next IDR (at most 2 s away with the embedded clips), as with a real
// camera. Clips are parsed and packetized once, at Start.
//
// For tests, faults can be injected per camera (SetFault, or the optional
// HTTP control API) and session counters read back (Stats).
//
// # Clips
//
// The embedded clips (see Clips) are raw Annex-B elementary streams made by
// scripts/gen-clips.sh: 640x360, 15 fps, no B-frames, an IDR every 30
// frames, 4 s long, each showing its name, a running clock and the frame
// number. A camera may also play a file of the same kind; its codec is taken
// from the extension (.h264 or .h265) and its frame rate from the SPS VUI
// timing info, or 15 fps when the SPS has none.
package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
)

// Errors.
var (
	// ErrBadClip is wrapped by every error about the contents of a clip.
	ErrBadClip = errors.New("invalid clip")
	// ErrUnknownCamera is returned for a path that names no camera.
	ErrUnknownCamera = errors.New("sim: unknown camera")
	// ErrStarted is returned by a second Start, or a Start after Close.
	ErrStarted = errors.New("sim: server already started")
)

// Config configures a Server.
type Config struct {
	// Addr is the RTSP listen address, e.g. ":8554" or "127.0.0.1:0".
	Addr string
	// UDPPort is the even UDP port for RTP; RTCP uses UDPPort+1. Zero picks
	// a free pair on Addr's host.
	UDPPort int
	// DisableUDP serves the TCP (interleaved) transport only.
	DisableUDP bool
	// ControlAddr, when set, serves the HTTP control API:
	//   GET  /cameras               JSON list of CameraStatus
	//   POST /cameras/{path}/fault  body {"fault":"drop|stall|refuse-auth|none"}
	ControlAddr string
	// Cameras are served at rtsp://Addr/<Path>.
	Cameras []Camera
	// Speed multiplies the pace of every camera, for tests; 0 means 1 (real
	// time). RTP timestamps are unaffected: a clip loops Speed times faster.
	Speed float64
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Camera configures one simulated camera.
type Camera struct {
	// Path is the RTSP URL path without the leading slash, e.g. "cam/001".
	Path string
	// Clip is an embedded clip name (see Clips) or a file path; empty means DefaultClip.
	Clip string
	// Label names the camera in logs, the SDP session name and the control API.
	Label string
	// Audio is "", AudioNone, AudioAAC, AudioG711A or AudioG711U.
	Audio string
	// Username, when set, makes the camera require these credentials
	// (HTTP Basic or Digest MD5, RFC 2617).
	Username, Password string
}

// Fault is a failure injected into a camera.
type Fault int32

// Faults.
const (
	// FaultNone: the camera works.
	FaultNone Fault = iota
	// FaultDrop: the camera dies. Every connection that addressed it is
	// closed, and any later request for it is answered by closing the TCP
	// connection without a response, as when a camera's RTSP service crashes.
	// (Refusing the TCP connect itself is impossible: cameras share a port.)
	FaultDrop
	// FaultStall: sessions stay open and keep being accepted, but no RTP is
	// sent; the clip and the timestamps run on, so packets resume later
	// with a jump, mid-GOP.
	FaultStall
	// FaultRefuseAuth: DESCRIBE and SETUP are answered 401 whatever the
	// credentials; sessions already playing go on.
	FaultRefuseAuth
)

var faultNames = [...]string{"none", "drop", "stall", "refuse-auth"}

// String implements fmt.Stringer.
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// ParseFault parses the String form of a Fault.
func ParseFault(s string) (Fault, error) {
	for i, n := range faultNames {
		if s == n {
			return Fault(i), nil
		}
	}
	return 0, fmt.Errorf("sim: unknown fault %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (f Fault) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Fault) UnmarshalText(b []byte) error {
	v, err := ParseFault(string(b))
	*f = v
	return err
}

// CameraStats are a camera's session counters.
type CameraStats struct {
	// ActiveSessions are the open RTSP sessions set up on the camera.
	ActiveSessions int `json:"activeSessions"`
	// TotalSessions counts the sessions that started playing since Start.
	TotalSessions uint64 `json:"totalSessions"`
	// Readers are the sessions playing now.
	Readers int `json:"readers"`
}

// CameraStatus describes a camera, as listed by GET /cameras.
type CameraStatus struct {
	Path  string `json:"path"`
	Label string `json:"label,omitempty"`
	Clip  string `json:"clip"`
	Audio string `json:"audio"`
	Fault Fault  `json:"fault"`
	CameraStats
}

// Server serves simulated cameras over RTSP. Its methods are safe for
// concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	err   error              // invalid Config, returned by Start
	cams  map[string]*camera // by path; fixed by NewServer
	order []*camera          // Config order

	mu      sync.Mutex // guards the fields below
	state   int        // stateNew, stateStarted, stateClosed
	rtsp    *gortsplib.Server
	addr    string
	ctl     *http.Server
	ctlAddr string
	ctlDone chan struct{}
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// NewServer returns a Server for cfg. Nothing runs until Start; an invalid
// cfg is reported by Start.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Speed <= 0 {
		cfg.Speed = 1
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "sim"), cams: make(map[string]*camera)}
	for _, c := range cfg.Cameras {
		c.Path = strings.Trim(c.Path, "/")
		switch {
		case c.Path == "":
			s.err = errors.Join(s.err, errors.New("sim: camera with an empty path"))
		case s.cams[c.Path] != nil:
			s.err = errors.Join(s.err, fmt.Errorf("sim: duplicate camera path %q", c.Path))
		default:
			cam := newCamera(s, c)
			s.cams[c.Path] = cam
			s.order = append(s.order, cam)
		}
	}
	return s
}

// Start loads the clips, then listens for RTSP (and control) requests and
// returns. On error, everything started is stopped again.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return ErrStarted
	}
	s.state = stateStarted
	err := s.startLocked()
	if err != nil {
		s.closeLocked()
		s.state = stateClosed
	}
	return err
}

func (s *Server) startLocked() error {
	if s.err != nil {
		return s.err
	}
	if err := s.loadSources(); err != nil {
		return err
	}
	// Cameras are not in step: staggering their frames spreads the load.
	epoch := time.Now()
	for _, c := range s.order {
		c.epoch = epoch.Add(-rand.N(time.Second))
	}

	rtsp := &gortsplib.Server{Handler: &handler{s: s}, RTSPAddress: s.cfg.Addr}
	var pcs []net.PacketConn
	if !s.cfg.DisableUDP {
		var err error
		if pcs, err = listenUDPPair(s.cfg.Addr, s.cfg.UDPPort); err != nil {
			return err
		}
		rtsp.UDPRTPAddress, rtsp.UDPRTCPAddress = pcs[0].LocalAddr().String(), pcs[1].LocalAddr().String()
		rtsp.ListenPacket = func(network, addr string) (net.PacketConn, error) {
			for i, pc := range pcs {
				if pc != nil && pc.LocalAddr().String() == addr {
					pcs[i] = nil
					return pc, nil
				}
			}
			return net.ListenPacket(network, addr)
		}
	}
	// The handler reads s.rtsp: set it before gortsplib starts calling.
	s.rtsp = rtsp
	err := rtsp.Start()
	for _, pc := range pcs {
		if pc != nil { // not taken by gortsplib
			pc.Close()
		}
	}
	if err != nil {
		s.rtsp = nil
		return fmt.Errorf("sim: start RTSP server: %w", err)
	}
	s.addr = s.rtsp.NetListener().Addr().String()
	if s.cfg.ControlAddr != "" {
		if err := s.startControlLocked(); err != nil {
			return err
		}
	}
	s.log.Info("camera simulator started", "addr", s.addr, "udp", rtsp.UDPRTPAddress,
		"control", s.ctlAddr, "cameras", len(s.order))
	return nil
}

// loadSources parses and packetizes each distinct clip once.
func (s *Server) loadSources() error {
	videos := make(map[string]*videoSource)
	var aac *audioSource
	for _, c := range s.order {
		v := videos[c.cfg.Clip]
		if v == nil {
			clip, err := loadClip(c.cfg.Clip)
			if err == nil {
				v, err = newVideoSource(clip)
			}
			if err != nil {
				return fmt.Errorf("sim: camera %q: %w", c.cfg.Path, err)
			}
			videos[c.cfg.Clip] = v
		}
		c.video = v
		switch c.cfg.Audio {
		case "", AudioNone:
		case AudioAAC:
			if aac == nil {
				data, _ := clipFS.ReadFile("clips/" + audioClipAAC) // embedded: cannot fail
				clip, err := parseADTS(data)
				if err == nil {
					aac, err = newAACSource(clip)
				}
				if err != nil {
					return fmt.Errorf("sim: clip %q: %w", audioClipAAC, err)
				}
			}
			c.audio = aac
		case AudioG711A, AudioG711U:
			c.audio = newG711Source(c.cfg.Audio == AudioG711U)
		default:
			return fmt.Errorf("sim: camera %q: unknown audio %q", c.cfg.Path, c.cfg.Audio)
		}
	}
	return nil
}

// listenUDPPair binds the RTP and RTCP sockets: port and port+1, or when
// port is 0 the first free even/odd pair the system hands out.
func listenUDPPair(addr string, port int) ([]net.PacketConn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sim: address %q: %w", addr, err)
	}
	listen := func(p int) (net.PacketConn, error) {
		network := "udp"
		if host == "" || host == "0.0.0.0" {
			network = "udp4" // as gortsplib does
		}
		return net.ListenPacket(network, net.JoinHostPort(host, strconv.Itoa(p)))
	}
	if port != 0 {
		if port%2 != 0 {
			return nil, fmt.Errorf("sim: UDP port %d is odd", port)
		}
		rtp, err := listen(port)
		if err != nil {
			return nil, fmt.Errorf("sim: listen UDP: %w", err)
		}
		rtcp, err := listen(port + 1)
		if err != nil {
			rtp.Close()
			return nil, fmt.Errorf("sim: listen UDP: %w", err)
		}
		return []net.PacketConn{rtp, rtcp}, nil
	}
	for range 100 {
		a, err := listen(0)
		if err != nil {
			return nil, fmt.Errorf("sim: listen UDP: %w", err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		partner := p + 1
		if p%2 != 0 {
			partner = p - 1
		}
		b, err := listen(partner)
		if err != nil {
			a.Close()
			continue
		}
		if p%2 != 0 {
			a, b = b, a
		}
		return []net.PacketConn{a, b}, nil
	}
	return nil, errors.New("sim: no free UDP port pair")
}

// Addr returns the RTSP listen address, with the actual port; "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ControlAddr returns the control API's listen address; "" when disabled.
func (s *Server) ControlAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctlAddr
}

// Close stops every goroutine the server started and closes every session.
// It may be called at any time, more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateClosed {
		return nil
	}
	s.state = stateClosed
	s.closeLocked()
	return nil
}

func (s *Server) closeLocked() {
	if s.ctl != nil {
		s.ctl.Close()
		<-s.ctlDone
		s.ctl = nil
	}
	if s.rtsp != nil {
		// Handlers never take s.mu, so the sessions can close meanwhile.
		s.rtsp.Close()
	}
	for _, c := range s.order {
		c.close()
	}
	s.log.Info("camera simulator stopped")
}

// SetFault injects f into the camera at path (see Fault); FaultNone heals it.
func (s *Server) SetFault(path string, f Fault) error {
	c := s.cams[strings.Trim(path, "/")]
	if c == nil {
		return fmt.Errorf("%w: %q", ErrUnknownCamera, path)
	}
	if f < FaultNone || f > FaultRefuseAuth {
		return fmt.Errorf("sim: unknown fault %d", int(f))
	}
	c.setFault(f)
	return nil
}

// Stats returns the session counters of the camera at path; zero for an
// unknown path.
func (s *Server) Stats(path string) CameraStats {
	if c := s.cams[strings.Trim(path, "/")]; c != nil {
		return c.stats()
	}
	return CameraStats{}
}

// Status describes every camera, in Config order.
func (s *Server) Status() []CameraStatus {
	out := make([]CameraStatus, len(s.order))
	for i, c := range s.order {
		clip := c.cfg.Clip
		if clip == "" {
			clip = DefaultClip
		}
		audio := c.cfg.Audio
		if audio == "" {
			audio = AudioNone
		}
		out[i] = CameraStatus{
			Path: c.cfg.Path, Label: c.cfg.Label, Clip: clip, Audio: audio,
			Fault: Fault(c.fault.Load()), CameraStats: c.stats(),
		}
	}
	return out
}

// lookup returns the camera a request path addresses: the path itself, or
// its parent for a SETUP's per-track control URL ("cam/1/trackID=0").
func (s *Server) lookup(path string) *camera {
	path = strings.Trim(path, "/")
	if c := s.cams[path]; c != nil {
		return c
	}
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return s.cams[path[:i]]
	}
	return nil
}

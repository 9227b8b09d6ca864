// Package rtsp pulls live media from RTSP cameras (rtsp:// and rtsps://) and
// delivers it to the media plane as codec-neutral units.
//
// A Source stands for one camera URL. Its Run method connects with the
// gortsplib client, picks the first H.264 or H.265 video track and at most one
// audio track (AAC, G.711 or Opus), turns RTP packets into access units and
// writes them to the media.Stream that the caller's ready function returns.
// When the camera cannot be used, Run returns a *media.SourceError whose
// Reason tells operators why (unreachable, auth_failed, timeout, ...).
//
// The shape follows the RTSP static source of mediamtx
// (internal/staticsources/rtsp): Run owns the client, drives DESCRIBE, SETUP
// and PLAY from one goroutine, waits in a select loop for that goroutine, its
// context and a read watchdog, and closes the client when it leaves, so that
// no goroutine outlives Run.
package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/media"
)

// Defaults of Config.
const (
	DefaultReadTimeout = 10 * time.Second
	DefaultDialTimeout = 5 * time.Second
)

// Values of Config.Transport.
const (
	TransportAuto = "auto" // UDP first, then TCP if no packet arrives (the gortsplib default)
	TransportTCP  = "tcp"  // RTP interleaved in the RTSP connection (RFC 2326 §10.12)
	TransportUDP  = "udp"  // RTP over UDP unicast, client ports chosen by gortsplib
)

// maxPending bounds the units kept between the moment the tracks are known
// and the moment ready returns the stream to write them to.
const maxPending = 256

// Config configures a Source.
type Config struct {
	// URL of the stream: rtsp:// or rtsps://, with optional user:password@.
	// Credentials are used for Basic or Digest authentication, as the camera
	// asks (RFC 2617, which RTSP 1.0 takes from HTTP).
	URL string
	// Transport is TransportAuto (the default when empty), TransportTCP or
	// TransportUDP.
	Transport string
	// ReadTimeout is how long the camera may stay silent once playing: no
	// RTP packet for this long fails the source. Answers to requests may
	// take one second more (the resolution of the gortsplib check).
	// DefaultReadTimeout if zero.
	ReadTimeout time.Duration
	// DialTimeout bounds the TCP connection to the camera. It also bounds
	// each write to the camera. DefaultDialTimeout if zero.
	DialTimeout time.Duration
	// Logger receives the logs of the source, which adds the component name
	// and the URL without its password. Nothing is logged if nil.
	Logger *slog.Logger
	// Metrics, if set, receives the counters of the source as well; one
	// Metrics is shared by all sources.
	Metrics *Metrics
}

// Stats are counters of a Source since it was created, summed over every Run.
type Stats struct {
	PacketsReceived uint64 // RTP packets of the selected tracks
	PacketsLost     uint64 // RTP packets missing from the sequence numbers
	DecodeErrors    uint64 // packets dropped because they could not be decoded into units
	Units           uint64 // units written to streams
	Bytes           uint64 // payload bytes of those units
}

// Source pulls one RTSP stream. It implements media.Source.
//
// Run must not be called again before the previous call has returned. Stats
// may be called at any time from any goroutine.
type Source struct {
	url       *base.URL
	withCreds bool                // the URL has user info
	protocol  *gortsplib.Protocol // nil for TransportAuto
	readTO    time.Duration
	dialTO    time.Duration
	log       *slog.Logger

	metrics      *Metrics // may be nil
	packets      atomic.Uint64
	lost         atomic.Uint64
	decodeErrors atomic.Uint64
	units        atomic.Uint64
	bytes        atomic.Uint64
}

var _ media.Source = (*Source)(nil)

// NewSource validates cfg and returns a Source for it. It does no I/O.
func NewSource(cfg Config) (*Source, error) {
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	s := &Source{url: u, withCreds: u.User != nil, readTO: cfg.ReadTimeout, dialTO: cfg.DialTimeout, metrics: cfg.Metrics}

	switch strings.ToLower(cfg.Transport) {
	case "", TransportAuto:
	case TransportTCP:
		p := gortsplib.ProtocolTCP
		s.protocol = &p
	case TransportUDP:
		p := gortsplib.ProtocolUDP
		s.protocol = &p
	default:
		return nil, fmt.Errorf("rtsp: transport must be auto, tcp or udp, not %q", cfg.Transport)
	}

	switch {
	case s.readTO < 0:
		return nil, fmt.Errorf("rtsp: read timeout must not be negative, not %s", s.readTO)
	case s.readTO == 0:
		s.readTO = DefaultReadTimeout
	}
	switch {
	case s.dialTO < 0:
		return nil, fmt.Errorf("rtsp: dial timeout must not be negative, not %s", s.dialTO)
	case s.dialTO == 0:
		s.dialTO = DefaultDialTimeout
	}

	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.log = log.With("component", "rtsp", "url", redact(u))
	return s, nil
}

// Stats returns a snapshot of the counters of s.
func (s *Source) Stats() Stats {
	return Stats{
		PacketsReceived: s.packets.Load(),
		PacketsLost:     s.lost.Load(),
		DecodeErrors:    s.decodeErrors.Load(),
		Units:           s.units.Load(),
		Bytes:           s.bytes.Load(),
	}
}

// Run implements media.Source: it connects to the camera, calls ready once
// with the tracks, writes units to the returned Stream until ctx is done
// (then it returns nil) or the camera fails (then it returns a
// *media.SourceError). Run does not close the Stream: its owner does, with
// the error Run returned.
//
// The video track is always tracks[0], and the audio track, if any,
// tracks[1]. When the camera does not announce the parameter sets of the
// video in its SDP, Run waits up to ReadTimeout after PLAY for a keyframe
// carrying them in-band and fills the track from it before calling ready.
// Units that arrive before that keyframe are dropped.
//
// ready is called from the goroutine of Run and must not block; it must
// return a non-nil Stream. Unit PTS come from the gortsplib time decoder:
// they start near zero and follow the RTP timestamps. Unit NTP comes from RTCP
// sender reports when the camera sends them, from the local clock otherwise.
func (s *Source) Run(ctx context.Context, ready func(tracks []*media.Track) *media.Stream) error {
	if ctx.Err() != nil {
		return nil
	}
	ss := &session{src: s, paramsReady: make(chan struct{})}
	c := s.newClient(ss)
	ss.client = c

	if err := c.Start(); err != nil {
		return fmt.Errorf("rtsp: start client: %w", err)
	}
	defer c.Close()
	s.log.Debug("connecting")

	done := make(chan error, 1)
	go func() { done <- ss.connect() }()

	// stop closes the client and waits for connect to return. The client
	// goroutines are gone once Close returns.
	stop := func() {
		c.Close()
		<-done
	}

	tick := time.NewTicker(min(max(s.readTO/4, 5*time.Millisecond), time.Second))
	defer tick.Stop()
	paramsReady := ss.paramsReady
	streaming := false
	losses := lossReporter{src: s}

	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			s.log.Debug("failed", "error", err)
			return err

		case <-ctx.Done():
			stop()
			s.log.Debug("stopped")
			return nil

		case <-paramsReady:
			paramsReady = nil
			if err := ss.start(ready); err != nil {
				stop()
				return err
			}
			streaming = true

		case now := <-tick.C:
			if err := ss.checkTimeout(now, streaming); err != nil {
				stop()
				s.log.Debug("failed", "error", err)
				return err
			}
			losses.check(now)
		}
	}
}

// newClient returns a gortsplib client for s whose callbacks feed ss.
func (s *Source) newClient(ss *session) *gortsplib.Client {
	return &gortsplib.Client{
		Scheme: s.url.Scheme,
		Host:   s.url.Host,
		// gortsplib measures packet silence with a one-second resolution
		// and checks it every second: the extra second keeps it from firing
		// before the read watchdog of the session, which is exact. The same
		// value bounds the wait for each RTSP response.
		ReadTimeout:  s.readTO + time.Second,
		WriteTimeout: s.dialTO,
		Protocol:     s.protocol,
		// In auto mode, leave time to switch to TCP before the watchdog
		// declares the camera silent.
		InitialUDPReadTimeout: min(3*time.Second, s.readTO/2),
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, s.dialTO)
			defer cancel()
			var d net.Dialer
			c, err := d.DialContext(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return newBufferedConn(c), nil
		},
		OnRequest: func(req *base.Request) {
			// Never log headers: Authorization carries the credentials.
			s.log.Debug("request", "method", req.Method, "uri", req.URL.CloneWithoutCredentials())
		},
		OnResponse: func(res *base.Response) {
			s.log.Debug("response", "status", int(res.StatusCode), "message", res.StatusMessage)
		},
		OnTransportSwitch: func(err error) {
			ss.lastPacket.Store(monoNow())
			s.log.Warn("switching transport", "reason", err)
		},
		OnPacketsLost: func(n uint64) { s.lost.Add(n); s.metrics.lost(n) },
		OnDecodeError: func(error) { s.decodeErrors.Add(1); s.metrics.decodeError() },
	}
}

// lossReporter logs, at most every 10 s, how many packets were lost or could
// not be decoded since its last report.
type lossReporter struct {
	src  *Source
	at   time.Time // of the last report; zero before the first check
	last Stats
}

func (r *lossReporter) check(now time.Time) {
	const every = 10 * time.Second
	if !r.at.IsZero() && now.Sub(r.at) < every {
		return
	}
	st := r.src.Stats()
	if !r.at.IsZero() {
		if lost, bad := st.PacketsLost-r.last.PacketsLost, st.DecodeErrors-r.last.DecodeErrors; lost > 0 || bad > 0 {
			r.src.log.Warn("packets lost or undecodable", "lost", lost, "decode_errors", bad, "period", now.Sub(r.at).Round(time.Second))
		}
	}
	r.at, r.last = now, st
}

// epoch is the origin of monoNow.
var epoch = time.Now()

// monoNow returns the monotonic time since epoch in nanoseconds, for atomics.
func monoNow() int64 { return int64(time.Since(epoch)) }

// session is the state of one Run.
type session struct {
	src    *Source
	client *gortsplib.Client

	// bindings is set by connect before paramsReady is closed and not
	// changed afterwards.
	bindings []*binding

	// paramsReady is closed once every track is complete: at SETUP when the
	// SDP carries the parameter sets, at the first keyframe otherwise.
	paramsReady chan struct{}

	playing    atomic.Bool  // PLAY succeeded
	playedAt   atomic.Int64 // monoNow at PLAY
	lastPacket atomic.Int64 // monoNow at the last RTP packet, PLAY or transport switch

	mu       sync.Mutex // guards the fields below and the decoders of bindings
	complete bool       // every track has its parameter sets; paramsReady is closed
	stream   *media.Stream
	pending  []*media.Unit // units waiting for stream
}

// connect describes, sets up and plays the stream, then waits for the client
// to end. It runs in its own goroutine and returns a classified error.
func (ss *session) connect() error {
	s, c := ss.src, ss.client

	desc, _, err := c.Describe(s.url)
	if err != nil {
		return classify("describe", err, s.withCreds)
	}
	bs, err := selectTracks(desc, s.log)
	if err != nil {
		return err
	}
	medias := make([]*description.Media, 0, len(bs))
	for _, b := range bs {
		medias = append(medias, b.media)
	}
	if err := c.SetupAll(desc.BaseURL, medias); err != nil {
		return classify("setup", err, s.withCreds)
	}
	for _, b := range bs {
		c.OnPacketRTP(b.media, b.format, func(pkt *rtp.Packet) { ss.onPacket(b, pkt) })
	}

	ss.bindings = bs
	ss.mu.Lock()
	ss.complete = true
	for _, b := range bs {
		ss.complete = ss.complete && b.hasParams()
	}
	if ss.complete {
		close(ss.paramsReady)
	}
	ss.mu.Unlock()

	if _, err := c.Play(nil); err != nil {
		return classify("play", err, s.withCreds)
	}
	now := monoNow()
	ss.playedAt.Store(now)
	ss.lastPacket.Store(now)
	ss.playing.Store(true)

	transport := "unknown"
	if t := c.Transport(); t != nil && t.Session != nil {
		transport = t.Session.Protocol.String()
	}
	s.log.Info("playing", "transport", transport, "tracks", trackList(bs))

	return classify("read", c.Wait(), s.withCreds)
}

// onPacket decodes an RTP packet of b and writes the unit it completes. It
// is called by the client goroutines: one for TCP, one per media for UDP.
func (ss *session) onPacket(b *binding, pkt *rtp.Packet) {
	ss.lastPacket.Store(monoNow())
	ss.src.packets.Add(1)
	ss.src.metrics.packet()

	pts, ok := ss.client.PacketPTS(b.media, pkt)
	if !ok {
		return // no packet whose PTS equals its DTS yet
	}

	ss.mu.Lock()
	defer ss.mu.Unlock()

	payload, err := b.decode(pkt)
	if err != nil {
		if !errors.Is(err, errMorePackets) {
			ss.src.decodeErrors.Add(1)
			ss.src.metrics.decodeError()
		}
		return
	}
	payload = dropEmpty(payload)
	if len(payload) == 0 {
		return
	}
	ntp, ok := ss.client.PacketNTP(b.media, pkt)
	if !ok {
		ntp = time.Now()
	}
	u := &media.Unit{Track: b.index, PTS: pts, NTP: ntp, Payload: payload}
	if b.track.Codec.IsVideo() {
		u.Key = b.isRandomAccess(payload)
	}

	if !ss.complete {
		if !b.track.Codec.IsVideo() {
			return // nothing can use audio before the first keyframe
		}
		b.learnParams(payload)
		if !u.Key || !b.hasParams() {
			return
		}
		ss.complete = true
		close(ss.paramsReady)
	}
	ss.emitLocked(u)
}

// emitLocked writes u to the stream, or keeps it until the stream exists.
func (ss *session) emitLocked(u *media.Unit) {
	if ss.stream == nil {
		if len(ss.pending) < maxPending {
			ss.pending = append(ss.pending, u)
		}
		return
	}
	size := u.Size()
	ss.src.units.Add(1)
	ss.src.bytes.Add(uint64(size))
	ss.src.metrics.unit(size)
	ss.stream.Write(u)
}

// start calls ready with the complete tracks and writes the units kept so
// far to the stream it returns.
func (ss *session) start(ready func(tracks []*media.Track) *media.Stream) error {
	tracks := make([]*media.Track, len(ss.bindings))
	for i, b := range ss.bindings {
		tracks[i] = b.track
	}
	st := ready(tracks)
	if st == nil {
		return errors.New("rtsp: ready returned no stream")
	}

	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.stream = st
	for _, u := range ss.pending {
		ss.emitLocked(u)
	}
	ss.pending = nil
	ss.src.log.Debug("ready", "tracks", trackList(ss.bindings))
	return nil
}

// checkTimeout fails once PLAY has succeeded and either no RTP packet came
// for ReadTimeout or, when streaming is false, no keyframe completed the
// tracks within ReadTimeout of PLAY.
func (ss *session) checkTimeout(now time.Time, streaming bool) error {
	if !ss.playing.Load() {
		return nil // requests are bounded by the client's own timeout
	}
	mono := int64(now.Sub(epoch))
	to := ss.src.readTO
	if !streaming && time.Duration(mono-ss.playedAt.Load()) > to {
		return media.Fail(media.ReasonTimeout,
			fmt.Errorf("rtsp: read: no keyframe with parameter sets within %s", to))
	}
	if silent := time.Duration(mono - ss.lastPacket.Load()); silent > to {
		return media.Fail(media.ReasonTimeout,
			fmt.Errorf("rtsp: read: no packets for %s", silent.Round(time.Millisecond)))
	}
	return nil
}

// trackList returns "H264/90000, AAC/16000" for bs.
func trackList(bs []*binding) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = b.track.String()
	}
	return strings.Join(parts, ", ")
}

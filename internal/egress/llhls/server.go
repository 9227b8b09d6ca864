// Package llhls serves the live streams of the media plane as Low-Latency
// HLS (RFC 8216bis-16 §4.4.3 and §4.4.4 LL-HLS tags, §6.2.5 blocking
// requests; Apple's "Enabling Low-Latency HLS"), with its own fMP4 muxer and
// playlist generator (it replaced a server built on gohlslib, which cost
// about 1.5 times the CPU and 3.5 times the memory per stream; see
// docs/BENCHMARKS.md).
//
// A Server is mounted under "/live/{id}/hls/". index.m3u8 is the entry
// (multivariant playlist), stream.m3u8 the media playlist, and the media
// files are named "<prefix>_init.mp4", "<prefix>_seg<msn>.mp4" and
// "<prefix>_part<n>.mp4", where prefix is random per muxer so that a file of
// a stopped muxer is never confused with one of its successor.
//
// The first request for a playlist of a channel acquires the channel's live
// stream from the Hub, starts a muxer and waits (bounded by
// Config.ReadyTimeout) until the muxer has produced its first segment, so
// that a player gets a playable index.m3u8 from its very first request. The
// muxer stops, and the lease on the stream is released, when nobody has
// asked for the channel for Config.IdleTimeout, when the stream ends, or
// when the Server is closed; the next request starts a new one.
//
// Every request is authorized with Config.Authorize, typically a check of
// the "token" query parameter. The query string of a playlist request,
// without the _HLS_ parameters of §6.2.5, is appended to every URI of the
// playlist (media playlist, init file, segments, parts and preload hint), so
// that the requests of a player keep the token.
//
// One rendition: the video track (H.264 or H.265) and the first audio track
// (AAC or Opus) are muxed into the same fMP4 fragments, which hls.js and
// Safari play. Other tracks are left out: G.711 has no fMP4 mapping that
// browsers' Media Source Extensions accept.
//
// Memory: a muxer keeps Config.SegmentCount segments in RAM, each a list of
// exact-size part buffers (about SegmentCount × GOP bytes).
package llhls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/media"
)

// Hub gives access to the live stream of a channel (implemented by
// internal/streams).
type Hub interface {
	// Acquire returns the live stream of the channel, starting its source if
	// needed and waiting until it is ready or ctx ends. release must be called
	// exactly once when the caller stops reading. Errors wrap
	// media.ErrNoChannel or media.ErrUnavailable.
	Acquire(ctx context.Context, channelID int64) (s *media.Stream, release func(), err error)
}

// Errors that Config.Authorize returns, wrapped, to refuse a request.
var (
	// ErrUnauthorized means the request carries no valid credentials
	// (missing, malformed, bad signature or expired token): 401.
	ErrUnauthorized = errors.New("llhls: unauthorized")
	// ErrForbidden means the credentials are valid but do not grant access to
	// this channel: 403.
	ErrForbidden = errors.New("llhls: forbidden")
)

// errClosed is returned by requests that arrive after Close.
var errClosed = errors.New("llhls: server closed")

// Defaults of Config.
const (
	DefaultSegmentCount = 7 // as gohlslib; see MinSegmentCount
	// MinSegmentCount is the smallest SegmentCount accepted. RFC 8216bis-16
	// §6.2.2 forbids removing a segment while the playlist would then last
	// less than three target durations; with segments of about one target
	// duration that takes 4 complete segments, so 3 works with players
	// (the in-progress parts add up to one more) but is below the letter of
	// the spec; Apple's validator wants at least 6 s of segments.
	MinSegmentCount           = 3
	DefaultSegmentMinDuration = time.Second
	DefaultPartMinDuration    = 200 * time.Millisecond
	DefaultIdleTimeout        = 15 * time.Second
	DefaultAcquireTimeout     = 10 * time.Second
	DefaultReadyTimeout       = 5 * time.Second
)

// Config configures a Server. Hub and Authorize are required.
type Config struct {
	Hub Hub

	// Authorize is called for every request except CORS preflights (OPTIONS,
	// which browsers send without credentials), before anything else is done
	// for it. It returns nil to allow the request, or an error wrapping
	// ErrUnauthorized (answered 401) or ErrForbidden (answered 403). Any other
	// error is answered 500. It is called concurrently and should be cheap.
	Authorize func(r *http.Request, channelID int64) error

	Logger     *slog.Logger
	Registerer prometheus.Registerer // optional

	// SegmentCount is the number of complete segments kept in the playlist
	// (default 7, at least MinSegmentCount).
	SegmentCount int
	// SegmentMinDuration is the minimum segment duration (default 1 s). A
	// segment always starts on a keyframe, so it lasts at least one GOP.
	SegmentMinDuration time.Duration
	// PartMinDuration is the minimum duration of a Low-Latency part
	// (default 200 ms).
	PartMinDuration time.Duration
	// IdleTimeout closes the muxer of a channel, releasing its stream, when
	// no request for the channel came for that long (default 15 s).
	IdleTimeout time.Duration
	// AcquireTimeout bounds Hub.Acquire (default 10 s).
	AcquireTimeout time.Duration
	// ReadyTimeout bounds how long a request waits for a new muxer to
	// produce its first segment, once the stream is acquired (default 5 s).
	// A request that times out is answered 503 with Retry-After.
	ReadyTimeout time.Duration

	// Now returns the current time; time.Now if nil. It times the idle
	// timeout and stamps units that carry no wall-clock time.
	Now func() time.Time
}

// Server serves the live streams of all channels as LL-HLS. It is an
// http.Handler, safe for concurrent use.
//
// Lock order: Server.mu, then the locks of a muxer. No lock is held while
// calling Hub.Acquire or writing a response.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	ctx     context.Context // canceled by Close; parent of every muxer
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine started by the server, see goFunc

	mu       sync.Mutex       // guards muxers, stopping and closed
	muxers   map[int64]*muxer // the muxer serving each channel
	stopping map[int64]*muxer // muxers that stopped serving but still hold their stream
	closed   bool
	closing  sync.Once
}

// NewServer returns a Server. Close it to stop every muxer.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Hub == nil {
		return nil, errors.New("llhls: config: Hub is required")
	}
	if cfg.Authorize == nil {
		return nil, errors.New("llhls: config: Authorize is required")
	}
	if cfg.SegmentCount == 0 {
		cfg.SegmentCount = DefaultSegmentCount
	}
	if cfg.SegmentCount < MinSegmentCount {
		return nil, fmt.Errorf("llhls: config: SegmentCount %d is below %d",
			cfg.SegmentCount, MinSegmentCount)
	}
	if cfg.SegmentMinDuration <= 0 {
		cfg.SegmentMinDuration = DefaultSegmentMinDuration
	}
	if cfg.PartMinDuration <= 0 {
		cfg.PartMinDuration = DefaultPartMinDuration
	}
	if cfg.PartMinDuration > cfg.SegmentMinDuration {
		return nil, fmt.Errorf("llhls: config: PartMinDuration %v exceeds SegmentMinDuration %v",
			cfg.PartMinDuration, cfg.SegmentMinDuration)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = DefaultAcquireTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "llhls"),
		metrics:  newMetrics(),
		muxers:   make(map[int64]*muxer),
		stopping: make(map[int64]*muxer),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.metrics); err != nil {
			return nil, fmt.Errorf("llhls: register metrics: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops every muxer, releases every stream and waits for every
// goroutine the Server started. Requests that arrive afterwards are answered
// 503. Close is idempotent.
func (s *Server) Close() {
	s.closing.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		if s.cfg.Registerer != nil {
			s.cfg.Registerer.Unregister(s.metrics)
		}
	})
}

// goFunc runs f in a goroutine that Close waits for. The caller must hold
// s.mu with s.closed false, or be a goroutine started by goFunc, so that no
// goroutine is added once Close waits.
func (s *Server) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// ServeHTTP serves one LL-HLS file of a channel. The channel ID is the path
// value "id" and the file name is what follows the last "/hls/" of the path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		// CORS preflight: browsers send it without credentials.
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range, Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	res := s.serve(w, r)
	s.metrics.requests.WithLabelValues(res).Inc()
}

// serve handles a request and returns its result for the metrics: "ok" or
// an error code.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		return writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "method not allowed")
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return writeError(w, http.StatusNotFound, codeNotFound, "no such channel")
	}
	if err := s.cfg.Authorize(r, id); err != nil {
		switch {
		case errors.Is(err, ErrUnauthorized):
			return writeError(w, http.StatusUnauthorized, codeUnauthorized, "missing or invalid token")
		case errors.Is(err, ErrForbidden):
			return writeError(w, http.StatusForbidden, codeForbidden, "access to this channel is not allowed")
		default:
			s.log.Warn("authorize failed", "channel", id, "err", err)
			return writeError(w, http.StatusInternalServerError, codeInternal, "authorization failed")
		}
	}
	name := fileName(r.URL.Path)
	if name == "" {
		return writeError(w, http.StatusNotFound, codeNotFound, "no such file")
	}

	// Only a playlist starts a muxer: a segment or part of a muxer that is
	// gone will never exist again.
	m, err := s.muxerFor(r.Context(), id, strings.HasSuffix(name, ".m3u8"))
	if err != nil {
		return writeError(w, http.StatusServiceUnavailable, codeUnavailable, "server closed")
	}
	if m == nil {
		return writeError(w, http.StatusNotFound, codeNotFound, "no such file")
	}
	m.touch()
	defer m.touch() // a long blocking playlist request counts as activity when it ends too
	return m.serve(w, r, name)
}

// muxerFor returns the muxer of a channel, starting one if there is none and
// start is true. It returns nil, nil if there is none and start is false.
func (s *Server) muxerFor(ctx context.Context, id int64, start bool) (*muxer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	m := s.muxers[id]
	if m != nil || !start {
		return m, nil
	}
	m = newMuxer(s, id, s.stopping[id])
	s.muxers[id] = m
	s.metrics.muxers.Inc()
	s.goFunc(func() { m.run(ctx) })
	return m, nil
}

// fileName returns the HLS file name of a request path: what follows the last
// "/hls/", or "" if that is empty or not a plain file name.
func fileName(path string) string {
	i := strings.LastIndex(path, "/hls/")
	if i < 0 {
		return ""
	}
	name := path[i+len("/hls/"):]
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return ""
	}
	return name
}

// Error codes of the JSON error responses, also the "result" label of the
// request counter.
const (
	codeOK               = "ok"
	codeBadRequest       = "bad_request"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeUnavailable      = "unavailable"  // the source cannot be opened, or the muxer failed
	codeNotReady         = "not_ready"    // the muxer has not produced its first segment in time
	codeStreamEnded      = "stream_ended" // the muxer stopped during the request
	codeCanceled         = "canceled"     // the client went away
	codeInternal         = "internal"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers {"error":{"code":...,"message":...}} with status and
// returns code.
func writeError(w http.ResponseWriter, status int, code, message string) string {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: errorDetail{Code: code, Message: message}})
	return code
}

// acquireError maps an error of Hub.Acquire or of a muxer start to a
// response.
func acquireError(err error) (status int, code, message string) {
	if errors.Is(err, media.ErrNoChannel) {
		return http.StatusNotFound, codeNotFound, "no such channel"
	}
	return http.StatusServiceUnavailable, codeUnavailable, unavailableReason(err)
}

// unavailableReason returns a one-line message for people saying why a
// stream cannot be served, such as "source unavailable: unreachable: dial
// tcp 10.0.0.7:554: connection refused".
func unavailableReason(err error) string {
	var se *media.SourceError
	if errors.As(err, &se) {
		return "source unavailable: " + oneLine(se.Error())
	}
	msg := oneLine(err.Error())
	if sentinel := media.ErrUnavailable.Error(); strings.Contains(msg, sentinel) {
		i := strings.Index(msg, sentinel)
		return "source unavailable" + msg[i+len(sentinel):]
	}
	return msg
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

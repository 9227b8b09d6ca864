package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/xueliang/xueliang/internal/media"
)

// Reasons a muxer stops, besides failures.
var (
	errIdle        = errors.New("hls: idle")
	errStreamEnded = errors.New("hls: stream ended")
)

// muxer is the LL-HLS muxer of one channel. Its control state lives in one
// goroutine, run; requests only wait on its channels and call the gohlslib
// muxer, which is safe for concurrent use.
//
// gohlslib waits inside some of its handlers on a condition variable that
// only a write or Close wakes, whatever the request's context. Two rules keep
// this safe:
//   - Nothing calls the handler of a part that is not finished (the
//     EXT-X-PRELOAD-HINT part): in v2.2.5 that handler returns with the
//     muxer's mutex held if the muxer is closed while it waits, which would
//     hang every other request and the muxer itself. waitPart waits for the
//     part here instead, and calls gohlslib once it exists.
//   - The first playlist is waited for here (bounded by ReadyTimeout), so
//     that gohlslib's own wait for the first segment is never entered by a
//     request. Blocking playlist reloads (_HLS_msn) do wait inside gohlslib;
//     writes and Close wake them, and Close happens at the latest
//     IdleTimeout after the last request.
type muxer struct {
	s    *Server
	id   int64
	log  *slog.Logger
	prev *muxer // the previous muxer of the channel, still stopping, or nil

	acquired chan struct{} // closed when the stream is acquired
	ready    chan struct{} // closed when the first segment exists
	done     chan struct{} // closed when the muxer stops serving; err is set before
	stopped  chan struct{} // closed when everything is released
	err      error         // why the muxer stopped
	startErr error         // set with err when the muxer never started: Acquire or the tracks failed

	lastRequest atomic.Int64 // unix nanoseconds (Config.Now) of the last request
	waiting     atomic.Int32 // requests in waitReady or waitPart, which keep the muxer from idling

	// Written by run before acquired or ready is closed, read-only after.
	hm        *gohlslib.Muxer
	streamIDs []string // gohlslib streams, from the multivariant playlist
	isReady   atomic.Bool
	watchErr  chan error    // a failure of watchReady, buffered
	watchDone chan struct{} // closed when watchReady returns

	partWaiters atomic.Int32         // requests in waitPart
	progMu      sync.Mutex           // serializes publish
	prog        atomic.Pointer[prog] // latest parts known; never nil after ready
}

// prog is a snapshot of the parts a muxer has finished. It is immutable.
type prog struct {
	prefix  string            // the random prefix gohlslib gives the files of the muxer
	next    map[string]uint64 // ID of the part being written, by stream ID
	changed chan struct{}     // closed when a newer prog is published
}

func newMuxer(s *Server, id int64, prev *muxer) *muxer {
	m := &muxer{
		s:         s,
		id:        id,
		log:       s.log.With("channel", id),
		prev:      prev,
		acquired:  make(chan struct{}),
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
		stopped:   make(chan struct{}),
		watchErr:  make(chan error, 1),
		watchDone: make(chan struct{}),
	}
	m.touch()
	return m
}

// touch records a request for the channel.
func (m *muxer) touch() { m.lastRequest.Store(m.s.cfg.Now().UnixNano()) }

// run is the life of the muxer: it acquires the stream, writes its units to
// the gohlslib muxer until the stream ends, the muxer is idle, the server
// closes or something fails, then releases everything. reqCtx is the context
// of the request that started the muxer: its values are kept, its
// cancellation is not, since the muxer outlives the request.
func (m *muxer) run(reqCtx context.Context) {
	s := m.s
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqCtx))
	stopAfter := context.AfterFunc(s.ctx, cancel)
	defer func() {
		stopAfter()
		cancel()
		close(m.stopped)
		s.remove(m)
		s.metrics.muxers.Dec()
	}()

	stream, release, err := m.acquire(ctx)
	if err != nil {
		if !errors.Is(err, errClosed) {
			m.startErr = err
		}
		m.stop(err)
		return
	}
	defer release()
	close(m.acquired)

	reader := stream.AddReader("hls", 0)
	var dropped uint64
	countDropped := func() {
		n := reader.Dropped()
		s.metrics.dropped.Add(float64(n - dropped))
		dropped = n
	}
	err = m.pump(ctx, stream, reader, countDropped)
	m.stop(err)
	reader.Close()
	if m.hm != nil {
		m.hm.Close() // wakes the requests that wait inside gohlslib, and watchReady
		<-m.watchDone
	}
	countDropped()
}

// acquire waits for the previous muxer of the channel to release its stream,
// then acquires the stream.
func (m *muxer) acquire(ctx context.Context) (*media.Stream, func(), error) {
	if m.prev != nil {
		select {
		case <-m.prev.stopped:
		case <-ctx.Done():
			return nil, nil, errClosed
		}
		m.prev = nil // let the collector have it
	}
	actx, cancel := context.WithTimeout(ctx, m.s.cfg.AcquireTimeout)
	defer cancel()
	stream, release, err := m.s.cfg.Hub.Acquire(actx, m.id)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, errClosed
		}
		return nil, nil, fmt.Errorf("hls: channel %d: acquire: %w", m.id, err)
	}
	if ctx.Err() != nil { // closed while Acquire was succeeding
		release()
		return nil, nil, errClosed
	}
	return stream, release, nil
}

// stop marks the muxer as stopped because of err: new requests for the
// channel start a new muxer, requests waiting for this one give up.
func (m *muxer) stop(err error) {
	m.s.detach(m)
	m.err = err
	close(m.done)
	switch {
	case m.startErr != nil, errors.Is(err, errIdle), errors.Is(err, errClosed), errors.Is(err, errStreamEnded):
		m.log.Info("muxer stopped", "reason", err)
	default:
		m.s.metrics.errors.Inc()
		m.log.Warn("muxer failed", "err", err)
	}
}

// pump reads the units of the stream and writes them to the gohlslib muxer,
// which it creates once the parameter sets of the video track are known.
// It returns why it stopped. A unit the muxer refuses stops the muxer, as
// in mediamtx: the next request starts a new one on the next keyframe.
func (m *muxer) pump(ctx context.Context, stream *media.Stream, reader *media.Reader, countDropped func()) error {
	s := m.s
	ts, err := planTracks(stream.Tracks(), m.log)
	if err != nil {
		m.startErr = err
		return err
	}
	partMin := s.cfg.PartMinDuration
	turned, lastTurn := false, time.Duration(0)
	tick := min(s.cfg.IdleTimeout/4, time.Second)
	ticker := time.NewTicker(max(tick, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return errClosed
		case err := <-m.watchErr:
			return err
		case <-ticker.C:
			countDropped()
			idle := s.cfg.Now().Sub(time.Unix(0, m.lastRequest.Load()))
			if idle >= s.cfg.IdleTimeout && m.waiting.Load() == 0 {
				return fmt.Errorf("%w: no request for %v", errIdle, idle.Round(time.Millisecond))
			}
		case u, ok := <-reader.C():
			if !ok {
				if err := reader.Err(); err != nil {
					return fmt.Errorf("%w: %w", errStreamEnded, err)
				}
				return errStreamEnded
			}
			if m.hm == nil {
				ts.learn(u)
				if !ts.ready() {
					continue // wait for a keyframe with parameter sets
				}
				if err := m.start(ts); err != nil {
					return err
				}
			}
			if err := ts.write(m.hm, u, s.cfg.Now()); err != nil {
				return fmt.Errorf("hls: channel %d: write %s unit: %w",
					m.id, stream.Tracks()[u.Track].Codec, err)
			}
			// Parts end on writes of the leading track (video, or the
			// first audio track of an audio-only stream), and never less
			// than PartMinDuration of media time after the previous part
			// ended (gohlslib only lengthens parts): probe from then on,
			// at every write, until the part has turned. Probing reads
			// the playlists, so this keeps it to about one per part.
			if u.Track == ts.out[0].in && m.isReady.Load() {
				at := media.Duration(u.PTS, ts.out[0].track.ClockRate)
				if !turned || at-lastTurn >= partMin {
					if ok, adv := m.probe(); ok && adv {
						turned, lastTurn = true, at
					}
				}
			}
		}
	}
}

// start creates the gohlslib muxer and starts watchReady.
func (m *muxer) start(ts *tracks) error {
	s := m.s
	tracks, err := ts.build()
	if err != nil {
		return fmt.Errorf("hls: channel %d: %w", m.id, err)
	}
	hm := &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentCount:       s.cfg.SegmentCount,
		SegmentMinDuration: s.cfg.SegmentMinDuration,
		Directory:          s.cfg.Directory,
		PartMinDuration:    s.cfg.PartMinDuration,
		OnEncodeError: func(err error) {
			s.metrics.errors.Inc()
			m.log.Warn("muxer encode error", "err", err)
		},
	}
	if err := hm.Start(); err != nil {
		return fmt.Errorf("hls: channel %d: start muxer: %w", m.id, err)
	}
	m.hm = hm
	started := s.cfg.Now()
	s.goFunc(func() { m.watchReady(started) })
	codecs := make([]string, len(ts.out))
	for i, t := range ts.out {
		codecs[i] = t.track.String()
	}
	m.log.Info("muxer started", "tracks", codecs)
	return nil
}

// watchReady waits until the gohlslib muxer has its first segment, learns
// the names of its streams, and closes ready. It returns early when the
// muxer is closed.
func (m *muxer) watchReady(started time.Time) {
	defer close(m.watchDone)
	fail := func(err error) {
		select {
		case m.watchErr <- err:
		default:
		}
	}
	// gohlslib answers the multivariant playlist once the first segment
	// exists, or 500 once the muxer is closed.
	body, status := m.get("index.m3u8")
	select {
	case <-m.done:
		return
	default:
	}
	if status != http.StatusOK {
		fail(fmt.Errorf("hls: channel %d: first playlist: status %d", m.id, status))
		return
	}
	pl, err := playlist.Unmarshal(body)
	mv, ok := pl.(*playlist.Multivariant)
	if err != nil || !ok || len(mv.Variants) == 0 {
		fail(fmt.Errorf("hls: channel %d: first playlist: unexpected %q (%v)", m.id, body, err))
		return
	}
	ids := []string{streamID(mv.Variants[0].URI)}
	for _, r := range mv.Renditions {
		if r.URI != nil {
			ids = append(ids, streamID(*r.URI))
		}
	}
	m.streamIDs = ids
	if ok, _ := m.probe(); !ok {
		select {
		case <-m.done:
		default:
			fail(fmt.Errorf("hls: channel %d: cannot read the parts of the first playlist", m.id))
		}
		return
	}
	m.s.metrics.startSeconds.Observe(m.s.cfg.Now().Sub(started).Seconds())
	m.isReady.Store(true)
	close(m.ready)
}

// streamID returns the ID of a gohlslib stream from the URI of its media
// playlist, "video1_stream.m3u8?token=...".
func streamID(uri string) string {
	uri, _, _ = strings.Cut(uri, "?")
	return strings.TrimSuffix(uri, "_stream.m3u8")
}

// get calls the gohlslib muxer for file name and returns the body and
// status of its answer.
func (m *muxer) get(name string) ([]byte, int) {
	var rec recorder
	m.hm.Handle(&rec, &http.Request{Method: http.MethodGet, URL: &url.URL{Path: name}, Header: http.Header{}})
	if rec.status == 0 && rec.body.Len() == 0 {
		return nil, http.StatusNotFound
	}
	return rec.body.Bytes(), rec.statusOr200()
}

// probe reads the preload hint of the media playlist of every stream and
// publishes which part each stream is writing. It reports false if a
// playlist could not be read (the muxer is closed). It must not be called
// before the first segment exists, since gohlslib would wait for it.
func (m *muxer) probe() (ok, advanced bool) {
	next := make(map[string]uint64, len(m.streamIDs))
	prefix := ""
	for _, sid := range m.streamIDs {
		body, status := m.get(sid + "_stream.m3u8")
		if status != http.StatusOK {
			return false, false
		}
		p, n, ok := preloadHint(body, sid)
		if !ok {
			return false, false
		}
		prefix, next[sid] = p, n
	}
	return true, m.publish(prefix, next)
}

// preloadHint finds the EXT-X-PRELOAD-HINT of a media playlist of stream
// sid and returns the file prefix and the ID of the part it names:
// #EXT-X-PRELOAD-HINT:TYPE=PART,URI="<prefix>_<sid>_part<n>.mp4?token=...".
func preloadHint(pl []byte, sid string) (prefix string, n uint64, ok bool) {
	const tag = "#EXT-X-PRELOAD-HINT:"
	i := bytes.Index(pl, []byte(tag))
	if i < 0 {
		return "", 0, false
	}
	line, _, _ := bytes.Cut(pl[i+len(tag):], []byte("\n"))
	_, uri, found := bytes.Cut(line, []byte(`URI="`))
	if !found {
		return "", 0, false
	}
	uri, _, _ = bytes.Cut(uri, []byte(`"`))
	name, _, _ := strings.Cut(string(uri), "?")
	j := strings.LastIndex(name, "_"+sid+"_part")
	if j <= 0 {
		return "", 0, false
	}
	n, ok = partNumber(name[j+len("_"+sid+"_part"):])
	return name[:j], n, ok
}

// partNumber parses "<n>.mp4" in its canonical form.
func partNumber(s string) (uint64, bool) {
	digits, ok := strings.CutSuffix(s, ".mp4")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// publish records the parts written so far, keeping for each stream the
// highest part ID seen, and wakes the requests waiting for a part if
// anything advanced.
func (m *muxer) publish(prefix string, next map[string]uint64) (advanced bool) {
	m.progMu.Lock()
	defer m.progMu.Unlock()
	cur := m.prog.Load()
	if cur != nil {
		for sid, n := range cur.next {
			if next[sid] > n {
				advanced = true
			} else {
				next[sid] = n
			}
		}
		if !advanced {
			return false
		}
	}
	m.prog.Store(&prog{prefix: prefix, next: next, changed: make(chan struct{})})
	if cur != nil {
		close(cur.changed)
	}
	return true
}

// parsePart returns the stream ID and part ID of a part file name of this
// muxer.
func (p *prog) parsePart(name string) (sid string, n uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, p.prefix+"_")
	if !ok {
		return "", 0, false
	}
	for sid := range p.next {
		if num, ok := strings.CutPrefix(rest, sid+"_part"); ok {
			n, ok := partNumber(num)
			return sid, n, ok
		}
	}
	return "", 0, false
}

// isPartName reports whether name looks like the name of a gohlslib part.
// Such names are only handed to gohlslib by waitPart.
func isPartName(name string) bool {
	return strings.Contains(name, "_part") && strings.HasSuffix(name, ".mp4")
}

// serve answers a request for file name once the muxer is ready. It returns
// the result for the metrics.
func (m *muxer) serve(w http.ResponseWriter, r *http.Request, name string) string {
	if status, code, msg := m.waitReady(r.Context()); status != 0 {
		return writeError(w, status, code, msg)
	}
	if isPartName(name) {
		if status, code, msg := m.waitPart(r.Context(), name); status != 0 {
			return writeError(w, status, code, msg)
		}
	}

	// gohlslib finds the file by the last element of the path.
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(url.URL)
	*r2.URL = *r.URL
	r2.URL.Path = name
	r2.URL.RawPath = ""

	rw := &responseWriter{w: w, playlist: strings.HasSuffix(name, ".m3u8")}
	m.hm.Handle(rw, r2)
	switch {
	case rw.failed == http.StatusBadRequest:
		return writeError(w, http.StatusBadRequest, codeBadRequest, "invalid LL-HLS query parameters")
	case rw.failed != 0:
		select {
		case <-m.done:
			return writeError(w, http.StatusServiceUnavailable, codeStreamEnded, "live stream ended, retry")
		default:
		}
		m.log.Warn("muxer answered an error", "file", name, "status", rw.failed)
		return writeError(w, http.StatusInternalServerError, codeInternal, "muxer error")
	case !rw.wrote:
		return writeError(w, http.StatusNotFound, codeNotFound, "no such file")
	}
	return codeOK
}

// waitReady waits until the muxer has its first segment, or it stops, or
// ctx ends, or Config.ReadyTimeout passes after the stream was acquired.
// It returns a zero status when the muxer is ready, else the error to
// answer.
func (m *muxer) waitReady(ctx context.Context) (status int, code, msg string) {
	m.waiting.Add(1)
	defer m.waiting.Add(-1)
	if m.isReady.Load() {
		select {
		case <-m.done:
			return m.stoppedError()
		default:
			return 0, "", ""
		}
	}
	select {
	case <-m.acquired:
	case <-m.done:
		return m.stoppedError()
	case <-ctx.Done():
		return http.StatusServiceUnavailable, codeCanceled, "request canceled"
	}
	timer := time.NewTimer(m.s.cfg.ReadyTimeout)
	defer timer.Stop()
	select {
	case <-m.ready:
		select {
		case <-m.done:
			return m.stoppedError()
		default:
			return 0, "", ""
		}
	case <-m.done:
		return m.stoppedError()
	case <-ctx.Done():
		return http.StatusServiceUnavailable, codeCanceled, "request canceled"
	case <-timer.C:
		return http.StatusServiceUnavailable, codeNotReady, "live stream is starting, retry"
	}
}

// stoppedError returns the answer to a request for a muxer that stopped.
// It must be called after done is closed.
func (m *muxer) stoppedError() (status int, code, msg string) {
	switch err := m.err; {
	case m.startErr != nil:
		return acquireError(m.startErr)
	case errors.Is(err, errClosed):
		return http.StatusServiceUnavailable, codeUnavailable, "server closed"
	case !m.isReady.Load() && !errors.Is(err, errIdle) && !errors.Is(err, errStreamEnded):
		return http.StatusServiceUnavailable, codeUnavailable, oneLine(err.Error())
	}
	return http.StatusServiceUnavailable, codeStreamEnded, "live stream ended, retry"
}

// waitPart waits until the part named name is finished. It returns a zero
// status when it is, else the error to answer: 404 for a part that is not
// the next one (an old muxer's, or deleted), 503 if the part does not come
// within ReadyTimeout or the muxer stops.
func (m *muxer) waitPart(ctx context.Context, name string) (status int, code, msg string) {
	sid, n, ok := m.prog.Load().parsePart(name)
	if !ok {
		return http.StatusNotFound, codeNotFound, "no such file"
	}
	m.partWaiters.Add(1)
	defer m.partWaiters.Add(-1)
	m.waiting.Add(1)
	defer m.waiting.Add(-1)
	var timer *time.Timer
	probed := false
	for {
		p := m.prog.Load()
		next := p.next[sid]
		if n < next {
			return 0, "", ""
		}
		if n > next && !probed {
			// The snapshot may be one write stale: the pump probes
			// after the writes that can end a part.
			probed = true
			if ok, _ := m.probe(); !ok {
				return m.stoppedError()
			}
			continue
		}
		if n > next {
			return http.StatusNotFound, codeNotFound, "no such part"
		}
		if timer == nil {
			timer = time.NewTimer(m.s.cfg.ReadyTimeout)
			defer timer.Stop()
		}
		select {
		case <-p.changed:
		case <-m.done:
			return m.stoppedError()
		case <-ctx.Done():
			return http.StatusServiceUnavailable, codeCanceled, "request canceled"
		case <-timer.C:
			return http.StatusServiceUnavailable, codeNotReady, "part not ready, retry"
		}
	}
}

// detach removes m from the muxers serving channels, so that the next
// request starts a new muxer, and keeps it among the stopping ones: the new
// muxer waits until m has released its stream.
func (s *Server) detach(m *muxer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.muxers[m.id] == m {
		delete(s.muxers, m.id)
		s.stopping[m.id] = m
	}
}

// remove forgets m, which has stopped.
func (s *Server) remove(m *muxer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.muxers[m.id] == m {
		delete(s.muxers, m.id)
	}
	if s.stopping[m.id] == m {
		delete(s.stopping, m.id)
	}
}

// responseWriter passes the answer of gohlslib to the client, except an
// error status, which it records so that the caller answers a JSON error
// instead. It marks playlists as not cacheable: gohlslib lets the
// multivariant playlist be cached for 30 s, but a new muxer of the channel
// may have other codecs.
type responseWriter struct {
	w        http.ResponseWriter
	playlist bool
	wrote    bool // a success status was sent
	failed   int  // the error status gohlslib wanted to send
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(status int) {
	if rw.wrote || rw.failed != 0 {
		return
	}
	if status >= 400 {
		rw.failed = status
		return
	}
	if rw.playlist {
		rw.w.Header().Set("Cache-Control", "no-cache")
	}
	rw.wrote = true
	rw.w.WriteHeader(status)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.failed != 0 {
		return len(p), nil
	}
	if !rw.wrote {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.w.Write(p)
}

// recorder is an in-memory http.ResponseWriter for the muxer's own requests.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}

func (r *recorder) statusOr200() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Package streams owns the live source of every channel.
//
// There is one path per channel. A path's source starts when the first user
// asks for it (Acquire for a viewer, Pin for something that must keep it open,
// such as the recorder), is shared by all users, and stops IdleTimeout after
// the last user left. A source that fails is retried with capped exponential
// backoff while anybody still wants it; every change of state is reported to
// the StatusFunc with a reason (unreachable, auth_failed, ...).
//
// Lock order: path.mu before Hub.mu. No lock is held while calling a Source,
// the Resolver or the StatusFunc.
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/media"
)

// State is the state of a channel's source as the hub sees it.
type State string

// States of a path.
const (
	StateIdle       State = "idle"       // nobody wants the source; it is closed
	StateConnecting State = "connecting" // a connection attempt is under way
	StateOnline     State = "online"     // media is flowing
	StateOffline    State = "offline"    // the last attempt failed; retrying after a backoff
)

// Status is reported on every state change of a path.
type Status struct {
	State  State
	Reason media.Reason // why the source is offline; empty otherwise
	Err    string       // the error in words; empty unless offline
	At     time.Time
}

// Resolver creates the Source of a channel.
type Resolver interface {
	// SourceFor returns a new Source for the channel. An error wrapping
	// media.ErrNoChannel means the channel does not exist (any more).
	SourceFor(ctx context.Context, channelID int64) (media.Source, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, channelID int64) (media.Source, error)

// SourceFor calls f.
func (f ResolverFunc) SourceFor(ctx context.Context, id int64) (media.Source, error) {
	return f(ctx, id)
}

// StatusFunc receives state changes. It is called from the path's own
// goroutine, one call at a time per channel, and should return quickly.
type StatusFunc func(channelID int64, st Status)

// Config configures a Hub. Resolver is required.
type Config struct {
	Resolver    Resolver
	OnStatus    StatusFunc // optional
	IdleTimeout time.Duration
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer // optional
}

// Defaults of Config.
const (
	DefaultIdleTimeout = 10 * time.Second
	DefaultBackoffMin  = 500 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
)

// Hub owns one path per channel. It is safe for concurrent use.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // source goroutines

	mu     sync.Mutex // guards paths and closed
	paths  map[int64]*path
	closed bool
}

// ErrClosed is returned by Acquire and Pin after Close.
var ErrClosed = errors.New("streams: hub closed")

// New returns a Hub. Close it to stop every source.
func New(cfg Config) (*Hub, error) {
	if cfg.Resolver == nil {
		return nil, errors.New("streams: config: Resolver is required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "streams"), paths: make(map[int64]*path)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.metrics = newMetrics(h)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.metrics); err != nil {
			return nil, fmt.Errorf("streams: register metrics: %w", err)
		}
	}
	return h, nil
}

// Close stops every source and waits for their goroutines. Acquire and Pin
// fail afterwards; streams already handed out are closed.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
	if h.cfg.Registerer != nil {
		h.cfg.Registerer.Unregister(h.metrics)
	}
}

func (h *Hub) path(id int64) (*path, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	p := h.paths[id]
	if p == nil {
		p = &path{id: id, h: h, state: StateIdle, changed: make(chan struct{})}
		h.paths[id] = p
	}
	return p, nil
}

// Acquire returns the live stream of a channel, starting its source if
// needed and waiting until the source delivers its tracks, the attempt
// fails, or ctx ends. The caller must call release exactly once when it no
// longer reads; the source stops IdleTimeout after the last release.
//
// The returned stream is closed when the source fails or restarts; the
// caller may then Acquire again. Errors wrap media.ErrNoChannel or
// media.ErrUnavailable (with a *media.SourceError saying why).
func (h *Hub) Acquire(ctx context.Context, channelID int64) (*media.Stream, func(), error) {
	p, err := h.path(channelID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", media.ErrUnavailable, err)
	}
	release := p.addUser()
	s, err := p.wait(ctx)
	if err != nil {
		release()
		return nil, nil, err
	}
	return s, release, nil
}

// Pin keeps the source of a channel running (and retried) until unpin is
// called, whether anybody reads it or not. The recorder pins the channels
// it records.
func (h *Hub) Pin(channelID int64) (unpin func(), err error) {
	p, err := h.path(channelID)
	if err != nil {
		return nil, err
	}
	return p.addUser(), nil
}

// Stream returns the current stream of a channel if its source is online,
// without starting anything.
func (h *Hub) Stream(channelID int64) *media.Stream {
	h.mu.Lock()
	p := h.paths[channelID]
	h.mu.Unlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stream
}

// Reset ends the current connection of a channel's source, if any, so that
// the next attempt picks up a changed configuration (a new URL, new
// credentials) or notices that the channel was deleted. Readers see their
// stream end and may Acquire again at once.
func (h *Hub) Reset(channelID int64) {
	h.mu.Lock()
	p := h.paths[channelID]
	h.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reset != nil {
		p.resetting = true
		p.reset()
		return
	}
	select {
	case p.kick <- struct{}{}: // skip a backoff under way
	default:
	}
}

// Active reports whether the source of a channel is running (connecting,
// online, or retrying), i.e. whether the hub itself reports its status.
func (h *Hub) Active(channelID int64) bool {
	h.mu.Lock()
	p := h.paths[channelID]
	h.mu.Unlock()
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// PathInfo describes one path, for the API and metrics.
type PathInfo struct {
	ChannelID int64
	State     State
	Users     int
	Since     time.Time
	Reason    media.Reason
	Err       string
	Stats     media.StreamStats // zero unless online
}

// Paths returns a snapshot of every path that has been used, sorted by
// channel.
func (h *Hub) Paths() []PathInfo {
	h.mu.Lock()
	ps := make([]*path, 0, len(h.paths))
	for _, p := range h.paths {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	out := make([]PathInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChannelID < out[j].ChannelID })
	return out
}

// path owns the source of one channel.
type path struct {
	id int64
	h  *Hub

	mu        sync.Mutex // guards the fields below
	users     int
	running   bool               // the source goroutine is alive
	cancel    context.CancelFunc // stops the source goroutine
	idle      *time.Timer        // stops the source when it fires with users == 0
	stream    *media.Stream      // the current stream, nil unless online
	state     State
	since     time.Time
	lastErr   error
	failures  uint64             // attempts that failed, ever
	changed   chan struct{}      // closed and replaced on every state change
	kick      chan struct{}      // wakes the source goroutine from its backoff
	idleEpoch uint64             // invalidates idle timers that fired late
	reset     context.CancelFunc // ends the current attempt; nil between attempts
	resetting bool               // the current attempt ends because of Reset
}

// addUser registers a user, starts the source if needed and returns the
// function that unregisters it.
func (p *path) addUser() (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users++
	p.idleEpoch++
	if p.idle != nil {
		p.idle.Stop()
		p.idle = nil
	}
	if !p.running {
		p.startLocked()
	} else if p.state == StateOffline {
		// Somebody asks now: retry without waiting for the backoff.
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	var once sync.Once
	return func() { once.Do(p.removeUser) }
}

func (p *path) removeUser() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users--
	if p.users > 0 || !p.running {
		return
	}
	p.idleEpoch++
	epoch := p.idleEpoch
	p.idle = time.AfterFunc(p.h.cfg.IdleTimeout, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.users == 0 && p.idleEpoch == epoch && p.cancel != nil {
			p.h.log.Debug("source idle, stopping", "channel", p.id)
			p.cancel()
			p.cancel = nil
		}
	})
}

func (p *path) startLocked() {
	p.h.mu.Lock()
	closed := p.h.closed
	if !closed {
		p.h.wg.Add(1)
	}
	p.h.mu.Unlock()
	if closed {
		return
	}
	ctx, cancel := context.WithCancel(p.h.ctx)
	p.running = true
	p.cancel = cancel
	p.kick = make(chan struct{}, 1)
	go func() {
		defer p.h.wg.Done()
		defer cancel()
		p.run(ctx)
	}()
}

// wait blocks until the path is online, an attempt that ends after wait
// started fails, or ctx ends.
func (p *path) wait(ctx context.Context) (*media.Stream, error) {
	p.mu.Lock()
	startFailures := p.failures
	for {
		if p.stream != nil {
			s := p.stream
			p.mu.Unlock()
			return s, nil
		}
		if p.failures > startFailures || (!p.running && p.lastErr != nil) {
			err := p.lastErr
			p.mu.Unlock()
			return nil, err
		}
		if !p.running {
			p.mu.Unlock()
			return nil, fmt.Errorf("streams: channel %d: %w: %w", p.id, media.ErrUnavailable, ErrClosed)
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("streams: channel %d: %w", p.id,
				errors.Join(media.ErrUnavailable, media.Fail(media.ReasonTimeout, ctx.Err())))
		}
		p.mu.Lock()
	}
}

// setLocked changes the state and wakes waiters. It returns the status to
// report once the lock is released.
func (p *path) setLocked(st State, err error) Status {
	now := time.Now()
	p.state = st
	p.since = now
	close(p.changed)
	p.changed = make(chan struct{})
	s := Status{State: st, At: now}
	if err != nil {
		s.Reason = media.ReasonOf(err)
		s.Err = sourceMessage(err)
	}
	return s
}

// sourceMessage returns what the source said of a failure, without the
// wrapping that repeats the channel and the reason.
func sourceMessage(err error) string {
	var se *media.SourceError
	if errors.As(err, &se) && se.Err != nil {
		return se.Err.Error()
	}
	return err.Error()
}

func (p *path) report(s Status) {
	if p.h.cfg.OnStatus != nil {
		p.h.cfg.OnStatus(p.id, s)
	}
}

// run is the source goroutine: connect, deliver, and retry with backoff
// until ctx ends.
func (p *path) run(ctx context.Context) {
	log := p.h.log.With("channel", p.id)
	backoff := p.h.cfg.BackoffMin
	defer func() {
		p.mu.Lock()
		var st Status
		if p.lastErr == nil || p.state != StateOffline {
			st = p.setLocked(StateIdle, nil)
		} else {
			st = p.setLocked(StateOffline, p.lastErr) // keep the reason visible
		}
		p.mu.Unlock()
		// Report while still marked running, so that a user arriving now
		// does not start a second goroutine whose reports could overtake
		// this one: StatusFunc calls stay one at a time, in order.
		p.report(st)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.running = false
		p.cancel = nil
		// A user arrived while we were stopping: start again, unless the
		// channel is gone (the users get that error from wait).
		if p.users > 0 && !p.h.closedNow() && !errors.Is(p.lastErr, media.ErrNoChannel) {
			p.startLocked()
		}
	}()

	for ctx.Err() == nil {
		p.mu.Lock()
		st := p.setLocked(StateConnecting, nil)
		p.mu.Unlock()
		p.report(st)

		started := time.Now()
		online := false
		actx, acancel := context.WithCancel(ctx)
		p.mu.Lock()
		p.reset, p.resetting = acancel, false
		p.mu.Unlock()
		err := p.attempt(actx, func(s *media.Stream) {
			online = true
			p.mu.Lock()
			p.stream = s
			p.lastErr = nil
			st := p.setLocked(StateOnline, nil)
			p.mu.Unlock()
			p.report(st)
			log.Info("source online", "tracks", fmt.Sprint(s.Tracks()), "after", time.Since(started).Round(time.Millisecond))
			p.h.metrics.starts.Inc()
		})
		p.mu.Lock()
		p.reset = nil
		resetting := p.resetting
		p.mu.Unlock()
		acancel()
		if ctx.Err() != nil {
			return
		}
		if resetting {
			log.Info("source reset: reconnecting with the current configuration")
			backoff = p.h.cfg.BackoffMin
			continue
		}
		if err == nil {
			err = media.Fail(media.ReasonClosed, errors.New("source ended"))
		}
		noChannel := errors.Is(err, media.ErrNoChannel)
		if !noChannel && !errors.Is(err, media.ErrUnavailable) {
			err = fmt.Errorf("streams: channel %d: %w: %w", p.id, media.ErrUnavailable, err)
		}
		p.mu.Lock()
		p.failures++
		p.lastErr = err
		st = p.setLocked(StateOffline, err)
		p.mu.Unlock()
		p.report(st)
		p.h.metrics.failures.WithLabelValues(string(st.Reason)).Inc()
		if noChannel {
			log.Info("channel gone, stopping source")
			return
		}
		if online && time.Since(started) > p.h.cfg.BackoffMax {
			backoff = p.h.cfg.BackoffMin // it worked for a while: retry soon
		}
		log.Warn("source failed", "reason", st.Reason, "err", err, "retry_in", backoff.Round(time.Millisecond))
		wait := backoff + rand.N(backoff/4+1) // jitter spreads a city of reconnects
		backoff = min(backoff*2, p.h.cfg.BackoffMax)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// attempt runs one source connection. The stream it created is closed when
// it returns.
func (p *path) attempt(ctx context.Context, online func(*media.Stream)) (err error) {
	src, err := p.h.cfg.Resolver.SourceFor(ctx, p.id)
	if err != nil {
		return err
	}
	var s *media.Stream
	defer func() {
		if s == nil {
			return
		}
		p.mu.Lock()
		p.stream = nil
		p.mu.Unlock()
		cause := err
		if cause == nil {
			cause = media.Fail(media.ReasonClosed, errors.New("source stopped"))
		}
		s.Close(cause)
	}()
	return src.Run(ctx, func(tracks []*media.Track) *media.Stream {
		s = media.NewStream(tracks)
		online(s)
		return s
	})
}

func (h *Hub) closedNow() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func (p *path) info() PathInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	pi := PathInfo{ChannelID: p.id, State: p.state, Users: p.users, Since: p.since}
	if p.state == StateOffline && p.lastErr != nil {
		pi.Reason = media.ReasonOf(p.lastErr)
		pi.Err = sourceMessage(p.lastErr)
	}
	if p.stream != nil {
		pi.Stats = p.stream.Stats()
	}
	return pi
}

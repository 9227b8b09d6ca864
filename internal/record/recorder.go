// Package record records channels to fragmented MP4 segment files, keeps
// the segment index in the database, and enforces retention.
//
// Each channel with a recording plan that is active now has a worker. The
// worker pins the channel's source in the stream hub (so that it runs and
// is retried whether anybody watches or not), reads its stream, and writes
// one run of segments per connection of the source: a reconnect is a gap
// in the timeline and a new run, never a broken file. Finished segments
// are indexed; the segment being written is known to the Recorder (Open),
// so that the last minute can be played back too. After a crash, Repair
// indexes the files that the index lacks, up to their last complete part.
package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
)

// Defaults of Config.
const (
	DefaultSegmentDuration = 60 * time.Second
	DefaultPartDuration    = time.Second
	// readerQueue is the recorder's queue on a stream, in units: a slow
	// disk may fall about a minute behind before frames are dropped.
	readerQueue = 2048
)

// Hub is what the recorder needs of the stream hub.
type Hub interface {
	Pin(channelID int64) (unpin func(), err error)
	Acquire(ctx context.Context, channelID int64) (*media.Stream, func(), error)
}

// Index is what the recorder needs of the segment index.
type Index interface {
	AddSegment(ctx context.Context, g *model.Segment) error
	RecordPlans(ctx context.Context) ([]model.RecordPlan, error)
}

// Config configures a Recorder.
type Config struct {
	Hub   Hub
	Index Index
	// Dir is the local recordings folder, the root of the disk blob store.
	Dir             string
	SegmentDuration time.Duration // default 60 s
	PartDuration    time.Duration // default and maximum 1 s
	// Location is the time zone of weekly schedules (default time.Local).
	Location *time.Location
	Log      *slog.Logger
	Now      func() time.Time
	// OnSegment, if set, is called after a finished segment is indexed,
	// for example to upload it.
	OnSegment func(model.Segment)
}

// State is what a channel's recorder is doing.
type State string

// States of a channel's recorder.
const (
	StateOff       State = "off"       // no plan, or outside the schedule
	StateWaiting   State = "waiting"   // the plan is active, the source is not delivering
	StateRecording State = "recording" // writing segments
)

// Status describes the recorder of one channel.
type Status struct {
	State  State
	Reason media.Reason // why the source is not delivering, when waiting
	Err    string       // the last error, when waiting
	Since  time.Time
	// Dropped counts units lost because the disk fell behind.
	Dropped uint64
}

// ReasonStorage is the Status.Reason of a recorder that cannot write its
// files (a full or failing disk); the source itself may be fine.
const ReasonStorage media.Reason = "storage_error"

// storageError marks a failure to write a segment file.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// Recorder runs the recording plans.
type Recorder struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	mu        sync.Mutex // guards the maps and unindexed
	unindexed []model.Segment
	plans     map[int64]model.RecordPlan
	workers   map[int64]*worker
	open      map[int64]model.Segment
	status    map[int64]Status
	kick      chan struct{}
	wg        sync.WaitGroup
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Recorder; Run starts it.
func New(cfg Config) (*Recorder, error) {
	if cfg.Hub == nil || cfg.Index == nil || cfg.Dir == "" {
		return nil, errors.New("record: Hub, Index and Dir are required")
	}
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = DefaultSegmentDuration
	}
	if cfg.PartDuration <= 0 || cfg.PartDuration > time.Second {
		cfg.PartDuration = DefaultPartDuration
	}
	if cfg.SegmentDuration < cfg.PartDuration {
		return nil, fmt.Errorf("record: segment duration %v is shorter than the part duration %v", cfg.SegmentDuration, cfg.PartDuration)
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Recorder{
		cfg: cfg, log: cfg.Log, metrics: newMetrics(),
		plans:   map[int64]model.RecordPlan{},
		workers: map[int64]*worker{},
		open:    map[int64]model.Segment{},
		status:  map[int64]Status{},
		kick:    make(chan struct{}, 1),
	}, nil
}

// SetOnSegment sets Config.OnSegment; call it before Run.
func (r *Recorder) SetOnSegment(fn func(model.Segment)) { r.cfg.OnSegment = fn }

// Collector returns the Prometheus metrics of the recorder.
func (r *Recorder) Collector() prometheus.Collector { return r.metrics }

// Run loads the plans, starts the workers of the active ones and keeps
// them in line with the plans and schedules until ctx ends; it then stops
// every worker, finishing their segments, and returns.
func (r *Recorder) Run(ctx context.Context) error {
	plans, err := r.cfg.Index.RecordPlans(ctx)
	if err != nil {
		return fmt.Errorf("record: load plans: %w", err)
	}
	r.mu.Lock()
	for _, p := range plans {
		r.plans[p.ChannelID] = p
	}
	r.mu.Unlock()
	r.log.Info("recorder started", "plans", len(plans), "dir", r.cfg.Dir,
		"segment", r.cfg.SegmentDuration.String(), "part", r.cfg.PartDuration.String())

	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		r.reconcile(ctx)
		select {
		case <-ctx.Done():
			r.stopAll()
			return nil
		case <-tick.C:
			r.retryIndex()
		case <-r.kick:
		}
	}
}

// SetPlan applies a changed plan at once (after it was stored).
func (r *Recorder) SetPlan(p model.RecordPlan) {
	r.mu.Lock()
	r.plans[p.ChannelID] = p
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// RemoveChannel forgets the plan of a deleted channel.
func (r *Recorder) RemoveChannel(channelID int64) {
	r.mu.Lock()
	delete(r.plans, channelID)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// reconcile starts the workers of active plans and stops the others.
func (r *Recorder) reconcile(ctx context.Context) {
	now := r.cfg.Now().In(r.cfg.Location)
	var stop []*worker
	r.mu.Lock()
	for id, p := range r.plans {
		if p.Active(now) && r.workers[id] == nil && ctx.Err() == nil {
			wctx, cancel := context.WithCancel(ctx)
			w := &worker{cancel: cancel, done: make(chan struct{})}
			r.workers[id] = w
			r.status[id] = Status{State: StateWaiting, Since: r.cfg.Now()}
			r.wg.Add(1)
			go r.record(wctx, id, w)
		}
	}
	for id, w := range r.workers {
		if p, ok := r.plans[id]; !ok || !p.Active(now) {
			stop = append(stop, w)
			delete(r.workers, id)
		}
	}
	r.mu.Unlock()
	for _, w := range stop {
		w.cancel()
		<-w.done
	}
}

func (r *Recorder) stopAll() {
	r.mu.Lock()
	for id, w := range r.workers {
		w.cancel()
		delete(r.workers, id)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Open returns the segment being written for a channel, if any.
func (r *Recorder) Open(channelID int64) (model.Segment, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.open[channelID]
	return g, ok
}

// Status returns the recorder status of a channel.
func (r *Recorder) Status(channelID int64) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.status[channelID]
	if !ok {
		return Status{State: StateOff}
	}
	return st
}

// Recording returns how many channels are being recorded now.
func (r *Recorder) Recording() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, st := range r.status {
		if st.State == StateRecording {
			n++
		}
	}
	return n
}

func (r *Recorder) setStatus(id int64, st Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.status[id]; ok {
		if cur.State == st.State && cur.Reason == st.Reason {
			st.Since = cur.Since
		}
		st.Dropped += cur.Dropped
	}
	r.status[id] = st
}

// record is the worker of one channel: it keeps a run going while ctx
// lasts, reconnecting with backoff.
func (r *Recorder) record(ctx context.Context, id int64, w *worker) {
	defer r.wg.Done()
	defer close(w.done)
	defer func() {
		r.mu.Lock()
		delete(r.status, id)
		delete(r.open, id)
		if r.workers[id] == w {
			delete(r.workers, id) // ended by itself: reconcile may start another
		}
		r.mu.Unlock()
	}()
	log := r.log.With("channel", id)
	unpin, err := r.cfg.Hub.Pin(id)
	if err != nil {
		log.Warn("recording: cannot pin the channel's source", "err", err)
		r.setStatus(id, Status{State: StateWaiting, Reason: media.ReasonOf(err), Err: err.Error(), Since: r.cfg.Now()})
		return
	}
	defer unpin()
	backoff := time.Second
	for ctx.Err() == nil {
		started := r.cfg.Now()
		err := r.recordRun(ctx, id, log)
		if ctx.Err() != nil {
			return
		}
		if r.cfg.Now().Sub(started) > time.Minute {
			backoff = time.Second
		}
		st := Status{State: StateWaiting, Since: r.cfg.Now()}
		if err != nil {
			st.Reason, st.Err = media.ReasonOf(err), err.Error()
			var se *storageError
			if errors.As(err, &se) {
				st.Reason = ReasonStorage
			}
			log.Info("recording paused", "reason", st.Reason, "err", err, "retry_in", backoff.String())
		}
		r.setStatus(id, st)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// recordRun records one connection of the source until it ends or ctx is
// done. It returns why the run ended.
func (r *Recorder) recordRun(ctx context.Context, id int64, log *slog.Logger) error {
	stream, release, err := r.cfg.Hub.Acquire(ctx, id)
	if err != nil {
		return err
	}
	defer release()
	rd := stream.AddReader("record", readerQueue)
	defer rd.Close()
	rn, err := newRun(id, stream.Tracks(), r.cfg.Dir, r.cfg.SegmentDuration, r.cfg.PartDuration, r.cfg.Now)
	if err != nil {
		return err
	}
	rn.onPart = func(g model.Segment) {
		r.mu.Lock()
		r.open[id] = g
		r.mu.Unlock()
		r.metrics.parts.Inc()
	}
	rn.onSegment = func(g model.Segment) { r.finished(g, log) }
	r.setStatus(id, Status{State: StateRecording, Since: r.cfg.Now()})
	r.metrics.runs.Inc()
	var werr error
	for {
		select {
		case <-ctx.Done():
			return r.endRun(id, rn, rd, nil)
		case u, ok := <-rd.C():
			if !ok {
				return r.endRun(id, rn, rd, rd.Err())
			}
			werr = rn.write(u)
			var drift *driftError
			if errors.As(werr, &drift) {
				// Same stream, a new run from this keyframe.
				log.Info("recording: new run", "reason", werr.Error())
				if err := rn.close(); err != nil {
					return r.endRun(id, rn, rd, err)
				}
				next, err := newRun(id, stream.Tracks(), r.cfg.Dir, r.cfg.SegmentDuration, r.cfg.PartDuration, r.cfg.Now)
				if err != nil {
					return r.endRun(id, rn, rd, err)
				}
				next.onPart, next.onSegment = rn.onPart, rn.onSegment
				rn = next
				r.metrics.runs.Inc()
				werr = rn.write(u)
			}
			if werr != nil {
				r.metrics.writeErrors.Inc()
				log.Error("recording: cannot write; the run ends and restarts when it can", "err", werr)
				return r.endRun(id, rn, rd, werr)
			}
		}
	}
}

func (r *Recorder) endRun(id int64, rn *run, rd *media.Reader, cause error) error {
	err := rn.close()
	r.mu.Lock()
	delete(r.open, id)
	if st, ok := r.status[id]; ok {
		st.Dropped += rd.Dropped()
		r.status[id] = st
	}
	r.mu.Unlock()
	r.metrics.dropped.Add(float64(rd.Dropped()))
	if cause == nil {
		cause = err
	}
	return cause
}

// finished indexes a finished segment. A failure is logged and the
// segment retried by Run every 15 s (and found by the start-up scan if
// the process ends first).
func (r *Recorder) finished(g model.Segment, log *slog.Logger) {
	r.metrics.segments.Inc()
	r.metrics.bytes.Add(float64(g.Bytes))
	if err := r.index(g); err != nil {
		log.Error("recording: cannot index a segment; retrying", "key", g.Key, "err", err)
		r.mu.Lock()
		r.unindexed = append(r.unindexed, g)
		r.mu.Unlock()
	}
}

// index adds a finished segment to the index and forgets it as the open
// one of its channel.
func (r *Recorder) index(g model.Segment) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.cfg.Index.AddSegment(ctx, &g); err != nil {
		r.metrics.indexErrors.Inc()
		return err
	}
	r.mu.Lock()
	if o, ok := r.open[g.ChannelID]; ok && o.Key == g.Key {
		delete(r.open, g.ChannelID)
	}
	r.mu.Unlock()
	if r.cfg.OnSegment != nil {
		r.cfg.OnSegment(g)
	}
	return nil
}

// retryIndex retries the segments that could not be indexed.
func (r *Recorder) retryIndex() {
	r.mu.Lock()
	pending := r.unindexed
	r.unindexed = nil
	r.mu.Unlock()
	for i, g := range pending {
		if err := r.index(g); err != nil {
			r.log.Warn("recording: still cannot index segments", "pending", len(pending)-i, "err", err)
			r.mu.Lock()
			r.unindexed = append(r.unindexed, pending[i:]...)
			r.mu.Unlock()
			return
		}
	}
}

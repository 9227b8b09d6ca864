package streams

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/media"
)

// fakeSource delivers key units every 10 ms until ctx ends or fail is set.
type fakeSource struct {
	runs  *atomic.Int32
	fail  func() error // returns the error to fail with before ready, or nil
	after time.Duration
}

func (f fakeSource) Run(ctx context.Context, ready func([]*media.Track) *media.Stream) error {
	f.runs.Add(1)
	if f.fail != nil {
		if err := f.fail(); err != nil {
			return err
		}
	}
	s := ready([]*media.Track{{Codec: media.CodecH264, ClockRate: 90000}})
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if f.after > 0 && time.Since(start) > f.after {
				return media.Fail(media.ReasonClosed, errors.New("camera hung up"))
			}
			s.Write(&media.Unit{PTS: int64(i) * 900, Key: true})
		}
	}
}

type statusLog struct {
	mu sync.Mutex
	st []Status
}

func (l *statusLog) add(_ int64, s Status) { l.mu.Lock(); l.st = append(l.st, s); l.mu.Unlock() }
func (l *statusLog) last() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.st) == 0 {
		return Status{}
	}
	return l.st[len(l.st)-1]
}

func newHub(t *testing.T, src func(id int64) (media.Source, error), log *statusLog) *Hub {
	t.Helper()
	before := runtime.NumGoroutine()
	h, err := New(Config{
		Resolver:    ResolverFunc(func(_ context.Context, id int64) (media.Source, error) { return src(id) }),
		OnStatus:    log.add,
		IdleTimeout: 100 * time.Millisecond,
		BackoffMin:  20 * time.Millisecond,
		BackoffMax:  80 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	})
	return h
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSharedSourceAndIdleStop(t *testing.T) {
	var runs atomic.Int32
	log := &statusLog{}
	h := newHub(t, func(int64) (media.Source, error) { return fakeSource{runs: &runs}, nil }, log)
	ctx := t.Context()

	s1, rel1, err := h.Acquire(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	s2, rel2, err := h.Acquire(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 || runs.Load() != 1 {
		t.Fatalf("two viewers: same stream %v, source runs %d; want one shared source", s1 == s2, runs.Load())
	}
	r := s1.AddReader("t", 0)
	<-r.C()
	rel1()
	rel1() // idempotent
	time.Sleep(200 * time.Millisecond)
	if h.Stream(7) == nil {
		t.Fatal("source stopped while a viewer remained")
	}
	rel2()
	waitFor(t, "idle stop", func() bool { return log.last().State == StateIdle })
	if _, ok := <-r.C(); ok {
		// drain what was queued
		for range r.C() {
		}
	}
	if !errors.Is(r.Err(), media.ErrStreamClosed) {
		t.Fatalf("reader err after idle stop: %v", r.Err())
	}

	// Reopens on the next request.
	_, rel3, err := h.Acquire(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer rel3()
	if runs.Load() != 2 {
		t.Fatalf("source runs %d after reopen, want 2", runs.Load())
	}
}

func TestAcquireReportsReasonAndRetries(t *testing.T) {
	var runs atomic.Int32
	var down atomic.Bool
	down.Store(true)
	log := &statusLog{}
	h := newHub(t, func(int64) (media.Source, error) {
		return fakeSource{runs: &runs, fail: func() error {
			if down.Load() {
				return media.Fail(media.ReasonAuthFailed, errors.New("401 Unauthorized"))
			}
			return nil
		}}, nil
	}, log)

	_, _, err := h.Acquire(t.Context(), 1)
	if !errors.Is(err, media.ErrUnavailable) || media.ReasonOf(err) != media.ReasonAuthFailed {
		t.Fatalf("Acquire err = %v, want unavailable/auth_failed", err)
	}
	unpin, err := h.Pin(1)
	if err != nil {
		t.Fatal(err)
	}
	defer unpin()
	waitFor(t, "retries", func() bool { return runs.Load() >= 3 })
	if st := log.last(); st.State != StateOffline && st.State != StateConnecting {
		t.Fatalf("state %s while failing", st.State)
	}
	down.Store(false)
	waitFor(t, "recovery", func() bool { return log.last().State == StateOnline })
}

func TestSourceDropRecoversWhilePinned(t *testing.T) {
	var runs atomic.Int32
	log := &statusLog{}
	h := newHub(t, func(int64) (media.Source, error) {
		return fakeSource{runs: &runs, after: 50 * time.Millisecond}, nil
	}, log)
	unpin, _ := h.Pin(3)
	defer unpin()
	waitFor(t, "several reconnects", func() bool { return runs.Load() >= 3 })
	log.mu.Lock()
	var sawClosed bool
	for _, s := range log.st {
		if s.State == StateOffline && s.Reason == media.ReasonClosed {
			sawClosed = true
		}
	}
	log.mu.Unlock()
	if !sawClosed {
		t.Fatal("no offline status with reason source_closed")
	}
}

func TestNoChannel(t *testing.T) {
	log := &statusLog{}
	h := newHub(t, func(id int64) (media.Source, error) {
		return nil, media.ErrNoChannel
	}, log)
	_, _, err := h.Acquire(t.Context(), 99)
	if !errors.Is(err, media.ErrNoChannel) {
		t.Fatalf("err = %v, want ErrNoChannel", err)
	}
}

func TestAcquireTimeout(t *testing.T) {
	log := &statusLog{}
	block := make(chan struct{})
	defer close(block)
	var runs atomic.Int32
	h := newHub(t, func(int64) (media.Source, error) {
		return fakeSource{runs: &runs, fail: func() error { <-block; return errors.New("late") }}, nil
	}, log)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err := h.Acquire(ctx, 5)
	if media.ReasonOf(err) != media.ReasonTimeout {
		t.Fatalf("err = %v, want timeout", err)
	}
}

func TestClosedHub(t *testing.T) {
	h := newHub(t, func(int64) (media.Source, error) { return nil, media.ErrNoChannel }, &statusLog{})
	h.Close()
	if _, _, err := h.Acquire(t.Context(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}

func TestResetReconnects(t *testing.T) {
	var runs atomic.Int32
	log := &statusLog{}
	h := newHub(t, func(int64) (media.Source, error) { return fakeSource{runs: &runs}, nil }, log)
	s1, rel, err := h.Acquire(t.Context(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	h.Reset(4)
	h.Reset(99) // unknown: no-op
	waitFor(t, "reconnect", func() bool { s := h.Stream(4); return s != nil && s != s1 })
	if runs.Load() != 2 {
		t.Fatalf("runs %d, want 2", runs.Load())
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, st := range log.st {
		if st.State == StateOffline {
			t.Fatalf("reset reported offline: %+v", st)
		}
	}
}

func TestDeletedChannelDoesNotSpin(t *testing.T) {
	var calls atomic.Int32
	h := newHub(t, func(int64) (media.Source, error) {
		calls.Add(1)
		return nil, fmt.Errorf("gone: %w", media.ErrNoChannel)
	}, &statusLog{})
	unpin, err := h.Pin(8)
	if err != nil {
		t.Fatal(err)
	}
	defer unpin()
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("resolver called %d times for a deleted channel, want 1", n)
	}
	if h.Active(8) {
		t.Fatal("path of a deleted channel still active")
	}
}

func TestStatusReportsNeverOverlap(t *testing.T) {
	var inFlight, maxInFlight atomic.Int32
	var runs atomic.Int32
	h, err := New(Config{
		Resolver: ResolverFunc(func(context.Context, int64) (media.Source, error) { return fakeSource{runs: &runs}, nil }),
		OnStatus: func(int64, Status) {
			n := inFlight.Add(1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			inFlight.Add(-1)
		},
		IdleTimeout: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for range 30 {
		_, rel, err := h.Acquire(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
		rel()
		time.Sleep(time.Duration(rand.N(4)) * time.Millisecond)
	}
	if m := maxInFlight.Load(); m > 1 {
		t.Fatalf("%d status reports ran at once for one channel", m)
	}
}

package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotConnected is returned by a LazyS3 that has not reached its server
// yet.
var ErrNotConnected = errors.New("blob: s3 not connected yet")

// LazyS3 is an S3 store that connects in the background: a platform that
// starts while its object store is down keeps recording to the local disk,
// and uploads once S3 answers. Until then every operation fails with
// ErrNotConnected and the last connection error (Err).
type LazyS3 struct {
	cfg  S3Config
	log  *slog.Logger
	s3   atomic.Pointer[S3]
	mu   sync.Mutex
	last error
	done chan struct{}
}

// NewLazyS3 validates cfg and starts connecting: at once, then every
// retry until it succeeds or ctx ends.
func NewLazyS3(ctx context.Context, cfg S3Config, retry time.Duration, log *slog.Logger) (*LazyS3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &LazyS3{cfg: cfg, log: log, done: make(chan struct{})}
	if l.connect(ctx) {
		close(l.done)
		return l, nil
	}
	l.log.Error("S3 not reachable; recording goes on to the local disk and is uploaded when it is", "err", l.Err(), "retry_every", retry.String())
	go func() {
		defer close(l.done)
		t := time.NewTicker(retry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if l.connect(ctx) {
					l.log.Info("S3 connected", "endpoint", cfg.Endpoint, "bucket", cfg.Bucket)
					return
				}
			}
		}
	}()
	return l, nil
}

func (l *LazyS3) connect(ctx context.Context) bool {
	s, err := NewS3(ctx, l.cfg)
	l.mu.Lock()
	l.last = err
	l.mu.Unlock()
	if err != nil {
		return false
	}
	l.s3.Store(s)
	return true
}

// Err returns why the store is not connected, or nil once it is.
func (l *LazyS3) Err() error {
	if l.s3.Load() != nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Wait returns when the store is connected or has given up (ctx of
// NewLazyS3 ended).
func (l *LazyS3) Wait() { <-l.done }

func (l *LazyS3) get() (*S3, error) {
	if s := l.s3.Load(); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrNotConnected, l.Err())
}

// Name returns "s3".
func (l *LazyS3) Name() string { return "s3" }

// Put implements Store.
func (l *LazyS3) Put(ctx context.Context, key, path string) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Put(ctx, key, path)
}

// Open implements Store.
func (l *LazyS3) Open(ctx context.Context, key string) (Object, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, key)
}

// Delete implements Store.
func (l *LazyS3) Delete(ctx context.Context, key string) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Delete(ctx, key)
}

// List implements Store.
func (l *LazyS3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.List(ctx, prefix, fn)
}

// Close closes the connected store, if any.
func (l *LazyS3) Close() error {
	if s := l.s3.Load(); s != nil {
		return s.Close()
	}
	return nil
}

package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// UploadIndex is what the uploader needs of the segment index.
type UploadIndex interface {
	SegmentsAt(ctx context.Context, loc model.Location, limit int) ([]model.Segment, error)
	SetSegmentLocation(ctx context.Context, id int64, loc model.Location) error
	DeleteSegment(ctx context.Context, id int64, loc model.Location) error
}

// Uploader moves finished segments from the local disk to S3, oldest
// first. The disk is the buffer: while S3 is slow or unreachable segments
// wait there (the index says so) and nothing is lost; uploads are retried
// with backoff, and the backlog drains when S3 is back, also after a
// restart, since the backlog is the index itself.
type Uploader struct {
	Index      UploadIndex
	Disk       *blob.Disk
	S3         blob.Store
	Log        *slog.Logger
	BackoffMin time.Duration // default 1 s
	BackoffMax time.Duration // default 30 s

	kick     chan struct{}
	skip     map[int64]bool // rows whose file is lost but an export locks
	uploaded prometheus.Counter
	failed   prometheus.Counter
	bytes    prometheus.Counter
}

// NewUploader returns an Uploader; Run starts it.
func NewUploader(idx UploadIndex, disk *blob.Disk, s3 blob.Store, log *slog.Logger) *Uploader {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "xueliang", Subsystem: "record", Name: name, Help: help})
	}
	if log == nil {
		log = slog.Default()
	}
	return &Uploader{Index: idx, Disk: disk, S3: s3, Log: log, BackoffMin: time.Second, BackoffMax: 30 * time.Second,
		kick:     make(chan struct{}, 1),
		skip:     map[int64]bool{},
		uploaded: c("uploads_total", "Segments uploaded to S3."),
		failed:   c("upload_failures_total", "Failed uploads of segments to S3 (retried)."),
		bytes:    c("upload_bytes_total", "Bytes of segments uploaded to S3."),
	}
}

// Kick tells the uploader that a segment is ready.
func (u *Uploader) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Describe implements prometheus.Collector.
func (u *Uploader) Describe(ch chan<- *prometheus.Desc) {
	u.uploaded.Describe(ch)
	u.failed.Describe(ch)
	u.bytes.Describe(ch)
}

// Collect implements prometheus.Collector.
func (u *Uploader) Collect(ch chan<- prometheus.Metric) {
	u.uploaded.Collect(ch)
	u.failed.Collect(ch)
	u.bytes.Collect(ch)
}

// Run uploads until ctx ends.
func (u *Uploader) Run(ctx context.Context) {
	backoff := u.BackoffMin
	failing := false
	for ctx.Err() == nil {
		n, err := u.drain(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			u.failed.Inc()
			if !failing {
				u.Log.Warn("S3 upload failing; segments stay on the local disk and are retried", "err", err, "retry_in", backoff.String())
			}
			failing = true
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, u.BackoffMax)
			continue
		case failing && err == nil:
			u.Log.Info("S3 upload recovered", "uploaded", n)
			failing = false
		}
		backoff = u.BackoffMin
		if n > 0 {
			continue // maybe more
		}
		select {
		case <-ctx.Done():
		case <-u.kick:
		case <-time.After(10 * time.Second):
		}
	}
}

// missing handles a segment whose local file is gone: uploaded already
// (a crash between the upload and the index update), or deleted by the
// disk guard while it waited.
func (u *Uploader) missing(ctx context.Context, g model.Segment) error {
	if o, err := u.S3.Open(ctx, g.Key); err == nil {
		o.Close()
		return u.Index.SetSegmentLocation(ctx, g.ID, model.LocationS3)
	} else if !errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("record: upload %s: %w", g.Key, err)
	}
	u.Log.Error("segment file missing from the disk and from S3; its index row is removed", "key", g.Key)
	err := u.Index.DeleteSegment(ctx, g.ID, model.LocationDisk)
	if errors.Is(err, store.ErrLocked) {
		// An export holds it: leave the row to the export (which will
		// report the file missing) and the uploader's queue alone.
		u.skip[g.ID] = true
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// drain uploads one batch of the backlog and returns how many segments it
// moved.
func (u *Uploader) drain(ctx context.Context) (int, error) {
	segs, err := u.Index.SegmentsAt(ctx, model.LocationDisk, 50)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, g := range segs {
		if u.skip[g.ID] {
			continue
		}
		if err := u.upload(ctx, g); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

func (u *Uploader) upload(ctx context.Context, g model.Segment) error {
	path, err := u.Disk.Path(g.Key)
	if err != nil {
		return err
	}
	if err := u.S3.Put(ctx, g.Key, path); errors.Is(err, fs.ErrNotExist) {
		return u.missing(ctx, g)
	} else if err != nil {
		return fmt.Errorf("record: upload %s: %w", g.Key, err)
	}
	if err := u.Index.SetSegmentLocation(ctx, g.ID, model.LocationS3); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// Deleted by retention meanwhile: so is the object.
			return u.S3.Delete(ctx, g.Key)
		}
		return err
	}
	u.uploaded.Inc()
	u.bytes.Add(float64(g.Bytes))
	if err := u.Disk.Delete(ctx, g.Key); err != nil {
		u.Log.Warn("uploaded segment not deleted from the disk", "key", g.Key, "err", err)
	}
	return nil
}

package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// RetentionIndex is what retention needs of the segment index.
type RetentionIndex interface {
	RecordedChannels(ctx context.Context) ([]int64, error)
	RecordPlans(ctx context.Context) ([]model.RecordPlan, error)
	ExpiredSegments(ctx context.Context, channelID int64, cutoff time.Time, limit int) ([]model.Segment, error)
	OldestSegments(ctx context.Context, loc model.Location, limit int) ([]model.Segment, error)
	CountSegmentsAt(ctx context.Context, loc model.Location) (n, bytes int64, err error)
	SegmentLocked(ctx context.Context, id int64) (bool, error)
	DeleteSegment(ctx context.Context, id int64, loc model.Location) error
}

// Retention deletes what the platform may no longer keep and guards the
// recordings disk. Segments locked by an export are never deleted.
//
//   - Per channel, segments older than the plan's retention days (or
//     DefaultAge) are deleted, from the disk or from S3: the platform
//     does S3 lifecycle itself, so that the bucket needs no rules.
//   - The disk guard: when the file system of the recordings folder has
//     less than MinFree bytes free, or the segments on the disk take more
//     than MaxBytes, the oldest unlocked segments on the disk are deleted
//     until it is back within bounds, and a warning is raised (Warning)
//     until it is.
type Retention struct {
	Index   RetentionIndex
	Catalog *Catalog
	// DefaultAge is how long segments of channels whose plan sets no
	// retention days are kept.
	DefaultAge time.Duration
	MinFree    uint64 // bytes; 0 disables the free-space guard
	MaxBytes   int64  // bytes of segments on the disk; 0 disables the quota
	Log        *slog.Logger
	Now        func() time.Time
	// S3Err, if set, tells why the S3 store is not connected (nil when
	// it is), for Storage.
	S3Err func() error
	// FreeSpace returns the free and total bytes of the file system of a
	// folder; nil means the operating system's answer.
	FreeSpace func(dir string) (free, total uint64, err error)

	mu      sync.Mutex
	warning string
	last    Report
}

// Report is the result of one pass of retention.
type Report struct {
	At           time.Time `json:"at"`
	Expired      int       `json:"expired_deleted"`
	Guarded      int       `json:"guard_deleted"`
	FreedBytes   int64     `json:"freed_bytes"`
	DiskFree     uint64    `json:"disk_free_bytes"`
	DiskTotal    uint64    `json:"disk_total_bytes"`
	SegmentBytes int64     `json:"segment_bytes_on_disk,omitempty"` // with a quota only
	Warning      string    `json:"warning,omitempty"`
}

// batch is how many segments one query returns.
const batch = 500

// Run applies retention every interval until ctx ends.
func (r *Retention) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.log().Error("retention failed; it runs again at the next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Retention) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func (r *Retention) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Warning returns the disk guard's warning, or "" when all is well.
func (r *Retention) Warning() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.warning
}

// Last returns the report of the last pass.
func (r *Retention) Last() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Once runs one pass: expiry, then the disk guard.
func (r *Retention) Once(ctx context.Context) (Report, error) {
	rep := Report{At: r.now().UTC()}
	err := r.expire(ctx, &rep)
	if gerr := r.guard(ctx, &rep); gerr != nil {
		err = errors.Join(err, gerr)
	}
	r.mu.Lock()
	r.last = rep
	r.warning = rep.Warning
	r.mu.Unlock()
	if rep.Expired+rep.Guarded > 0 {
		r.log().Info("retention deleted segments", "expired", rep.Expired, "disk_guard", rep.Guarded, "freed_bytes", rep.FreedBytes)
	}
	return rep, err
}

func (r *Retention) expire(ctx context.Context, rep *Report) error {
	ages := map[int64]time.Duration{}
	plans, err := r.Index.RecordPlans(ctx)
	if err != nil {
		return err
	}
	for _, p := range plans {
		if p.RetentionDays > 0 {
			ages[p.ChannelID] = time.Duration(p.RetentionDays) * 24 * time.Hour
		}
	}
	channels, err := r.Index.RecordedChannels(ctx)
	if err != nil {
		return err
	}
	now := r.now()
	for _, ch := range channels {
		age, ok := ages[ch]
		if !ok {
			age = r.DefaultAge
		}
		cutoff := now.Add(-age)
		for {
			segs, err := r.Index.ExpiredSegments(ctx, ch, cutoff, batch)
			if err != nil {
				return err
			}
			failed := 0
			for _, g := range segs {
				ok, err := r.delete(ctx, g)
				if err != nil {
					failed++
					r.log().Warn("retention: cannot delete an expired segment; retried at the next pass", "key", g.Key, "err", err)
					continue
				}
				if ok {
					rep.Expired++
					rep.FreedBytes += g.Bytes
				}
			}
			if len(segs) < batch || failed > 0 {
				break // the next pass goes on
			}
		}
	}
	return nil
}

// guard deletes the oldest unlocked segments on the disk while space is
// short, checking again after each one.
func (r *Retention) guard(ctx context.Context, rep *Report) error {
	if r.MinFree == 0 && r.MaxBytes == 0 {
		return nil
	}
	dir := r.Catalog.Disk.Root()
	freeSpace := r.FreeSpace
	if freeSpace == nil {
		freeSpace = diskFree
	}
	free, total, err := freeSpace(dir)
	if err != nil {
		return fmt.Errorf("record: disk guard: %w", err)
	}
	var used int64
	if r.MaxBytes > 0 {
		// A sum over the index: only with a quota.
		if _, used, err = r.Index.CountSegmentsAt(ctx, model.LocationDisk); err != nil {
			return err
		}
	}
	report := func() { rep.DiskFree, rep.DiskTotal, rep.SegmentBytes = free, total, used }
	report()
	for {
		lowSpace := r.MinFree > 0 && free < r.MinFree
		overQuota := r.MaxBytes > 0 && used > r.MaxBytes
		if !lowSpace && !overQuota {
			return nil
		}
		if rep.Warning == "" {
			if lowSpace {
				rep.Warning = fmt.Sprintf("recordings disk low: %d MB free, below record.min_free_mb (%d MB); deleting the oldest recordings",
					free>>20, r.MinFree>>20)
			} else {
				rep.Warning = fmt.Sprintf("recordings over quota: %d MB of segments, above record.max_mb (%d MB); deleting the oldest recordings",
					used>>20, r.MaxBytes>>20)
			}
			r.log().Warn("disk guard", "warning", rep.Warning)
		}
		segs, err := r.Index.OldestSegments(ctx, model.LocationDisk, 20)
		if err != nil {
			return err
		}
		if len(segs) == 0 {
			rep.Warning += "; nothing left to delete but segments locked by exports: release exports or add space"
			r.log().Error("disk guard cannot free space", "warning", rep.Warning)
			return nil
		}
		deleted := 0
		for _, g := range segs {
			ok, err := r.delete(ctx, g)
			if err != nil {
				r.log().Warn("disk guard: cannot delete a segment", "key", g.Key, "err", err)
				continue
			}
			if !ok {
				continue
			}
			deleted++
			rep.Guarded++
			rep.FreedBytes += g.Bytes
			if r.MaxBytes > 0 {
				used -= g.Bytes
			}
			if free, total, err = freeSpace(dir); err != nil {
				return fmt.Errorf("record: disk guard: %w", err)
			}
			report()
			if (r.MinFree == 0 || free >= r.MinFree) && (r.MaxBytes == 0 || used <= r.MaxBytes) {
				return nil
			}
		}
		if deleted == 0 {
			return fmt.Errorf("record: disk guard: none of the %d oldest segments could be deleted (see the log)", len(segs))
		}
	}
}

// delete removes an unlocked segment: its file first, then its row, so
// that a failure leaves the row to retry (a file without a row would
// escape retention). It reports false for a segment that an export locks,
// or that the uploader moved to S3 meanwhile (it stays, in S3).
func (r *Retention) delete(ctx context.Context, g model.Segment) (bool, error) {
	locked, err := r.Index.SegmentLocked(ctx, g.ID)
	if err != nil || locked {
		return false, err
	}
	var st blob.Store = r.Catalog.Disk
	if g.Location == model.LocationS3 {
		if r.Catalog.S3 == nil {
			return false, fmt.Errorf("record: segment %s is in S3, but no S3 store is configured (set record.s3 to delete it)", g.Key)
		}
		st = r.Catalog.S3
	}
	if err := st.Delete(ctx, g.Key); err != nil {
		return false, fmt.Errorf("record: delete %s: %w", g.Key, err)
	}
	err = r.Index.DeleteSegment(ctx, g.ID, g.Location)
	switch {
	case errors.Is(err, store.ErrLocked):
		// Locked between the check and now: its file is gone, and the
		// export that locked it will say so.
		r.log().Error("retention: a segment was locked by an export while it was being deleted", "key", g.Key)
		return false, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil // uploaded to S3 meanwhile, or deleted by another pass
	case err != nil:
		return false, err
	}
	return true, nil
}

// Storage is the state of recording storage, for operators and the
// console's status bar.
type Storage struct {
	Dir          string `json:"dir"`
	Store        string `json:"store"` // where finished segments go: disk or s3
	DiskFree     uint64 `json:"disk_free_bytes"`
	DiskTotal    uint64 `json:"disk_total_bytes"`
	DiskSegments int64  `json:"disk_segments"`
	DiskBytes    int64  `json:"disk_bytes"`
	S3Segments   int64  `json:"s3_segments"`
	S3Bytes      int64  `json:"s3_bytes"`
	// UploadBacklog counts the segments on the disk waiting for S3.
	UploadBacklog int64  `json:"upload_backlog"`
	Recording     int    `json:"recording_channels"`
	Warning       string `json:"warning,omitempty"`
	// S3Error says why S3 is not connected (segments wait on the disk).
	S3Error   string `json:"s3_error,omitempty"`
	Retention Report `json:"last_retention"`
}

// Storage reports the state of recording storage.
func (r *Retention) Storage(ctx context.Context) (Storage, error) {
	st := Storage{Dir: r.Catalog.Disk.Root(), Store: "disk", Warning: r.Warning(), Retention: r.Last()}
	var err error
	if st.DiskFree, st.DiskTotal, err = diskFree(st.Dir); err != nil {
		return st, err
	}
	if st.DiskSegments, st.DiskBytes, err = r.Index.CountSegmentsAt(ctx, model.LocationDisk); err != nil {
		return st, err
	}
	if st.S3Segments, st.S3Bytes, err = r.Index.CountSegmentsAt(ctx, model.LocationS3); err != nil {
		return st, err
	}
	if r.Catalog.S3 != nil {
		st.Store, st.UploadBacklog = "s3", st.DiskSegments
	}
	if r.S3Err != nil {
		if err := r.S3Err(); err != nil {
			st.S3Error = err.Error()
		}
	}
	if r.Catalog.Rec != nil {
		st.Recording = r.Catalog.Rec.Recording()
	}
	return st, nil
}

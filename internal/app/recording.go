package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/record"
	"github.com/xueliang/xueliang/internal/store"
)

// recordings joins the recorder, the segment index and the blob stores
// for the API (api.Recordings) and the playback server.
type recordings struct {
	store *store.Store
	rec   *record.Recorder
	cat   *record.Catalog
	ret   *record.Retention
}

func (r *recordings) Storage(ctx context.Context) (record.Storage, error) { return r.ret.Storage(ctx) }

func (r *recordings) Plan(ctx context.Context, channelID int64) (model.RecordPlan, error) {
	return r.store.RecordPlan(ctx, channelID)
}

func (r *recordings) SetPlan(ctx context.Context, p *model.RecordPlan) error {
	if err := r.store.PutRecordPlan(ctx, p); err != nil {
		return err
	}
	r.rec.SetPlan(*p)
	return nil
}

func (r *recordings) Status(channelID int64) record.Status { return r.rec.Status(channelID) }

func (r *recordings) Timeline(ctx context.Context, channelID int64, from, to time.Time) (record.Timeline, error) {
	return r.cat.Timeline(ctx, channelID, from, to)
}

// repairWindow is how far back the start-up scan looks for files that the
// index lacks.
const repairWindow = 48 * time.Hour

// recordDir returns the local recordings folder.
func (a *App) recordDir() string {
	if a.cfg.Record.Dir != "" {
		return a.cfg.Record.Dir
	}
	return filepath.Join(a.cfg.DataDir, "recordings")
}

// startRecording builds the blob stores and the recorder. The recorder
// runs until runCtx ends.
func (a *App) startRecording(ctx, runCtx context.Context) error {
	disk, err := blob.NewDisk(a.recordDir())
	if err != nil {
		return fmt.Errorf("app: recordings folder: %w (set record.dir to a writable folder)", err)
	}
	loc, err := time.LoadLocation(a.cfg.Record.Timezone)
	if err != nil {
		return fmt.Errorf("app: record.timezone: %w", err)
	}
	// Index what a crash left behind before anything writes.
	if _, err := record.Repair(ctx, disk.Root(), a.store, time.Now().Add(-repairWindow), a.log.With("component", "record")); err != nil {
		return fmt.Errorf("app: start-up scan of recordings: %w", err)
	}
	rec, err := record.New(record.Config{
		Hub:             a.hub,
		Index:           a.store,
		Dir:             disk.Root(),
		SegmentDuration: a.cfg.Record.SegmentDuration.D(),
		PartDuration:    a.cfg.Record.PartDuration.D(),
		Location:        loc,
		Log:             a.log.With("component", "record"),
	})
	if err != nil {
		return err
	}
	if err := a.reg.Register(rec.Collector()); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	cat := &record.Catalog{Index: a.store, Rec: rec, Disk: disk}
	ret := &record.Retention{
		Index:      a.store,
		Catalog:    cat,
		DefaultAge: a.cfg.Record.Retention.D(),
		MinFree:    uint64(a.cfg.Record.MinFreeMB) << 20,
		MaxBytes:   int64(a.cfg.Record.MaxMB) << 20,
		Log:        a.log.With("component", "retention"),
	}
	if a.cfg.Record.Store == "s3" {
		c := a.cfg.Record.S3
		// S3 may be down when the platform starts: recording goes on to
		// the disk and the store connects when it can. Only settings that
		// cannot work stop the start.
		s3, err := blob.NewLazyS3(runCtx, blob.S3Config{Endpoint: c.Endpoint, Secure: c.Secure, Region: c.Region, Bucket: c.Bucket,
			Prefix: c.Prefix, AccessKey: c.AccessKey, SecretKey: c.SecretKey}, 10*time.Second, a.log.With("component", "s3"))
		if err != nil {
			return fmt.Errorf("app: record.s3: %w", err)
		}
		cat.S3 = s3
		ret.S3Err = s3.Err
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			s3.Wait() // the connecting goroutine ends with runCtx at the latest
		}()
		up := record.NewUploader(a.store, disk, s3, a.log.With("component", "upload"))
		if err := a.reg.Register(up); err != nil {
			return fmt.Errorf("app: %w", err)
		}
		rec.SetOnSegment(func(model.Segment) { up.Kick() })
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			up.Run(runCtx)
		}()
	}
	a.rec = &recordings{store: a.store, rec: rec, cat: cat, ret: ret}
	a.exp, err = record.NewExporter(a.store, cat, filepath.Join(a.cfg.DataDir, "exports"), a.stitch, a.log.With("component", "export"))
	if err != nil {
		return fmt.Errorf("app: %w (set data_dir to a writable folder)", err)
	}
	a.wg.Add(3)
	go func() {
		defer a.wg.Done()
		a.exp.Run(runCtx)
	}()
	go func() {
		defer a.wg.Done()
		if err := rec.Run(runCtx); err != nil {
			a.log.Error("recorder stopped", "err", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		ret.Run(runCtx, a.cfg.Record.RetentionInterval.D())
	}()
	return nil
}

// channelChanged reconnects a changed channel's source and forgets the
// recording plan of a deleted one.
func (a *App) channelChanged(id int64) {
	a.hub.Reset(id)
	if a.rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.store.GetChannel(ctx, id); errors.Is(err, store.ErrNotFound) {
		a.rec.rec.RemoveChannel(id)
	}
}

package record

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

// ExportStore is what exports need of the database.
type ExportStore interface {
	CreateExport(ctx context.Context, e *model.Export) error
	UpdateExport(ctx context.Context, e *model.Export) error
	GetExport(ctx context.Context, id int64) (model.Export, error)
	ListExports(ctx context.Context, unfinished bool, limit int) ([]model.Export, error)
	LockSegments(ctx context.Context, exportID int64, segmentIDs []int64) error
	UnlockExport(ctx context.Context, exportID int64) error
	GetChannel(ctx context.Context, id int64) (*model.Channel, error)
}

// StitchFunc writes one MP4 of segs cut to [start, end), timestamps from
// zero, to w (playback.WriteMP4 in the platform), reading the files through
// the Catalog.
type StitchFunc func(ctx context.Context, w io.Writer, segs []model.Segment, start, end time.Time) error

// MaxExportChannels bounds the channels of one export, and MaxExportRange
// its range: the stitcher holds the plan of a channel's range in memory
// (about 1 MB per hour).
const (
	MaxExportChannels = 16
	MaxExportRange    = 24 * time.Hour
)

// ManifestName and SumsName are the files every finished export holds
// besides one MP4 per channel.
const (
	ManifestName = "manifest.json"
	SumsName     = "SHA256SUMS"
)

// ErrNoRecording means that nothing is recorded in the range asked for.
var ErrNoRecording = errors.New("record: nothing recorded in the range")

// Exporter runs evidence exports, one at a time, in a folder of its own:
// <Dir>/<export id>/ holds <channel code>.mp4 per channel, manifest.json
// (channels, range, segments, the SHA-256 of every file, who asked and
// when) and SHA256SUMS (sha256sum -c checks the folder). The segments an
// export reads are locked against retention until it is released.
type Exporter struct {
	Store   ExportStore
	Catalog *Catalog
	Dir     string
	Stitch  StitchFunc
	Log     *slog.Logger
	Now     func() time.Time

	queue   chan int64
	mu      sync.Mutex
	running map[int64]*progress
}

type progress struct {
	done, total int64
}

// NewExporter returns an Exporter; Run starts it.
func NewExporter(st ExportStore, cat *Catalog, dir string, stitch StitchFunc, log *slog.Logger) (*Exporter, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("record: exports folder: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Exporter{Store: st, Catalog: cat, Dir: dir, Stitch: stitch, Log: log, Now: time.Now,
		queue: make(chan int64, 1024), running: map[int64]*progress{}}, nil
}

// Submit validates and queues an export.
func (e *Exporter) Submit(ctx context.Context, user string, channelIDs []int64, start, end time.Time) (model.Export, error) {
	if err := CheckRange(start, end); err != nil {
		return model.Export{}, err
	}
	if d := end.Sub(start); d > MaxExportRange {
		return model.Export{}, fmt.Errorf("%w: an export covers at most %v, got %v: split it into several", ErrBadRange, MaxExportRange, d)
	}
	if len(channelIDs) == 0 || len(channelIDs) > MaxExportChannels {
		return model.Export{}, &model.FieldError{Field: "channel_ids", Message: fmt.Sprintf("give 1 to %d channels, got %d", MaxExportChannels, len(channelIDs))}
	}
	seen := map[int64]bool{}
	for _, id := range channelIDs {
		if seen[id] {
			return model.Export{}, &model.FieldError{Field: "channel_ids", Message: fmt.Sprintf("channel %d is listed twice", id)}
		}
		seen[id] = true
		if _, err := e.Store.GetChannel(ctx, id); err != nil {
			return model.Export{}, err
		}
	}
	x := model.Export{RequestedBy: user, Start: start.UTC().Truncate(time.Millisecond), End: end.UTC().Truncate(time.Millisecond),
		ChannelIDs: channelIDs, State: model.ExportQueued}
	if err := e.Store.CreateExport(ctx, &x); err != nil {
		return x, err
	}
	select {
	case e.queue <- x.ID:
	default:
		// A full queue: Run picks queued exports up from the database.
	}
	return x, nil
}

// Progress returns the progress of a running export, 0..1, and whether it
// is running.
func (e *Exporter) Progress(id int64) (float64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.running[id]
	if !ok || p.total == 0 {
		return 0, ok
	}
	return min(float64(p.done)/float64(p.total), 0.99), true
}

// Run works through the queue until ctx ends. Exports left queued or
// running by a previous process are started again.
func (e *Exporter) Run(ctx context.Context) {
	left, err := e.Store.ListExports(ctx, true, 1000)
	if err != nil {
		e.Log.Error("exports: cannot list unfinished exports", "err", err)
	}
	for i := len(left) - 1; i >= 0; i-- { // oldest first
		e.work(ctx, left[i].ID)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-e.queue:
			e.work(ctx, id)
		case <-time.After(time.Minute):
			// Exports whose id did not fit in the queue.
			more, err := e.Store.ListExports(ctx, true, 100)
			if err == nil {
				for i := len(more) - 1; i >= 0; i-- {
					e.work(ctx, more[i].ID)
				}
			}
		}
	}
}

func (e *Exporter) work(ctx context.Context, id int64) {
	x, err := e.Store.GetExport(ctx, id)
	if err != nil || (x.State != model.ExportQueued && x.State != model.ExportRunning) {
		return
	}
	log := e.Log.With("export", id)
	x.State, x.Progress, x.Error = model.ExportRunning, 0, ""
	if err := e.Store.UpdateExport(ctx, &x); err != nil {
		log.Error("exports: cannot start", "err", err)
		return
	}
	p := &progress{}
	e.mu.Lock()
	e.running[id] = p
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, id)
		e.mu.Unlock()
	}()
	started := time.Now()
	bytes, err := e.export(ctx, &x, p)
	if ctx.Err() != nil {
		return // shutting down: the export stays running and restarts
	}
	x.FinishedAt = e.Now().UTC()
	if err != nil {
		x.State, x.Error = model.ExportFailed, err.Error()
		os.RemoveAll(e.folder(id))
		if uerr := e.Store.UnlockExport(ctx, id); uerr != nil {
			log.Error("exports: cannot unlock the segments of a failed export", "err", uerr)
		}
		log.Warn("export failed", "err", err)
	} else {
		x.State, x.Progress, x.Bytes = model.ExportDone, 1, bytes
		log.Info("export done", "channels", len(x.ChannelIDs), "bytes", bytes, "took", time.Since(started).Round(time.Millisecond).String())
	}
	if err := e.Store.UpdateExport(context.WithoutCancel(ctx), &x); err != nil {
		log.Error("exports: cannot store the result", "err", err)
	}
}

func (e *Exporter) folder(id int64) string { return filepath.Join(e.Dir, strconv.FormatInt(id, 10)) }

// Manifest is the manifest.json of an export.
type Manifest struct {
	ExportID    int64             `json:"export_id"`
	RequestedBy string            `json:"requested_by"`
	RequestedAt time.Time         `json:"requested_at"`
	GeneratedAt time.Time         `json:"generated_at"`
	Start       time.Time         `json:"start"`
	End         time.Time         `json:"end"`
	Channels    []ManifestChannel `json:"channels"`
}

// ManifestChannel is one channel of an export.
type ManifestChannel struct {
	ID       int64             `json:"id"`
	Code     string            `json:"code"`
	Name     string            `json:"name"`
	File     string            `json:"file,omitempty"`
	Bytes    int64             `json:"bytes,omitempty"`
	SHA256   string            `json:"sha256,omitempty"`
	Recorded []Interval        `json:"recorded"`
	Gaps     []Interval        `json:"gaps"`
	Segments []ManifestSegment `json:"segments"`
	Note     string            `json:"note,omitempty"`
}

// ManifestSegment is one source segment of an exported file.
type ManifestSegment struct {
	Key    string    `json:"key"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Bytes  int64     `json:"bytes"`
	SHA256 string    `json:"sha256,omitempty"`
}

func (e *Exporter) export(ctx context.Context, x *model.Export, p *progress) (int64, error) {
	dir := e.folder(x.ID)
	os.RemoveAll(dir) // a restarted export starts over
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	m := Manifest{ExportID: x.ID, RequestedBy: x.RequestedBy, RequestedAt: x.RequestedAt, Start: x.Start, End: x.End}
	type job struct {
		ch   *model.Channel
		segs []model.Segment
	}
	var jobs []job
	for _, id := range x.ChannelIDs {
		ch, err := e.Store.GetChannel(ctx, id)
		if err != nil {
			return 0, err
		}
		segs, err := e.Catalog.Segments(ctx, id, x.Start, x.End)
		if err != nil {
			return 0, err
		}
		var ids []int64
		var total int64
		for _, g := range segs {
			if g.ID != 0 {
				ids = append(ids, g.ID)
			}
			total += 2 * g.Bytes // read once to verify, once to stitch
		}
		if err := e.Store.LockSegments(ctx, x.ID, ids); err != nil {
			return 0, err
		}
		e.mu.Lock()
		p.total += total
		e.mu.Unlock()
		jobs = append(jobs, job{ch, segs})
	}
	// Evidence is only as good as its sources: every segment must still
	// match the checksum it was indexed with.
	for _, j := range jobs {
		for _, g := range j.segs {
			if err := e.verify(ctx, g, p); err != nil {
				return 0, fmt.Errorf("channel %s: %w", j.ch.Code, err)
			}
		}
	}
	var total int64
	sums := &strings.Builder{}
	for _, j := range jobs {
		tl := buildTimeline(j.segs, x.Start, x.End)
		mc := ManifestChannel{ID: j.ch.ID, Code: j.ch.Code, Name: j.ch.Name, Recorded: tl.Recorded, Gaps: tl.Gaps, Segments: []ManifestSegment{}}
		for _, g := range j.segs {
			mc.Segments = append(mc.Segments, ManifestSegment{Key: g.Key, Start: g.Start, End: g.End, Bytes: g.Bytes, SHA256: g.SHA256})
		}
		if len(j.segs) == 0 || len(tl.Recorded) == 0 {
			mc.Note = "nothing recorded in the range"
			m.Channels = append(m.Channels, mc)
			continue
		}
		name := fileName(j.ch) + ".mp4"
		n, sum, err := e.writeFile(ctx, filepath.Join(dir, name), p, func(w io.Writer) error {
			return e.Stitch(ctx, w, j.segs, x.Start, x.End)
		})
		if err != nil {
			return 0, fmt.Errorf("channel %s: %w", j.ch.Code, err)
		}
		mc.File, mc.Bytes, mc.SHA256 = name, n, sum
		total += n
		fmt.Fprintf(sums, "%s  %s\n", sum, name)
		m.Channels = append(m.Channels, mc)
	}
	if total == 0 {
		return 0, ErrNoRecording
	}
	m.GeneratedAt = e.Now().UTC()
	n, sum, err := e.writeFile(ctx, filepath.Join(dir, ManifestName), nil, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(m)
	})
	if err != nil {
		return 0, err
	}
	total += n
	fmt.Fprintf(sums, "%s  %s\n", sum, ManifestName)
	if err := os.WriteFile(filepath.Join(dir, SumsName), []byte(sums.String()), 0o640); err != nil {
		return 0, err
	}
	return total + int64(sums.Len()), nil
}

// verify checks a segment file against the SHA-256 of the index.
func (e *Exporter) verify(ctx context.Context, g model.Segment, p *progress) error {
	if g.SHA256 == "" { // being written: nothing to check against yet
		return nil
	}
	o, err := e.Catalog.Open(ctx, g)
	if err != nil {
		return err
	}
	defer o.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(o, 0, o.Size())); err != nil {
		return fmt.Errorf("read %s: %w", g.Key, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != g.SHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, the index says %s: the file was altered or damaged after it was recorded",
			ErrTampered, g.Key, sum, g.SHA256)
	}
	e.mu.Lock()
	p.done += g.Bytes
	e.mu.Unlock()
	return nil
}

// ErrTampered means that a recorded file no longer matches its checksum.
var ErrTampered = errors.New("record: segment does not match its checksum")

// fileName is the channel's code, or its id if the code is not a plain
// file name.
func fileName(ch *model.Channel) string {
	if ch.Code != "" && !strings.ContainsAny(ch.Code, `/\.:`) {
		return ch.Code
	}
	return "channel-" + strconv.FormatInt(ch.ID, 10)
}

// writeFile writes a file through fn, synced, and returns its size and
// SHA-256; with p, the bytes count towards the export's progress.
func (e *Exporter) writeFile(ctx context.Context, path string, p *progress, fn func(io.Writer) error) (int64, string, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h), h: h, e: e, p: p, ctx: ctx}
	err = fn(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", err
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type countWriter struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	e   *Exporter
	p   *progress
	ctx context.Context
}

func (c *countWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	if c.p != nil {
		c.e.mu.Lock()
		c.p.done += int64(n)
		c.e.mu.Unlock()
	}
	return n, err
}

// ExportFile is a downloadable file of a finished export.
type ExportFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"`
}

// Files lists the files of a finished export.
func (e *Exporter) Files(id int64) ([]ExportFile, error) {
	dir := e.folder(id)
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("record: export %d: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("record: export %d: manifest: %w", id, err)
	}
	var out []ExportFile
	for _, c := range m.Channels {
		if c.File != "" {
			out = append(out, ExportFile{Name: c.File, Bytes: c.Bytes, SHA256: c.SHA256})
		}
	}
	ms := sha256.Sum256(b)
	out = append(out, ExportFile{Name: ManifestName, Bytes: int64(len(b)), SHA256: hex.EncodeToString(ms[:])})
	if st, err := os.Stat(filepath.Join(dir, SumsName)); err == nil {
		out = append(out, ExportFile{Name: SumsName, Bytes: st.Size()})
	}
	return out, nil
}

// Path returns the path of a file of an export, refusing names that are
// not plain file names in its folder.
func (e *Exporter) Path(id int64, name string) (string, error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("record: export %d: no file %q: %w", id, name, fs.ErrNotExist)
	}
	p := filepath.Join(e.folder(id), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("record: export %d: no file %q: %w", id, name, fs.ErrNotExist)
	}
	return p, nil
}

// Release deletes the files of an export and unlocks its segments.
func (e *Exporter) Release(ctx context.Context, id int64) (model.Export, error) {
	x, err := e.Store.GetExport(ctx, id)
	if err != nil {
		return x, err
	}
	if x.State == model.ExportQueued || x.State == model.ExportRunning {
		return x, fmt.Errorf("%w: export %d is %s; release it when it is done", ErrExportBusy, id, x.State)
	}
	if x.State == model.ExportReleased {
		return x, nil
	}
	if err := os.RemoveAll(e.folder(id)); err != nil {
		return x, fmt.Errorf("record: release export %d: %w", id, err)
	}
	if err := e.Store.UnlockExport(ctx, id); err != nil {
		return x, err
	}
	x.State, x.ReleasedAt = model.ExportReleased, e.Now().UTC()
	return x, e.Store.UpdateExport(ctx, &x)
}

// ErrExportBusy means an export cannot be released while it runs.
var ErrExportBusy = errors.New("record: export busy")

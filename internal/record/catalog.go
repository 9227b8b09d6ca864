package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
)

// contiguous is the largest hole between two segments that the timeline
// still shows as continuous recording: start times are kept in
// milliseconds, and a dropped frame or two is not a gap worth showing.
const contiguous = 250 * time.Millisecond

// SegmentLister is what the catalog needs of the segment index.
type SegmentLister interface {
	Segments(ctx context.Context, channelID int64, from, to time.Time) ([]model.Segment, error)
	// SegmentSpans is Segments with only the channel, start, end and bytes
	// set, read from the index alone (for timelines).
	SegmentSpans(ctx context.Context, channelID int64, from, to time.Time) ([]model.Segment, error)
}

// Catalog answers what is recorded and opens it: the index for finished
// segments, the Recorder for the one being written, and the blob stores
// for the bytes. It is what the timeline API, playback and exports read.
type Catalog struct {
	Index SegmentLister
	Rec   *Recorder  // may be nil (no recorder in this process)
	Disk  *blob.Disk // the local recordings folder
	S3    blob.Store // may be nil when recording to disk only
}

// Segments returns the segments of a channel overlapping [from, to),
// ordered by start, the one being written included.
func (c *Catalog) Segments(ctx context.Context, channelID int64, from, to time.Time) ([]model.Segment, error) {
	segs, err := c.Index.Segments(ctx, channelID, from, to)
	if err != nil {
		return nil, err
	}
	return c.withOpen(segs, channelID, from, to), nil
}

// withOpen adds the segment being written to segs if it overlaps [from,
// to) and is not indexed yet (it is, briefly, both when it just ended).
func (c *Catalog) withOpen(segs []model.Segment, channelID int64, from, to time.Time) []model.Segment {
	if c.Rec == nil {
		return segs
	}
	g, ok := c.Rec.Open(channelID)
	if !ok || !g.End.After(from) || !g.Start.Before(to) {
		return segs
	}
	for _, s := range segs {
		if s.Start.Equal(g.Start) {
			return segs
		}
	}
	segs = append(segs, g)
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
	return segs
}

// Open opens the file of a segment where the index says it is. For a
// segment being written only the parts written so far are readable.
func (c *Catalog) Open(ctx context.Context, g model.Segment) (blob.Object, error) {
	var st blob.Store = c.Disk
	if g.Location == model.LocationS3 {
		if c.S3 == nil {
			return nil, fmt.Errorf("record: segment %s is in S3, but no S3 store is configured (set record.s3)", g.Key)
		}
		st = c.S3
	}
	obj, err := st.Open(ctx, g.Key)
	if errors.Is(err, blob.ErrNotFound) && g.Location == model.LocationDisk && c.S3 != nil {
		// Uploaded (and removed from the disk) since g was listed.
		obj, err = c.S3.Open(ctx, g.Key)
	}
	if err != nil {
		return nil, err
	}
	if g.Open {
		// Only the parts written when g was taken: the file grows.
		return newLimited(obj, min(g.Bytes, obj.Size())), nil
	}
	return obj, nil
}

// limited is an Object cut to its first n bytes.
type limited struct {
	blob.Object
	sr *io.SectionReader
}

func newLimited(o blob.Object, n int64) *limited {
	return &limited{Object: o, sr: io.NewSectionReader(o, 0, n)}
}

func (l *limited) Read(p []byte) (int, error)                { return l.sr.Read(p) }
func (l *limited) ReadAt(p []byte, off int64) (int, error)   { return l.sr.ReadAt(p, off) }
func (l *limited) Seek(off int64, whence int) (int64, error) { return l.sr.Seek(off, whence) }
func (l *limited) Size() int64                               { return l.sr.Size() }

// Interval is a time range [Start, End).
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Timeline is what is recorded of a channel in a range.
type Timeline struct {
	Start    time.Time  `json:"start"`
	End      time.Time  `json:"end"`
	Recorded []Interval `json:"recorded"`
	Gaps     []Interval `json:"gaps"`
	Segments int        `json:"segments"`
	Bytes    int64      `json:"bytes"`
	// Seconds is the recorded time within the range.
	Seconds float64 `json:"recorded_seconds"`
}

// ErrBadRange means a range whose end is not after its start, or that is
// longer than MaxRange.
var ErrBadRange = errors.New("record: bad time range")

// MaxRange is the longest range a timeline, playback or export covers.
const MaxRange = 31 * 24 * time.Hour

// CheckRange validates [from, to).
func CheckRange(from, to time.Time) error {
	switch {
	case from.IsZero() || to.IsZero():
		return fmt.Errorf("%w: start and end are required (RFC 3339)", ErrBadRange)
	case !to.After(from):
		return fmt.Errorf("%w: end %s is not after start %s", ErrBadRange, to.Format(time.RFC3339), from.Format(time.RFC3339))
	case to.Sub(from) > MaxRange:
		return fmt.Errorf("%w: %v is longer than the %v that one request may cover", ErrBadRange, to.Sub(from), MaxRange)
	}
	return nil
}

// Timeline returns the recorded intervals and the gaps of a channel in
// [from, to), from the index alone (no file is read).
func (c *Catalog) Timeline(ctx context.Context, channelID int64, from, to time.Time) (Timeline, error) {
	if err := CheckRange(from, to); err != nil {
		return Timeline{}, err
	}
	segs, err := c.Index.SegmentSpans(ctx, channelID, from, to)
	if err != nil {
		return Timeline{}, err
	}
	return buildTimeline(c.withOpen(segs, channelID, from, to), from, to), nil
}

func buildTimeline(segs []model.Segment, from, to time.Time) Timeline {
	tl := Timeline{Start: from.UTC(), End: to.UTC(), Recorded: []Interval{}, Gaps: []Interval{}, Segments: len(segs)}
	for _, g := range segs {
		tl.Bytes += g.Bytes
		s, e := maxTime(g.Start, from), minTime(g.End, to)
		if !e.After(s) {
			continue
		}
		if n := len(tl.Recorded); n > 0 && !s.After(tl.Recorded[n-1].End.Add(contiguous)) {
			tl.Recorded[n-1].End = maxTime(tl.Recorded[n-1].End, e.UTC())
			continue
		}
		tl.Recorded = append(tl.Recorded, Interval{Start: s.UTC(), End: e.UTC()})
	}
	at := from.UTC()
	for _, iv := range tl.Recorded {
		if iv.Start.After(at) {
			tl.Gaps = append(tl.Gaps, Interval{Start: at, End: iv.Start})
		}
		at = iv.End
		tl.Seconds += iv.End.Sub(iv.Start).Seconds()
	}
	if to.After(at) {
		tl.Gaps = append(tl.Gaps, Interval{Start: at, End: to.UTC()})
	}
	return tl
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

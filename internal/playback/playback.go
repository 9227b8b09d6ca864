// Package playback plays back a time range of a channel's recording, as
// an HLS VOD playlist over the segment files (RFC 8216) and as one
// stitched fragmented MP4 (ISO/IEC 14496-12 §8.8).
//
// NewPlan scans the segment files that overlap [start, end) (recfile.Scan;
// only the committed bytes of an open segment) and picks the fragments to
// play: from the last keyframe fragment at or before start, through the
// last fragment that begins before end. Files that do not follow each
// other (another recording run, a missing or damaged file, new codec
// parameters) are separated by a discontinuity; the time between them
// is not played (gaps are removed).
//
// # Pre-roll and post-roll
//
// Decoding must begin at a keyframe, so the fragments of a plan begin up
// to a GOP before start (the pre-roll, Plan.Preroll) and, ending at a
// fragment boundary, end up to a fragment after end (the post-roll,
// Plan.Postroll). Both outputs carry these fragments and present the same
// media, Plan.Duration: [start, end) without the gaps. They hide the
// pre-roll and the post-roll differently, because a playlist can only
// point at the bytes of the recorded files while the MP4 is written anew:
//
//   - The MP4 starts with the keyframe, but its media is [start, end): the
//     video frames of the pre-roll are kept, as decoding needs them, with a
//     duration of one tick each, and an edit list (elst media_time) skips
//     those ticks; the frame across start is shortened to begin at start;
//     the audio from before start is dropped. After end, video frames are
//     dropped and the one across end is shortened; audio frames that begin
//     at or after end are dropped. So the MP4 lasts Duration (to an audio
//     frame) as players and ffprobe measure it. An edit list alone would
//     not do: FFmpeg counts all the media of a fragmented file as its
//     duration, whatever the edit list says.
//   - The EXTINF of the playlist are the real durations of the whole
//     fragments it lists, so they add up to Preroll + Duration + Postroll;
//     EXT-X-START:TIME-OFFSET=<Preroll>,PRECISE=YES makes the player begin
//     at start. The player shows the post-roll (less than a fragment) at
//     the end.
//
// # Codec changes
//
// A discontinuity whose files have other tracks or codec parameters than
// the first file gets a new EXT-X-MAP in the playlist. An MP4 has a single
// init segment, so it stops before such a period: Plan.MP4Duration says how
// much it holds.
//
// # Serving the MP4
//
// NewPlan lays out the whole MP4 (Plan.MP4Size) from the headers of the
// fragments, reading no sample data. Plan.MP4 returns an io.ReadSeeker of
// it for http.ServeContent, which answers Range requests, so that a
// browser's <video src> can seek; Plan.WriteMP4 streams it whole. Both
// read the segment files as they go, with bounded memory.
package playback

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/recfile"
)

// Errors of NewPlan.
var (
	// ErrNoRecording means that no fragment of the segments plays within
	// the range: it falls in a gap, or before or after the recording.
	ErrNoRecording = errors.New("playback: no recording in range")
	// ErrInvalidRange means that end is not after start.
	ErrInvalidRange = errors.New("playback: invalid time range")
)

// Opener opens the file of a segment. The Object is closed by the caller
// of Opener.
type Opener func(ctx context.Context, seg model.Segment) (blob.Object, error)

// Plan is what plays of a time range: the fragments of the segment files
// in presentation order, split in periods at discontinuities. A Plan is
// immutable once built and safe for concurrent use: WritePlaylist, MP4
// and WriteMP4 may run at the same time. It keeps the scans of the files,
// some 100 bytes per fragment, and the opener.
type Plan struct {
	// Start and End are the range asked for.
	Start, End time.Time
	// Preroll is the media from the first keyframe to start (0 when start
	// is in a gap); Postroll is the media of the last fragment from end
	// on.
	Preroll, Postroll time.Duration
	// Duration is the media presented: the recording within [start, end),
	// gaps removed.
	Duration time.Duration
	// MP4Duration is the part of Duration that the MP4 holds: less than
	// Duration when the MP4 stops at new codec parameters.
	MP4Duration time.Duration
	// PresentStart is the wall-clock time of what is presented first:
	// start, or the end of a gap at start.
	PresentStart time.Time

	open    Opener
	first   *file     // the first file: its init starts the MP4
	periods []*period // at least one
	mp4     int       // periods that the MP4 holds
	preroll int       // main-track samples compressed to a tick each
	pieces  []piece   // the MP4, in order
	mp4Size int64
}

// file is a scanned segment file.
type file struct {
	seg  model.Segment
	scan *recfile.File
	main *recfile.Track
}

// frag is a fragment picked for playing.
type frag struct {
	f    *file
	fr   *recfile.Fragment
	wall time.Time // wall-clock time of its start
}

// main returns the run of the main track of g, if it has one.
func (g *frag) main() (recfile.FragmentTrack, bool) { return g.fr.Track(g.f.main.ID) }

// startTime returns the earliest decode time of the tracks of g, in ticks
// of a mainTS-Hz clock, rounded down.
func startTime(g *frag, mainTS uint32) uint64 {
	v := uint64(math.MaxUint64)
	for _, ft := range g.fr.Tracks {
		if t := g.f.scan.TrackByID(ft.ID); t != nil {
			v = min(v, rescale(ft.BaseTime, t.TimeScale, mainTS))
		}
	}
	return v
}

// period is a stretch of fragments that follow each other without a gap.
//
// The MP4 re-times it by one offset: a sample at input decode time t of a
// track with timescale ts is written at t - rescale(rIn, ts) +
// rescale(rOut, ts), rIn and rOut being in main-track ticks. Samples before
// rIn are dropped, except that in the first period the main track's are
// compressed to a tick each (the pre-roll) and the one across rIn is
// shortened to start there; in the last period samples at or after endIn
// are dropped and the main-track one across it is shortened (the
// post-roll).
type period struct {
	frags []*frag
	wall  time.Time // of the first fragment

	rIn, rOut uint64
	first     bool
	trim      bool
	endIn     uint64
}

// NewPlan scans segs, the segments of a channel ordered by Start that
// overlap [start, end), and plans the playing of that range: it reads the
// init and moofs of the files (once each, plus the moofs of the fragments
// to cut), not their sample data. Segments that end before start or begin
// at or after end are skipped. Errors wrap ErrNoRecording when nothing of
// the range is recorded in segs, ErrInvalidRange when end is not after
// start, and the errors of open and recfile.Scan.
func NewPlan(ctx context.Context, segs []model.Segment, open Opener, start, end time.Time) (*Plan, error) {
	if !end.After(start) {
		return nil, fmt.Errorf("%w: end %s is not after start %s", ErrInvalidRange, end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
	}
	p := &Plan{Start: start, End: end, open: open}
	files, err := p.scan(ctx, segs)
	if err != nil {
		return nil, err
	}
	if err := p.pick(ctx, files); err != nil {
		return nil, err
	}
	p.layout()
	if err := p.buildMP4(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// scan scans the files of the segments that may hold part of the range.
func (p *Plan) scan(ctx context.Context, segs []model.Segment) ([]*file, error) {
	var files []*file
	for _, seg := range segs {
		if !seg.Start.Before(p.End) || (!seg.Open && !seg.End.After(p.Start)) {
			continue
		}
		var f *file
		err := p.with(ctx, seg, func(obj blob.Object) error {
			size := obj.Size()
			if seg.Bytes > 0 && seg.Bytes < size {
				size = seg.Bytes
			}
			scan, err := recfile.Scan(obj, size)
			if err != nil {
				return err
			}
			f = &file{seg: seg, scan: scan, main: scan.MainTrack()}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(f.scan.Fragments) > 0 {
			files = append(files, f)
		}
	}
	return files, nil
}

// with opens the file of seg for fn.
func (p *Plan) with(ctx context.Context, seg model.Segment, fn func(blob.Object) error) error {
	obj, err := p.open(ctx, seg)
	if err != nil {
		return fmt.Errorf("playback: open %s: %w", seg.Key, err)
	}
	err = fn(obj)
	cerr := obj.Close()
	if err != nil {
		return fmt.Errorf("playback: %s: %w", seg.Key, err)
	}
	if cerr != nil {
		return fmt.Errorf("playback: close %s: %w", seg.Key, cerr)
	}
	return nil
}

// follows reports whether the fragments of b continue those of a on one
// timeline: same run, same tracks and the decode time of the main track
// going on.
func follows(a, b *file) bool {
	if a.seg.Run != b.seg.Run || !a.scan.SameTracks(b.scan) {
		return false
	}
	last := &a.scan.Fragments[len(a.scan.Fragments)-1]
	lt, ok1 := last.Track(a.main.ID)
	ft, ok2 := b.scan.Fragments[0].Track(b.main.ID)
	return ok1 && ok2 && lt.End() == ft.BaseTime
}

// pick chooses the fragments to play and splits them in periods.
func (p *Plan) pick(ctx context.Context, files []*file) error {
	var all []*frag
	var brk []bool // brk[i]: all[i] does not follow all[i-1]
	for i, f := range files {
		for j := range f.scan.Fragments {
			fr := &f.scan.Fragments[j]
			all = append(all, &frag{f: f, fr: fr, wall: f.seg.Start.Add(fr.Start)})
			brk = append(brk, j == 0 && (i == 0 || !follows(files[i-1], f)))
		}
	}
	end := func(g *frag) time.Time { return g.wall.Add(g.fr.Duration) }

	// The fragment that holds start, and the keyframe before it.
	at, first := -1, -1
	for i, g := range all {
		if !g.wall.After(p.Start) && end(g).After(p.Start) {
			at = i
			break
		}
	}
	if at >= 0 {
		for i := at; i >= 0; i-- {
			if all[i].fr.Key {
				first = i
				break
			}
			if brk[i] {
				break
			}
		}
	}
	fromStart := first >= 0
	if !fromStart {
		// start is in a gap, before the recording or in a period that
		// has no keyframe before it: play from the next keyframe.
		for i := at + 1; i < len(all); i++ {
			if all[i].fr.Key && end(all[i]).After(p.Start) {
				first = i
				break
			}
		}
	}
	last := -1
	for i := len(all) - 1; i >= 0 && i >= first; i-- {
		if all[i].wall.Before(p.End) {
			last = i
			break
		}
	}
	if first < 0 || last < first {
		return fmt.Errorf("%w: %s to %s", ErrNoRecording, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339))
	}

	// Periods; each starts at a keyframe (first is one).
	var cur *period
	for i := first; i <= last; i++ {
		g := all[i]
		if brk[i] {
			cur = nil
		}
		if cur == nil {
			if !g.fr.Key {
				continue // undecodable after a discontinuity
			}
			cur = &period{wall: g.wall}
			p.periods = append(p.periods, cur)
		}
		cur.frags = append(cur.frags, g)
	}
	p.first = p.periods[0].frags[0].f
	for _, per := range p.periods {
		for _, g := range per.frags {
			p.Duration += g.fr.Duration
		}
	}

	// Pre-roll: the main-track samples before start.
	p0 := p.periods[0]
	p0.first = true
	p0.rIn = startTime(p0.frags[0], p.first.main.TimeScale)
	p.PresentStart = p0.wall
	if fromStart {
		n, rIn, preroll, err := p.findStart(ctx, all[first:at+1])
		if err != nil {
			return err
		}
		p.preroll, p0.rIn, p0.rOut = n, rIn, uint64(n)
		p.Preroll, p.PresentStart = preroll, p.Start
	}

	// Post-roll: the media of the last fragment from end on.
	lp := p.periods[len(p.periods)-1]
	lg := lp.frags[len(lp.frags)-1]
	if endIn, kept, ok := p.findEnd(lg); ok && end(lg).After(p.End) {
		lp.trim, lp.endIn = true, endIn
		p.Postroll = lg.fr.Duration - kept
	}
	p.Duration -= p.Preroll + p.Postroll
	return nil
}

// samples calls fn with the samples of each fragment of frags, in order,
// opening each file once, until fn returns stop or an error.
func (p *Plan) samples(ctx context.Context, frags []*frag, fn func(g *frag, ts []recfile.TrackSamples) (stop bool)) error {
	for i := 0; i < len(frags); {
		f := frags[i].f
		stop := false
		err := p.with(ctx, f.seg, func(obj blob.Object) error {
			for ; i < len(frags) && frags[i].f == f && !stop; i++ {
				ts, err := recfile.ReadSamples(obj, *frags[i].fr)
				if err != nil {
					return err
				}
				stop = fn(frags[i], ts)
			}
			return nil
		})
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// mainSamples returns the samples of the main track of g among ts.
func mainSamples(g *frag, ts []recfile.TrackSamples) (recfile.TrackSamples, bool) {
	for _, t := range ts {
		if t.ID == g.f.main.ID {
			return t, true
		}
	}
	return recfile.TrackSamples{}, false
}

// findStart reads the samples of frags, from the keyframe fragment to the
// one that holds start, and returns how many main-track samples end at or
// before start (the pre-roll), the decode time of start in main-track
// ticks, and the pre-roll as a duration.
func (p *Plan) findStart(ctx context.Context, frags []*frag) (n int, rIn uint64, preroll time.Duration, err error) {
	found := false
	ts := p.first.main.TimeScale
	err = p.samples(ctx, frags, func(g *frag, tracks []recfile.TrackSamples) bool {
		t, ok := mainSamples(g, tracks)
		if !ok {
			return false
		}
		at := t.BaseTime
		for _, s := range t.Samples {
			w := g.wall.Add(recfile.TicksToDuration(at-t.BaseTime, ts))
			if !p.Start.Before(w) && p.Start.Before(w.Add(recfile.TicksToDuration(uint64(s.Duration), ts))) {
				rIn = at + recfile.DurationToTicks(p.Start.Sub(w), ts)
				preroll = g.wall.Sub(frags[0].wall) + recfile.TicksToDuration(rIn-t.BaseTime, ts)
				found = true
				return true
			}
			n++
			at += uint64(s.Duration)
		}
		return false
	})
	if err == nil && !found {
		err = fmt.Errorf("playback: %s: no sample at %s", frags[len(frags)-1].f.seg.Key, p.Start.Format(time.RFC3339Nano))
	}
	return n, rIn, preroll, err
}

// findEnd returns the decode time of end in the main track of g, the last
// fragment, and the media of g before it.
func (p *Plan) findEnd(g *frag) (endIn uint64, kept time.Duration, ok bool) {
	t, ok := g.main()
	if !ok {
		return 0, 0, false
	}
	ts := g.f.main.TimeScale
	endIn = t.BaseTime + recfile.DurationToTicks(p.End.Sub(g.wall), ts)
	if endIn >= t.End() {
		return 0, 0, false
	}
	return endIn, recfile.TicksToDuration(endIn-t.BaseTime, ts), true
}

// layout sets the re-timing of the periods of the MP4 (see period): each
// starts where the previous one ended, on the track that ends last.
func (p *Plan) layout() {
	mainTS := p.first.main.TimeScale
	p.mp4 = len(p.periods)
	for i, per := range p.periods {
		if i > 0 && !per.frags[0].f.scan.SameTracks(p.first.scan) {
			p.mp4 = i
			break
		}
		if i > 0 {
			prev := p.periods[i-1]
			per.rOut = 0
			for id, e := range prev.ends() {
				t := p.first.scan.TrackByID(id)
				in := rescale(prev.rIn, mainTS, t.TimeScale)
				if e < in {
					continue // all dropped
				}
				out := e - in + rescale(prev.rOut, mainTS, t.TimeScale)
				per.rOut = max(per.rOut, rescaleCeil(out, t.TimeScale, mainTS))
			}
			per.rIn = startTime(per.frags[0], mainTS)
		}
	}
	p.MP4Duration = 0
	for _, per := range p.periods[:p.mp4] {
		for _, g := range per.frags {
			p.MP4Duration += g.fr.Duration
		}
	}
	p.MP4Duration -= p.Preroll
	if p.mp4 == len(p.periods) {
		p.MP4Duration -= p.Postroll
	}
}

// ends returns the end of the decode time of each track in the period.
func (per *period) ends() map[int]uint64 {
	out := map[int]uint64{}
	for _, g := range per.frags {
		for _, t := range g.fr.Tracks {
			out[t.ID] = max(out[t.ID], t.End())
		}
	}
	return out
}

// rescale converts v ticks of a from-Hz clock into a to-Hz clock, rounding
// down (and saturating).
func rescale(v uint64, from, to uint32) uint64 {
	if from == to || from == 0 {
		return v
	}
	hi, lo := bits.Mul64(v, uint64(to))
	if hi >= uint64(from) {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, uint64(from))
	return q
}

// rescaleCeil is rescale rounding up.
func rescaleCeil(v uint64, from, to uint32) uint64 {
	if from == to || from == 0 {
		return v
	}
	hi, lo := bits.Mul64(v, uint64(to))
	if hi >= uint64(from) {
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, uint64(from))
	if r != 0 {
		q++
	}
	return q
}

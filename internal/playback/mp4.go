package playback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/recfile"
)

// copyBufferSize is the buffer through which WriteMP4 copies.
const copyBufferSize = 32 << 10

// piece is a byte range of the MP4: bytes of its own (the init, a moof
// written anew), the moof of a file to patch, or sample data of a file.
type piece struct {
	off, size int64 // in the MP4

	data []byte // bytes of its own, or:

	f   *file // bytes of f from src
	src int64

	per *period // with f: a moof to patch with the re-timing of per and seq
	seq uint32
}

// bounds are where the samples of a track that are kept lie, in input
// decode time, and how they are moved.
type bounds struct {
	lower, upper  uint64 // keep [lower, upper)
	offIn, offOut uint64 // out = in - offIn + offOut
	main          bool   // the main track: samples across a bound are shortened
	compress      bool   // samples before lower are compressed, not dropped
}

func (per *period) bounds(p *Plan, id int) bounds {
	mainTS := p.first.main.TimeScale
	ts := p.first.scan.TrackByID(id).TimeScale
	b := bounds{
		offIn:  rescale(per.rIn, mainTS, ts),
		offOut: rescale(per.rOut, mainTS, ts),
		upper:  ^uint64(0),
		main:   id == p.first.main.ID,
	}
	b.lower = b.offIn
	b.compress = per.first && b.main
	if per.trim {
		b.upper = rescaleCeil(per.endIn, mainTS, ts)
	}
	return b
}

// copied reports whether fragment g goes into the MP4 as it is, but for
// its moof's decode times and sequence number: none of its samples is
// outside the bounds.
func (per *period) copied(p *Plan, g *frag) bool {
	for _, t := range g.fr.Tracks {
		b := per.bounds(p, t.ID)
		if t.BaseTime < b.lower || t.End() > b.upper {
			return false
		}
	}
	return true
}

// buildMP4 lays out the MP4 in pieces. The samples of the fragments that
// are cut are read here; the data is not.
func (p *Plan) buildMP4(ctx context.Context) error {
	media := p.MP4Duration + recfile.TicksToDuration(uint64(p.preroll), p.first.main.TimeScale)
	edits := map[int]recfile.Edit{}
	for _, t := range p.first.scan.Tracks {
		edits[t.ID] = recfile.Edit{
			MediaTime: int64(rescale(uint64(p.preroll), p.first.main.TimeScale, t.TimeScale)),
			Duration:  p.MP4Duration,
		}
	}
	init, err := recfile.RewriteInit(p.first.scan.InitBytes, recfile.InitEdit{
		Created:  p.PresentStart,
		Duration: media,
		Edits:    edits,
		// The other tracks may start and end a little apart: what
		// their media lasts is only known once written.
		MediaDurations: map[int]time.Duration{p.first.main.ID: media},
	})
	if err != nil {
		return fmt.Errorf("playback: %s: %w", p.first.seg.Key, err)
	}
	p.add(piece{data: init})

	var cut []*frag
	for _, per := range p.periods[:p.mp4] {
		for _, g := range per.frags {
			for _, t := range g.fr.Tracks {
				if p.first.scan.TrackByID(t.ID) == nil {
					return fmt.Errorf("playback: %s: fragment at %d has track %d that %s lacks", g.f.seg.Key, g.fr.Offset, t.ID, p.first.seg.Key)
				}
			}
			if !per.copied(p, g) {
				cut = append(cut, g)
			}
		}
	}
	samples := map[*frag][]recfile.TrackSamples{}
	err = p.samples(ctx, cut, func(g *frag, ts []recfile.TrackSamples) bool {
		samples[g] = ts
		return false
	})
	if err != nil {
		return err
	}

	var seq uint32
	compressed := 0
	for _, per := range p.periods[:p.mp4] {
		for _, g := range per.frags {
			ts, ok := samples[g]
			if !ok {
				seq++
				p.add(piece{f: g.f, src: g.fr.Offset, size: g.fr.MoofSize, per: per, seq: seq})
				p.add(piece{f: g.f, src: g.fr.Offset + g.fr.MoofSize, size: g.fr.Size - g.fr.MoofSize})
				continue
			}
			tracks, ranges := per.cut(p, ts, &compressed)
			if len(tracks) == 0 {
				continue
			}
			seq++
			var payload uint64
			for _, r := range ranges {
				payload += uint64(r[1])
			}
			head := recfile.AppendMoof(nil, seq, tracks)
			head = recfile.AppendMdatHeader(head, payload)
			p.add(piece{data: head})
			for _, r := range ranges {
				p.add(piece{f: g.f, src: r[0], size: r[1]})
			}
		}
	}
	if compressed != p.preroll {
		return fmt.Errorf("playback: %s: %d pre-roll samples, %d planned", p.first.seg.Key, compressed, p.preroll)
	}
	return nil
}

// add appends a piece at the end of the MP4.
func (p *Plan) add(pc piece) {
	if pc.data != nil {
		pc.size = int64(len(pc.data))
	}
	pc.off = p.mp4Size
	p.mp4Size += pc.size
	p.pieces = append(p.pieces, pc)
}

// cut keeps the samples of a fragment that lie within the bounds of the
// period, re-timed, and returns them with the byte ranges (offset, size)
// of their data in the file, in order. compressed counts the pre-roll
// samples.
func (per *period) cut(p *Plan, ts []recfile.TrackSamples, compressed *int) ([]recfile.TrackSamples, [][2]int64) {
	var tracks []recfile.TrackSamples
	var ranges [][2]int64
	for _, t := range ts {
		b := per.bounds(p, t.ID)
		nt := recfile.TrackSamples{ID: t.ID}
		add := func(s recfile.Sample, out, dur uint64) {
			if len(nt.Samples) == 0 {
				nt.BaseTime = out
			}
			s.Duration = uint32(dur)
			nt.Samples = append(nt.Samples, s)
			if n := len(ranges); n > 0 && ranges[n-1][0]+ranges[n-1][1] == s.Offset {
				ranges[n-1][1] += int64(s.Size)
			} else {
				ranges = append(ranges, [2]int64{s.Offset, int64(s.Size)})
			}
		}
		at := t.BaseTime
		for _, s := range t.Samples {
			in, next := at, at+uint64(s.Duration)
			at = next
			switch {
			case in >= b.upper:
				// after end
			case in < b.lower && !b.compress:
				// before the start of the period
			case next <= b.lower:
				// pre-roll: decoded, not shown
				add(s, uint64(*compressed), 1)
				*compressed++
			case in < b.lower:
				// across start: shown from start
				add(s, b.offOut, min(next, b.upper)-b.lower)
			case next > b.upper && b.main:
				// across end: shown up to end
				add(s, in-b.offIn+b.offOut, b.upper-in)
			default:
				add(s, in-b.offIn+b.offOut, uint64(s.Duration))
			}
		}
		if len(nt.Samples) > 0 {
			tracks = append(tracks, nt)
		}
	}
	return tracks, ranges
}

// MP4Size returns the size of the MP4 of the plan in bytes.
func (p *Plan) MP4Size() int64 { return p.mp4Size }

// WriteMP4 writes the MP4 of the plan to w (see MP4 for what it holds),
// reading the segment files as it goes, through a buffer of 32 KiB and at
// most one moof: memory does not grow with the range. The bytes written
// before an error are a truncated MP4; an HTTP handler can only abort the
// response then. WriteMP4 stops when ctx is done.
func (p *Plan) WriteMP4(ctx context.Context, w io.Writer) error {
	r := p.MP4(ctx)
	defer r.Close()
	_, err := io.CopyBuffer(onlyWriter{w}, r, make([]byte, copyBufferSize))
	if err != nil {
		return fmt.Errorf("playback: write mp4: %w", err)
	}
	return nil
}

// onlyWriter hides any ReadFrom of the destination, so that CopyBuffer
// uses the bounded buffer.
type onlyWriter struct{ io.Writer }

// MP4 returns a reader of the stitched fragmented MP4 of the plan, to be
// served with http.ServeContent (which answers Range requests, so that a
// browser's <video src> can seek) or copied whole. It holds:
//
//   - the init segment (ftyp+moov) of the first file, with the creation
//     time PresentStart, the durations, and an edit list per track that
//     skips the pre-roll;
//   - the fragments of the plan, numbered from 1, re-timed so that decode
//     times start at zero and go on without gap across discontinuities. A
//     fragment is copied as it is, its moof patched, unless samples must be
//     cut from it (the pre-roll, the post-roll, audio from before the start
//     of a period): then its moof is written anew and the data of the
//     samples kept is copied.
//
// It stops before a period whose tracks differ from the first file's. The
// reader opens one segment file at a time, with the ctx given here. It is
// not safe for concurrent use; take one per request.
func (p *Plan) MP4(ctx context.Context) *MP4Reader {
	return &MP4Reader{p: p, ctx: ctx, moofPiece: -1}
}

// MP4Reader reads the MP4 of a plan: see Plan.MP4.
type MP4Reader struct {
	p   *Plan
	ctx context.Context
	off int64

	cur *file // whose object is open
	obj blob.Object

	moof      []byte // the patched moof of pieces[moofPiece]
	moofPiece int
}

// Read implements io.Reader. It returns at most the rest of one piece.
func (r *MP4Reader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	p := r.p
	if r.off >= p.mp4Size {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	i := sort.Search(len(p.pieces), func(i int) bool { return p.pieces[i].off+p.pieces[i].size > r.off })
	pc := &p.pieces[i]
	rel := r.off - pc.off
	n := int(min(int64(len(b)), pc.size-rel))
	switch {
	case pc.f == nil:
		copy(b, pc.data[rel:rel+int64(n)])
	case pc.per != nil:
		if r.moofPiece != i {
			if err := r.readMoof(pc); err != nil {
				return 0, err
			}
			r.moofPiece = i
		}
		copy(b, r.moof[rel:rel+int64(n)])
	default:
		obj, err := r.object(pc.f)
		if err != nil {
			return 0, err
		}
		if err := readFull(obj, b[:n], pc.src+rel); err != nil {
			return 0, fmt.Errorf("playback: read %s: %w", pc.f.seg.Key, err)
		}
	}
	r.off += int64(n)
	return n, nil
}

// readMoof reads the moof of pc and patches its sequence number and decode
// times.
func (r *MP4Reader) readMoof(pc *piece) error {
	obj, err := r.object(pc.f)
	if err != nil {
		return err
	}
	if int64(cap(r.moof)) < pc.size {
		r.moof = make([]byte, pc.size)
	}
	r.moof = r.moof[:pc.size]
	r.moofPiece = -1
	if err := readFull(obj, r.moof, pc.src); err != nil {
		return fmt.Errorf("playback: read %s: %w", pc.f.seg.Key, err)
	}
	err = recfile.PatchMoof(r.moof, pc.seq, func(id int, old uint64) uint64 {
		b := pc.per.bounds(r.p, id)
		return old - b.offIn + b.offOut
	})
	if err != nil {
		return fmt.Errorf("playback: %s: %w", pc.f.seg.Key, err)
	}
	return nil
}

// object returns the open object of f, closing any other.
func (r *MP4Reader) object(f *file) (blob.Object, error) {
	if r.cur == f {
		return r.obj, nil
	}
	if r.obj != nil {
		r.obj.Close()
		r.cur, r.obj = nil, nil
	}
	obj, err := r.p.open(r.ctx, f.seg)
	if err != nil {
		return nil, fmt.Errorf("playback: open %s: %w", f.seg.Key, err)
	}
	r.cur, r.obj = f, obj
	return obj, nil
}

// Seek implements io.Seeker.
func (r *MP4Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.p.mp4Size
	default:
		return 0, errors.New("playback: seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("playback: seek: negative position")
	}
	r.off = offset
	return offset, nil
}

// Close closes the segment file that the reader has open. The reader
// can be used again after it: it opens the file it needs.
func (r *MP4Reader) Close() error {
	if r.obj == nil {
		return nil
	}
	err := r.obj.Close()
	r.cur, r.obj = nil, nil
	return err
}

// readFull reads len(b) bytes of r at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

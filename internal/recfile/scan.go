// Package recfile reads the segment files of the recorder.
//
// A segment file is one self-contained fragmented MP4 (ISO/IEC 14496-12
// §8.8): an ftyp and a moov as mediacommon's fmp4.Init writes them (track
// 1 is H.264 or H.265 video with a 90 kHz timescale; an optional track 2
// is AAC, Opus or 16-bit PCM audio), then moof+mdat fragments as
// fmp4.Part writes them, one traf per track, a new fragment at each video
// keyframe and after at most a second. Decode times (tfdt) go on from one
// file of a recording run to the next.
//
// Scan walks the top-level boxes of a file and parses the init and every
// moof without reading the sample data; a file cut short by a crash, or
// still being written, ends at its last whole fragment. Scan bounds what
// it reads whatever the file claims, and fails with a *FormatError on
// anything else than such a file.
//
// ReadSamples lists the samples of a fragment from its moof, ReadPart
// reads a whole fragment with mediacommon. RewriteInit, PatchMoof,
// AppendMoof and AppendMdatHeader are what a stitcher needs to copy
// fragments, whole or in part, into another file. Package recfiletest
// writes segment files for tests.
package recfile

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	mcodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Errors of Scan. They are wrapped by a *FormatError that says where in
// the file the problem is.
var (
	// ErrFormat means the input is not a segment file.
	ErrFormat = errors.New("recfile: not a segment file")
	// ErrTruncated means the file ends inside its init segment (ftyp+moov),
	// so that none of it can be played.
	ErrTruncated = errors.New("recfile: init segment cut short")
)

// FormatError is the error of Scan for a file it cannot read.
type FormatError struct {
	Offset int64  // of the box at fault
	Reason string // what is wrong with it
	Err    error  // ErrFormat or ErrTruncated
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("recfile: box at offset %d: %s", e.Offset, e.Reason)
}

// Unwrap returns ErrFormat or ErrTruncated.
func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(off int64, format string, args ...any) error {
	return &FormatError{Offset: off, Reason: fmt.Sprintf(format, args...), Err: ErrFormat}
}

// Kind is the kind of media of a track.
type Kind int

// Kinds of tracks.
const (
	KindVideo Kind = iota + 1
	KindAudio
)

func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Track is a track of a segment file.
type Track struct {
	ID        int
	TimeScale uint32
	Kind      Kind
	// Codec is the RFC 6381 codecs value ("avc1.64001f", "mp4a.40.2",
	// "ipcm"), empty for a codec without one.
	Codec string
	// Params is the codec with its parameters, as mediacommon read them
	// from the sample entry. It is shared: do not modify it.
	Params mcodecs.Codec
	// Edit is the edit list of the track, nil when it has none (files of
	// the recorder have none; stitched files do).
	Edit *Edit
}

// File is what Scan found in a segment file.
type File struct {
	// Size is the number of bytes scanned: the size given to Scan.
	Size int64
	// InitSize is the size of the init segment: ftyp, moov and any box in
	// between, from the start of the file.
	InitSize int64
	// InitBytes holds the first InitSize bytes of the file.
	InitBytes []byte
	// Init is the init segment as mediacommon parsed it.
	Init *fmp4.Init
	// Created is the creation time of the movie (mvhd); zero if unset.
	Created time.Time
	// Tracks are the tracks of the init segment, in its order.
	Tracks []Track
	// Fragments are the whole moof+mdat pairs, in file order.
	Fragments []Fragment
	// ValidSize is the end of the last whole fragment (InitSize if there
	// is none): the bytes of the file that can be played.
	ValidSize int64
	// Truncated reports a file whose tail after ValidSize is a partial box
	// (a crash, or a file still being written) or zeros.
	Truncated bool
	// Duration is the sum of the durations of the fragments.
	Duration time.Duration
}

// Fragment is one moof and the mdat after it.
type Fragment struct {
	Offset   int64  // of the moof, from the start of the file
	Size     int64  // of the moof and the mdat
	MoofSize int64  // of the moof alone
	Sequence uint32 // mfhd sequence number
	// Key reports that the first video sample of the fragment is a sync
	// sample (always true in a file without video).
	Key bool
	// Tracks has one entry per traf, in moof order.
	Tracks []FragmentTrack
	// Start is the decode time of the fragment from the start of the
	// first fragment of the file, and Duration its length, both from the
	// video track (the first track if there is no video, or the end of the
	// previous fragment if the fragment lacks that track).
	Start, Duration time.Duration
}

// FragmentTrack is the run of samples of one track in a fragment.
type FragmentTrack struct {
	ID       int
	BaseTime uint64 // tfdt: decode time of the first sample, in the track's timescale
	Duration uint64 // sum of the sample durations, in the track's timescale
	Samples  int
}

// End returns BaseTime + Duration.
func (t FragmentTrack) End() uint64 { return t.BaseTime + t.Duration }

// Track returns the run of the track with ID id, if the fragment has one.
func (f *Fragment) Track(id int) (FragmentTrack, bool) {
	for _, t := range f.Tracks {
		if t.ID == id {
			return t, true
		}
	}
	return FragmentTrack{}, false
}

// MainTrack returns the video track, or the first track of a file
// without video: the track that fragment times are measured on.
func (f *File) MainTrack() *Track {
	for i := range f.Tracks {
		if f.Tracks[i].Kind == KindVideo {
			return &f.Tracks[i]
		}
	}
	if len(f.Tracks) == 0 {
		return nil
	}
	return &f.Tracks[0]
}

// TrackByID returns the track with ID id, or nil.
func (f *File) TrackByID(id int) *Track {
	for i := range f.Tracks {
		if f.Tracks[i].ID == id {
			return &f.Tracks[i]
		}
	}
	return nil
}

// Codecs returns the RFC 6381 codecs of the tracks, comma-separated, as
// model.Segment.Codec holds them.
func (f *File) Codecs() string {
	var list []string
	for _, t := range f.Tracks {
		if t.Codec != "" {
			list = append(list, t.Codec)
		}
	}
	return strings.Join(list, ",")
}

// SameTracks reports whether f and g have the same tracks with the same
// codec parameters, so that the fragments of g play after the init of f.
func (f *File) SameTracks(g *File) bool {
	if len(f.Tracks) != len(g.Tracks) {
		return false
	}
	for i, a := range f.Tracks {
		b := g.Tracks[i]
		if a.ID != b.ID || a.TimeScale != b.TimeScale || a.Kind != b.Kind || !reflect.DeepEqual(a.Params, b.Params) {
			return false
		}
	}
	return true
}

// readAhead is how much Scan reads at once: a moof of a second of video
// and the header of its mdat usually fit, so a fragment costs one read.
const readAhead = 8 << 10

// reader reads the boxes of a file through a small window.
type reader struct {
	r    io.ReaderAt
	size int64
	win  []byte
	off  int64 // of win in the file
}

// at returns the n bytes at off; off+n must not exceed the size. The
// slice is valid until the next call.
func (rd *reader) at(off int64, n int) ([]byte, error) {
	if off >= rd.off && off+int64(n) <= rd.off+int64(len(rd.win)) {
		i := int(off - rd.off)
		return rd.win[i : i+n], nil
	}
	want := int64(max(n, readAhead))
	want = min(want, rd.size-off)
	if int64(cap(rd.win)) < want {
		rd.win = make([]byte, want)
	}
	rd.win = rd.win[:want]
	if err := readFull(rd.r, rd.win, off); err != nil {
		rd.win = rd.win[:0]
		return nil, err
	}
	rd.off = off
	return rd.win[:n], nil
}

// header reads the box header at off. ok is false when the file ends
// inside it or it is all zeros (the tail of a file cut by a crash).
func (rd *reader) header(off int64) (h boxHeader, ok bool, err error) {
	n := min(16, rd.size-off)
	if n < 8 {
		return h, false, nil
	}
	b, err := rd.at(off, int(n))
	if err != nil {
		return h, false, err
	}
	if allZero(b[:8]) {
		return h, false, nil
	}
	h, ok = parseBoxHeader(b)
	return h, ok, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// boxEnd checks the size of the box at off and returns its end, which may
// lie beyond the file.
func (rd *reader) boxEnd(off int64, h boxHeader) (uint64, error) {
	if !printableType(h.typ) {
		return 0, formatErr(off, "not an MP4 box (type %q)", h.typ[:])
	}
	size := h.size
	if size == 0 { // up to the end of the file
		size = uint64(rd.size - off)
	}
	if size < uint64(h.hdrSize) {
		return 0, formatErr(off, "box %q has an invalid size %d", h.typeString(), h.size)
	}
	return satAdd(uint64(off), size), nil
}

// Boxes that may appear between fragments and that Scan skips.
var skippedBoxes = map[string]bool{
	"free": true, "skip": true, "styp": true, "sidx": true, "ssix": true, "prft": true,
	"emsg": true, "uuid": true, "mfra": true, "meta": true, "udta": true, "pdin": true,
}

// Scan reads the segment file r of size bytes (for a file being written,
// the committed length): its init segment and the headers of its
// fragments, not their sample data. A partial box at the end is left out
// (File.Truncated); input that is not a segment file gives a
// *FormatError. Scan reads at most MaxInitSize + MaxMoofSize + 8 KiB at a
// time, whatever the file claims.
func Scan(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("recfile: negative size %d", size)
	}
	rd := &reader{r: r, size: size}
	f := &File{Size: size}
	if err := scanInit(rd, f); err != nil {
		return nil, err
	}
	if err := scanFragments(rd, f); err != nil {
		return nil, err
	}
	return f, nil
}

// scanInit reads the ftyp+moov of the file.
func scanInit(rd *reader, f *File) error {
	var off int64
	moovOff := int64(-1)
	for moovOff < 0 {
		h, ok, err := rd.header(off)
		if err != nil {
			return err
		}
		if !ok {
			if off == 0 && rd.size < 8 {
				return &FormatError{Offset: 0, Reason: fmt.Sprintf("file of %d bytes holds no box", rd.size), Err: ErrTruncated}
			}
			return &FormatError{Offset: off, Reason: fmt.Sprintf("file of %d bytes ends inside the init segment", rd.size), Err: ErrTruncated}
		}
		end, err := rd.boxEnd(off, h)
		if err != nil {
			return err
		}
		typ := h.typeString()
		switch {
		case off == 0 && typ != "ftyp":
			return formatErr(off, "want ftyp, got %q", typ)
		case off == 0, typ == "free", typ == "skip", typ == "uuid":
		case typ == "moov":
			moovOff = off
		default:
			return formatErr(off, "want moov, got %q", typ)
		}
		if h.size == 0 {
			return formatErr(off, "box %q without size in the init segment", typ)
		}
		if end > MaxInitSize {
			return formatErr(off, "init segment larger than %d bytes", MaxInitSize)
		}
		if end > uint64(rd.size) {
			return &FormatError{Offset: off, Reason: fmt.Sprintf("box %q of %d bytes ends after the file (%d bytes)", typ, end-uint64(off), rd.size), Err: ErrTruncated}
		}
		off = int64(end)
	}
	b, err := rd.at(0, int(off))
	if err != nil {
		return err
	}
	f.InitSize = off
	f.ValidSize = off
	f.InitBytes = append([]byte(nil), b...)
	init, mi, err := parseInit(f.InitBytes, int(moovOff))
	if err != nil {
		return formatErr(moovOff, "moov: %v", err)
	}
	f.Init, f.Created = init, mi.created
	for _, it := range init.Tracks {
		if it.ID <= 0 || f.TrackByID(it.ID) != nil {
			return formatErr(moovOff, "moov: invalid or repeated track ID %d", it.ID)
		}
		t := Track{ID: it.ID, TimeScale: it.TimeScale, Kind: KindAudio, Codec: codecString(it.Codec), Params: it.Codec}
		if it.Codec.IsVideo() {
			t.Kind = KindVideo
		}
		if e, ok := mi.edits[it.ID]; ok {
			t.Edit = &e
		}
		f.Tracks = append(f.Tracks, t)
	}
	return nil
}

// scanFragments reads the boxes after the init segment.
func scanFragments(rd *reader, f *File) error {
	main := f.MainTrack()
	if main == nil {
		return formatErr(0, "no tracks")
	}
	hasVideo := main.Kind == KindVideo
	var firstBase uint64 // of the main track in the first fragment
	var next time.Duration
	off := f.InitSize
	for off < rd.size {
		h, ok, err := rd.header(off)
		if err != nil {
			return err
		}
		if !ok {
			f.Truncated = true
			break
		}
		end, err := rd.boxEnd(off, h)
		if err != nil {
			return err
		}
		typ := h.typeString()
		if typ == "moof" && end-uint64(off) > MaxMoofSize {
			return formatErr(off, "moof of %d bytes, larger than %d", end-uint64(off), MaxMoofSize)
		}
		if end > uint64(rd.size) {
			f.Truncated = true
			break
		}
		switch {
		case typ == "moof":
		case typ == "mdat":
			return formatErr(off, "mdat without a moof")
		case skippedBoxes[typ]:
			off = int64(end)
			continue
		case typ == "ftyp" || typ == "moov":
			return formatErr(off, "a second %q", typ)
		default:
			return formatErr(off, "unexpected box %q", typ)
		}
		moofSize := int64(end) - off
		mdatOff := int64(end)
		mh, ok, err := rd.header(mdatOff)
		if err != nil {
			return err
		}
		if !ok {
			f.Truncated = true
			break
		}
		mdatEnd, err := rd.boxEnd(mdatOff, mh)
		if err != nil {
			return err
		}
		if mh.typeString() != "mdat" {
			return formatErr(mdatOff, "want mdat after the moof, got %q", mh.typeString())
		}
		if mdatEnd > uint64(rd.size) {
			f.Truncated = true
			break
		}
		moof, err := rd.at(off, int(moofSize))
		if err != nil {
			return err
		}
		mi, err := parseMoof(moof, dataBounds{
			moofOff: off,
			lo:      uint64(moofSize) + uint64(mh.hdrSize),
			hi:      mdatEnd - uint64(off),
			check:   true,
		}, false)
		if err != nil {
			return formatErr(off, "%v", err)
		}
		fr := Fragment{Offset: off, Size: int64(mdatEnd) - off, MoofSize: moofSize, Sequence: mi.seq, Key: !hasVideo}
		for _, t := range mi.trafs {
			if f.TrackByID(int(t.id)) == nil {
				return formatErr(off, "traf of track %d, which the moov lacks", t.id)
			}
			if _, dup := fr.Track(int(t.id)); dup {
				return formatErr(off, "two trafs of track %d", t.id)
			}
			if t.samples > math.MaxInt32 {
				return formatErr(off, "too many samples")
			}
			fr.Tracks = append(fr.Tracks, FragmentTrack{ID: int(t.id), BaseTime: t.base, Duration: t.dur, Samples: int(t.samples)})
			if int(t.id) == main.ID {
				if hasVideo && t.samples > 0 {
					fr.Key = t.sync
				}
				if len(f.Fragments) == 0 {
					firstBase = t.base
				}
				fr.Duration = ticksToDuration(t.dur, main.TimeScale)
				if t.base >= firstBase {
					next = ticksToDuration(t.base-firstBase, main.TimeScale)
				}
			}
		}
		fr.Start = next
		next = satAddDuration(next, fr.Duration)
		f.Duration = satAddDuration(f.Duration, fr.Duration)
		f.Fragments = append(f.Fragments, fr)
		off = int64(mdatEnd)
		f.ValidSize = off
	}
	return nil
}

// ticksToDuration converts v ticks of a timescale-Hz clock into a
// duration, saturating instead of overflowing.
func ticksToDuration(v uint64, timescale uint32) time.Duration {
	if timescale == 0 {
		return 0
	}
	ts := uint64(timescale)
	secs := v / ts
	if secs >= uint64(math.MaxInt64/int64(time.Second)) {
		return math.MaxInt64
	}
	return time.Duration(secs)*time.Second + time.Duration(v%ts*uint64(time.Second)/ts)
}

// durationToTicks converts a non-negative duration into ticks of a
// timescale-Hz clock, rounding down.
func durationToTicks(d time.Duration, timescale uint32) uint64 {
	if d <= 0 {
		return 0
	}
	ns, ts := uint64(d), uint64(timescale)
	return ns/uint64(time.Second)*ts + ns%uint64(time.Second)*ts/uint64(time.Second)
}

// durationToTicksCeil is durationToTicks rounding up.
func durationToTicksCeil(d time.Duration, timescale uint32) uint64 {
	v := durationToTicks(d, timescale)
	if ticksToDuration(v, timescale) < d {
		v++
	}
	return v
}

// TicksToDuration converts v ticks of a timescale-Hz clock into a
// duration, rounding down and saturating.
func TicksToDuration(v uint64, timescale uint32) time.Duration { return ticksToDuration(v, timescale) }

// DurationToTicks converts a duration into ticks of a timescale-Hz clock,
// rounding down; a negative duration gives 0.
func DurationToTicks(d time.Duration, timescale uint32) uint64 { return durationToTicks(d, timescale) }

func satAddDuration(a, b time.Duration) time.Duration {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

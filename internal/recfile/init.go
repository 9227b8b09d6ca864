package recfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/codecparams"
	hcodecs "github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	mcodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// mp4Epoch is the origin of the times of mvhd: 1904-01-01 UTC (ISO/IEC
// 14496-12 §8.2.2.3).
var mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)

// Edit is the single edit of a track's edit list (ISO/IEC 14496-12
// §8.6.6): the presentation of the track starts at MediaTime of its media
// and lasts Duration.
type Edit struct {
	// MediaTime is where the presentation starts, in the timescale of the
	// track.
	MediaTime int64
	// Duration is the length of the presentation; 0 means up to the end
	// of the media. RewriteInit rounds it up to the movie timescale.
	Duration time.Duration
}

// movieInfo is what Scan reads from the moov besides mediacommon's Init.
type movieInfo struct {
	created   time.Time
	timescale uint32
	edits     map[int]Edit // by track ID
}

// parseMoov reads the mvhd and the edit lists of moov (a whole moov box)
// and returns moov without its edts boxes, which mediacommon's
// Init.Unmarshal does not accept.
func parseMoov(moov []byte) (movieInfo, []byte, error) {
	mi := movieInfo{edits: map[int]Edit{}}
	kids, err := children(moov[8:])
	if err != nil {
		return mi, nil, err
	}
	out := make([]byte, 0, len(moov))
	out = append(out, moov[:8]...)
	for _, c := range kids {
		switch c.typ {
		case "mvhd":
			mi.created, mi.timescale, err = parseMvhd(c.payload())
			if err != nil {
				return mi, nil, err
			}
			out = append(out, c.full...)
		case "trak":
			tk, err := children(c.payload())
			if err != nil {
				return mi, nil, fmt.Errorf("trak: %w", err)
			}
			var id int
			var edit *Edit
			start := len(out)
			out = append(out, c.full[:8]...)
			for _, t := range tk {
				switch t.typ {
				case "tkhd":
					var ok bool
					if id, _, ok = parseTkhd(t.payload()); !ok {
						return mi, nil, errors.New("invalid tkhd")
					}
					out = append(out, t.full...)
				case "mdia":
					// What RewriteInit reads, mediacommon does not all check.
					md, err := children(t.payload())
					if err != nil {
						return mi, nil, fmt.Errorf("mdia: %w", err)
					}
					for _, m := range md {
						if _, _, ok := parseMdhd(m.payload()); m.typ == "mdhd" && !ok {
							return mi, nil, errors.New("invalid mdhd")
						}
					}
					out = append(out, t.full...)
				case "edts":
					e, err := parseEdts(t.payload(), mi.timescale)
					if err != nil {
						return mi, nil, err
					}
					edit = e
				default:
					out = append(out, t.full...)
				}
			}
			binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start))
			if edit != nil {
				mi.edits[id] = *edit
			}
		case "mvex":
			if _, err := children(c.payload()); err != nil {
				return mi, nil, fmt.Errorf("mvex: %w", err)
			}
			out = append(out, c.full...)
		default:
			out = append(out, c.full...)
		}
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)))
	return mi, out, nil
}

// mvhdRest is the size of the fields of mvhd after the duration (§8.2.2).
const mvhdRest = 80

// parseMvhd returns the creation time and the timescale of an mvhd
// payload (§8.2.2).
func parseMvhd(p []byte) (time.Time, uint32, error) {
	be := binary.BigEndian
	var secs uint64
	var ts uint32
	switch {
	case len(p) >= 32+mvhdRest && p[0] == 1:
		secs, ts = be.Uint64(p[4:]), be.Uint32(p[20:])
	case len(p) >= 20+mvhdRest && p[0] == 0:
		secs, ts = uint64(be.Uint32(p[4:])), be.Uint32(p[12:])
	default:
		return time.Time{}, 0, errors.New("invalid mvhd")
	}
	if ts == 0 {
		return time.Time{}, 0, errors.New("mvhd timescale is 0")
	}
	var created time.Time
	if secs != 0 && secs < 1<<40 {
		created = mp4Epoch.Add(time.Duration(secs) * time.Second)
	}
	return created, ts, nil
}

// parseEdts returns the first edit of an edts payload that is not an
// empty edit, or nil.
func parseEdts(p []byte, movieTimescale uint32) (*Edit, error) {
	kids, err := children(p)
	if err != nil {
		return nil, fmt.Errorf("edts: %w", err)
	}
	be := binary.BigEndian
	for _, c := range kids {
		if c.typ != "elst" {
			continue
		}
		q := c.payload()
		if len(q) < 8 {
			return nil, errors.New("invalid elst")
		}
		v1 := q[0] == 1
		n := uint64(be.Uint32(q[4:]))
		q = q[8:]
		size := uint64(12)
		if v1 {
			size = 20
		}
		if uint64(len(q)) < n*size {
			return nil, errors.New("elst is cut short")
		}
		for i := uint64(0); i < n; i++ {
			e := q[i*size:]
			var dur uint64
			var mt int64
			if v1 {
				dur, mt = be.Uint64(e), int64(be.Uint64(e[8:]))
			} else {
				dur, mt = uint64(be.Uint32(e)), int64(int32(be.Uint32(e[4:])))
			}
			if mt == -1 {
				continue // an empty edit
			}
			return &Edit{MediaTime: mt, Duration: ticksToDuration(dur, movieTimescale)}, nil
		}
	}
	return nil, nil
}

// parseInit parses the ftyp+moov at the start of a file.
func parseInit(b []byte, moovOff int) (*fmp4.Init, movieInfo, error) {
	mi, stripped, err := parseMoov(b[moovOff:])
	if err != nil {
		return nil, mi, err
	}
	buf := make([]byte, 0, moovOff+len(stripped))
	buf = append(buf, b[:moovOff]...)
	buf = append(buf, stripped...)
	var init fmp4.Init
	if err := unmarshalInit(&init, buf); err != nil {
		return nil, mi, err
	}
	return &init, mi, nil
}

// unmarshalInit calls mediacommon's Init.Unmarshal, turning a panic of the
// third-party parser on hostile input into an error.
func unmarshalInit(init *fmp4.Init, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("init parser failed: %v", r)
		}
	}()
	return init.Unmarshal(bytes.NewReader(b))
}

// codecString returns the RFC 6381 codecs value of a track's codec, or ""
// for a codec that has none in use.
func codecString(c mcodecs.Codec) string {
	switch c := c.(type) {
	case *mcodecs.H264:
		return codecparams.Marshal(&hcodecs.H264{SPS: c.SPS, PPS: c.PPS})
	case *mcodecs.H265:
		return codecparams.Marshal(&hcodecs.H265{VPS: c.VPS, SPS: c.SPS, PPS: c.PPS})
	case *mcodecs.MPEG4Audio:
		return codecparams.Marshal(&hcodecs.MPEG4Audio{Config: c.Config})
	case *mcodecs.Opus:
		return "opus"
	case *mcodecs.LPCM:
		return "ipcm" // ISO/IEC 23003-5
	}
	return ""
}

// InitEdit is how RewriteInit changes an init segment.
type InitEdit struct {
	// Created is the creation and modification time of the movie (mvhd);
	// zero leaves them unset.
	Created time.Time
	// Duration is the duration of the movie (mvhd), of its fragments
	// (mehd, §8.8.2) and of each track without an edit of its own (tkhd);
	// zero leaves them unknown.
	Duration time.Duration
	// MediaDurations gives the duration of the media of tracks by track
	// ID (mdhd). Players that cannot seek a fragmented file, such as one
	// streamed over HTTP, take the duration from there. A track without
	// an entry keeps the value of init.
	MediaDurations map[int]time.Duration
	// Edits gives the edit list of each track by track ID. A track without
	// an entry has none.
	Edits map[int]Edit
}

// RewriteInit returns a copy of init (an ftyp+moov as File.InitBytes holds
// it) with the times, durations and edit lists of e: mvhd, tkhd and mdhd
// become version 1 and carry them, mvex gets an mehd. init is not
// modified.
func RewriteInit(init []byte, e InitEdit) ([]byte, error) {
	top, err := children(init)
	if err != nil {
		return nil, fmt.Errorf("recfile: rewrite init: %w", err)
	}
	var out []byte
	seenMoov := false
	for _, c := range top {
		if c.typ != "moov" {
			out = append(out, c.full...)
			continue
		}
		seenMoov = true
		moov, err := rewriteMoov(c.payload(), e)
		if err != nil {
			return nil, fmt.Errorf("recfile: rewrite init: %w", err)
		}
		out = appendBox(out, "moov", moov)
	}
	if !seenMoov {
		return nil, errors.New("recfile: rewrite init: no moov")
	}
	return out, nil
}

func rewriteMoov(p []byte, e InitEdit) ([]byte, error) {
	kids, err := children(p)
	if err != nil {
		return nil, err
	}
	var timescale uint32
	for _, c := range kids {
		if c.typ == "mvhd" {
			if _, timescale, err = parseMvhd(c.payload()); err != nil {
				return nil, err
			}
		}
	}
	if timescale == 0 {
		return nil, errors.New("no mvhd")
	}
	dur := durationToTicksCeil(e.Duration, timescale)
	secs := mp4Seconds(e.Created)
	var out []byte
	for _, c := range kids {
		switch c.typ {
		case "mvhd":
			out = appendMvhd(out, c.payload(), secs, dur)
		case "trak":
			trak, err := rewriteTrak(c.payload(), e, timescale, secs)
			if err != nil {
				return nil, err
			}
			out = appendBox(out, "trak", trak)
		case "mvex":
			mx, err := children(c.payload())
			if err != nil {
				return nil, err
			}
			var mvex []byte
			if dur > 0 {
				mvex = appendBox(mvex, "mehd", []byte{1, 0, 0, 0}, binary.BigEndian.AppendUint64(nil, dur))
			}
			for _, m := range mx {
				if m.typ != "mehd" {
					mvex = append(mvex, m.full...)
				}
			}
			out = appendBox(out, "mvex", mvex)
		default:
			out = append(out, c.full...)
		}
	}
	return out, nil
}

// mp4Seconds returns t in seconds since 1904, or 0 for the zero time.
func mp4Seconds(t time.Time) uint64 {
	if t.IsZero() || !t.After(mp4Epoch) {
		return 0
	}
	return uint64(t.Sub(mp4Epoch) / time.Second)
}

// appendMvhd appends an mvhd of version 1 (§8.2.2) with the fields of old
// (a payload of version 0 or 1 that parseMvhd accepted) after its
// duration, and the given times.
func appendMvhd(dst, old []byte, secs, dur uint64) []byte {
	be := binary.BigEndian
	var ts uint32
	var rest []byte
	if old[0] == 1 {
		ts, rest = be.Uint32(old[20:]), old[32:]
	} else {
		ts, rest = be.Uint32(old[12:]), old[20:]
	}
	p := []byte{1, 0, 0, 0}
	p = be.AppendUint64(p, secs)
	p = be.AppendUint64(p, secs)
	p = be.AppendUint32(p, ts)
	p = be.AppendUint64(p, dur)
	return appendBox(dst, "mvhd", p, rest)
}

// tkhdRest is the size of the fields of tkhd after the duration (§8.3.2).
const tkhdRest = 60

// parseTkhd returns the track ID of a tkhd payload and its fields after
// the duration.
func parseTkhd(p []byte) (id int, rest []byte, ok bool) {
	be := binary.BigEndian
	switch {
	case len(p) >= 36+tkhdRest && p[0] == 1:
		return int(be.Uint32(p[20:])), p[36:], true
	case len(p) >= 24+tkhdRest && p[0] == 0:
		return int(be.Uint32(p[12:])), p[24:], true
	}
	return 0, nil, false
}

// rewriteTrak returns the payload of a trak with the times of e: tkhd and
// mdhd of version 1 with the durations, and the edit list of the track.
func rewriteTrak(p []byte, e InitEdit, movieTimescale uint32, secs uint64) ([]byte, error) {
	kids, err := children(p)
	if err != nil {
		return nil, err
	}
	be := binary.BigEndian
	id := -1
	for _, t := range kids {
		if t.typ == "tkhd" {
			var ok bool
			if id, _, ok = parseTkhd(t.payload()); !ok {
				return nil, errors.New("invalid tkhd")
			}
		}
	}
	var out []byte
	for _, t := range kids {
		switch t.typ {
		case "edts":
		case "tkhd":
			_, rest, _ := parseTkhd(t.payload())
			ed, hasEdit := e.Edits[id]
			d := e.Duration
			if hasEdit && ed.Duration > 0 {
				d = ed.Duration
			}
			q := append([]byte{1}, t.payload()[1:4]...) // version 1, the flags
			q = be.AppendUint64(q, secs)
			q = be.AppendUint64(q, secs)
			q = be.AppendUint32(q, uint32(id))
			q = be.AppendUint32(q, 0)
			q = be.AppendUint64(q, durationToTicksCeil(d, movieTimescale))
			out = appendBox(out, "tkhd", q, rest)
			if hasEdit {
				out = appendEdts(out, ed, movieTimescale)
			}
		case "mdia":
			d, ok := e.MediaDurations[id]
			if !ok {
				out = append(out, t.full...)
				continue
			}
			mdia, err := rewriteMdia(t.payload(), d, secs)
			if err != nil {
				return nil, err
			}
			out = appendBox(out, "mdia", mdia)
		default:
			out = append(out, t.full...)
		}
	}
	return out, nil
}

// parseMdhd returns the timescale of an mdhd payload (§8.4.2) and its
// fields after the duration.
func parseMdhd(q []byte) (ts uint32, rest []byte, ok bool) {
	be := binary.BigEndian
	switch {
	case len(q) >= 36 && q[0] == 1:
		return be.Uint32(q[20:]), q[32:], true
	case len(q) >= 24 && q[0] == 0:
		return be.Uint32(q[12:]), q[20:], true
	}
	return 0, nil, false
}

// rewriteMdia returns the payload of an mdia with an mdhd of version 1
// (§8.4.2) that gives the duration of the media. Players that cannot
// seek a fragmented file (a stream over HTTP) take it from there.
func rewriteMdia(p []byte, d time.Duration, secs uint64) ([]byte, error) {
	kids, err := children(p)
	if err != nil {
		return nil, err
	}
	be := binary.BigEndian
	var out []byte
	for _, t := range kids {
		if t.typ != "mdhd" {
			out = append(out, t.full...)
			continue
		}
		ts, rest, ok := parseMdhd(t.payload())
		if !ok {
			return nil, errors.New("invalid mdhd")
		}
		n := []byte{1, 0, 0, 0}
		n = be.AppendUint64(n, secs)
		n = be.AppendUint64(n, secs)
		n = be.AppendUint32(n, ts)
		n = be.AppendUint64(n, durationToTicksCeil(d, ts))
		out = appendBox(out, "mdhd", n, rest)
	}
	return out, nil
}

// appendEdts appends an edts with one elst entry of version 1 (§8.6.6).
// The duration is rounded up to the movie timescale, so that no sample is
// cut.
func appendEdts(dst []byte, e Edit, movieTimescale uint32) []byte {
	be := binary.BigEndian
	p := []byte{1, 0, 0, 0}
	p = be.AppendUint32(p, 1)
	p = be.AppendUint64(p, durationToTicksCeil(e.Duration, movieTimescale))
	p = be.AppendUint64(p, uint64(e.MediaTime))
	p = be.AppendUint32(p, 0x00010000) // media_rate 1.0
	return appendBox(dst, "edts", appendBox(nil, "elst", p))
}

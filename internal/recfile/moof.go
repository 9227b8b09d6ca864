package recfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Flags of tfhd and trun (ISO/IEC 14496-12 §8.8.7, §8.8.8) and sample
// flags (§8.8.3.1).
const (
	tfhdBaseDataOffset        = 0x000001
	tfhdSampleDescription     = 0x000002
	tfhdDefaultDuration       = 0x000008
	tfhdDefaultSize           = 0x000010
	tfhdDefaultFlags          = 0x000020
	tfhdDefaultBaseIsMoof     = 0x020000
	trunDataOffset            = 0x000001
	trunFirstSampleFlags      = 0x000004
	trunSampleDuration        = 0x000100
	trunSampleSize            = 0x000200
	trunSampleFlags           = 0x000400
	trunSampleCompositionTime = 0x000800
	sampleIsNonSync           = 0x00010000
)

// trafInfo is what a traf says about the samples of one track.
type trafInfo struct {
	id       uint32
	base     uint64 // tfdt
	tfdtOff  int    // offset of the tfdt value from the start of the moof
	tfdtV1   bool   // the value is 64 bits
	dur      uint64 // sum of the sample durations, in the track's timescale
	samples  uint64
	sync     bool     // the first sample is a sync sample
	absolute bool     // tfhd has a base_data_offset (a file offset)
	list     []Sample // with offsets from the start of the moof
}

// moofInfo is what Scan and PatchMoof need from a moof.
type moofInfo struct {
	seq    uint32
	seqOff int // offset of the sequence number from the start of the moof
	trafs  []trafInfo
}

// dataBounds is where the moof is in the file and where its sample data
// must lie: the payload of the mdat that follows it, as offsets from the
// start of the moof.
type dataBounds struct {
	moofOff int64 // in the file, for a tfhd base_data_offset
	lo, hi  uint64
	check   bool
}

// parseMoof parses moof, a whole moof box, without its mdat. With collect,
// it lists the samples of each traf.
func parseMoof(moof []byte, db dataBounds, collect bool) (*moofInfo, error) {
	h, ok := parseBoxHeader(moof)
	if !ok || h.typeString() != "moof" || h.size != uint64(len(moof)) {
		return nil, errors.New("not a whole moof box")
	}
	kids, err := children(moof[h.hdrSize:])
	if err != nil {
		return nil, fmt.Errorf("moof: %w", err)
	}
	mi := &moofInfo{}
	seenMfhd := false
	prevEnd := uint64(0) // end of the data of the previous traf, for tfhd without base
	for _, c := range kids {
		off := offsetIn(moof, c.full)
		switch c.typ {
		case "mfhd":
			p := c.payload()
			if len(p) < 8 || seenMfhd {
				return nil, errors.New("moof: invalid mfhd")
			}
			seenMfhd = true
			mi.seq = binary.BigEndian.Uint32(p[4:])
			mi.seqOff = off + c.hdr + 4
		case "traf":
			ti, end, err := parseTraf(moof, c, len(mi.trafs) == 0, prevEnd, db, collect)
			if err != nil {
				return nil, fmt.Errorf("moof: traf %d: %w", len(mi.trafs)+1, err)
			}
			prevEnd = end
			mi.trafs = append(mi.trafs, ti)
		}
	}
	if !seenMfhd {
		return nil, errors.New("moof: no mfhd")
	}
	if len(mi.trafs) == 0 {
		return nil, errors.New("moof: no traf")
	}
	return mi, nil
}

// offsetIn returns the offset of sub, a subslice of b, from the start of b.
func offsetIn(b, sub []byte) int {
	return cap(b) - cap(sub)
}

// parseTraf parses one traf of moof. first tells whether it is the first
// traf, prevEnd is where the data of the previous one ended (the implicit
// base of a tfhd with neither base flag). It returns the end of its data.
func parseTraf(moof []byte, traf child, first bool, prevEnd uint64, db dataBounds, collect bool) (trafInfo, uint64, error) {
	var ti trafInfo
	kids, err := children(traf.payload())
	if err != nil {
		return ti, 0, err
	}
	var tfhd []byte
	for _, c := range kids {
		if c.typ == "tfhd" {
			if tfhd != nil {
				return ti, 0, errors.New("two tfhd")
			}
			tfhd = c.payload()
		}
	}
	if len(tfhd) < 8 {
		return ti, 0, errors.New("no valid tfhd")
	}
	be := binary.BigEndian
	flags := be.Uint32(tfhd) & 0xffffff
	ti.id = be.Uint32(tfhd[4:])
	p := tfhd[8:]
	field := func(n int) (uint64, error) {
		if len(p) < n {
			return 0, errors.New("tfhd is cut short")
		}
		var v uint64
		if n == 8 {
			v = be.Uint64(p)
		} else {
			v = uint64(be.Uint32(p))
		}
		p = p[n:]
		return v, nil
	}
	var base, defDur, defSize, defFlags uint64
	if flags&tfhdBaseDataOffset != 0 {
		if base, err = field(8); err != nil {
			return ti, 0, err
		}
		ti.absolute = true
	}
	if flags&tfhdSampleDescription != 0 {
		if _, err = field(4); err != nil {
			return ti, 0, err
		}
	}
	hasDefDur := flags&tfhdDefaultDuration != 0
	if hasDefDur {
		if defDur, err = field(4); err != nil {
			return ti, 0, err
		}
	}
	hasDefSize := flags&tfhdDefaultSize != 0
	if hasDefSize {
		if defSize, err = field(4); err != nil {
			return ti, 0, err
		}
	}
	if flags&tfhdDefaultFlags != 0 {
		if defFlags, err = field(4); err != nil {
			return ti, 0, err
		}
	}
	switch {
	case ti.absolute:
		// A file offset: make it one from the moof, like the others.
		if base < uint64(max(db.moofOff, 0)) {
			return ti, 0, errors.New("tfhd base data offset before the moof")
		}
		base -= uint64(max(db.moofOff, 0))
	case flags&tfhdDefaultBaseIsMoof != 0 || first:
		base = 0
	default:
		base = prevEnd
	}

	seenTfdt, seenTrun := false, false
	cursor := base
	end := base
	for _, c := range kids {
		switch c.typ {
		case "tfdt":
			pl := c.payload()
			if seenTfdt || len(pl) < 8 {
				return ti, 0, errors.New("invalid tfdt")
			}
			seenTfdt = true
			ti.tfdtOff = offsetIn(moof, pl) + 4
			if pl[0] == 1 {
				if len(pl) < 12 {
					return ti, 0, errors.New("invalid tfdt")
				}
				ti.tfdtV1 = true
				ti.base = be.Uint64(pl[4:])
			} else {
				ti.base = uint64(be.Uint32(pl[4:]))
			}
		case "trun":
			pl := c.payload()
			if len(pl) < 8 {
				return ti, 0, errors.New("invalid trun")
			}
			tflags := be.Uint32(pl) & 0xffffff
			count := uint64(be.Uint32(pl[4:]))
			if count > maxSamplesPerTrun {
				return ti, 0, fmt.Errorf("trun has %d samples, more than %d", count, maxSamplesPerTrun)
			}
			q := pl[8:]
			start := cursor
			if tflags&trunDataOffset != 0 {
				if len(q) < 4 {
					return ti, 0, errors.New("trun is cut short")
				}
				do := int64(int32(be.Uint32(q)))
				q = q[4:]
				s := int64(base) + do
				if s < 0 {
					return ti, 0, errors.New("trun data offset before the moof")
				}
				start = uint64(s)
			}
			firstFlags, hasFirst := uint32(0), false
			if tflags&trunFirstSampleFlags != 0 {
				if len(q) < 4 {
					return ti, 0, errors.New("trun is cut short")
				}
				firstFlags, hasFirst = be.Uint32(q), true
				q = q[4:]
			}
			if tflags&trunSampleDuration == 0 && !hasDefDur {
				return ti, 0, errors.New("no sample durations")
			}
			if tflags&trunSampleSize == 0 && !hasDefSize {
				return ti, 0, errors.New("no sample sizes")
			}
			entry := 0
			for _, f := range []uint32{trunSampleDuration, trunSampleSize, trunSampleFlags, trunSampleCompositionTime} {
				if tflags&f != 0 {
					entry += 4
				}
			}
			if uint64(len(q)) < count*uint64(entry) {
				return ti, 0, fmt.Errorf("trun of %d samples is cut short", count)
			}
			var dur, size uint64
			for i := uint64(0); i < count; i++ {
				e := q[i*uint64(entry):]
				d, s, f := defDur, defSize, uint32(defFlags)
				if tflags&trunSampleDuration != 0 {
					d, e = uint64(be.Uint32(e)), e[4:]
				}
				if tflags&trunSampleSize != 0 {
					s, e = uint64(be.Uint32(e)), e[4:]
				}
				if tflags&trunSampleFlags != 0 {
					f = be.Uint32(e)
				}
				if i == 0 && hasFirst {
					f = firstFlags
				}
				if i == 0 && !seenTrun {
					ti.sync = f&sampleIsNonSync == 0
				}
				if collect {
					ti.list = append(ti.list, Sample{Duration: uint32(d), Size: uint32(s), Sync: f&sampleIsNonSync == 0, Offset: int64(start + size)})
				}
				dur += d // at most 2^32 samples of 2^32: no overflow
				size += s
			}
			if count > 0 {
				seenTrun = true
			}
			ti.dur = satAdd(ti.dur, dur)
			ti.samples += count
			cursor = satAdd(start, size)
			if db.check && size > 0 && (start < db.lo || cursor > db.hi) {
				return ti, 0, fmt.Errorf("sample data [%d, %d) outside the mdat payload [%d, %d)", start, cursor, db.lo, db.hi)
			}
			if cursor > end {
				end = cursor
			}
		}
	}
	if !seenTfdt {
		return ti, 0, errors.New("no tfdt")
	}
	return ti, end, nil
}

// satAdd returns a+b, or the largest uint64 when that overflows.
func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// PatchMoof rewrites, in place, the sequence number of moof (a whole moof
// box as Scan found it, without its mdat) to seq and the decode time
// (tfdt) of each of its tracks to baseTime(trackID, old). It changes no
// size, so the data offsets of the fragment stay valid when the moof and
// its mdat are copied together. It fails on a tfdt of version 0 whose new
// value does not fit in 32 bits and on a traf whose data is addressed by
// a file offset (tfhd base_data_offset), which moving would break.
func PatchMoof(moof []byte, seq uint32, baseTime func(trackID int, old uint64) uint64) error {
	mi, err := parseMoof(moof, dataBounds{moofOff: -1}, false)
	if err != nil {
		return fmt.Errorf("recfile: patch: %w", err)
	}
	be := binary.BigEndian
	be.PutUint32(moof[mi.seqOff:], seq)
	for _, t := range mi.trafs {
		if t.absolute {
			return fmt.Errorf("recfile: patch: track %d: data addressed by file offset", t.id)
		}
		v := baseTime(int(t.id), t.base)
		if t.tfdtV1 {
			be.PutUint64(moof[t.tfdtOff:], v)
			continue
		}
		if v > math.MaxUint32 {
			return fmt.Errorf("recfile: patch: track %d: decode time %d does not fit a version 0 tfdt", t.id, v)
		}
		be.PutUint32(moof[t.tfdtOff:], uint32(v))
	}
	return nil
}

// AppendMoof appends to dst a moof (ISO/IEC 14496-12 §8.8.4) of sequence
// number seq with one traf per entry of tracks, as mediacommon's
// fmp4.Part writes them: tfhd with default-base-is-moof, tfdt of version
// 1, trun of version 1 with the duration and size of each sample, and its
// flags when a sample is not a sync sample. The data offsets assume that
// an mdat follows the moof and holds the samples of the tracks in order
// (see AppendMdatHeader). The Offset of the samples is not used.
func AppendMoof(dst []byte, seq uint32, tracks []TrackSamples) []byte {
	be := binary.BigEndian
	moofSize := 8 + 16
	for _, t := range tracks {
		moofSize += trafSize(t)
	}
	var dataSize uint64
	for _, t := range tracks {
		for _, s := range t.Samples {
			dataSize += uint64(s.Size)
		}
	}
	data := uint64(moofSize) + uint64(MdatHeaderSize(dataSize))
	dst = be.AppendUint32(dst, uint32(moofSize))
	dst = append(dst, "moof"...)
	dst = be.AppendUint32(dst, 16)
	dst = append(dst, "mfhd"...)
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, seq)
	for _, t := range tracks {
		flags, entry := trunFlagsOf(t)
		dst = be.AppendUint32(dst, uint32(trafSize(t)))
		dst = append(dst, "traf"...)
		dst = be.AppendUint32(dst, 16)
		dst = append(dst, "tfhd"...)
		dst = be.AppendUint32(dst, tfhdDefaultBaseIsMoof)
		dst = be.AppendUint32(dst, uint32(t.ID))
		dst = be.AppendUint32(dst, 20)
		dst = append(dst, "tfdt"...)
		dst = be.AppendUint32(dst, 1<<24)
		dst = be.AppendUint64(dst, t.BaseTime)
		dst = be.AppendUint32(dst, uint32(20+entry*len(t.Samples)))
		dst = append(dst, "trun"...)
		dst = be.AppendUint32(dst, 1<<24|flags)
		dst = be.AppendUint32(dst, uint32(len(t.Samples)))
		dst = be.AppendUint32(dst, uint32(data))
		for _, s := range t.Samples {
			dst = be.AppendUint32(dst, s.Duration)
			dst = be.AppendUint32(dst, s.Size)
			if flags&trunSampleFlags != 0 {
				f := uint32(0)
				if !s.Sync {
					f = sampleIsNonSync
				}
				dst = be.AppendUint32(dst, f)
			}
			data += uint64(s.Size)
		}
	}
	return dst
}

// trunFlagsOf returns the trun flags and the entry size of a track.
func trunFlagsOf(t TrackSamples) (flags uint32, entry int) {
	flags, entry = trunDataOffset|trunSampleDuration|trunSampleSize, 8
	for _, s := range t.Samples {
		if !s.Sync {
			return flags | trunSampleFlags, 12
		}
	}
	return flags, entry
}

// trafSize returns the size of the traf that AppendMoof writes for t.
func trafSize(t TrackSamples) int {
	_, entry := trunFlagsOf(t)
	return 8 + 16 + 20 + 20 + entry*len(t.Samples)
}

// MdatHeaderSize returns the size of the header of an mdat of payload
// bytes: 8, or 16 when a largesize is needed.
func MdatHeaderSize(payload uint64) int {
	if payload > math.MaxUint32-8 {
		return 16
	}
	return 8
}

// AppendMdatHeader appends the header of an mdat of payload bytes.
func AppendMdatHeader(dst []byte, payload uint64) []byte {
	be := binary.BigEndian
	if MdatHeaderSize(payload) == 16 {
		dst = be.AppendUint32(dst, 1)
		dst = append(dst, "mdat"...)
		return be.AppendUint64(dst, payload+16)
	}
	dst = be.AppendUint32(dst, uint32(payload+8))
	return append(dst, "mdat"...)
}

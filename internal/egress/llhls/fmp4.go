package llhls

import "encoding/binary"

// sample is one fMP4 sample waiting to be written into a part. Its byte
// slices belong to the media.Unit it came from (shared and immutable) or to
// the muxer's parameter sets (never modified).
type sample struct {
	pts   int64    // presentation time, rebased, in the track's timescale
	dur   uint32   // duration in the track's timescale, set once known
	nalus [][]byte // video: NAL units, written as AVCC; audio: one payload
	size  uint32   // bytes of the sample in mdat
	sync  bool     // a sync sample (keyframe; every audio sample)
	avcc  bool     // write each element with a 4-byte length prefix
}

// fragTrack is the input of writePart for one track.
type fragTrack struct {
	id       uint32
	baseTime uint64 // tfdt: decode time of samples[0]
	video    bool   // write sample flags and composition offsets
	samples  []sample
}

// Box and entry sizes of the fragments written by writePart.
const (
	boxHeader      = 8
	mfhdSize       = boxHeader + 4 + 4     // version+flags, sequence_number
	tfhdSize       = boxHeader + 4 + 4     // version+flags, track_ID
	tfdtSize       = boxHeader + 4 + 8     // version 1
	trunHeaderSize = boxHeader + 4 + 4 + 4 // version+flags, sample_count, data_offset
	videoEntrySize = 16                    // duration, size, flags, composition offset
	audioEntrySize = 8                     // duration, size

	// tfhd flags (ISO/IEC 14496-12 §8.8.7): default-base-is-moof.
	tfhdDefaultBaseIsMoof = 0x020000
	// trun flags (§8.8.8).
	trunDataOffset   = 0x000001
	trunDuration     = 0x000100
	trunSize         = 0x000200
	trunFlags        = 0x000400
	trunCompositionO = 0x000800

	// sample_flags (§8.8.3.1): a sync sample depends on no other
	// (sample_depends_on=2); a non-sync one depends on others
	// (sample_depends_on=1) and has sample_is_non_sync_sample set.
	sampleFlagsSync    = 0x02000000
	sampleFlagsNonSync = 0x01010000
)

// partSize returns the size of the moof+mdat that writePart writes.
func partSize(tracks []fragTrack) (total, moofSize int) {
	moofSize = boxHeader + mfhdSize
	data := 0
	for i := range tracks {
		t := &tracks[i]
		if len(t.samples) == 0 {
			continue
		}
		entry := audioEntrySize
		if t.video {
			entry = videoEntrySize
		}
		moofSize += boxHeader + tfhdSize + tfdtSize + trunHeaderSize + len(t.samples)*entry
		for j := range t.samples {
			data += int(t.samples[j].size)
		}
	}
	return moofSize + boxHeader + data, moofSize
}

// writePart returns one CMAF chunk, a moof with one traf per track that has
// samples followed by one mdat, in a buffer of the exact size (ISO/IEC
// 14496-12 §8.8.4 to §8.8.12; ISO/IEC 23000-19 §7.3.2.3): mfhd; then per
// track tfhd (default-base-is-moof), tfdt version 1 and trun with the
// sample durations, sizes and, for video, flags and zero composition
// offsets (DTS = PTS: the media plane has no B-frames). Video samples are
// written as AVCC, each NAL unit with a 4-byte length prefix.
func writePart(seq uint32, tracks []fragTrack) []byte {
	total, moofSize := partSize(tracks)
	b := make([]byte, total)
	be := binary.BigEndian
	box := func(at, size int, typ string) {
		be.PutUint32(b[at:], uint32(size))
		copy(b[at+4:at+8], typ)
	}
	box(0, moofSize, "moof")
	p := boxHeader
	box(p, mfhdSize, "mfhd")
	be.PutUint32(b[p+12:], seq)
	p += mfhdSize
	dataOffset := moofSize + boxHeader // of the first sample, from the start of moof
	for i := range tracks {
		t := &tracks[i]
		if len(t.samples) == 0 {
			continue
		}
		entry, flags := audioEntrySize, trunDataOffset|trunDuration|trunSize
		if t.video {
			entry, flags = videoEntrySize, flags|trunFlags|trunCompositionO
		}
		trunSz := trunHeaderSize + len(t.samples)*entry
		box(p, boxHeader+tfhdSize+tfdtSize+trunSz, "traf")
		p += boxHeader
		box(p, tfhdSize, "tfhd")
		be.PutUint32(b[p+8:], tfhdDefaultBaseIsMoof)
		be.PutUint32(b[p+12:], t.id)
		p += tfhdSize
		box(p, tfdtSize, "tfdt")
		b[p+8] = 1 // version
		be.PutUint64(b[p+12:], t.baseTime)
		p += tfdtSize
		box(p, trunSz, "trun")
		be.PutUint32(b[p+8:], uint32(flags))
		be.PutUint32(b[p+12:], uint32(len(t.samples)))
		be.PutUint32(b[p+16:], uint32(dataOffset))
		p += trunHeaderSize
		for j := range t.samples {
			s := &t.samples[j]
			be.PutUint32(b[p:], s.dur)
			be.PutUint32(b[p+4:], s.size)
			if t.video {
				f := uint32(sampleFlagsNonSync)
				if s.sync {
					f = sampleFlagsSync
				}
				be.PutUint32(b[p+8:], f)
				// b[p+12:p+16], the composition offset, stays 0.
			}
			p += entry
			dataOffset += int(s.size)
		}
	}
	box(p, total-moofSize, "mdat")
	p += boxHeader
	for i := range tracks {
		t := &tracks[i]
		for j := range t.samples {
			s := &t.samples[j]
			for _, nalu := range s.nalus {
				if s.avcc {
					be.PutUint32(b[p:], uint32(len(nalu)))
					p += 4
				}
				p += copy(b[p:], nalu)
			}
		}
	}
	return b
}

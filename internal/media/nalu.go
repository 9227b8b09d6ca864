package media

// NALUKind is what a muxer needs to know of an H.264 or H.265 NAL unit:
// whether it is a parameter set, which MP4 sample entries carry out of
// band (and keyframes in-band), or an access unit delimiter, which MP4
// samples leave out (ISO/IEC 14496-15 §5.3.2).
type NALUKind uint8

// Kinds of NAL units.
const (
	NALUOther NALUKind = iota
	NALUVPS            // H.265 video parameter set
	NALUSPS            // sequence parameter set
	NALUPPS            // picture parameter set
	NALUAUD            // access unit delimiter
)

// KindOf classifies a NAL unit (without start code) of a track of codec c.
// An empty NAL unit, or one of another codec, is NALUOther.
func KindOf(c Codec, nalu []byte) NALUKind {
	if len(nalu) == 0 {
		return NALUOther
	}
	switch c {
	case CodecH264: // ITU-T H.264 Table 7-1
		switch nalu[0] & 0x1f {
		case 7:
			return NALUSPS
		case 8:
			return NALUPPS
		case 9:
			return NALUAUD
		}
	case CodecH265: // ITU-T H.265 Table 7-1
		switch (nalu[0] >> 1) & 0x3f {
		case 32:
			return NALUVPS
		case 33:
			return NALUSPS
		case 34:
			return NALUPPS
		case 35:
			return NALUAUD
		}
	}
	return NALUOther
}

// Rescale converts v ticks of a from-Hz clock into a to-Hz clock without
// overflowing for any timestamp of a stream that lasts less than centuries.
func Rescale(v int64, from, to int) int64 {
	if from == to || from <= 0 {
		return v
	}
	f, t := int64(from), int64(to)
	return v/f*t + v%f*t/f
}

// SampleDuration returns the duration, in timescale ticks, of a sample at
// prev followed by one at next. A timestamp jump (backwards, or more than
// 10 s ahead: a camera restart, frames dropped for a slow reader) keeps the
// previous pace last, or 1/25 s before there is one, so that the decode
// time of a muxed file stays continuous.
func SampleDuration(prev, next int64, last uint32, timescale int) uint32 {
	d := next - prev
	if d <= 0 || d > int64(10*timescale) {
		if last != 0 {
			return last
		}
		return uint32(timescale / 25)
	}
	return uint32(d)
}

package media

import "testing"

func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		codec Codec
		nalu  []byte
		want  NALUKind
	}{
		{CodecH264, []byte{0x67, 0x42}, NALUSPS},
		{CodecH264, []byte{0x68}, NALUPPS},
		{CodecH264, []byte{0x09, 0xf0}, NALUAUD},
		{CodecH264, []byte{0x65}, NALUOther}, // IDR slice
		{CodecH265, []byte{0x40, 0x01}, NALUVPS},
		{CodecH265, []byte{0x42, 0x01}, NALUSPS},
		{CodecH265, []byte{0x44, 0x01}, NALUPPS},
		{CodecH265, []byte{0x46, 0x01}, NALUAUD},
		{CodecH265, []byte{0x26, 0x01}, NALUOther}, // IDR_W_RADL
		{CodecH264, nil, NALUOther},
		{CodecAAC, []byte{0x67}, NALUOther},
	} {
		if got := KindOf(c.codec, c.nalu); got != c.want {
			t.Errorf("KindOf(%v, %x) = %d, want %d", c.codec, c.nalu, got, c.want)
		}
	}
}

func TestRescaleAndSampleDuration(t *testing.T) {
	if got := Rescale(90000*3600*30, 90000, 8000); got != 8000*3600*30 {
		t.Errorf("Rescale 30 h = %d", got)
	}
	if got := Rescale(1234, 90000, 90000); got != 1234 {
		t.Errorf("Rescale identity = %d", got)
	}
	for _, c := range []struct {
		prev, next int64
		last       uint32
		want       uint32
	}{
		{0, 6000, 0, 6000},
		{6000, 6000, 6000, 6000},      // repeated timestamp: the pace
		{6000, 0, 0, 3600},            // backwards, no pace yet: 1/25 s
		{0, 90000 * 11, 6000, 6000},   // an 11 s jump
		{0, 90000 * 10, 6000, 900000}, // 10 s is a long frame, not a jump
	} {
		if got := SampleDuration(c.prev, c.next, c.last, 90000); got != c.want {
			t.Errorf("SampleDuration(%d, %d, %d) = %d, want %d", c.prev, c.next, c.last, got, c.want)
		}
	}
}

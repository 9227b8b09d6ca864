package record

import (
	"errors"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

func TestTimelineMergesRunsAndFindsGaps(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	seg := func(s, e float64) model.Segment { return model.Segment{Start: at(s), End: at(e), Bytes: 10} }
	segs := []model.Segment{
		seg(0, 60), seg(60.001, 120), // one run: rounding to the millisecond is not a gap
		seg(125, 185), // a reconnect: a 5 s gap
		seg(185.1, 200),
		seg(300, 360), // the range ends inside it
	}
	tl := buildTimeline(segs, at(30), at(330))
	want := []Interval{{at(30), at(120)}, {at(125), at(200)}, {at(300), at(330)}}
	if len(tl.Recorded) != len(want) {
		t.Fatalf("recorded %+v, want %+v", tl.Recorded, want)
	}
	for i := range want {
		if !tl.Recorded[i].Start.Equal(want[i].Start) || !tl.Recorded[i].End.Equal(want[i].End) {
			t.Errorf("recorded[%d] = %+v, want %+v", i, tl.Recorded[i], want[i])
		}
	}
	gaps := []Interval{{at(120), at(125)}, {at(200), at(300)}}
	if len(tl.Gaps) != 2 || !tl.Gaps[0].Start.Equal(gaps[0].Start) || !tl.Gaps[1].End.Equal(gaps[1].End) {
		t.Errorf("gaps %+v, want %+v", tl.Gaps, gaps)
	}
	if tl.Seconds != 90+75+30 || tl.Segments != 5 || tl.Bytes != 50 {
		t.Errorf("seconds %v segments %d bytes %d", tl.Seconds, tl.Segments, tl.Bytes)
	}

	empty := buildTimeline(nil, at(0), at(10))
	if len(empty.Recorded) != 0 || len(empty.Gaps) != 1 || empty.Seconds != 0 {
		t.Errorf("an empty range: %+v", empty)
	}
}

func TestCheckRange(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		from, to time.Time
		ok       bool
	}{
		{t0, t0.Add(time.Second), true},
		{t0, t0, false},
		{t0.Add(time.Second), t0, false},
		{time.Time{}, t0, false},
		{t0, t0.Add(MaxRange + time.Second), false},
	} {
		err := CheckRange(c.from, c.to)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadRange)) {
			t.Errorf("CheckRange(%v, %v) = %v", c.from, c.to, err)
		}
	}
}

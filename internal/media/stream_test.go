package media

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func videoStream() *Stream {
	return NewStream([]*Track{{Codec: CodecH264, ClockRate: 90000}, {Codec: CodecAAC, ClockRate: 16000}})
}

// frames writes n video units with a keyframe every gop units, starting at pts.
func frames(s *Stream, start, n, gop int) {
	for i := start; i < start+n; i++ {
		s.Write(&Unit{Track: 0, PTS: int64(i) * 3000, Key: i%gop == 0, Payload: [][]byte{{byte(i)}}})
	}
}

func TestReaderStartsOnCachedKeyframe(t *testing.T) {
	s := videoStream()
	frames(s, 0, 25, 10) // keyframes at 0, 10, 20
	r := s.AddReader("late", 8)
	u := <-r.C()
	if !u.Key || u.PTS != 20*3000 {
		t.Fatalf("first unit: key=%v pts=%d, want the keyframe at 60000", u.Key, u.PTS)
	}
	if got := len(r.C()); got != 4 {
		t.Fatalf("queued after the keyframe: %d, want 4", got)
	}
}

func TestReaderWaitsForKeyframeWhenNoneCached(t *testing.T) {
	s := videoStream()
	r := s.AddReader("early", 8)
	frames(s, 1, 5, 10)              // no keyframe
	s.Write(&Unit{Track: 1, PTS: 1}) // audio before the first keyframe
	if len(r.C()) != 0 {
		t.Fatalf("reader got %d units before any keyframe", len(r.C()))
	}
	frames(s, 10, 1, 10)
	if u := <-r.C(); !u.Key {
		t.Fatal("first unit delivered is not a keyframe")
	}
}

func TestSlowReaderDropsUntilKeyframeAndDoesNotStallOthers(t *testing.T) {
	s := videoStream()
	slow := s.AddReader("slow", 4)
	fast := s.AddReader("fast", 4)
	var got []int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for u := range fast.C() {
			got = append(got, u.PTS)
		}
	}()
	for i := range 100 {
		s.Write(&Unit{Track: 0, PTS: int64(i), Key: i%10 == 0, Payload: [][]byte{{1}}})
		time.Sleep(50 * time.Microsecond) // let the fast reader keep up
	}
	s.Close(nil)
	wg.Wait()
	if slow.Dropped() == 0 {
		t.Fatal("slow reader dropped nothing")
	}
	if len(got) < 90 {
		t.Fatalf("fast reader got %d of 100 units", len(got))
	}
	// The slow reader holds its first 4 units, then nothing until the end:
	// after a loss it must resume on a keyframe, never on a P-frame.
	var pts []int64
	for u := range slow.C() {
		pts = append(pts, u.PTS)
	}
	if len(pts) != 4 || pts[0] != 0 {
		t.Fatalf("slow reader queue = %v, want the first 4 units", pts)
	}
	if st := s.Stats(); st.Dropped != slow.Dropped()+fast.Dropped() || st.Units != 100 {
		t.Fatalf("stats %+v, slow dropped %d, fast dropped %d", st, slow.Dropped(), fast.Dropped())
	}
}

func TestResumeOnKeyframeAfterLoss(t *testing.T) {
	s := videoStream()
	r := s.AddReader("r", 2)
	frames(s, 0, 5, 10) // 0,1 queued; 2 dropped; 3,4 skipped
	<-r.C()
	<-r.C()
	frames(s, 5, 6, 10) // 5..9 skipped, 10 is a keyframe
	u := <-r.C()
	if u.PTS != 10*3000 || !u.Key {
		t.Fatalf("after a loss got pts %d key %v, want keyframe 30000", u.PTS, u.Key)
	}
}

func TestCloseAndErrors(t *testing.T) {
	s := videoStream()
	r1 := s.AddReader("a", 0)
	r2 := s.AddReader("b", 0)
	r2.Close()
	r2.Close()
	if _, ok := <-r2.C(); ok || !errors.Is(r2.Err(), ErrReaderClosed) {
		t.Fatalf("closed reader: err %v", r2.Err())
	}
	cause := Fail(ReasonClosed, errors.New("camera hung up"))
	s.Close(cause)
	if _, ok := <-r1.C(); ok {
		t.Fatal("reader queue still open after stream close")
	}
	if !errors.Is(r1.Err(), ErrStreamClosed) || ReasonOf(r1.Err()) != ReasonClosed {
		t.Fatalf("reader err %v", r1.Err())
	}
	r3 := s.AddReader("late", 0)
	if _, ok := <-r3.C(); ok || r3.Err() == nil {
		t.Fatal("reader added after close is open")
	}
	s.Write(&Unit{Track: 0, Key: true}) // must not panic
}

func TestGOPCacheBounded(t *testing.T) {
	s := videoStream()
	big := make([]byte, 1<<20)
	s.Write(&Unit{Track: 0, Key: true, Payload: [][]byte{big}})
	for range 9 {
		s.Write(&Unit{Track: 0, Payload: [][]byte{big}})
	}
	r := s.AddReader("r", 1)
	if n := len(r.C()); n != 0 {
		t.Fatalf("cached %d units of an oversized GOP", n)
	}
}

func TestReasonOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Reason
	}{
		{"wrapped", errors.Join(ErrUnavailable, Fail(ReasonAuthFailed, errors.New("401"))), ReasonAuthFailed},
		{"plain", errors.New("x"), ReasonProtocol},
	} {
		if got := ReasonOf(tc.err); got != tc.want {
			t.Errorf("%s: ReasonOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func BenchmarkWriteFanout(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			s := videoStream()
			var wg sync.WaitGroup
			for range n {
				r := s.AddReader("r", 1024)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range r.C() {
					}
				}()
			}
			u := &Unit{Track: 0, Payload: [][]byte{make([]byte, 4000)}}
			k := &Unit{Track: 0, Key: true, Payload: [][]byte{make([]byte, 40000)}}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%30 == 0 {
					s.Write(k)
				} else {
					s.Write(u)
				}
			}
			s.Close(nil)
			wg.Wait()
		})
	}
}

func TestDurationDoesNotOverflow(t *testing.T) {
	// 30 hours of a 90 kHz clock: ticks*time.Second alone overflows int64.
	ticks := int64(30 * 3600 * 90000)
	if d := Duration(ticks, 90000); d != 30*time.Hour {
		t.Errorf("Duration(%d, 90000) = %v, want 30h", ticks, d)
	}
	if d := Duration(45000+90000, 90000); d != 1500*time.Millisecond {
		t.Errorf("Duration = %v, want 1.5s", d)
	}
}

package events

import "testing"

func TestPublishSubscribe(t *testing.T) {
	b := New()
	s := b.Subscribe(2)
	defer s.Close()
	b.Publish("alarm", 1)
	b.Publish("alarm", 2)
	b.Publish("alarm", 3) // buffer full: dropped
	if got := (<-s.C()).Data; got != 1 {
		t.Fatalf("first event data = %v, want 1", got)
	}
	if got := (<-s.C()).Data; got != 2 {
		t.Fatalf("second event data = %v, want 2", got)
	}
	if n := s.Dropped(); n != 1 {
		t.Fatalf("dropped = %d, want 1", n)
	}
	if n := s.Dropped(); n != 0 {
		t.Fatalf("dropped after reset = %d, want 0", n)
	}
	s.Close()
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("subscribers after close = %d", n)
	}
	b.Publish("alarm", 4) // nobody listens: must not block
}

func TestIDsIncrease(t *testing.T) {
	b := New()
	s := b.Subscribe(10)
	defer s.Close()
	a, c := b.Publish("x", nil), b.Publish("y", nil)
	if c.ID <= a.ID {
		t.Fatalf("ids %d then %d", a.ID, c.ID)
	}
}

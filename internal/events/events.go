// Package events fans platform events (alarms, device and channel state
// changes) out to subscribers such as the console's Server-Sent Events
// stream. Publishing never blocks: a subscriber that falls behind loses
// events and is told how many (Event.Type "dropped"), so one slow browser
// cannot stall alarm handling.
package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event is one thing that happened.
type Event struct {
	ID   uint64    `json:"id"`
	Type string    `json:"type"` // "alarm", "device", "channel", "dropped"
	At   time.Time `json:"at"`
	Data any       `json:"data"`
}

// Broker distributes events. The zero value is not usable; call New.
type Broker struct {
	seq  atomic.Uint64
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// New returns a Broker.
func New() *Broker { return &Broker{subs: map[*Subscription]struct{}{}} }

// Subscription receives events until Close.
type Subscription struct {
	b       *Broker
	c       chan Event
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe returns a subscription buffering up to buffer events.
func (b *Broker) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	s := &Subscription{b: b, c: make(chan Event, buffer)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// C delivers the events.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped returns and resets the number of events lost since the last
// call because the subscriber was slow.
func (s *Subscription) Dropped() uint64 { return s.dropped.Swap(0) }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
	})
}

// Publish sends an event of type typ to every subscriber and returns it.
func (b *Broker) Publish(typ string, data any) Event {
	ev := Event{ID: b.seq.Add(1), Type: typ, At: time.Now().UTC(), Data: data}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped.Add(1)
		}
	}
	return ev
}

// Subscribers returns the number of open subscriptions.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

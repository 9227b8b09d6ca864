package rtpframe

import (
	"time"

	"github.com/pion/rtp"
)

// Defaults of Reorder.
const (
	DefaultWindow   = 64
	DefaultMaxDelay = 200 * time.Millisecond

	// As in RFC 3550 Appendix A.1: a jump of more than maxDropout packets
	// forward or maxMisorder backward is taken for a restarted sender once
	// two sequential packets confirm it.
	maxDropout  = 3000
	maxMisorder = 100
)

// ReorderStats counts what a Reorder did.
type ReorderStats struct {
	Received   uint64 // packets given to Push
	Emitted    uint64 // packets returned in order
	Lost       uint64 // sequence numbers given up on (never arrived in time)
	Duplicates uint64 // packets received twice
	Late       uint64 // packets arriving after their sequence number was given up on, or far out of sequence
	Reordered  uint64 // packets taken that arrived after a later sequence number (and were put back in place)
	Resets     uint64 // SSRC changes and confirmed sequence jumps
}

// Reorder puts RTP packets received over UDP back in sequence-number order.
//
// It holds at most Window packets. A missing packet is waited for until a
// packet Window sequence numbers later arrives or the first packet after the
// gap has waited MaxDelay, then counted as lost. Sequence numbers wrap at
// 65535 (RFC 3550 §5.1). The first packet received starts the sequence:
// packets older than it count as Late. A new SSRC, or a jump confirmed by two sequential
// packets (RFC 3550 Appendix A.1), flushes the buffer and starts again.
//
// Reorder is not safe for concurrent use. It keeps the packets it is given
// until it returns them: the caller must not reuse their buffers meanwhile.
type Reorder struct {
	window   int
	maxDelay time.Duration

	started bool
	ssrc    uint32
	next    uint16 // sequence number to emit next
	highest uint16 // highest sequence number taken since the (re)start
	badSeq  uint32 // RFC 3550 A.1 probation: expected seq of a confirming packet, or >0xFFFF
	slots   []slot
	pending int // slots in slotPending: timeout has nothing to do at 0
	out     []*rtp.Packet
	stats   ReorderStats
}

type slotState uint8

const (
	slotEmpty slotState = iota
	slotPending
	slotDone // emitted; seq is kept to recognise duplicates
)

type slot struct {
	state slotState
	seq   uint16
	at    time.Time
	pkt   *rtp.Packet
}

// NewReorder returns a Reorder holding up to window packets (DefaultWindow
// if window <= 0; rounded up to a power of two, at most 2048) and waiting up to maxDelay for a missing
// packet (DefaultMaxDelay if maxDelay <= 0).
func NewReorder(window int, maxDelay time.Duration) *Reorder {
	if window <= 0 {
		window = DefaultWindow
	}
	window = min(window, 2048)
	for window&(window-1) != 0 { // a power of two divides 65536: no slot aliasing at wrap-around
		window += window & -window
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	return &Reorder{window: window, maxDelay: maxDelay, slots: make([]slot, window), badSeq: 1 << 16}
}

// Stats returns the counters.
func (r *Reorder) Stats() ReorderStats { return r.stats }

// Push adds pkt, received at now, and returns the packets that are now in
// order, and whether pkt was taken (false for a duplicate or a packet too
// late or too far out of sequence: the caller may reuse it at once). The
// returned slice is reused by the next call to Push or Flush.
func (r *Reorder) Push(pkt *rtp.Packet, now time.Time) (ordered []*rtp.Packet, taken bool) {
	r.out = r.out[:0]
	if pkt == nil {
		return r.out, false
	}
	r.stats.Received++
	seq := pkt.SequenceNumber
	if !r.started || pkt.SSRC != r.ssrc {
		if r.started {
			r.stats.Resets++
		}
		r.restart(pkt.SSRC, seq)
	}
	d := int(int16(seq - r.next))
	if d >= maxDropout || d < -maxMisorder {
		if uint32(seq) != r.badSeq {
			r.badSeq = uint32(seq + 1)
			r.stats.Late++
			return r.timeout(now), false
		}
		r.stats.Resets++
		r.restart(r.ssrc, seq)
		d = 0
	}
	r.badSeq = 1 << 16
	s := &r.slots[int(seq)%r.window]
	switch {
	case d < 0:
		if s.seq == seq && s.state != slotEmpty {
			r.stats.Duplicates++
		} else {
			r.stats.Late++
		}
		return r.timeout(now), false
	case d < r.window && s.seq == seq && s.state == slotPending:
		r.stats.Duplicates++
		return r.timeout(now), false
	}
	if int16(seq-r.highest) < 0 {
		r.stats.Reordered++
	} else {
		r.highest = seq
	}
	for d >= r.window {
		r.skip() // make room: give up on r.next
		d--
	}
	*s = slot{state: slotPending, seq: seq, at: now, pkt: pkt}
	r.pending++
	r.drain()
	return r.timeout(now), true
}

// Flush gives up on missing packets that have been waited for longer than
// MaxDelay at now and returns the packets then in order. Call it from a timer
// when no packet arrives. The returned slice is reused by the next call.
func (r *Reorder) Flush(now time.Time) []*rtp.Packet {
	r.out = r.out[:0]
	return r.timeout(now)
}

// restart emits everything still held, in order, and starts a new sequence.
func (r *Reorder) restart(ssrc uint32, seq uint16) {
	if r.started {
		for range r.window {
			s := &r.slots[int(r.next)%r.window]
			if s.state == slotPending && s.seq == r.next {
				r.emit(s)
			}
			r.next++
		}
	}
	clear(r.slots)
	r.pending = 0
	r.started, r.ssrc, r.next, r.highest, r.badSeq = true, ssrc, seq, seq, 1<<16
}

// timeout skips a gap whose first following packet has waited too long.
// In order, nothing waits: it returns at once (the common case per packet).
func (r *Reorder) timeout(now time.Time) []*rtp.Packet {
	if !r.started || r.pending == 0 {
		return r.out
	}
	for k := 1; k < r.window; k++ {
		s := &r.slots[int(r.next+uint16(k))%r.window]
		if s.state != slotPending || s.seq != r.next+uint16(k) {
			continue
		}
		if now.Sub(s.at) < r.maxDelay {
			break
		}
		for range k {
			r.skip()
		}
		r.drain()
		k = 0 // the loop's k++ makes it 1: look for the next gap
	}
	return r.out
}

// skip gives up on r.next (emitting it if it is there) and moves on.
func (r *Reorder) skip() {
	s := &r.slots[int(r.next)%r.window]
	if s.state == slotPending && s.seq == r.next {
		r.emit(s)
	} else {
		r.stats.Lost++
	}
	r.next++
}

// drain emits consecutive packets from r.next.
func (r *Reorder) drain() {
	for {
		s := &r.slots[int(r.next)%r.window]
		if s.state != slotPending || s.seq != r.next {
			return
		}
		r.emit(s)
		r.next++
	}
}

func (r *Reorder) emit(s *slot) {
	r.out = append(r.out, s.pkt)
	r.stats.Emitted++
	r.pending--
	s.state, s.pkt = slotDone, nil
}

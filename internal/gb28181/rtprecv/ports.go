package rtprecv

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// PortPool hands out the even ports of a range to receivers: RTP takes the
// even port and leaves the odd one above it to RTCP (RFC 3550 §11), which
// is what devices expect even though the receiver does not read RTCP.
//
// Ports are handed out in turn, not lowest first, so that a port just
// released is not reused at once and late packets of the previous session
// are not mistaken for the next one's. A port that another program holds is
// skipped. A PortPool is safe for concurrent use.
type PortPool struct {
	min, max int // even bounds, inclusive

	mu   sync.Mutex // guards the fields below
	next int        // port to try first
	used map[int]struct{}
}

// NewPortPool returns a pool of the even ports from min to max, inclusive.
func NewPortPool(min, max int) (*PortPool, error) {
	lo, hi := min+min&1, max-max&1
	switch {
	case min < 1 || max > 65535:
		return nil, fmt.Errorf("rtprecv: port range %d-%d is outside 1-65535", min, max)
	case lo > hi:
		return nil, fmt.Errorf("rtprecv: port range %d-%d holds no even port", min, max)
	}
	return &PortPool{min: lo, max: hi, next: lo, used: make(map[int]struct{})}, nil
}

// Size returns how many ports the pool has.
func (p *PortPool) Size() int { return (p.max-p.min)/2 + 1 }

// InUse returns how many ports receivers hold now.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// take reserves a port and calls bind with it, trying the next port while
// bind fails because the port is in use, until every port was tried. It
// returns the port and the function that returns it to the pool.
func (p *PortPool) take(bind func(port int) error) (int, func(), error) {
	for range p.Size() {
		port, ok := p.reserve()
		if !ok {
			break
		}
		err := bind(port)
		if err == nil {
			var once sync.Once
			return port, func() { once.Do(func() { p.put(port) }) }, nil
		}
		p.put(port)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return 0, nil, err
		}
	}
	return 0, nil, fmt.Errorf("%w (%d-%d: %d in use by receivers, the rest by other programs)", ErrNoPorts, p.min, p.max+1, p.InUse())
}

// reserve marks the next free port used.
func (p *PortPool) reserve() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.Size() {
		port := p.next
		p.next += 2
		if p.next > p.max {
			p.next = p.min
		}
		if _, ok := p.used[port]; !ok {
			p.used[port] = struct{}{}
			return port, true
		}
	}
	return 0, false
}

func (p *PortPool) put(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, port)
}

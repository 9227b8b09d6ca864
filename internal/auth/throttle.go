package auth

import (
	"sync"
	"time"
)

// Throttle counts failed logins per key (an account, a client address) in
// a sliding window and locks a key out once it reaches its limit, until
// the window has passed since the failure that locked it. Successful
// logins clear an account's failures (not an address's: an attacker with
// one valid account must not reset the address counter).
//
// Throttle is safe for concurrent use. Its memory is bounded by the keys
// that failed within the window; Prune drops the others.
type Throttle struct {
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	times       []time.Time // within the window, oldest first
	lockedUntil time.Time
}

// NewThrottle returns a Throttle with the given window; now is the clock
// (time.Now if nil).
func NewThrottle(window time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{window: window, now: now, keys: map[string]*failures{}}
}

// Check reports whether key may try to log in, and if not, for how long
// it is locked out.
func (t *Throttle) Check(key string) (ok bool, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil {
		return true, 0
	}
	if d := f.lockedUntil.Sub(t.now()); d > 0 {
		return false, d
	}
	return true, 0
}

// Fail records a failed login of key; once limit failures fall within the
// window, key is locked out for the window. It returns whether key is now
// locked.
func (t *Throttle) Fail(key string, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.keys[key]
	if f == nil {
		f = &failures{}
		t.keys[key] = f
	}
	f.times = append(dropBefore(f.times, now.Add(-t.window)), now)
	if len(f.times) >= limit {
		f.lockedUntil = now.Add(t.window)
		return true
	}
	return false
}

// Succeed clears the failures of key.
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, key)
}

// Prune forgets keys with no failure in the window and no lockout.
func (t *Throttle) Prune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for k, f := range t.keys {
		f.times = dropBefore(f.times, now.Add(-t.window))
		if len(f.times) == 0 && !f.lockedUntil.After(now) {
			delete(t.keys, k)
		}
	}
}

func dropBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	return ts[i:]
}

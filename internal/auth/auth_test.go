package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fast keeps the tests quick; the format and checks are the same.
var fast = Params{Memory: 64, Time: 1, Threads: 1}

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("雪亮-demo 2026", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %s", h)
	}
	if p, err := VerifyPassword(h, "雪亮-demo 2026"); err != nil || p != fast {
		t.Fatalf("right password: %+v, %v", p, err)
	}
	if _, err := VerifyPassword(h, "雪亮-demo 2027"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	h2, _ := HashPassword("雪亮-demo 2026", fast)
	if h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if !NeedsRehash(fast, DefaultParams) || NeedsRehash(DefaultParams, DefaultParams) {
		t.Error("NeedsRehash")
	}
	if _, err := HashPassword("x", Params{}); err == nil {
		t.Error("zero parameters accepted")
	}
}

// TestKnownHash verifies a hash made by another implementation: the
// reference argon2 CLI (Debian package argon2), run as
// `echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -l 32 -e`.
func TestKnownHash(t *testing.T) {
	const h = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if _, err := VerifyPassword(h, "password"); err != nil {
		t.Fatalf("reference hash: %v", err)
	}
	if _, err := VerifyPassword(h, "Password"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("reference hash, wrong password: %v", err)
	}
}

func TestBadHashes(t *testing.T) {
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 95 GiB: refused, not computed
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$",
	} {
		if _, err := VerifyPassword(h, "x"); !errors.Is(err, ErrBadHash) {
			t.Errorf("%q: %v", h, err)
		}
	}
}

func FuzzVerifyPassword(f *testing.F) {
	h, _ := HashPassword("pw", fast)
	f.Add(h, "pw")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if p, _, _, err := parse(hash); err == nil && (p.Memory > 4096 || p.Time > 4) {
			return // valid but costly: not the fuzzer's business
		}
		_, _ = VerifyPassword(hash, pw)
	})
}

func TestThrottleBurst(t *testing.T) {
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	th := NewThrottle(15*time.Minute, func() time.Time { return now })
	// A burst of wrong passwords for one account from one address.
	locked := 0
	for i := range 8 {
		if ok, _ := th.Check("user:officer"); !ok {
			locked++
			continue
		}
		th.Fail("addr:10.0.0.9", 20)
		if th.Fail("user:officer", 5) && i != 4 {
			t.Errorf("locked at failure %d, want the 5th", i+1)
		}
	}
	if locked != 3 {
		t.Errorf("%d of 8 attempts refused, want 3 (after 5 failures)", locked)
	}
	ok, after := th.Check("user:officer")
	if ok || after != 15*time.Minute {
		t.Fatalf("check after lockout: %v %v", ok, after)
	}
	// Other accounts are not locked; the address is not yet.
	if ok, _ := th.Check("user:other"); !ok {
		t.Error("another account locked")
	}
	if ok, _ := th.Check("addr:10.0.0.9"); !ok {
		t.Error("address locked after 5 failures, limit 20")
	}
	now = now.Add(15*time.Minute + time.Second)
	if ok, _ := th.Check("user:officer"); !ok {
		t.Error("still locked after the window")
	}
	// Failures spread wider than the window never lock.
	for range 10 {
		now = now.Add(4 * time.Minute)
		if th.Fail("user:slow", 5) {
			t.Fatal("locked by failures spread over 40 minutes")
		}
	}
	th.Succeed("user:slow")
	th.Prune()
	th.mu.Lock()
	n := len(th.keys)
	th.mu.Unlock()
	if n != 0 { // every failure is older than the window, and no lockout lasts
		t.Errorf("%d keys left after Prune, want 0", n)
	}
}

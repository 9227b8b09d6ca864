package token

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func signer(t *testing.T) *Signer {
	t.Helper()
	s, err := NewSigner([]byte(strings.Repeat("k", MinKeyLen)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := signer(t)
	now := time.Unix(1_800_000_000, 0)
	tok := s.Sign(Claims{Scope: ScopeLive, Channel: 42, User: "duty-officer", Expires: now.Add(5 * time.Minute)})
	c, err := s.VerifyFor(tok, ScopeLive, 42, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "duty-officer" || c.Channel != 42 || !c.Expires.Equal(now.Add(5*time.Minute)) {
		t.Fatalf("claims %+v", c)
	}
}

func TestRefusals(t *testing.T) {
	s := signer(t)
	other, _ := NewSigner([]byte(strings.Repeat("o", MinKeyLen)))
	now := time.Unix(1_800_000_000, 0)
	good := s.Sign(Claims{Scope: ScopeLive, Channel: 7, User: "u", Expires: now.Add(time.Minute)})
	payload, sig, _ := strings.Cut(good, ".")
	// A payload for another channel with the original signature.
	forged := s.Sign(Claims{Scope: ScopeLive, Channel: 8, User: "u", Expires: now.Add(time.Minute)})
	forgedPayload, _, _ := strings.Cut(forged, ".")
	for _, tc := range []struct {
		name    string
		tok     string
		channel int64
		scope   Scope
		at      time.Time
		want    error
	}{
		{"expired", good, 7, ScopeLive, now.Add(time.Minute), ErrExpired},
		{"wrong channel", good, 8, ScopeLive, now, ErrWrongChannel},
		{"wrong scope", good, 7, Scope("export"), now, ErrWrongScope},
		{"other key", other.Sign(Claims{Scope: ScopeLive, Channel: 7, Expires: now.Add(time.Minute)}), 7, ScopeLive, now, ErrBadSignature},
		{"swapped payload", forgedPayload + "." + sig, 8, ScopeLive, now, ErrBadSignature},
		{"flipped signature", payload + "." + strings.ToUpper(sig[:4]) + sig[4:], 7, ScopeLive, now, ErrBadSignature},
		{"no dot", payload, 7, ScopeLive, now, ErrMalformed},
		{"empty", "", 7, ScopeLive, now, ErrMalformed},
		{"bad base64", payload + ".!!!", 7, ScopeLive, now, ErrMalformed},
		{"huge", strings.Repeat("a", 5000) + "." + sig, 7, ScopeLive, now, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.VerifyFor(tc.tok, tc.scope, tc.channel, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestShortKeyRefused(t *testing.T) {
	if _, err := NewSigner(make([]byte, MinKeyLen-1)); err == nil {
		t.Fatal("short key accepted")
	}
}

// FuzzVerify feeds arbitrary tokens, as they arrive in media URLs, to
// Verify: it must never panic, and nothing but a token signed with the key
// may verify.
func FuzzVerify(f *testing.F) {
	s, _ := NewSigner([]byte(strings.Repeat("k", MinKeyLen)))
	now := time.Unix(1_800_000_000, 0)
	good := s.Sign(Claims{Scope: ScopeLive, Channel: 7, Expires: now.Add(time.Minute)})
	for _, seed := range []string{good, "", ".", "a.b", good + "x", strings.ReplaceAll(good, ".", ""), "eyJ9.eyJ9"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := s.Verify(tok, now); err == nil && tok != good {
			t.Fatalf("forged token verified: %q", tok)
		}
	})
}

// Package token issues and verifies the short-lived signed tokens carried by
// media URLs (live HLS, WHEP, and later playback and export downloads).
//
// A token is base64url(payload) "." base64url(HMAC-SHA256(key, payload)),
// where payload is a compact JSON object. A token binds a scope, one channel,
// the user it was issued to, and an expiry. It is verified without a database
// look-up, so a token stays valid until it expires: lifetimes are kept short
// (minutes) so that revoked permissions stop working soon.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scope says what a token grants.
type Scope string

// Scopes of media tokens.
const (
	ScopeLive Scope = "live"
	// ScopePlayback grants the recordings of one channel in the range
	// [From, To) of the claims.
	ScopePlayback Scope = "playback"
	// ScopeExport grants the download of the files of one export; Channel
	// holds the export's id.
	ScopeExport Scope = "export"
)

// Errors returned by Verify.
var (
	ErrMalformed    = errors.New("token: malformed")
	ErrBadSignature = errors.New("token: bad signature")
	ErrExpired      = errors.New("token: expired")
	ErrWrongChannel = errors.New("token: issued for another channel")
	ErrWrongScope   = errors.New("token: issued for another purpose")
)

// Claims is what a token asserts.
type Claims struct {
	Scope   Scope     `json:"s"`
	Channel int64     `json:"c"`
	User    string    `json:"u,omitempty"`
	Expires time.Time `json:"-"`
	Exp     int64     `json:"e"` // unix seconds, mirrors Expires on the wire
	// From and To bound a playback token's range, in Unix milliseconds.
	From int64 `json:"f,omitempty"`
	To   int64 `json:"t,omitempty"`
}

// ErrOutOfRange is returned by CheckRange.
var ErrOutOfRange = errors.New("token: the range was not granted")

// CheckRange checks that [from, to) lies within the range the claims grant.
func (c Claims) CheckRange(from, to time.Time) error {
	if from.UnixMilli() < c.From || to.UnixMilli() > c.To || !to.After(from) {
		return ErrOutOfRange
	}
	return nil
}

// Signer signs and verifies tokens with one secret key. It is safe for
// concurrent use.
type Signer struct {
	key []byte
}

// MinKeyLen is the minimum length of a signing key in bytes.
const MinKeyLen = 32

// NewSigner returns a Signer for key, which must be at least MinKeyLen bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("token: key must be at least %d bytes, got %d", MinKeyLen, len(key))
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// NewKey returns a random key suitable for NewSigner.
func NewKey() []byte {
	k := make([]byte, MinKeyLen)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k
}

// b64 is strict so that a token has exactly one accepted spelling.
var b64 = base64.RawURLEncoding.Strict()

// Sign returns the token for c.
func (s *Signer) Sign(c Claims) string {
	c.Exp = c.Expires.Unix()
	payload, _ := json.Marshal(c) // a plain struct always marshals
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(s.mac(p))
}

func (s *Signer) mac(p string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(p))
	return m.Sum(nil)
}

// Verify checks the signature and expiry of tok at time now and returns its
// claims.
func (s *Signer) Verify(tok string, now time.Time) (Claims, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok || p == "" || sig == "" || len(tok) > 4096 {
		return Claims{}, ErrMalformed
	}
	got, err := b64.DecodeString(sig)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(got, s.mac(p)) {
		return Claims{}, ErrBadSignature
	}
	raw, err := b64.DecodeString(p)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return Claims{}, ErrMalformed
	}
	c.Expires = time.Unix(c.Exp, 0)
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

// VerifyFor verifies tok and checks that it grants scope on channel.
func (s *Signer) VerifyFor(tok string, scope Scope, channel int64, now time.Time) (Claims, error) {
	c, err := s.Verify(tok, now)
	if err != nil {
		return c, err
	}
	if c.Scope != scope {
		return c, ErrWrongScope
	}
	if c.Channel != channel {
		return c, ErrWrongChannel
	}
	return c, nil
}

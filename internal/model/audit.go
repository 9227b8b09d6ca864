package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// AuditEntry is one line of the audit trail: who did what, to which
// channels, over which time range, from where, with what result. Entries
// form a hash chain: each carries the hash of the one before, so that a
// changed or deleted entry breaks the chain at that point.
type AuditEntry struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`  // user name, or "system"
	Action   string    `json:"action"` // "login", "live.start", "playback", "export", "ptz", ...
	Channels []int64   `json:"channels,omitempty"`
	// From and To bound the footage concerned (playback, export); zero
	// when none.
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
	Remote string    `json:"remote,omitempty"` // client address
	Result string    `json:"result"`           // "ok", "denied", or an error code
	Detail string    `json:"detail,omitempty"`
	// PrevHash is the Hash of the entry before ("" for the first); Hash is
	// ComputeHash of this one.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// ComputeHash returns the hex SHA-256 of the entry's content and PrevHash
// (not of ID or Hash). Every field is length-prefixed, so that no two
// different entries encode alike; times count at millisecond precision,
// as stored.
func (e *AuditEntry) ComputeHash() string {
	h := sha256.New()
	var n [8]byte
	num := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	str := func(s string) {
		num(int64(len(s)))
		h.Write([]byte(s))
	}
	ms := func(t time.Time) {
		if t.IsZero() {
			num(0)
			return
		}
		num(t.UnixMilli())
	}
	str("xueliang-audit-v1")
	str(e.PrevHash)
	ms(e.At)
	str(e.Actor)
	str(e.Action)
	num(int64(len(e.Channels)))
	for _, c := range e.Channels {
		num(c)
	}
	ms(e.From)
	ms(e.To)
	str(e.Remote)
	str(e.Result)
	str(e.Detail)
	return hex.EncodeToString(h.Sum(nil))
}

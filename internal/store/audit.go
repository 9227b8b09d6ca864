package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

// AppendAudit adds e to the audit trail: it sets e.ID, e.PrevHash (the
// hash of the last entry) and e.Hash in the same write transaction, so
// entries chain in the order they are written. e.At is truncated to
// milliseconds (and set to now when zero).
func (s *Store) AppendAudit(ctx context.Context, e *model.AuditEntry) error {
	if e.Actor == "" || e.Action == "" || e.Result == "" {
		return fmt.Errorf("store: append audit: %w", &model.FieldError{Field: "actor", Message: "actor, action and result are required"})
	}
	if e.At.IsZero() {
		e.At = s.nowMillis()
	}
	e.At = e.At.UTC().Truncate(time.Millisecond)
	e.From, e.To = fromMillis(toMillis(e.From)), fromMillis(toMillis(e.To))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&e.PrevHash)
		if errors.Is(err, sql.ErrNoRows) {
			e.PrevHash, err = "", nil
		}
		if err != nil {
			return err
		}
		e.Hash = e.ComputeHash()
		return tx.QueryRowContext(ctx, `
INSERT INTO audit_log (at, actor, action, channels, from_ms, to_ms, remote, result, detail, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			toMillis(e.At), e.Actor, e.Action, joinIDs(e.Channels), toMillis(e.From), toMillis(e.To),
			e.Remote, e.Result, e.Detail, e.PrevHash, e.Hash).Scan(&e.ID)
	})
	if err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

func splitIDs(s string) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	var out []int64
	for _, p := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("channels %q: %w", s, err)
		}
		out = append(out, id)
	}
	return out, nil
}

const auditColumns = `id, at, actor, action, channels, from_ms, to_ms, remote, result, detail, prev_hash, hash`

func scanAudit(sc scanner) (model.AuditEntry, error) {
	var e model.AuditEntry
	var at, from, to int64
	var chans string
	if err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &chans, &from, &to, &e.Remote, &e.Result, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	e.At, e.From, e.To = fromMillis(at), fromMillis(from), fromMillis(to)
	var err error
	e.Channels, err = splitIDs(chans)
	return e, err
}

// AuditBreak is where VerifyAudit found the chain broken.
type AuditBreak struct {
	ID     int64  // the first entry that does not verify
	Reason string // what is wrong with it, in words
}

// VerifyAudit walks the whole audit trail in order and checks every
// entry's hash and its link to the one before; entries are numbered
// without gaps, so a deleted entry shows as a gap. It returns the number
// of entries checked and the first break, or nil when the chain holds.
// progress, if not nil, is called every 10,000 entries.
func (s *Store) VerifyAudit(ctx context.Context, progress func(checked int)) (int, *AuditBreak, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY id`)
	if err != nil {
		return 0, nil, fmt.Errorf("store: verify audit: %w", err)
	}
	defer rows.Close()
	checked := 0
	var prev *model.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return checked, &AuditBreak{ID: e.ID, Reason: "unreadable: " + err.Error()}, nil
		}
		switch {
		case prev == nil && e.PrevHash != "" && e.ID == 1:
			return checked, &AuditBreak{ID: e.ID, Reason: "the first entry names a previous hash"}, nil
		case prev == nil && e.ID != 1:
			return checked, &AuditBreak{ID: e.ID, Reason: fmt.Sprintf("entries 1 to %d are missing", e.ID-1)}, nil
		case prev != nil && e.ID != prev.ID+1:
			return checked, &AuditBreak{ID: e.ID, Reason: fmt.Sprintf("entries %d to %d are missing", prev.ID+1, e.ID-1)}, nil
		case prev != nil && e.PrevHash != prev.Hash:
			return checked, &AuditBreak{ID: e.ID, Reason: fmt.Sprintf("its previous hash does not match entry %d (that entry or this one was changed)", prev.ID)}, nil
		case e.ComputeHash() != e.Hash:
			return checked, &AuditBreak{ID: e.ID, Reason: "its content does not match its hash (it was changed)"}, nil
		}
		checked++
		if progress != nil && checked%10000 == 0 {
			progress(checked)
		}
		prev = &e
	}
	if err := rows.Err(); err != nil {
		return checked, nil, fmt.Errorf("store: verify audit: %w", err)
	}
	return checked, nil, nil
}

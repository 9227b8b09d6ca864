package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

func appendAudits(t *testing.T, s *Store, n int) []model.AuditEntry {
	t.Helper()
	at := time.Date(2026, 11, 29, 8, 0, 0, 123456789, time.UTC)
	var out []model.AuditEntry
	for i := range n {
		e := model.AuditEntry{At: at.Add(time.Duration(i) * time.Second), Actor: "duty.officer", Action: "playback",
			Channels: []int64{int64(i + 1), 7}, From: at.Add(-time.Hour), To: at, Remote: "10.0.0.8", Result: "ok",
			Detail: fmt.Sprintf("回放 %d", i)}
		if err := s.AppendAudit(context.Background(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestAuditChain(t *testing.T) {
	s := openTestStore(t)
	es := appendAudits(t, s, 5)
	if es[0].ID != 1 || es[0].PrevHash != "" || es[1].PrevHash != es[0].Hash || es[4].ID != 5 {
		t.Fatalf("chain: %+v", es)
	}
	if es[0].At.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("At not truncated to the stored precision: %v", es[0].At)
	}
	n, brk, err := s.VerifyAudit(context.Background(), nil)
	if err != nil || brk != nil || n != 5 {
		t.Fatalf("VerifyAudit = %d, %+v, %v", n, brk, err)
	}
}

func TestAuditTamperingIsFound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sql    string
		wantID int64
		reason string
	}{
		{"content changed", `UPDATE audit_log SET detail = 'nothing to see' WHERE id = 3`, 3, "content does not match"},
		{"channels changed", `UPDATE audit_log SET channels = '8' WHERE id = 2`, 2, "content does not match"},
		{"entry deleted", `DELETE FROM audit_log WHERE id = 2`, 3, "entries 2 to 2 are missing"},
		{"first entries deleted", `DELETE FROM audit_log WHERE id <= 2`, 3, "entries 1 to 2 are missing"},
		{"hash replaced", `UPDATE audit_log SET actor = 'someone', hash = 'x' WHERE id = 4`, 4, "content does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			appendAudits(t, s, 6)
			if _, err := s.w.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			_, brk, err := s.VerifyAudit(context.Background(), nil)
			if err != nil || brk == nil || brk.ID != tc.wantID || !strings.Contains(brk.Reason, tc.reason) {
				t.Fatalf("VerifyAudit break %+v, %v; want entry %d: %s", brk, err, tc.wantID, tc.reason)
			}
		})
	}
	// A forger who recomputes the changed entry's hash breaks the link of
	// the next one.
	s := openTestStore(t)
	es := appendAudits(t, s, 4)
	forged := es[1]
	forged.Detail = "forged"
	if _, err := s.w.Exec(`UPDATE audit_log SET detail = $1, hash = $2 WHERE id = 2`, forged.Detail, forged.ComputeHash()); err != nil {
		t.Fatal(err)
	}
	_, brk, _ := s.VerifyAudit(context.Background(), nil)
	if brk == nil || brk.ID != 3 || !strings.Contains(brk.Reason, "previous hash does not match entry 2") {
		t.Fatalf("forged entry: %+v", brk)
	}
}

func TestAuditRequiredFields(t *testing.T) {
	s := openTestStore(t)
	if err := s.AppendAudit(context.Background(), &model.AuditEntry{Actor: "a"}); err == nil {
		t.Fatal("an entry without action and result was appended")
	}
}

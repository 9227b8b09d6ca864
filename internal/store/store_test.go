package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

// testConfig returns the configuration of a fresh, empty database for one
// test. The suite runs against SQLite in a temporary directory. When
// XUELIANG_TEST_PG_DSN is set it is meant to run against PostgreSQL instead
// (a fresh schema per test, dropped in t.Cleanup); until the PostgreSQL
// dialect exists, such runs are skipped.
func testConfig(t *testing.T) Config {
	t.Helper()
	if os.Getenv("XUELIANG_TEST_PG_DSN") != "" {
		t.Skip("XUELIANG_TEST_PG_DSN is set, but the PostgreSQL dialect is not implemented yet")
	}
	return Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "xueliang.db")}
}

// openTestStore opens a fresh database for one test and closes it when the
// test ends.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	return openConfig(t, testConfig(t))
}

func openConfig(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// fixedClock makes s's clock return the times set on it, in UTC.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func setClock(s *Store, t time.Time) *fixedClock {
	c := &fixedClock{t: t}
	s.now = c.now
	return c
}

func TestPlaceholders(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	for name, db := range map[string]querier{"write pool": s.w, "read pool": s.r} {
		var a, b, c string
		err := db.QueryRowContext(ctx, `SELECT $2, $1, $2`, "one", "two").Scan(&a, &b, &c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a != "two" || b != "one" || c != "two" {
			t.Errorf("%s: SELECT $2, $1, $2 = %q, %q, %q; want two, one, two", name, a, b, c)
		}
		var n int
		err = db.QueryRowContext(ctx, `SELECT $1 + $10`, 1, 0, 0, 0, 0, 0, 0, 0, 0, 41).Scan(&n)
		if err != nil || n != 42 {
			t.Errorf("%s: SELECT $1 + $10 = %d, %v; want 42", name, n, err)
		}
	}
}

func TestMigrationsList(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 {
			t.Errorf("migrations[%d].version = %d, want %d (append-only, no gaps)", i, m.version, i+1)
		}
		if m.name == "" || strings.TrimSpace(m.sqlite) == "" {
			t.Errorf("migration %d lacks a name or SQLite SQL", m.version)
		}
	}
}

func TestMigrationsIdempotentAcrossReopen(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	for i := 0; i < 3; i++ {
		s, err := Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		var n, max int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) || max != latestVersion() {
			t.Errorf("open #%d: %d migrations up to %d; want %d up to %d", i+1, n, max, len(migrations), latestVersion())
		}
		if i == 0 {
			if err := s.UpsertDivisions(ctx, qingyuan); err != nil {
				t.Fatal(err)
			}
		}
		divs, err := s.ListDivisions(ctx)
		if err != nil || len(divs) != len(qingyuan) {
			t.Errorf("open #%d: %d divisions, %v; want %d", i+1, len(divs), err, len(qingyuan))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	future := latestVersion() + 1
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', 0)`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = Open(ctx, cfg)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	if want := fmt.Sprintf("at version %d", future); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"driver", Config{Driver: "mysql", DSN: "x"}},
		{"postgres not yet", Config{Driver: "postgres", DSN: "postgres://localhost/x"}},
		{"empty DSN", Config{Driver: "sqlite"}},
		{"missing directory", Config{DSN: filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("error %q lacks the store: prefix", err)
			}
		})
	}
}

func TestSQLiteConnections(t *testing.T) {
	s := openTestStore(t)
	if s.dialect != dialectSQLite {
		t.Skip("SQLite only")
	}
	ctx := context.Background()
	for name, db := range map[string]querier{"write pool": s.w, "read pool": s.r} {
		var mode string
		var fk, timeout int
		if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode = %q, %v; want wal", name, mode, err)
		}
		if err := db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s: foreign_keys = %d, %v; want 1", name, fk, err)
		}
		if err := db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != int(busyTimeout.Milliseconds()) {
			t.Errorf("%s: busy_timeout = %d, %v", name, timeout, err)
		}
	}
	if s.w.Stats().MaxOpenConnections != 1 {
		t.Errorf("write pool allows %d connections, want 1", s.w.Stats().MaxOpenConnections)
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM divisions`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestSQLiteDSNForms(t *testing.T) {
	if os.Getenv("XUELIANG_TEST_PG_DSN") != "" {
		t.Skip("SQLite only")
	}
	ctx := context.Background()
	for name, dsn := range map[string]string{
		"memory":          ":memory:",
		"file URI":        "file:" + filepath.Join(t.TempDir(), "uri.db") + "?cache=private",
		"path with query": filepath.Join(t.TempDir(), "q.db") + "?_pragma=cache_size(-4000)",
	} {
		t.Run(name, func(t *testing.T) {
			s := openConfig(t, Config{DSN: dsn})
			if err := s.UpsertDivisions(ctx, qingyuan); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetDivision(ctx, "441821"); err != nil {
				t.Fatalf("read after write: %v", err)
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := Open(context.Background(), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.ListDivisions(context.Background()); err == nil {
		t.Error("ListDivisions after Close succeeded")
	}
}

func TestTimes(t *testing.T) {
	if got := fromMillis(toMillis(time.Time{})); !got.IsZero() {
		t.Errorf("zero time round trip = %v", got)
	}
	loc := time.FixedZone("CST", 8*3600)
	in := time.Date(2024, 3, 1, 9, 30, 15, 123456789, loc)
	got := fromMillis(toMillis(in))
	if !got.Equal(in.Truncate(time.Millisecond)) || got.Location() != time.UTC {
		t.Errorf("round trip of %v = %v", in, got)
	}
}

// qingyuan is a small part of the demo city. Town and village codes are
// illustrative.
var qingyuan = []model.Division{
	{Code: "441882106201", Name: "元璧村", Level: model.DivisionLevelVillage, ParentCode: "441882106"},
	{Code: "441800", Name: "清远市", Level: model.DivisionLevelCity},
	{Code: "441802", Name: "清城区", Level: model.DivisionLevelCounty, ParentCode: "441800"},
	{Code: "441821", Name: "佛冈县", Level: model.DivisionLevelCounty, ParentCode: "441800"},
	{Code: "441821101", Name: "汤塘镇", Level: model.DivisionLevelTown, ParentCode: "441821"},
	{Code: "441821101201", Name: "汤塘村", Level: model.DivisionLevelVillage, ParentCode: "441821101"},
	{Code: "441882", Name: "连州市", Level: model.DivisionLevelCounty, ParentCode: "441800"},
	{Code: "441882106", Name: "龙坪镇", Level: model.DivisionLevelTown, ParentCode: "441882"},
}

// openQingyuan opens a store holding the qingyuan divisions.
func openQingyuan(t *testing.T) *Store {
	t.Helper()
	s := openTestStore(t)
	if err := s.UpsertDivisions(context.Background(), qingyuan); err != nil {
		t.Fatalf("UpsertDivisions: %v", err)
	}
	return s
}

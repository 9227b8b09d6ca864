package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Config says which database to open.
type Config struct {
	// Driver is "sqlite" (the default when empty). "postgres" is reserved.
	Driver string

	// DSN locates the database. For SQLite: a file path
	// ("/var/lib/xueliang/xueliang.db"), a "file:" URI, or ":memory:".
	// Open appends the _pragma and _txlock parameters it needs (see the
	// package comment); do not set journal_mode, foreign_keys or query_only
	// yourself. The directory must exist.
	DSN string

	// MaxReadConns bounds the SQLite read pool; 0 means
	// max(4, GOMAXPROCS). Ignored for in-memory databases.
	MaxReadConns int
}

// busyTimeout is how long a connection waits for a lock held by another
// connection (in practice, another process) before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is the database of the control plane. It is safe for concurrent use.
// Create one with Open and release it with Close.
type Store struct {
	dialect dialect
	// w runs every write; for SQLite it has exactly one connection.
	w *sql.DB
	// r runs reads. For SQLite it is a separate query_only pool, or w
	// itself for an in-memory database.
	r *sql.DB
	// now is the clock for created_at and updated_at; tests replace it.
	now func() time.Time

	closeOnce sync.Once
	closeErr  error
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Open opens the database described by cfg, checks that it can be reached
// and applies pending migrations, each in its own transaction. It fails
// with ErrSchemaTooNew when the database was migrated by a newer binary.
// ctx bounds the opening and the migrations, not the life of the Store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	switch cfg.Driver {
	case "", "sqlite":
	default:
		return nil, fmt.Errorf("store: open: unsupported driver %q (want sqlite)", cfg.Driver)
	}
	if cfg.DSN == "" {
		return nil, errors.New("store: open: empty DSN")
	}
	s := &Store{dialect: dialectSQLite, now: time.Now}

	w, err := sql.Open("sqlite", sqliteDSN(cfg.DSN, false))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %q: %w", cfg.DSN, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w, s.r = w, w

	if !sqliteInMemory(cfg.DSN) {
		r, err := sql.Open("sqlite", sqliteDSN(cfg.DSN, true))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("store: open sqlite %q: %w", cfg.DSN, err)
		}
		n := cfg.MaxReadConns
		if n <= 0 {
			n = max(4, runtime.GOMAXPROCS(0))
		}
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		s.r = r
	}

	// The writer goes first: it creates the file and switches it to WAL
	// before any reader opens it.
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open sqlite %q: %w", cfg.DSN, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open sqlite %q: %w", cfg.DSN, err)
	}
	return s, nil
}

// Close closes the database. Calls in flight may fail; Close is safe to call
// more than once and returns the first result every time.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errR error
		if s.r != s.w {
			errR = s.r.Close()
		}
		s.closeErr = errors.Join(errR, s.w.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("store: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// sqliteDSN adds the connection parameters of the write or the read pool.
func sqliteDSN(dsn string, readOnly bool) string {
	params := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
	}
	if readOnly {
		params = append(params, "_pragma=query_only(1)")
	} else {
		params = append(params,
			"_pragma=journal_mode(WAL)",
			"_pragma=synchronous(NORMAL)",
			"_txlock=immediate",
		)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + strings.Join(params, "&")
}

// sqliteInMemory reports whether dsn names a database that lives in one
// connection's memory and therefore cannot have a separate read pool.
func sqliteInMemory(dsn string) bool {
	return dsn == ":memory:" ||
		strings.HasPrefix(dsn, ":memory:?") ||
		strings.HasPrefix(dsn, "file::memory:") ||
		strings.Contains(dsn, "mode=memory")
}

// inTx runs fn in a write transaction and commits it if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// toMillis converts t for storage: milliseconds since the epoch, 0 for the
// zero time.
func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMillis is the inverse of toMillis, in UTC.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// nowMillis returns the store's clock truncated to what the database keeps.
func (s *Store) nowMillis() time.Time {
	return s.now().UTC().Truncate(time.Millisecond)
}

// nullString stores "" as NULL.
func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// nullID stores 0 as NULL.
func nullID(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// rowExists reports whether query, which selects at most one row, finds one.
func rowExists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// missingRef finds which reference of a row that failed a foreign key check
// is missing, and returns ErrUnknownDivision or ErrUnknownDevice wrapped with
// the value. It returns fallback when both exist (a concurrent delete that
// has since been undone, or another foreign key).
func (s *Store) missingRef(ctx context.Context, q querier, divisionCode string, deviceID int64, fallback error) error {
	if divisionCode != "" {
		ok, err := rowExists(ctx, q, `SELECT 1 FROM divisions WHERE code = $1`, divisionCode)
		if err != nil {
			return errors.Join(fallback, err)
		}
		if !ok {
			return fmt.Errorf("%w %q", ErrUnknownDivision, divisionCode)
		}
	}
	if deviceID != 0 {
		ok, err := rowExists(ctx, q, `SELECT 1 FROM devices WHERE id = $1`, deviceID)
		if err != nil {
			return errors.Join(fallback, err)
		}
		if !ok {
			return fmt.Errorf("%w %d", ErrUnknownDevice, deviceID)
		}
	}
	return fallback
}

// writeErr maps a driver error from a write of a row with the given
// references to the package's sentinels where one applies.
func (s *Store) writeErr(ctx context.Context, err error, divisionCode string, deviceID int64) error {
	switch s.dialect.classify(err) {
	case errUnique:
		return ErrConflict
	case errForeignKey:
		return s.missingRef(ctx, s.r, divisionCode, deviceID, err)
	}
	return err
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query on the read pool and scans every row with scan.
// what names the operation in errors ("list channels").
func queryAll[T any](ctx context.Context, s *Store, what, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

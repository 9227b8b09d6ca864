// Package store keeps the control plane's state in a SQL database through
// database/sql: SQLite (modernc.org/sqlite, no cgo) today, PostgreSQL later
// without changing callers.
//
// SQL is written by hand, one file per aggregate (division.go, device.go,
// channel.go). Methods take a context first and return the plain types of
// package model. A *Store is safe for concurrent use by many goroutines.
//
// # Errors
//
// Failures that callers act on wrap one of the sentinels declared in
// errors.go (ErrNotFound, ErrConflict, ErrUnknownDivision, ErrUnknownDevice,
// ErrSchemaTooNew); test with errors.Is. Invalid input is reported as the
// *model.FieldError values of the Validate methods, wrapped; test with
// errors.As. Every error names the operation: `store: create channel "…": …`.
//
// # SQLite connections
//
// Open uses two pools on the same file. The write pool holds exactly one
// connection (SetMaxOpenConns(1)): every INSERT, UPDATE, DELETE and
// migration goes through it, so goroutines of this process queue in
// database/sql for the connection instead of racing for SQLite's write lock,
// and SQLITE_BUSY cannot arise between them. Write transactions begin
// IMMEDIATE (_txlock=immediate), so even a second process gets the lock at
// BEGIN and waits out busy_timeout rather than failing at its first write.
// The read pool holds several connections opened with query_only; in WAL
// mode readers never block the writer nor each other, and see every write
// committed before their statement began. An in-memory database cannot be
// shared between connections, so for ":memory:" both pools are one
// single-connection pool.
//
// Every connection is opened with busy_timeout=10s and foreign_keys=ON
// through the DSN's _pragma parameters; the writer also sets
// journal_mode=WAL (persistent in the file) and synchronous=NORMAL (durable
// across a crash of the process; a power cut may lose the last commits but
// never corrupts the file).
//
// A method must not use the write pool while it holds a write transaction:
// with one connection that would deadlock. Store methods only use their
// transaction's *sql.Tx once they have begun one.
//
// # Portable SQL and the dialect seam
//
// Queries are written once, with $1, $2, … placeholders. modernc.org/sqlite
// binds "$N" to the N-th argument (even out of order or repeated; see
// TestPlaceholders), which is what PostgreSQL does, so no rebinding is
// needed. The rest is chosen to mean the same on both: INSERT … RETURNING id,
// INSERT … ON CONFLICT (code) DO UPDATE, WITH RECURSIVE, COALESCE, lower(…)
// LIKE … ESCAPE '\'.
//
// What differs is behind the dialect value (dialect.go):
//   - the DDL of migrations (migration.sqlite vs migration.postgres): ids are
//     INTEGER PRIMARY KEY AUTOINCREMENT in SQLite and
//     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY in PostgreSQL; REAL vs
//     DOUBLE PRECISION; the rest (TEXT, BIGINT, REFERENCES, indexes) is shared;
//   - mapping driver errors to sentinels (SQLite extended result codes vs
//     PostgreSQL SQLSTATE 23505 unique_violation and 23503
//     foreign_key_violation, whose constraint name also tells which reference
//     failed);
//   - LIMIT without a limit (SQLite "LIMIT -1", PostgreSQL none);
//   - pools: PostgreSQL uses one pool for reads and writes, and takes
//     pg_advisory_xact_lock in each migration transaction instead of relying
//     on SQLite's single writer.
//
// To add PostgreSQL: register github.com/jackc/pgx/v5/stdlib, accept
// Driver "postgres" in Open, fill migration.postgres for every migration,
// add the SQLSTATE mapping to dialect.classify, and run the tests with
// XUELIANG_TEST_PG_DSN set (see openTestStore).
//
// # Representation
//
// Times are stored as BIGINT milliseconds since the Unix epoch, UTC; the
// zero time.Time is stored as 0 and read back as the zero time. Values come
// back in UTC, truncated to the millisecond; methods that set timestamps
// put the truncated value into the caller's struct, so what a caller holds
// equals what a later Get returns. Milliseconds map to PostgreSQL BIGINT
// without time-zone or precision questions, and sort and compare as numbers.
//
// Optional text and references (devices.code, devices.division_code,
// channels.device_id) are NULL in the database when empty or zero in the
// model, so UNIQUE and FOREIGN KEY apply only to real values.
//
// Device and channel ids are never reused (AUTOINCREMENT), so audit entries
// and recordings that name an id keep meaning what they meant.
//
// Deleting a device keeps its channels and sets their device_id to NULL
// (ON DELETE SET NULL): channels carry recordings, alarms and audit history
// that must outlive a replaced NVR; the operator deletes channels
// explicitly. Divisions cannot be deleted through the store, and the
// foreign keys keep a division from being deleted while a device, channel
// or child division refers to it.
//
// Enum columns (level, kind, status) hold the model's string forms and have
// no CHECK constraints: adding a status must not need a table rebuild.
// Validation lives in package model and is applied by every write method.
package store

package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one step of the schema. The list below is append-only:
// never edit or reorder an entry that has shipped; add a new one.
//
// A migration runs inside a transaction with foreign keys on. SQLite
// changes that ALTER TABLE cannot do (dropping a constraint, changing a
// column type) need the 12-step table rebuild, and PRAGMA foreign_keys=OFF
// has no effect inside a transaction: the first such migration must add a
// flag here that makes migrate switch foreign keys off around it and run
// PRAGMA foreign_key_check before commit.
type migration struct {
	version int    // strictly increasing, from 1
	name    string // short, for schema_migrations and errors
	// sqlite is the SQL for SQLite; it may hold several statements.
	sqlite string
	// postgres is the SQL for PostgreSQL; empty until that dialect lands.
	// Where a statement is the same in both, repeat it: each dialect's
	// script must stand alone.
	postgres string
}

// sql returns the script of m for d.
func (m migration) sql(d dialect) string {
	if d == dialectPostgres {
		return m.postgres
	}
	return m.sqlite
}

// migrations is the ordered, append-only history of the schema.
//
// Conventions: times are BIGINT milliseconds since the epoch (UTC); optional
// references are NULL; enum columns hold model string forms without CHECK
// constraints. For PostgreSQL, the id columns become
// BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY and REAL becomes
// DOUBLE PRECISION.
var migrations = []migration{
	{
		version: 1,
		name:    "divisions, devices, channels",
		sqlite: `
CREATE TABLE divisions (
	code        TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	level       TEXT NOT NULL,
	parent_code TEXT REFERENCES divisions (code)
);
CREATE INDEX divisions_parent_code_idx ON divisions (parent_code);

CREATE TABLE devices (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	code          TEXT UNIQUE,
	name          TEXT NOT NULL,
	kind          TEXT NOT NULL,
	division_code TEXT REFERENCES divisions (code),
	manufacturer  TEXT NOT NULL DEFAULT '',
	model         TEXT NOT NULL DEFAULT '',
	status        TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);
CREATE INDEX devices_division_code_idx ON devices (division_code);

CREATE TABLE channels (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	code              TEXT NOT NULL UNIQUE,
	name              TEXT NOT NULL,
	device_id         BIGINT REFERENCES devices (id) ON DELETE SET NULL,
	division_code     TEXT NOT NULL REFERENCES divisions (code),
	source_url        TEXT NOT NULL DEFAULT '',
	transport         TEXT NOT NULL DEFAULT 'auto',
	lat               REAL NOT NULL DEFAULT 0,
	lng               REAL NOT NULL DEFAULT 0,
	heading           REAL NOT NULL DEFAULT 0,
	fov               REAL NOT NULL DEFAULT 0,
	range_m           REAL NOT NULL DEFAULT 0,
	status            TEXT NOT NULL DEFAULT 'offline',
	last_error        TEXT NOT NULL DEFAULT '',
	reason            TEXT NOT NULL DEFAULT '',
	status_changed_at BIGINT NOT NULL DEFAULT 0,
	created_at        BIGINT NOT NULL,
	updated_at        BIGINT NOT NULL
);
CREATE INDEX channels_division_code_idx ON channels (division_code);
CREATE INDEX channels_status_idx ON channels (status);
CREATE INDEX channels_device_id_idx ON channels (device_id);
`,
	},
	{
		version: 2,
		name:    "recording plans, segments, exports",
		// segments has no foreign key to channels: recordings outlive a
		// deleted channel until retention removes them, and channel ids
		// are never reused (AUTOINCREMENT). Rows stay narrow because a
		// city keeps tens of millions of them (30 days of 60 s segments).
		sqlite: `
CREATE TABLE recording_plans (
	channel_id     BIGINT PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
	mode           TEXT NOT NULL,
	schedule       TEXT NOT NULL DEFAULT '[]',
	retention_days INTEGER NOT NULL DEFAULT 0,
	updated_at     BIGINT NOT NULL
);

CREATE TABLE segments (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	channel_id BIGINT NOT NULL,
	start_ms   BIGINT NOT NULL,
	end_ms     BIGINT NOT NULL,
	bytes      BIGINT NOT NULL,
	blob_key   TEXT NOT NULL,
	location   TEXT NOT NULL,
	sha256     TEXT NOT NULL,
	codec      TEXT NOT NULL,
	run        BIGINT NOT NULL
);
CREATE INDEX segments_channel_start_idx ON segments (channel_id, start_ms);
CREATE INDEX segments_start_idx ON segments (start_ms);

CREATE TABLE exports (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	requested_by  TEXT NOT NULL,
	requested_at  BIGINT NOT NULL,
	start_ms      BIGINT NOT NULL,
	end_ms        BIGINT NOT NULL,
	channels      TEXT NOT NULL,
	state         TEXT NOT NULL,
	progress      REAL NOT NULL DEFAULT 0,
	error         TEXT NOT NULL DEFAULT '',
	bytes         BIGINT NOT NULL DEFAULT 0,
	finished_at   BIGINT NOT NULL DEFAULT 0,
	released_at   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE segment_locks (
	segment_id BIGINT NOT NULL,
	export_id  BIGINT NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
	PRIMARY KEY (segment_id, export_id)
);
CREATE INDEX segment_locks_export_idx ON segment_locks (export_id);
`,
	},
	{
		version: 3,
		name:    "segment totals, covering timeline index",
		// A city's index holds ~10 million rows: the disk guard and
		// /api/v1/storage read running totals kept by triggers instead of
		// summing the table, and the timeline of a channel-day reads only
		// the index (a channel's rows are spread over the table's pages,
		// since all channels record at once).
		sqlite: `
CREATE TABLE segment_totals (
	location TEXT PRIMARY KEY,
	segments BIGINT NOT NULL,
	bytes    BIGINT NOT NULL
);
INSERT INTO segment_totals (location, segments, bytes)
	SELECT location, COUNT(*), COALESCE(SUM(bytes), 0) FROM segments GROUP BY location;
CREATE TRIGGER segments_totals_insert AFTER INSERT ON segments BEGIN
	INSERT INTO segment_totals (location, segments, bytes) VALUES (NEW.location, 1, NEW.bytes)
	ON CONFLICT (location) DO UPDATE SET segments = segments + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER segments_totals_delete AFTER DELETE ON segments BEGIN
	UPDATE segment_totals SET segments = segments - 1, bytes = bytes - OLD.bytes WHERE location = OLD.location;
END;
CREATE TRIGGER segments_totals_update AFTER UPDATE OF location, bytes ON segments BEGIN
	UPDATE segment_totals SET segments = segments - 1, bytes = bytes - OLD.bytes WHERE location = OLD.location;
	INSERT INTO segment_totals (location, segments, bytes) VALUES (NEW.location, 1, NEW.bytes)
	ON CONFLICT (location) DO UPDATE SET segments = segments + 1, bytes = bytes + excluded.bytes;
END;
DROP INDEX segments_channel_start_idx;
CREATE INDEX segments_channel_start_idx ON segments (channel_id, start_ms, end_ms, bytes);
`,
	},
	{
		version: 4,
		name:    "index of the segments on the disk",
		// The uploader and the disk guard ask for the oldest segments on
		// the disk; with S3 those are few among millions.
		sqlite: `
CREATE INDEX segments_disk_start_idx ON segments (start_ms) WHERE location = 'disk';
`,
	},
	{
		version: 5,
		name:    "GB/T 28181 devices, catalog groups, alarms",
		// The registrar's state of a device (transport, address, reason,
		// last keepalive) is written in batches, never once per keepalive.
		// Catalog groups are the business groups (215) and virtual
		// organisations (216) of devices' catalogs; a channel's
		// parent_code names its group (or its device) as the catalog says.
		sqlite: `
ALTER TABLE devices ADD COLUMN transport TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN remote_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN firmware TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN registered_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN clock_offset_ms BIGINT;
ALTER TABLE devices ADD COLUMN clock_checked_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN catalog_at BIGINT NOT NULL DEFAULT 0;

ALTER TABLE channels ADD COLUMN parent_code TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN ptz_type INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN catalog_status TEXT NOT NULL DEFAULT '';

CREATE TABLE catalog_groups (
	code          TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	kind          TEXT NOT NULL,
	parent_code   TEXT NOT NULL DEFAULT '',
	division_code TEXT REFERENCES divisions (code),
	device_id     BIGINT REFERENCES devices (id) ON DELETE CASCADE,
	updated_at    BIGINT NOT NULL
);
CREATE INDEX catalog_groups_device_idx ON catalog_groups (device_id);

CREATE TABLE alarms (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	source       TEXT NOT NULL,
	device_code  TEXT NOT NULL DEFAULT '',
	channel_code TEXT NOT NULL DEFAULT '',
	channel_id   BIGINT,
	priority     INTEGER NOT NULL DEFAULT 0,
	method       INTEGER NOT NULL DEFAULT 0,
	type         TEXT NOT NULL DEFAULT '',
	description  TEXT NOT NULL DEFAULT '',
	lat          REAL NOT NULL DEFAULT 0,
	lng          REAL NOT NULL DEFAULT 0,
	occurred_at  BIGINT NOT NULL,
	received_at  BIGINT NOT NULL,
	state        TEXT NOT NULL DEFAULT 'new'
);
CREATE INDEX alarms_received_idx ON alarms (received_at);
CREATE INDEX alarms_channel_idx ON alarms (channel_id, occurred_at);
`,
	},
	{
		version: 6,
		name:    "audit trail",
		// Append-only; each row carries the hash of the one before
		// (model.AuditEntry.ComputeHash). Retention never touches it.
		sqlite: `
CREATE TABLE audit_log (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	at        BIGINT NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	channels  TEXT NOT NULL DEFAULT '',
	from_ms   BIGINT NOT NULL DEFAULT 0,
	to_ms     BIGINT NOT NULL DEFAULT 0,
	remote    TEXT NOT NULL DEFAULT '',
	result    TEXT NOT NULL,
	detail    TEXT NOT NULL DEFAULT '',
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);
`,
	},
}

// latestVersion is the schema version this binary writes.
func latestVersion() int { return migrations[len(migrations)-1].version }

// migrate creates schema_migrations if needed and applies every migration
// newer than the database, each in its own write transaction together with
// its schema_migrations row.
func (s *Store) migrate(ctx context.Context) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`
	if _, err := s.w.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("store: migrate: create schema_migrations: %w", err)
	}
	var current int
	err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current)
	if err != nil {
		return fmt.Errorf("store: migrate: read version: %w", err)
	}
	if latest := latestVersion(); current > latest {
		return fmt.Errorf("store: open: %w: the database is at version %d, this binary knows versions up to %d; run a newer xueliang or restore a backup",
			ErrSchemaTooNew, current, latest)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			// Another process may have applied it since we read current:
			// the IMMEDIATE transaction holds the write lock, so this
			// check and the script are atomic with respect to it.
			done, err := rowExists(ctx, tx, `SELECT 1 FROM schema_migrations WHERE version = $1`, m.version)
			if err != nil || done {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql(s.dialect)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, toMillis(s.nowMillis()))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

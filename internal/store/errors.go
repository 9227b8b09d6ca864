package store

import "errors"

// Errors that callers act on. Store methods wrap them with what failed, for
// example `store: create channel "44180000001320000001": already exists`;
// test with errors.Is.
var (
	// ErrNotFound: no row has the given id or code.
	ErrNotFound = errors.New("not found")

	// ErrConflict: a unique value (a device or channel code) is already
	// taken by another row.
	ErrConflict = errors.New("already exists")

	// ErrUnknownDivision: a division code given for a device, channel or as
	// a parent does not exist in the divisions table.
	ErrUnknownDivision = errors.New("unknown division")

	// ErrUnknownDevice: a channel's device_id does not name a device.
	ErrUnknownDevice = errors.New("unknown device")

	// ErrSchemaTooNew: the database was migrated by a newer binary than this
	// one. Open refuses it rather than run old code on a new schema.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

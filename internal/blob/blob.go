// Package blob keeps the files of the platform that are too big for the
// database: recorded segments and evidence exports. A Store is a flat
// namespace of keys ("12/2026-11-29/20261129T101500.000Z.mp4") holding
// immutable files; the local disk and S3-compatible object storage
// implement it.
//
// Files are written to the local disk first (the recorder appends to them
// part by part); a Store only ever receives finished files, with Put.
package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound means that no file has the key.
var ErrNotFound = errors.New("blob: not found")

// Store holds immutable files by key. Implementations are safe for
// concurrent use.
type Store interface {
	// Name returns the short name of the store ("disk", "s3") for logs and
	// metrics.
	Name() string
	// Put stores the local file at path under key, replacing any file with
	// that key. It returns only when the file is durable in the store.
	Put(ctx context.Context, key, path string) error
	// Open opens the file of key for reading. Errors wrap ErrNotFound when
	// there is no such file.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the file of key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every file whose key starts with prefix, in no
	// particular order, until fn returns an error (which List returns).
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Object is an open file of a Store.
type Object interface {
	io.ReadSeekCloser
	io.ReaderAt
	// Size returns the length of the file in bytes.
	Size() int64
}

// Info describes a file of a Store.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

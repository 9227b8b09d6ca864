package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Disk is a Store in a folder of the local file system. Keys are relative
// slash-separated paths below the folder.
type Disk struct {
	root string
}

// NewDisk returns a Store in the folder root, creating it if needed.
func NewDisk(root string) (*Disk, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("blob: disk store: %w", err)
	}
	return &Disk{root: root}, nil
}

// Name returns "disk".
func (d *Disk) Name() string { return "disk" }

// Root returns the folder of the store.
func (d *Disk) Root() string { return d.root }

// Path returns the file system path of key. It refuses keys that are
// absolute, empty, or climb out of the folder.
func (d *Disk) Path(key string) (string, error) {
	if key == "" || !fs.ValidPath(key) {
		return "", fmt.Errorf("blob: invalid key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put moves (or, across file systems, copies) the file at path to key.
// A file already at the key's path is left as it is when path is that
// file, which is how the recorder's own files become blobs.
func (d *Disk) Put(ctx context.Context, key, path string) error {
	dst, err := d.Path(key)
	if err != nil {
		return err
	}
	if same, _ := samePath(dst, path); same {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := os.Rename(path, dst); err == nil {
		return nil
	}
	if err := copyFile(ctx, dst, path); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	return nil
}

func samePath(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	return aa == bb, nil
}

func copyFile(ctx context.Context, dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = out.ReadFrom(ctxReader{ctx, in})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

type ctxReader struct {
	ctx context.Context
	f   *os.File
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.f.Read(p)
}

// Open opens the file of key.
func (d *Disk) Open(_ context.Context, key string) (Object, error) {
	p, err := d.Path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob: open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	return &diskObject{File: f, size: st.Size()}, nil
}

type diskObject struct {
	*os.File
	size int64
}

func (o *diskObject) Size() int64 { return o.size }

// Delete removes the file of key and the folders that it leaves empty.
func (d *Disk) Delete(_ context.Context, key string) error {
	p, err := d.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	// Remove emptied day and channel folders; Remove fails on a folder
	// that is not empty, which ends the walk up.
	for dir := filepath.Dir(p); dir != d.root && strings.HasPrefix(dir, d.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List walks the files below the folder whose keys start with prefix.
// Files ending in ".tmp" (unfinished copies) are skipped.
func (d *Disk) List(ctx context.Context, prefix string, fn func(Info) error) error {
	start := d.root
	// Walk only the folder that the prefix names, if it names one.
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		start = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || strings.HasSuffix(p, ".tmp") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(Info{Key: key, Size: st.Size(), Modified: st.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("blob: list %q: %w", prefix, err)
	}
	return nil
}

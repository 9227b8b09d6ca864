package blob_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/xueliang/xueliang/internal/blob"
)

func TestDisk(t *testing.T) {
	d, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, d)
}

func TestDiskPutKeepsItsOwnFile(t *testing.T) {
	d, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Path("1/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(p), 0o750)
	if err := os.WriteFile(p, []byte("segment"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(t.Context(), "1/a.mp4", p); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, d, "1/a.mp4"); string(got) != "segment" {
		t.Fatalf("got %q", got)
	}
}

// testStore is the behaviour that every Store shares. TestDisk and TestS3
// run it on a new, empty store.
func testStore(t *testing.T, s blob.Store) {
	ctx := t.Context()

	t.Run("PutOpenReadSeek", func(t *testing.T) {
		data := randomBytes(1, 100_000)
		put(t, s, "1/2026-11-29/20261129T101500.000Z.mp4", data)
		o, err := s.Open(ctx, "1/2026-11-29/20261129T101500.000Z.mp4")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		if o.Size() != int64(len(data)) {
			t.Fatalf("Size = %d, want %d", o.Size(), len(data))
		}
		got, err := io.ReadAll(o)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadAll: %d bytes, err %v; want the %d bytes put", len(got), err, len(data))
		}
		seeks := []struct {
			name   string
			offset int64
			whence int
			want   int64
		}{
			{"start", 10, io.SeekStart, 10},
			{"current", 5, io.SeekCurrent, 15},
			{"end", -7, io.SeekEnd, int64(len(data)) - 7},
			{"back", -100, io.SeekCurrent, int64(len(data)) - 107},
		}
		for _, c := range seeks {
			pos, err := o.Seek(c.offset, c.whence)
			if err != nil || pos != c.want {
				t.Fatalf("Seek %s: %d, %v; want %d", c.name, pos, err, c.want)
			}
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(o, buf); err != nil || !bytes.Equal(buf, data[len(data)-107:len(data)-102]) {
			t.Fatalf("read after seek: %x, %v", buf, err)
		}
		if _, err := o.Seek(-1, io.SeekStart); err == nil {
			t.Error("Seek to -1: no error")
		}
		if _, err := o.Seek(0, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		if n, err := o.Read(buf); n != 0 || err != io.EOF {
			t.Errorf("Read at the end: %d, %v; want 0, EOF", n, err)
		}

		reads := []struct {
			name    string
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{"first byte", 0, 1, 1, false},
			{"middle", 50_000, 1000, 1000, false},
			{"to the end", int64(len(data)) - 10, 10, 10, false},
			{"across the end", int64(len(data)) - 10, 20, 10, true},
			{"at the end", int64(len(data)), 1, 0, true},
			{"beyond", int64(len(data)) + 100, 1, 0, true},
		}
		for _, c := range reads {
			p := make([]byte, c.n)
			n, err := o.ReadAt(p, c.off)
			if n != c.wantN || (err == io.EOF) != c.wantEOF || (err != nil && err != io.EOF) {
				t.Errorf("ReadAt %s: %d, %v; want %d, EOF %v", c.name, n, err, c.wantN, c.wantEOF)
				continue
			}
			if n > 0 && !bytes.Equal(p[:n], data[c.off:c.off+int64(n)]) {
				t.Errorf("ReadAt %s: wrong bytes", c.name)
			}
		}
	})

	t.Run("ConcurrentReadAt", func(t *testing.T) {
		data := randomBytes(2, 9<<20)
		put(t, s, "1/2026-11-29/concurrent.mp4", data)
		o, err := s.Open(ctx, "1/2026-11-29/concurrent.mp4")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 0))
				for range 20 {
					off := rng.Int64N(int64(len(data)))
					p := make([]byte, min(rng.Int64N(64<<10), int64(len(data))-off))
					if _, err := o.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+int64(len(p))]) {
						t.Errorf("ReadAt(%d bytes at %d): %v or wrong bytes", len(p), off, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})

	t.Run("Empty", func(t *testing.T) {
		put(t, s, "empty.json", nil)
		o, err := s.Open(ctx, "empty.json")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		if o.Size() != 0 {
			t.Errorf("Size = %d", o.Size())
		}
		if n, err := o.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("Read: %d, %v; want 0, EOF", n, err)
		}
	})

	t.Run("Replace", func(t *testing.T) {
		put(t, s, "2/replaced.json", []byte(`{"v":1}`))
		put(t, s, "2/replaced.json", []byte(`{"version":2}`))
		if got := readKey(t, s, "2/replaced.json"); string(got) != `{"version":2}` {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := s.Open(ctx, "3/missing.mp4")
		if !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Open a missing key: %v; want ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		put(t, s, "4/2026-11-29/a.mp4", []byte("a"))
		put(t, s, "4/2026-11-29/b.mp4", []byte("b"))
		if err := s.Delete(ctx, "4/2026-11-29/a.mp4"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, "4/2026-11-29/a.mp4"); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Open after Delete: %v; want ErrNotFound", err)
		}
		if got := readKey(t, s, "4/2026-11-29/b.mp4"); string(got) != "b" {
			t.Errorf("the other file: %q", got)
		}
		if err := s.Delete(ctx, "4/2026-11-29/a.mp4"); err != nil {
			t.Errorf("Delete a missing key: %v", err)
		}
		if err := s.Delete(ctx, "4/2026-11-29/b.mp4"); err != nil {
			t.Fatal(err)
		}
		if keys := listKeys(t, s, "4/"); len(keys) != 0 {
			t.Errorf("List after deleting all: %q", keys)
		}
	})

	t.Run("List", func(t *testing.T) {
		files := map[string]int{
			"5/2026-11-29/a.mp4": 10,
			"5/2026-11-29/b.mp4": 20,
			"5/2026-11-30/c.mp4": 30,
			"50/x.json":          40,
			"6/y.mp4":            50,
		}
		for k, n := range files {
			put(t, s, k, randomBytes(uint64(n), n))
		}
		cases := []struct {
			prefix string
			want   []string
		}{
			{"5/2026-11-29/", []string{"5/2026-11-29/a.mp4", "5/2026-11-29/b.mp4"}},
			{"5/", []string{"5/2026-11-29/a.mp4", "5/2026-11-29/b.mp4", "5/2026-11-30/c.mp4"}},
			{"5", []string{"5/2026-11-29/a.mp4", "5/2026-11-29/b.mp4", "5/2026-11-30/c.mp4", "50/x.json"}},
			{"5/2026-11-29/a", []string{"5/2026-11-29/a.mp4"}},
			{"7/", nil},
		}
		for _, c := range cases {
			if got := listKeys(t, s, c.prefix); !slices.Equal(got, c.want) {
				t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
			}
		}
		err := s.List(ctx, "", func(i blob.Info) error {
			if n, ok := files[i.Key]; ok && int64(n) != i.Size {
				t.Errorf("%s: Size %d, want %d", i.Key, i.Size, n)
			}
			if i.Modified.IsZero() {
				t.Errorf("%s: no Modified", i.Key)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		stop := errors.New("stop")
		calls := 0
		err = s.List(ctx, "5/", func(blob.Info) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("List with fn failing: %v after %d calls; want stop after 1", err, calls)
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		src := writeTemp(t, []byte("x"))
		for _, key := range []string{"", "/abs.mp4", "../up.mp4", "a/../b.mp4", "a//b.mp4", "a/", "./a.mp4"} {
			if err := s.Put(ctx, key, src); err == nil {
				t.Errorf("Put(%q): no error", key)
			}
			if _, err := s.Open(ctx, key); err == nil || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Open(%q): %v; want an invalid key error", key, err)
			}
			if err := s.Delete(ctx, key); err == nil {
				t.Errorf("Delete(%q): no error", key)
			}
		}
	})
}

// put stores data under key through a temporary file.
func put(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, writeTemp(t, data)); err != nil {
		t.Fatal(err)
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "blob")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func readKey(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	o, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// listKeys returns the sorted keys under prefix.
func listKeys(t *testing.T, s blob.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(t.Context(), prefix, func(i blob.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// randomBytes returns n bytes that depend only on seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

package blob_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/blob/s3test"
)

// newS3 returns a store of cfg that is closed when the test ends, and
// checks then that no goroutine of it is left.
func newS3(t *testing.T, cfg blob.S3Config) *blob.S3 {
	t.Helper()
	before := runtime.NumGoroutine()
	s, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		waitFor(t, "the goroutines of the store to end", func() bool { return runtime.NumGoroutine() <= before })
	})
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawClient returns a minio client of srv, to look at the bucket behind
// the store's back.
func rawClient(t *testing.T, srv *s3test.Server) *minio.Client {
	t.Helper()
	cfg := srv.Config("")
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestS3(t *testing.T) {
	srv := s3test.Start(t)
	testStore(t, newS3(t, srv.Config("conformance")))
}

func TestS3Prefix(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("shared")
	cfg.Prefix = "/xueliang/city-a/"
	cfg.Region = "" // asked from the server
	s := newS3(t, cfg)
	testStore(t, s)

	// The files are below the prefix in the bucket, and the store sees
	// nothing else.
	ctx := t.Context()
	raw := rawClient(t, srv)
	if _, err := raw.StatObject(ctx, "shared", "xueliang/city-a/6/y.mp4", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("the file is not below the prefix: %v", err)
	}
	if _, err := raw.PutObject(ctx, "shared", "other/6/z.mp4", strings.NewReader("z"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if keys := listKeys(t, s, "6/"); len(keys) != 1 || keys[0] != "6/y.mp4" {
		t.Errorf("List(6/) = %q, want [6/y.mp4]", keys)
	}
}

func TestS3ContentType(t *testing.T) {
	srv := s3test.Start(t)
	s := newS3(t, srv.Config("types"))
	raw := rawClient(t, srv)
	for key, want := range map[string]string{
		"1/a.mp4":     "video/mp4",
		"1/a.json":    "application/json",
		"1/a.bin":     "application/octet-stream",
		"1/noext":     "application/octet-stream",
		"1/UPPER.MP4": "video/mp4",
	} {
		put(t, s, key, []byte("x"))
		info, err := raw.StatObject(t.Context(), "types", key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.ContentType != want {
			t.Errorf("%s: Content-Type %q, want %q", key, info.ContentType, want)
		}
	}
}

func TestS3Multipart(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("multipart")
	cfg.PartSize = 5 << 20
	s := newS3(t, cfg)
	ctx := t.Context()

	data := randomBytes(7, 12<<20)
	put(t, s, "9/big.mp4", data)

	// An S3 multipart ETag ends in "-<number of parts>".
	info, err := rawClient(t, srv).StatObject(ctx, "multipart", "9/big.mp4", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(info.ETag, "-3") {
		t.Errorf("ETag %q: not a multipart upload of 3 parts", info.ETag)
	}

	o, err := s.Open(ctx, "9/big.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", o.Size(), len(data))
	}
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := rng.Int64N(int64(len(data)))
		n := rng.IntN(64 << 10)
		if rng.IntN(10) == 0 {
			n = rng.IntN(6 << 20) // larger than a read-ahead block
		}
		p := make([]byte, n)
		k, err := o.ReadAt(p, off)
		want := data[off:min(off+int64(n), int64(len(data)))]
		if k != len(want) || !bytes.Equal(p[:k], want) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v: wrong bytes", n, off, k, err)
		}
		if (k < n) != (err == io.EOF) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, k, err)
		}
	}
}

// TestS3ReadAhead walks the box headers of an MP4-like file, as the
// playback server does, and checks that it takes one request per
// read-ahead block rather than one per header.
func TestS3ReadAhead(t *testing.T) {
	srv := s3test.Start(t)
	s := newS3(t, srv.Config("readahead"))
	ctx := t.Context()

	// 60 boxes of 250,000 bytes: an 8-byte header (size, type) and a body.
	const boxes, boxSize = 60, 250_000
	data := randomBytes(3, boxes*boxSize)
	for i := range boxes {
		binary.BigEndian.PutUint32(data[i*boxSize:], boxSize)
		copy(data[i*boxSize+4:], "mdat")
	}
	put(t, s, "1/fragmented.mp4", data)
	o, err := s.Open(ctx, "1/fragmented.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()

	before := s.Stats()
	var hdr [8]byte
	n := 0
	for off := int64(0); off < o.Size(); n++ {
		if _, err := o.ReadAt(hdr[:], off); err != nil {
			t.Fatalf("header at %d: %v", off, err)
		}
		if string(hdr[4:]) != "mdat" {
			t.Fatalf("header at %d: %q", off, hdr[4:])
		}
		off += int64(binary.BigEndian.Uint32(hdr[:4]))
	}
	if n != boxes {
		t.Fatalf("walked %d boxes, want %d", n, boxes)
	}
	// 15,000,000 bytes in blocks of 4 MiB.
	if gets := s.Stats().Gets - before.Gets; gets > 4 {
		t.Errorf("walking %d headers took %d requests, want at most 4", boxes, gets)
	}

	// Then stream a large range, as an HTTP range request does.
	before = s.Stats()
	start := int64(20 * boxSize)
	if _, err := o.Seek(start, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := io.CopyBuffer(&got, io.LimitReader(o, 30*boxSize), make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data[start:start+30*boxSize]) {
		t.Fatal("streamed range: wrong bytes")
	}
	// 7.5 MB in 32 KiB reads: 2 or 3 blocks.
	if gets := s.Stats().Gets - before.Gets; gets > 3 {
		t.Errorf("streaming 7.5 MB took %d requests, want at most 3", gets)
	}
}

func TestS3ReplacedWhileOpen(t *testing.T) {
	srv := s3test.Start(t)
	s := newS3(t, srv.Config("replaced"))
	ctx := t.Context()
	put(t, s, "1/a.mp4", randomBytes(1, 100))
	o, err := s.Open(ctx, "1/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	put(t, s, "1/a.mp4", randomBytes(2, 100))
	if _, err := o.ReadAt(make([]byte, 10), 0); err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("read after the file was replaced: %v; want an error saying so", err)
	}

	o2, err := s.Open(ctx, "1/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	if err := s.Delete(ctx, "1/a.mp4"); err != nil {
		t.Fatal(err)
	}
	if _, err := o2.ReadAt(make([]byte, 10), 0); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("read after the file was deleted: %v; want ErrNotFound", err)
	}
	if err := o2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := o2.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v; want os.ErrClosed", err)
	}
}

// TestS3Outage stops the server: a Put fails within about Timeout with an
// error that says what to check, and works again once the server is back.
func TestS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("outage")
	const timeout = 500 * time.Millisecond
	cfg.Timeout = timeout
	s := newS3(t, cfg)
	ctx := t.Context()
	data := randomBytes(5, 6<<20) // two parts
	put(t, s, "1/before.mp4", data)
	o, err := s.Open(ctx, "1/before.mp4")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()

	srv.Stop()
	for _, c := range []struct {
		name string
		op   func() error
	}{
		{"Put", func() error { return s.Put(ctx, "1/during.mp4", writeTemp(t, data)) }},
		{"Open", func() error { _, err := s.Open(ctx, "1/before.mp4"); return err }},
		{"ReadAt", func() error { _, err := o.ReadAt(make([]byte, 10), 0); return err }},
		{"List", func() error { return s.List(ctx, "", func(blob.Info) error { return nil }) }},
		{"Delete", func() error { return s.Delete(ctx, "1/before.mp4") }},
	} {
		start := time.Now()
		err := c.op()
		took := time.Since(start)
		if err == nil {
			t.Fatalf("%s with the server down: no error", c.name)
		}
		t.Logf("%s with the server down, after %s: %v", c.name, took.Round(time.Millisecond), err)
		if took > timeout+time.Second {
			t.Errorf("%s with the server down took %s, want about %s", c.name, took, timeout)
		}
		if !strings.Contains(err.Error(), srv.Endpoint()) || !strings.Contains(err.Error(), "check") {
			t.Errorf("%s: the error does not name the endpoint and what to check: %v", c.name, err)
		}
		if errors.Is(err, blob.ErrNotFound) {
			t.Errorf("%s: an outage is not ErrNotFound: %v", c.name, err)
		}
	}

	srv.Restart()
	put(t, s, "1/after.mp4", data)
	if got := readKey(t, s, "1/after.mp4"); !bytes.Equal(got, data) {
		t.Error("after the restart: wrong bytes")
	}
	if got := readKey(t, s, "1/before.mp4"); !bytes.Equal(got, data) {
		t.Error("the file from before the outage: wrong bytes")
	}
	p := make([]byte, 100)
	if _, err := o.ReadAt(p, 1000); err != nil || !bytes.Equal(p, data[1000:1100]) {
		t.Errorf("the object opened before the outage: %v", err)
	}
}

// TestS3Unreachable checks that NewS3 fails within about Timeout, with an
// error that names the endpoint, against a port that refuses connections
// and against one that accepts them but never answers.
func TestS3Unreachable(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	done := make(chan struct{})
	defer func() { silent.Close(); <-done }()
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	const timeout = 300 * time.Millisecond
	for _, c := range []struct{ name, addr string }{
		{"refused", refused.Addr().String()},
		{"silent", silent.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := blob.NewS3(t.Context(), blob.S3Config{
				Endpoint: c.addr, Region: s3test.Region, Bucket: "recordings",
				AccessKey: "a", SecretKey: "s", Timeout: timeout,
			})
			took := time.Since(start)
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("no error")
			}
			if took > timeout+time.Second {
				t.Errorf("took %s, want about %s", took, timeout)
			}
			if !strings.Contains(err.Error(), c.addr) || !strings.Contains(err.Error(), "Endpoint") {
				t.Errorf("the error does not name the endpoint and the setting: %v", err)
			}
		})
	}
}

func TestNewS3Errors(t *testing.T) {
	srv := s3test.Start(t)
	// A dangling symbolic link where the folder of a bucket would be: the
	// bucket does not exist and cannot be created. (A regular file there
	// would pass for a bucket.)
	if err := os.Symlink(filepath.Join(srv.Dir(), "nowhere", "blocked"), filepath.Join(srv.Dir(), "blocked")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(*blob.S3Config)
		want []string
	}{
		{"wrong secret", func(c *blob.S3Config) { c.SecretKey = "wrong" }, []string{"SecretKey"}},
		{"unknown access key", func(c *blob.S3Config) { c.AccessKey = "nobody" }, []string{"AccessKey"}},
		{"https to an http server", func(c *blob.S3Config) { c.Secure = true }, []string{"Secure"}},
		{"bucket cannot be created", func(c *blob.S3Config) { c.Bucket = "blocked" }, []string{`"blocked"`, "create the bucket"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := srv.Config("fine")
			cfg.Timeout = 500 * time.Millisecond
			c.edit(&cfg)
			s, err := blob.NewS3(t.Context(), cfg)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
		})
	}
}

func TestS3ConfigValidate(t *testing.T) {
	good := blob.S3Config{Endpoint: "127.0.0.1:7070", Bucket: "recordings", AccessKey: "a", SecretKey: "s"}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(*blob.S3Config)
		field string
	}{
		{"no endpoint", func(c *blob.S3Config) { c.Endpoint = "" }, "Endpoint"},
		{"endpoint with scheme", func(c *blob.S3Config) { c.Endpoint = "https://s3.example.com" }, "Endpoint"},
		{"endpoint with path", func(c *blob.S3Config) { c.Endpoint = "s3.example.com/bucket" }, "Endpoint"},
		{"no bucket", func(c *blob.S3Config) { c.Bucket = "" }, "Bucket"},
		{"bad bucket", func(c *blob.S3Config) { c.Bucket = "Recordings_2026" }, "Bucket"},
		{"bad prefix", func(c *blob.S3Config) { c.Prefix = "a/../b" }, "Prefix"},
		{"no secret", func(c *blob.S3Config) { c.SecretKey = "" }, "SecretKey"},
		{"small part", func(c *blob.S3Config) { c.PartSize = 1 << 20 }, "PartSize"},
		{"negative timeout", func(c *blob.S3Config) { c.Timeout = -time.Second }, "Timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.field) {
				t.Errorf("Validate() = %v, want an error naming %s", err, c.field)
			}
		})
	}
}

package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Defaults and limits of S3Config.
const (
	s3MinPartSize    = 5 << 20 // the S3 minimum for every part but the last
	s3MaxPartSize    = 5 << 30 // the S3 maximum part size
	s3DefaultTimeout = 30 * time.Second

	// s3ReadAhead is the size of the block that an S3 object reads at once
	// and keeps for the reads that follow: walking the box headers of a
	// 15 MB MP4 file takes 4 requests instead of one per header. Reads at
	// least this large go straight into the caller's buffer.
	s3ReadAhead = 4 << 20
)

// S3Config configures an S3 store. The zero values of PartSize and Timeout
// select their defaults.
type S3Config struct {
	// Endpoint is the host[:port] of the S3 API, without a scheme
	// ("s3.eu-west-1.amazonaws.com", "127.0.0.1:7070").
	Endpoint string
	// Secure selects HTTPS instead of HTTP.
	Secure bool
	// Region is the region of the bucket. Empty asks the server once,
	// which needs one more request.
	Region string
	// Bucket holds the files. NewS3 creates it if it does not exist.
	Bucket string
	// Prefix, if not empty, is put before every key inside the bucket
	// ("xueliang" stores key "12/a.mp4" as "xueliang/12/a.mp4"), so that
	// several platforms can share a bucket. Keys given to and returned by
	// the store never include it.
	Prefix string
	// AccessKey and SecretKey are the credentials (AWS signature v4).
	AccessKey, SecretKey string
	// PartSize is the size of the parts of a multipart upload: files
	// larger than PartSize are uploaded in parts, up to 4 in parallel,
	// each held in no memory but read from the file. Default and minimum
	// 5 MiB.
	PartSize uint64
	// Timeout bounds how long a request may go without progress: a
	// connection, a response, the next chunk of an upload, a download or a
	// listing. An operation against a dead or unreachable server fails
	// after about Timeout, retries included. Default 30s.
	Timeout time.Duration
}

// Validate reports the fields that are missing or wrong, naming each.
func (c S3Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("blob: s3 config: %s: "+format, append([]any{field}, args...)...))
	}
	switch {
	case c.Endpoint == "":
		bad("Endpoint", "missing: set the host:port of the S3 API")
	case strings.Contains(c.Endpoint, "://"):
		bad("Endpoint", "%q has a scheme: give host:port only and set Secure for https", c.Endpoint)
	case strings.ContainsAny(c.Endpoint, "/?#@ "):
		bad("Endpoint", "%q is not a host:port", c.Endpoint)
	}
	if c.Bucket == "" {
		bad("Bucket", "missing: name the bucket that holds the files")
	} else if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		bad("Bucket", "%q: %v", c.Bucket, err)
	}
	if p := strings.Trim(c.Prefix, "/"); p != "" && !fs.ValidPath(p) {
		bad("Prefix", "%q is not a slash-separated path without empty, '.' or '..' elements", c.Prefix)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		bad("AccessKey/SecretKey", "missing: set both credentials")
	}
	if c.PartSize != 0 && (c.PartSize < s3MinPartSize || c.PartSize > s3MaxPartSize) {
		bad("PartSize", "%d is outside the S3 limits of 5 MiB to 5 GiB: leave it 0 for 5 MiB", c.PartSize)
	}
	if c.Timeout < 0 {
		bad("Timeout", "%s is negative: leave it 0 for %s", c.Timeout, s3DefaultTimeout)
	}
	return errors.Join(errs...)
}

// S3 is a Store in a bucket of an S3-compatible object storage (AWS S3,
// MinIO, Ceph RGW, versitygw...). It is safe for concurrent use.
type S3 struct {
	endpoint string
	region   string
	bucket   string
	prefix   string // "" or ending in "/"
	partSize uint64
	timeout  time.Duration

	client    *minio.Client
	core      minio.Core // the same client, for single ranged GETs
	transport *http.Transport

	puts, putBytes atomic.Int64
	gets, getBytes atomic.Int64
}

// S3Stats counts what an S3 store did since NewS3.
type S3Stats struct {
	// Puts and PutBytes count the files stored and their bytes.
	Puts, PutBytes int64
	// Gets and GetBytes count the ranged GET requests that opened objects
	// made (read-ahead misses and large reads) and the bytes they read.
	Gets, GetBytes int64
}

// NewS3 returns a store in the bucket of cfg. It checks that the server
// answers and accepts the credentials, and creates the bucket if it does
// not exist; its errors say which setting to fix.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = s3MinPartSize
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = s3DefaultTimeout
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	tr.DialContext = (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = cfg.Timeout
	tr.ResponseHeaderTimeout = cfg.Timeout
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: recordingTransport{tr},
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3 config: Endpoint: %w", err)
	}
	s := &S3{
		endpoint:  cfg.Endpoint,
		region:    cfg.Region,
		bucket:    cfg.Bucket,
		partSize:  cfg.PartSize,
		timeout:   cfg.Timeout,
		client:    client,
		core:      minio.Core{Client: client},
		transport: tr,
	}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	if err := s.ensureBucket(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ensureBucket checks that the bucket exists and creates it if not.
func (s *S3) ensureBucket(ctx context.Context) error {
	c := s.begin(ctx)
	defer c.end()
	ok, err := s.client.BucketExists(c.ctx, s.bucket)
	if err != nil {
		return s.fail(c, "check bucket", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(c.ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if err == nil || s3Code(err) == minio.BucketAlreadyOwnedByYou {
		return nil
	}
	switch code := s3Code(err); {
	case code == minio.AccessDenied:
		// A key that may not list the bucket may also get a 404.
		return fmt.Errorf("blob: s3: bucket %q does not exist at %s or the access key may not see it, and the key may not create it: %w; create the bucket or let the key create buckets (s3:CreateBucket), and check AccessKey, SecretKey and Region",
			s.bucket, s.endpoint, err)
	case credentialCodes[code]:
		// versitygw answers HEAD with 404 for an unknown access key.
		return s.fail(c, "create bucket", s.bucket, err)
	}
	return fmt.Errorf("blob: s3: bucket %q does not exist at %s and creating it failed: %w; create the bucket, let the access key create buckets, or set Bucket to one that exists",
		s.bucket, s.endpoint, s.explain(c, err))
}

// Close releases the idle connections to the server. The store starts no
// goroutine of its own; it and its open objects remain usable after Close,
// which only frees what they hold while idle.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Name returns "s3".
func (s *S3) Name() string { return "s3" }

// Stats returns the counters of the store.
func (s *S3) Stats() S3Stats {
	return S3Stats{
		Puts: s.puts.Load(), PutBytes: s.putBytes.Load(),
		Gets: s.gets.Load(), GetBytes: s.getBytes.Load(),
	}
}

// checkKey refuses the keys that Disk refuses, so that both stores accept
// the same keys.
func checkKey(key string) error {
	if key == "" || !fs.ValidPath(key) {
		return fmt.Errorf("blob: invalid key %q", key)
	}
	return nil
}

// contentType returns the Content-Type of the file of key.
func contentType(key string) string {
	switch strings.ToLower(path.Ext(key)) {
	case ".mp4":
		return "video/mp4"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// Put uploads the file at path to key and returns when the server has
// stored it. Files larger than PartSize go up as a multipart upload. The
// file at path is left in place.
//
// A multipart upload that fails is aborted when the server still answers;
// one cut off by an outage leaves its parts on the server, which a bucket
// lifecycle rule (AbortIncompleteMultipartUpload) cleans up.
func (s *S3) Put(ctx context.Context, key, path string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("blob: s3 put %s: %w", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob: s3 put %s: %w", key, err)
	}
	c := s.begin(ctx)
	defer c.end()
	opts := minio.PutObjectOptions{
		ContentType: contentType(key),
		PartSize:    s.partSize,
		// minio-go reports every chunk that it sends: keep the
		// operation alive while the upload moves.
		Progress: progressHook(c.progress),
		// An empty body signed in aws-chunked encoding leaves its final
		// chunk unread by versitygw, which then answers it as a bad
		// request on the kept-alive connection, where the next request
		// may take that answer for its own: send empty files unsigned,
		// there is nothing to protect.
		DisableContentSha256: st.Size() == 0,
	}
	_, err = s.client.PutObject(c.ctx, s.bucket, s.prefix+key, f, st.Size(), opts)
	if err != nil {
		return s.fail(c, "put", key, err)
	}
	s.puts.Add(1)
	s.putBytes.Add(st.Size())
	return nil
}

// Open opens the file of key. The returned Object does not depend on ctx
// after Open returns: each of its reads is bounded by Timeout, and Close
// cancels a read in flight.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	c := s.begin(ctx)
	defer c.end()
	info, err := s.client.StatObject(c.ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		if s3Code(err) == minio.NoSuchKey {
			return nil, fmt.Errorf("blob: open %s: %w", key, ErrNotFound)
		}
		return nil, s.fail(c, "open", key, err)
	}
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &s3Object{
		s:      s,
		key:    key,
		name:   s.prefix + key,
		etag:   info.ETag,
		size:   info.Size,
		ctx:    octx,
		cancel: cancel,
	}, nil
}

// Delete removes the file of key. Deleting a missing key is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	c := s.begin(ctx)
	defer c.end()
	err := s.client.RemoveObject(c.ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && s3Code(err) != minio.NoSuchKey {
		return s.fail(c, "delete", key, err)
	}
	return nil
}

// List calls fn for every file whose key starts with prefix. The time fn
// takes does not count against Timeout.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	c := s.begin(ctx)
	defer c.end()
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}
	// The iterator makes its requests on this goroutine, between the
	// calls of fn; the watchdog is paused while fn runs.
	for obj := range s.client.ListObjectsIter(c.ctx, s.bucket, opts) {
		if obj.Err != nil {
			return s.fail(c, "list", fmt.Sprintf("%q", prefix), obj.Err)
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok || key == "" || strings.HasSuffix(key, "/") {
			continue // a folder marker, not a file
		}
		c.pause()
		err := fn(Info{Key: key, Size: obj.Size, Modified: obj.LastModified})
		c.progress()
		if err != nil {
			return fmt.Errorf("blob: list %q: %w", prefix, err)
		}
	}
	return nil
}

// s3Object is an open file of an S3 store. It keeps one block of up to
// s3ReadAhead bytes from the last miss, so that small reads at increasing
// offsets cost one request per block; reads at least a block long go
// straight to the caller's buffer. Every request asks for the ETag seen
// by Open, so a file replaced meanwhile fails the read instead of mixing
// two versions.
type s3Object struct {
	s      *S3
	key    string // for errors
	name   string // in the bucket
	etag   string
	size   int64
	ctx    context.Context // of the reads; cancelled by Close
	cancel context.CancelFunc

	// mu guards the fields below and serializes reads: a read that
	// misses holds it during its request so that concurrent readers of
	// the same block wait for it instead of fetching it again.
	mu     sync.Mutex
	pos    int64  // of Read and Seek
	buf    []byte // the block: bytes [bufOff, bufOff+len(buf)) of the file
	bufOff int64
	closed bool
}

func (o *s3Object) Size() int64 { return o.size }

func (o *s3Object) Read(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(p) == 0 && !o.closed {
		return 0, nil
	}
	n, err := o.readAtLocked(p, o.pos)
	o.pos += int64(n)
	if n > 0 && err == io.EOF {
		err = nil // the next Read returns io.EOF
	}
	return n, err
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, o.errClosed()
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		offset += o.size
	default:
		return 0, fmt.Errorf("blob: seek %s: invalid whence %d", o.key, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("blob: seek %s: negative position %d", o.key, offset)
	}
	o.pos = offset
	return offset, nil
}

// ReadAt may be called concurrently with other ReadAt calls; they are
// served one at a time.
func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.readAtLocked(p, off)
}

func (o *s3Object) readAtLocked(p []byte, off int64) (int, error) {
	if o.closed {
		return 0, o.errClosed()
	}
	if off < 0 {
		return 0, fmt.Errorf("blob: read %s: negative offset %d", o.key, off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := p
	if rest := o.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n := 0
	for len(want) > 0 {
		if off >= o.bufOff && off < o.bufOff+int64(len(o.buf)) {
			k := copy(want, o.buf[off-o.bufOff:])
			n, off, want = n+k, off+int64(k), want[k:]
			continue
		}
		if len(want) >= s3ReadAhead {
			k, err := o.fetch(want, off)
			n += k
			if err != nil {
				return n, err
			}
			break
		}
		if err := o.fillLocked(off); err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fillLocked reads the block that starts at off.
func (o *s3Object) fillLocked(off int64) error {
	n := min(int64(s3ReadAhead), o.size-off)
	if int64(cap(o.buf)) < n {
		// Once per object: a small file gets a small block.
		o.buf = make([]byte, 0, min(int64(s3ReadAhead), o.size))
	}
	o.buf = o.buf[:0] // invalid until the read succeeds
	k, err := o.fetch(o.buf[:n], off)
	if err != nil {
		return err
	}
	o.buf, o.bufOff = o.buf[:k], off
	return nil
}

// fetch reads len(p) bytes at off with one ranged GET.
func (o *s3Object) fetch(p []byte, off int64) (int, error) {
	s := o.s
	c := s.begin(o.ctx)
	defer c.end()
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return 0, fmt.Errorf("blob: read %s: %w", o.key, err)
	}
	if o.etag != "" {
		opts.SetMatchETag(o.etag)
	}
	s.gets.Add(1)
	body, _, _, err := s.core.GetObject(c.ctx, s.bucket, o.name, opts)
	if err != nil {
		switch s3Code(err) {
		case minio.PreconditionFailed:
			return 0, fmt.Errorf("blob: read %s: the file was replaced since it was opened: open it again: %w", o.key, err)
		case minio.NoSuchKey:
			return 0, fmt.Errorf("blob: read %s: the file was deleted since it was opened: %w", o.key, ErrNotFound)
		}
		if o.ctx.Err() != nil {
			return 0, o.errClosed()
		}
		return 0, s.fail(c, "read", o.key, err)
	}
	defer body.Close()
	n, err := io.ReadFull(progressReader{body, c.progress}, p)
	s.getBytes.Add(int64(n))
	if err != nil {
		if o.ctx.Err() != nil {
			return n, o.errClosed()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return n, fmt.Errorf("blob: read %s: the server sent %d of %d bytes at %d: %w", o.key, n, len(p), off, err)
		}
		return n, s.fail(c, "read", o.key, err)
	}
	return n, nil
}

func (o *s3Object) errClosed() error {
	return fmt.Errorf("blob: read %s: %w", o.key, os.ErrClosed)
}

// Close releases the block and cancels a read in flight.
func (o *s3Object) Close() error {
	o.cancel()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.buf = nil
	return nil
}

// errNoProgress is the cause of the context of an operation that went
// Timeout without progress.
var errNoProgress = errors.New("blob: s3: no progress")

// call is one operation of the store: its context is cancelled when
// Timeout passes without progress, and it remembers the last transport
// error of its requests, which minio-go drops when the context ends.
type call struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
	last   lastError
}

func (s *S3) begin(ctx context.Context) *call {
	c := &call{d: s.timeout}
	ctx, c.cancel = context.WithCancelCause(ctx)
	c.ctx = context.WithValue(ctx, lastErrorKey{}, &c.last)
	c.timer = time.AfterFunc(c.d, func() { c.cancel(errNoProgress) })
	return c
}

// progress restarts the Timeout. It may be called concurrently.
func (c *call) progress() { c.timer.Reset(c.d) }

// pause stops the Timeout until the next progress.
func (c *call) pause() { c.timer.Stop() }

func (c *call) end() {
	c.timer.Stop()
	c.cancel(context.Canceled)
}

// fail wraps err, from operation op on what, with what to do about it.
func (s *S3) fail(c *call, op, what string, err error) error {
	return fmt.Errorf("blob: s3 %s %s: %w", op, what, s.explain(c, err))
}

// explain adds to err why it happened and what to do, when it can tell.
func (s *S3) explain(c *call, err error) error {
	if context.Cause(c.ctx) == errNoProgress {
		// minio-go returns the error of the context and drops the
		// failures of its attempts, which say more.
		switch last, answer := c.last.get(); {
		case answer:
			return fmt.Errorf("%s kept failing for %s (last attempt: %v): see the logs of the S3 server: %w",
				s.endpoint, s.timeout, last, context.DeadlineExceeded)
		case last != nil:
			return fmt.Errorf("no answer from %s in %s (last attempt: %v): check that the S3 server is up and reachable, and Endpoint and Secure: %w",
				s.endpoint, s.timeout, last, context.DeadlineExceeded)
		}
		return fmt.Errorf("no answer from %s in %s: check that the S3 server is up and reachable, and Endpoint and Secure: %w",
			s.endpoint, s.timeout, context.DeadlineExceeded)
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case credentialCodes[er.Code]:
			return fmt.Errorf("%w; check AccessKey, SecretKey and Region, and that the key may use bucket %q", err, s.bucket)
		case er.Code == minio.NoSuchBucket:
			return fmt.Errorf("%w; bucket %q is gone: create it again", err, s.bucket)
		case er.StatusCode == http.StatusBadRequest && strings.Contains(er.Message, "HTTPS"):
			return fmt.Errorf("%w; the server speaks HTTPS: set Secure", err)
		}
		return err
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%w; the server speaks plain HTTP: unset Secure", err)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("%w; check that the S3 server at %s is up and reachable, and Endpoint and Secure", err, s.endpoint)
	}
	return err
}

// credentialCodes are the S3 error codes that mean the server refused the
// credentials or the region they were signed for.
var credentialCodes = map[string]bool{
	minio.AccessDenied:             true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"InvalidToken":                 true,
	"AuthorizationHeaderMalformed": true,
	minio.InvalidRegion:            true,
	// versitygw: an unknown access key.
	"XAdminUserNotFound": true,
}

// s3Code returns the S3 error code of err, or "".
func s3Code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

// progressHook is the Progress reader of minio-go's uploads: it is told
// the bytes sent, possibly by several goroutines at once.
type progressHook func()

func (h progressHook) Read(p []byte) (int, error) {
	h()
	return len(p), nil
}

// progressReader calls progress after every read.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (r progressReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.progress()
	return n, err
}

// lastError holds the last failure of the requests of a call.
type lastError struct {
	mu     sync.Mutex
	err    error
	answer bool // err is an answer of the server, not a transport error
}

func (l *lastError) set(err error, answer bool) {
	l.mu.Lock()
	l.err, l.answer = err, answer
	l.mu.Unlock()
}

func (l *lastError) get() (err error, answer bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err, l.answer
}

type lastErrorKey struct{}

// recordingTransport saves the failures of requests that minio-go retries
// (transport errors and 5xx answers) in the lastError of their context.
type recordingTransport struct{ base http.RoundTripper }

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	l, ok := req.Context().Value(lastErrorKey{}).(*lastError)
	switch {
	case !ok || req.Context().Err() != nil:
		// Not a call, or the call's own end: nothing to learn.
	case err != nil:
		l.set(err, false)
	case resp.StatusCode >= 500:
		l.set(fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status), true)
	}
	return resp, err
}

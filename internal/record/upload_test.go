package record

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/blob/s3test"
	"github.com/xueliang/xueliang/internal/model"
)

func TestUploaderSurvivesAnS3Outage(t *testing.T) {
	f := newRetentionFixture(t) // 48 segments of 1 MiB on the disk
	srv := s3test.Start(t)
	cfg := srv.Config("recordings")
	cfg.Timeout = time.Second
	s3, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	// S3 is down when the uploader starts: nothing moves, nothing is lost.
	srv.Stop()
	up := NewUploader(f.st, f.disk, s3, slog.New(slog.DiscardHandler))
	up.BackoffMin, up.BackoffMax = 100*time.Millisecond, 500*time.Millisecond
	go up.Run(t.Context())
	time.Sleep(1500 * time.Millisecond)
	if n, _, _ := f.st.CountSegmentsAt(t.Context(), model.LocationS3); n != 0 {
		t.Fatalf("%d segments in S3 while it was down", n)
	}
	if n := f.files(t); n != 48 {
		t.Fatalf("%d files left on the disk during the outage, want 48", n)
	}
	srv.Restart()
	up.Kick()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _, err := f.st.CountSegmentsAt(t.Context(), model.LocationS3)
		if err != nil {
			t.Fatal(err)
		}
		if n == 48 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 48 segments uploaded 30 s after S3 came back", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := f.files(t); n != 0 {
		t.Errorf("%d uploaded files are still on the disk", n)
	}
	// The catalog now reads the segment from S3, byte for byte.
	cat := &Catalog{Index: f.st, Disk: f.disk, S3: s3}
	g, err := f.st.Segment(t.Context(), f.segs[1][3].ID)
	if err != nil || g.Location != model.LocationS3 {
		t.Fatalf("segment: %+v, %v", g, err)
	}
	o, err := cat.Open(t.Context(), g)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(b, make([]byte, 1<<20)) {
		t.Errorf("read back %d bytes, %v", len(b), err)
	}
	// Retention deletes from S3 too (the platform's own lifecycle).
	ret := f.retention(f.t0.Add(72 * time.Hour))
	ret.Catalog = cat
	rep, err := ret.Once(t.Context())
	if err != nil || rep.Expired != 48 {
		t.Fatalf("retention over S3: %+v, %v", rep, err)
	}
	left := 0
	if err := s3.List(t.Context(), "", func(blob.Info) error { left++; return nil }); err != nil || left != 0 {
		t.Errorf("%d objects left in the bucket after retention (%v)", left, err)
	}
}

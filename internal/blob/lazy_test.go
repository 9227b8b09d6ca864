package blob_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/blob/s3test"
)

func TestLazyS3ConnectsWhenTheServerComesUp(t *testing.T) {
	srv := s3test.Start(t)
	srv.Stop()
	cfg := srv.Config("late")
	cfg.Timeout = 300 * time.Millisecond
	l, err := blob.NewLazyS3(t.Context(), cfg, 100*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("a server that is down must not fail the start: %v", err)
	}
	defer l.Close()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("video"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(t.Context(), "a/b.mp4", path); !errors.Is(err, blob.ErrNotConnected) || l.Err() == nil {
		t.Fatalf("Put while down: %v (Err %v)", err, l.Err())
	}
	srv.Restart()
	l.Wait()
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	if err := l.Put(t.Context(), "a/b.mp4", path); err != nil {
		t.Fatal(err)
	}
	o, err := l.Open(t.Context(), "a/b.mp4")
	if err != nil || o.Size() != 5 {
		t.Fatalf("open: %v", err)
	}
	o.Close()

	// Settings that cannot work fail at once.
	bad := cfg
	bad.Bucket = "Not_A_Bucket"
	if _, err := blob.NewLazyS3(t.Context(), bad, time.Second, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("an invalid bucket name was accepted")
	}
}

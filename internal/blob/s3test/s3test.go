// Package s3test runs a real S3 server for tests: versitygw serving a
// temporary folder with its posix backend, on a free 127.0.0.1 port, with
// generated root credentials.
//
//	srv := s3test.Start(t)
//	store, err := blob.NewS3(t.Context(), srv.Config("recordings"))
//
// The server is the versitygw binary on $PATH or in $(go env GOPATH)/bin;
// `make test-deps` installs it. Its output goes to the test log when the
// test fails.
package s3test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
)

// Region is the region of the servers.
const Region = "us-east-1"

// startTimeout bounds how long versitygw may take to answer.
const startTimeout = 15 * time.Second

// Server is a running versitygw. Its methods, except Config, Endpoint and
// Dir, must be called from the test's goroutine.
type Server struct {
	t      testing.TB
	bin    string
	dir    string // the posix root: one folder per bucket
	addr   string
	access string
	secret string
	out    syncBuffer // output of every run, for the log of a failed test

	// cmd and exited are the current run; nil when stopped.
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start starts a server for the test and stops it when the test ends. It
// fails the test when versitygw is not installed or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:      t,
		bin:    lookPath(t),
		dir:    t.TempDir(),
		access: randomKey(10),
		secret: randomKey(20),
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", s.out.String())
		}
	})
	// Another process may take the free port before versitygw binds it:
	// try a few ports.
	var err error
	for range 3 {
		s.addr, err = freeAddr()
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("s3test: %v", err)
	return nil
}

// lookPath finds versitygw on $PATH or in $(go env GOPATH)/bin.
func lookPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "versitygw")
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	t.Fatal("versitygw not found: run `make test-deps` (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	return ""
}

// freeAddr returns a 127.0.0.1 address with a port that was free.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomKey(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// start runs versitygw and waits until it answers.
func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--port", s.addr,
		"--access", s.access,
		"--secret", s.secret,
		"--region", Region,
		"--health", "/health",
		// Without it versitygw closes the connection after each request.
		"--keep-alive",
		"--quiet",
		"posix", s.dir)
	fmt.Fprintf(&s.out, "--- %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout = &s.out
	cmd.Stderr = &s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get("http://" + s.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			s.cmd, s.exited = nil, nil
			return fmt.Errorf("versitygw on %s %w: %v (its output is in the log of the failed test)", s.addr, errExited, cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("versitygw on %s did not answer within %s", s.addr, startTimeout)
		}
	}
}

// Config returns the configuration of a store in bucket of the server.
func (s *Server) Config(bucket string) blob.S3Config {
	return blob.S3Config{
		Endpoint:  s.addr,
		Region:    Region,
		Bucket:    bucket,
		AccessKey: s.access,
		SecretKey: s.secret,
	}
}

// Endpoint returns the host:port of the server.
func (s *Server) Endpoint() string { return s.addr }

// Dir returns the folder that the server serves: one folder per bucket,
// one file per object.
func (s *Server) Dir() string { return s.dir }

// Stop kills the server and waits for it to exit, like a crash would.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// Restart stops the server if it runs and starts it again on the same
// address, folder and credentials, as after an outage.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	// The port was free a moment ago; retry briefly in case the kernel
	// has not released it yet.
	var err error
	for range 5 {
		if err = s.start(); err == nil {
			return
		}
		if !errors.Is(err, errExited) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("s3test: restart: %v", err)
}

// errExited means that versitygw exited while starting, most likely
// because its port was taken.
var errExited = errors.New("exited")

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

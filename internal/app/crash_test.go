package app

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/recfile"
	"github.com/xueliang/xueliang/internal/sim"
	"github.com/xueliang/xueliang/internal/store"
)

// TestMain lets a test start the platform as a child process of its own
// (the test binary running Main), so that it can kill it with SIGKILL.
func TestMain(m *testing.M) {
	if args := os.Getenv("XUELIANG_TEST_MAIN"); args != "" {
		os.Exit(Main(strings.Fields(args), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child is the platform running in a child process.
type child struct {
	cmd  *exec.Cmd
	url  string
	logs *strings.Builder
}

func startChild(t *testing.T, dataDir, addr string) *child {
	t.Helper()
	c := &child{url: "http://" + addr, logs: &strings.Builder{}}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(),
		"XUELIANG_TEST_MAIN=serve --data "+dataDir+" --http "+addr,
		"XUELIANG_LIVE_WEBRTC_UDP_ADDR=127.0.0.1:0",
		"XUELIANG_STREAMS_PROBE_INTERVAL=0s",
		"XUELIANG_RECORD_SEGMENT_DURATION=10s",
	)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("platform log:\n%s", c.logs)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(c.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the platform did not start: %v\n%s", err, c.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRecordingSurvivesKill9 records a camera in a child process, kills it
// with SIGKILL, and restarts it: the index holds everything up to at most
// about a second before the kill, every indexed segment plays, and
// recording resumes by itself.
func TestRecordingSurvivesKill9(t *testing.T) {
	s := sim.NewServer(sim.Config{Addr: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "c"}}, Logger: testLogger(t)})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()

	// Seed the database: a channel with a continuous plan, which the
	// platform must resume at start.
	ctx := t.Context()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: filepath.Join(dir, "xueliang.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertDivisions(ctx, DemoDivisions()); err != nil {
		t.Fatal(err)
	}
	ch := model.Channel{Code: "44182100001320000099", Name: "crash", DivisionCode: "441821101",
		SourceURL: "rtsp://" + s.Addr() + "/c", Transport: model.TransportTCP}
	if err := st.CreateChannel(ctx, &ch); err != nil {
		t.Fatal(err)
	}
	if err := st.PutRecordPlan(ctx, &model.RecordPlan{ChannelID: ch.ID, Mode: model.RecordContinuous}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	addr := freeTCPAddr(t)
	c := startChild(t, dir, addr)
	time.Sleep(14 * time.Second) // one finished segment, one open
	killed := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()

	// Restart: the start-up scan indexes the open segment.
	c2 := startChild(t, dir, addr)
	st, err = store.Open(ctx, store.Config{Driver: "sqlite", DSN: filepath.Join(dir, "xueliang.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	segs, err := st.Segments(ctx, ch.ID, killed.Add(-time.Hour), killed)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 2 {
		t.Fatalf("indexed %d segments before the kill, want 2 (one finished, one repaired)", len(segs))
	}
	last := segs[len(segs)-1]
	lost := killed.Sub(last.End)
	t.Logf("kill -9 after %v of recording: %d segments indexed; the last ends %v before the kill", killed.Sub(segs[0].Start).Round(time.Millisecond), len(segs), lost.Round(time.Millisecond))
	if lost > 1500*time.Millisecond || lost < -100*time.Millisecond {
		t.Errorf("the index ends %v before the kill, want at most a part (1 s) and the frame in flight", lost)
	}
	// Every indexed segment reads as a whole file and plays.
	for _, g := range segs {
		path := filepath.Join(dir, "recordings", filepath.FromSlash(g.Key))
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		sf, err := recfile.Scan(f, fi.Size())
		f.Close()
		if err != nil || sf.Truncated || fi.Size() != g.Bytes {
			t.Errorf("segment %s: %v, truncated %v, %d bytes, index %d", g.Key, err, sf != nil && sf.Truncated, fi.Size(), g.Bytes)
			continue
		}
		if d, key := probe(t, path); d < g.Duration().Seconds()-0.2 || !key {
			t.Errorf("segment %s: ffprobe %.3f s (key %v), index %v", g.Key, d, key, g.Duration())
		}
	}
	// Recording resumed after the restart (a new run).
	deadline := time.Now().Add(20 * time.Second)
	for {
		after, err := st.Segments(ctx, ch.ID, killed, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(after) > 0 || resumed(c2.url, ch.ID, killed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("recording did not resume after the restart")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// resumed reports whether the timeline after since holds recording (the
// open segment counts).
func resumed(base string, id int64, since time.Time) bool {
	res, err := http.Get(fmt.Sprintf("%s/api/v1/channels/%d/recordings?start=%s&end=%s", base, id,
		since.UTC().Format(time.RFC3339Nano), time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var tl timeline
	if err := json.NewDecoder(res.Body).Decode(&tl); err != nil {
		return false
	}
	return tl.Seconds > 1
}

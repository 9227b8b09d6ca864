package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/egress/whep"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// TestRelayBenchmark measures the relay cost per stream of xueliang, ffmpeg
// and a socat floor, and the time to the first frame. Run it with make
// bench; the figures go to docs/BENCHMARKS.md.
//
// Environment: XUELIANG_BENCH=1 (required), XUELIANG_BENCH_N (default
// "25,50,100"), XUELIANG_BENCH_SECONDS (measuring window, default 60),
// XUELIANG_BENCH_PROFILE (a file to write a CPU profile of xueliang at the
// largest N to).
func TestRelayBenchmark(t *testing.T) {
	if os.Getenv("XUELIANG_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (XUELIANG_BENCH=1)")
	}
	for _, tool := range []string{"ffmpeg", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: make test-deps installs it", tool)
		}
	}
	ns := benchNs(t)
	window := benchWindow()
	b := &bench{t: t, dir: t.TempDir(), window: window, warmup: 10 * time.Second}
	b.build()

	var rows []string
	for _, n := range ns {
		profile := ""
		if n == slices.Max(ns) {
			profile = os.Getenv("XUELIANG_BENCH_PROFILE")
		}
		x := b.runXueliang(n, "hls", nil, profile)
		xw := b.runXueliang(n, "whep", nil, "")
		f := b.runFFmpeg(n)
		s := b.runSocat(n)
		for _, r := range []result{x, xw, f, s} {
			row := fmt.Sprintf("| %d | %s | %.3f | %.1f | %.1f | %s |", n, r.name, r.cpuPerStreamMin, r.rssPerStream/1e6, r.rssMarginal/1e6, r.note)
			rows = append(rows, row)
			t.Log(row)
		}
		t.Logf("N=%d: xueliang/ffmpeg CPU ratio %.2f", n, x.cpuPerStreamMin/f.cpuPerStreamMin)
	}
	lat := b.latency(20)

	fmt.Printf("\nmachine: %s, %d CPUs, %s; window %s after %s warm-up\n\n", cpuModel(), runtime.NumCPU(), runtime.Version(), window, b.warmup)
	fmt.Println("| N | relay | CPU-s per stream-minute | RSS per stream (MB) | marginal RSS per stream (MB) | notes |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	fmt.Println()
	fmt.Println(lat)
}

// benchNs returns the channel counts of XUELIANG_BENCH_N (default
// 25,50,100); 0 entries are left out (XUELIANG_BENCH_N=0: time to first
// frame only).
func benchNs(t *testing.T) []int {
	ns := []int{25, 50, 100}
	if v := os.Getenv("XUELIANG_BENCH_N"); v != "" {
		ns = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				ns = append(ns, n)
			}
		}
	}
	return ns
}

// benchWindow returns the measuring window of XUELIANG_BENCH_SECONDS
// (default 60 s).
func benchWindow() time.Duration {
	if v := os.Getenv("XUELIANG_BENCH_SECONDS"); v != "" {
		s, _ := strconv.Atoi(v)
		return time.Duration(s) * time.Second
	}
	return 60 * time.Second
}

type bench struct {
	t              *testing.T
	dir            string
	bin, clip      string
	window, warmup time.Duration
}

type result struct {
	name            string
	cpuPerStreamMin float64
	rssPerStream    float64 // total RSS / N
	rssMarginal     float64 // (RSS - idle RSS) / N; 0 where there is no idle process
	note            string
}

func (b *bench) build() {
	b.bin = filepath.Join(b.dir, "xueliang")
	cmd := exec.Command("go", "build", "-o", b.bin, "github.com/xueliang/xueliang/cmd/xueliang")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("build: %v\n%s", err, out)
	}
	root, _ := filepath.Abs("../..")
	cmd = exec.Command(filepath.Join(root, "scripts/gen-clips.sh"), "bench", b.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("bench clip: %v\n%s", err, out)
	}
	b.clip = filepath.Join(b.dir, "bench-720p.h264")
	st, err := os.Stat(b.clip)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("bench clip: %s, %d bytes (%.2f Mbit/s over 10 s)", b.clip, st.Size(), float64(st.Size())*8/10/1e6)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs a process that is killed when the test ends or stop is
// called; its output is logged if the test failed.
func (b *bench) start(env []string, name string, args ...string) (*exec.Cmd, func()) {
	out := &syncBuffer{}
	cmd, stop := b.startTo(out, env, name, args...)
	b.t.Cleanup(func() {
		stop()
		if b.t.Failed() && out.Len() > 0 {
			b.t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return cmd, stop
}

// syncBuffer is a bytes.Buffer safe for a process's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Len() }

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitTCP(t *testing.T, addr string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startSim serves n cameras of the 2 Mbit/s clip, TCP only.
func (b *bench) startSim(n int) (addr string, stop func()) {
	port := freePort(b.t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	_, stop = b.start(nil, b.bin, "sim", "--addr", addr, "--cameras", strconv.Itoa(n), "--clip", b.clip, "--tcp-only")
	waitTCP(b.t, addr)
	return addr, stop
}

// measure samples pids over the window after the warm-up.
func (b *bench) measure(pids func() []int, n int) (cpu float64, rss int64) {
	time.Sleep(b.warmup)
	c0, _, err := sample(pids())
	if err != nil {
		b.t.Fatal(err)
	}
	time.Sleep(b.window)
	c1, r1, err := sample(pids())
	if err != nil {
		b.t.Fatal(err)
	}
	return (c1 - c0) / float64(n) / b.window.Minutes(), r1
}

// startPlatform runs xueliang serve with channels for n simulator cameras.
func (b *bench) startPlatform(simAddr string, n int, env ...string) (base string, pid int, stop func()) {
	return b.startPlatformIn(b.t.TempDir(), simAddr, n, false, env...)
}

// startPlatformIn is startPlatform with the data folder given and, with
// record, a continuous recording plan on every channel.
func (b *bench) startPlatformIn(data, simAddr string, n int, record bool, env ...string) (base string, pid int, stop func()) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: filepath.Join(data, "xueliang.db")})
	if err != nil {
		b.t.Fatal(err)
	}
	if err := st.UpsertDivisions(ctx, []model.Division{{Code: "441800", Name: "清远市", Level: model.DivisionLevelCity}}); err != nil {
		b.t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		ch := &model.Channel{
			Code: fmt.Sprintf("44180000001320%06d", i), Name: fmt.Sprintf("bench %d", i), DivisionCode: "441800",
			SourceURL: fmt.Sprintf("rtsp://%s/cam/%d", simAddr, i), Transport: "tcp",
		}
		if err := st.CreateChannel(ctx, ch); err != nil {
			b.t.Fatal(err)
		}
		if record {
			if err := st.PutRecordPlan(ctx, &model.RecordPlan{ChannelID: ch.ID, Mode: model.RecordContinuous}); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	st.Close()
	port := freePort(b.t)
	cmd, stop := b.start(append([]string{"XUELIANG_STREAMS_PROBE_INTERVAL=0s", "XUELIANG_LOG_LEVEL=warn",
		"XUELIANG_LIVE_WEBRTC_UDP_ADDR=127.0.0.1:0", "XUELIANG_HTTP_PPROF=true"}, env...),
		b.bin, "serve", "--data", data, "--http", fmt.Sprintf("127.0.0.1:%d", port))
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	waitTCP(b.t, fmt.Sprintf("127.0.0.1:%d", port))
	return base, cmd.Process.Pid, stop
}

type live struct {
	HLS, WHEP string
}

func postLive(t *testing.T, base string, id int) live {
	res, err := http.Post(fmt.Sprintf("%s/api/v1/channels/%d/live", base, id), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var l live
	if err := json.NewDecoder(res.Body).Decode(&l); err != nil || l.HLS == "" {
		t.Fatalf("live %d: %v %+v", id, err, l)
	}
	return l
}

// hlsReader reads one HLS stream and counts its video frames.
type hlsReader struct {
	c      *gohlslib.Client
	frames atomic.Int64
	first  chan struct{}
	part   chan struct{}
}

func newHLSReader(uri string) (*hlsReader, error) {
	r := &hlsReader{first: make(chan struct{}), part: make(chan struct{})}
	var firstOnce, partOnce sync.Once
	quiet := func(string) {}
	r.c = &gohlslib.Client{
		URI: uri, OnDownloadPrimaryPlaylist: quiet, OnDownloadStreamPlaylist: quiet, OnDownloadSegment: quiet,
		OnDownloadPart: func(string) { partOnce.Do(func() { close(r.part) }) },
		OnDecodeError:  func(error) {},
	}
	r.c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264, *codecs.H265:
				r.c.OnDataH26x(tr, func(int64, int64, [][]byte) {
					r.frames.Add(1)
					firstOnce.Do(func() { close(r.first) })
				})
			}
		}
		return nil
	}
	return r, r.c.Start()
}

func (b *bench) runXueliang(n int, out string, env []string, profile string) result {
	simAddr, stopSim := b.startSim(n)
	defer stopSim()
	base, pid, stop := b.startPlatform(simAddr, n, env...)
	defer stop()
	time.Sleep(2 * time.Second)
	idle, _ := procRSS(pid)

	counts := make([]func() int64, n)
	for i := range n {
		l := postLive(b.t, base, i+1)
		switch out {
		case "hls":
			r, err := newHLSReader(l.HLS)
			if err != nil {
				b.t.Fatal(err)
			}
			defer r.c.Close()
			counts[i] = r.frames.Load
		case "whep":
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			cs, err := whep.Dial(ctx, l.WHEP)
			cancel()
			if err != nil {
				b.t.Fatalf("WHEP %d: %v", i+1, err)
			}
			defer cs.Close()
			var frames atomic.Int64
			go func() {
				for p := range cs.VideoPackets() {
					if p.Marker {
						frames.Add(1)
					}
				}
			}()
			counts[i] = frames.Load
		}
	}
	if profile != "" {
		go func() {
			time.Sleep(b.warmup + b.window/4)
			save(b.t, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(b.window.Seconds()/2)), profile)
		}()
		defer save(b.t, base+"/debug/pprof/heap", strings.TrimSuffix(profile, ".prof")+".heap")
	}
	startFrames := make([]int64, n)
	time.AfterFunc(b.warmup, func() {
		for i, c := range counts {
			startFrames[i] = c()
		}
	})
	cpu, rss := b.measure(func() []int { return []int{pid} }, n)
	minFPS := 1e9
	for i, c := range counts {
		minFPS = min(minFPS, float64(c()-startFrames[i])/b.window.Seconds())
	}
	name := "xueliang (RTSP in, LL-HLS out, 1 reader each)"
	if out == "whep" {
		name = "xueliang (RTSP in, WebRTC out, 1 WHEP session each)"
	}
	if len(env) > 0 {
		name += " " + strings.Join(env, " ")
	}
	return result{
		name: name, cpuPerStreamMin: cpu,
		rssPerStream: float64(rss) / float64(n), rssMarginal: float64(rss-idle) / float64(n),
		note: fmt.Sprintf("slowest reader %.1f fps (source 15 fps); idle RSS %.0f MB", minFPS, float64(idle)/1e6),
	}
}

func (b *bench) runFFmpeg(n int) result {
	simAddr, stopSim := b.startSim(n)
	defer stopSim()
	var pids []int
	for i := 1; i <= n; i++ {
		out := filepath.Join(b.t.TempDir(), "index.m3u8")
		cmd, stop := b.start(nil, "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
			"-i", fmt.Sprintf("rtsp://%s/cam/%d", simAddr, i), "-c", "copy", "-f", "hls",
			"-hls_time", "1", "-hls_list_size", "7", "-hls_flags", "delete_segments", out)
		defer stop()
		pids = append(pids, cmd.Process.Pid)
	}
	cpu, rss := b.measure(func() []int { return pids }, n)
	return result{name: "ffmpeg -c copy -f hls (1 process per stream, no readers)", cpuPerStreamMin: cpu,
		rssPerStream: float64(rss) / float64(n), note: "writes files only"}
}

func (b *bench) runSocat(n int) result {
	simAddr, stopSim := b.startSim(n)
	defer stopSim()
	var pids []int
	var frames atomic.Int64
	for i := 1; i <= n; i++ {
		port := freePort(b.t)
		cmd, stop := b.start(nil, "socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port), "TCP:"+simAddr)
		defer stop()
		pids = append(pids, cmd.Process.Pid)
		waitTCP0(port)
		c := b.rtspReader(fmt.Sprintf("rtsp://127.0.0.1:%d/cam/%d", port, i), &frames)
		defer c.Close()
	}
	cpu, rss := b.measure(func() []int { return pids }, n)
	return result{name: "socat TCP proxy (floor: parses nothing)", cpuPerStreamMin: cpu,
		rssPerStream: float64(rss) / float64(n), note: "RTSP reader behind each proxy"}
}

// waitTCP0 waits until a socat listener is up without consuming its one
// connection: socat without fork serves a single client.
func waitTCP0(port int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile("/proc/net/tcp")
		if strings.Contains(string(b), fmt.Sprintf(":%04X 00000000:0000 0A", port)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bench) rtspReader(raw string, packets *atomic.Int64) *gortsplib.Client {
	u, err := base.ParseURL(raw)
	if err != nil {
		b.t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp}
	if err := c.Start(); err != nil {
		b.t.Fatal(err)
	}
	desc, _, err := c.Describe(u)
	if err != nil {
		b.t.Fatalf("describe %s: %v", raw, err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		b.t.Fatal(err)
	}
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { packets.Add(1) })
	if _, err := c.Play(nil); err != nil {
		b.t.Fatal(err)
	}
	return c
}

// latency measures POST /live -> first HLS part / first HLS frame / first
// WebRTC video packet on cold channels (the source is not running yet).
func (b *bench) latency(tries int) string {
	simAddr, stopSim := b.startSim(2 * tries)
	defer stopSim()
	base, _, stop := b.startPlatform(simAddr, 2*tries)
	defer stop()
	var part, frame, rtc, warm []time.Duration
	for i := 1; i <= tries; i++ {
		t0 := time.Now()
		r, err := newHLSReader(postLive(b.t, base, i).HLS)
		if err != nil {
			b.t.Fatal(err)
		}
		select {
		case <-r.part:
			part = append(part, time.Since(t0))
		case <-time.After(15 * time.Second):
			b.t.Fatalf("HLS try %d: no part in 15 s", i)
		}
		<-r.first
		frame = append(frame, time.Since(t0))
		r.c.Close()

		t0 = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cs, err := whep.Dial(ctx, postLive(b.t, base, tries+i).WHEP)
		if err != nil {
			b.t.Fatalf("WHEP try %d: %v", i, err)
		}
		select {
		case <-cs.VideoPackets():
			rtc = append(rtc, time.Since(t0))
		case <-ctx.Done():
			b.t.Fatalf("WHEP try %d: no video packet in 15 s", i)
		}
		// LL-HLS on the channel WebRTC just opened: the source is warm
		// (as when a recorder or another viewer holds it). The request
		// comes at a random phase of the camera's 2 s GOP.
		time.Sleep(2*time.Second + time.Duration(i%10)*200*time.Millisecond)
		t0 = time.Now()
		r, err = newHLSReader(postLive(b.t, base, tries+i).HLS)
		if err != nil {
			b.t.Fatal(err)
		}
		select {
		case <-r.first:
			warm = append(warm, time.Since(t0))
		case <-time.After(15 * time.Second):
			b.t.Fatalf("warm HLS try %d: no frame in 15 s", i)
		}
		r.c.Close()
		cs.Close()
		cancel()
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(float64(len(s))*p))].Round(time.Millisecond)
	}
	return fmt.Sprintf("| from POST /live (cold source, %d tries) | p50 | p95 |\n|---|---|---|\n"+
		"| first LL-HLS part downloaded | %s | %s |\n| first LL-HLS video frame | %s | %s |\n| first WebRTC video RTP packet | %s | %s |\n"+
		"| first LL-HLS video frame, source already running (warm) | %s | %s |",
		tries, pct(part, .5), pct(part, .95), pct(frame, .5), pct(frame, .95), pct(rtc, .5), pct(rtc, .95), pct(warm, .5), pct(warm, .95))
}

// save writes what url answers to the file path (profiles of the server).
func save(t *testing.T, url, path string) {
	res, err := http.Get(url)
	if err != nil {
		t.Logf("%s: %v", url, err)
		return
	}
	defer res.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Logf("%s: %v", path, err)
		return
	}
	defer f.Close()
	io.Copy(f, res.Body)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/gb28181/platform"
	"github.com/xueliang/xueliang/internal/ingest/rtsp"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/sim"
	"github.com/xueliang/xueliang/internal/store"
	"github.com/xueliang/xueliang/internal/streams"
)

// The GB/T 28181 benchmarks of docs/BENCHMARKS.md: a registration storm
// of a city's devices, PS/RTP ingest beside RTSP ingest of the same clip,
// and the time from a play request to the first frame. The simulated
// devices (`xueliang sim gb`) and cameras (`xueliang sim`) always run in
// their own processes, so that their CPU is never counted as the
// platform's.

const (
	gbBenchPassword = "bench-28181"
	// gbBenchDivision starts the simulated devices' codes.
	gbBenchDivision = "44180200"
)

// TestGBRegistrationBenchmark measures a registration storm: devices
// (default 3,000 NVRs of 11 channels: 33,000 channels) start at once in a
// `xueliang sim gb` process, register with digest authentication and
// answer the platform's Catalog, DeviceInfo and DeviceStatus queries. The
// platform is `xueliang serve` with gb28181 enabled (SQLite, defaults), in
// its own process: its CPU and peak RSS come from /proc. The benchmark
// polls the database (read-only, from this process) for the time until
// every device is online, every channel is stored, and every device's
// info and clock are stored. Then it measures the platform's CPU under
// steady keepalives.
//
// Two runs: catalog pages of 10 items with 60 s keepalives (the CPU share
// over XUELIANG_BENCH_GB_KEEPALIVE_SECONDS, default 180), and pages of 1
// item (11 MESSAGEs per device, the worst devices) with 10 s keepalives
// over 60 s, six times the rate, to give the CPU per keepalive with a
// larger signal. Both subtract the idle platform's CPU, measured for 20 s
// before the devices start.
//
// Environment: XUELIANG_BENCH=1 (required), XUELIANG_BENCH_GB_DEVICES
// (default 3000), XUELIANG_BENCH_GB_KEEPALIVE_SECONDS (default 180).
func TestGBRegistrationBenchmark(t *testing.T) {
	if os.Getenv("XUELIANG_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (XUELIANG_BENCH=1)")
	}
	devices := envInt(t, "XUELIANG_BENCH_GB_DEVICES", 3000)
	kaWindow := time.Duration(envInt(t, "XUELIANG_BENCH_GB_KEEPALIVE_SECONDS", 180)) * time.Second
	const channels = 11
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		// The simulator opens a UDP socket per device; Go raises the soft
		// limit to the hard one at start.
		t.Logf("RLIMIT_NOFILE soft %d hard %d (the simulator needs about %d)", lim.Cur, lim.Max, devices+100)
		if lim.Max < uint64(devices+100) {
			t.Fatalf("open file limit %d is below the %d sockets of the simulator: raise it (ulimit -n)", lim.Max, devices+100)
		}
	}
	b := &bench{t: t, dir: t.TempDir()}
	b.buildBinary()
	loadAvg := loadAverage()
	runs := []stormRun{
		{pageSize: 10, keepalive: 60 * time.Second, window: kaWindow},
		{pageSize: 1, keepalive: 10 * time.Second, window: 60 * time.Second},
	}
	var storm, ka []string
	var results []stormResult
	for _, run := range runs {
		r := b.storm(devices, channels, run)
		results = append(results, r)
		storm = append(storm, fmt.Sprintf("| %d × %d | %d | %.1f s | %.1f s | %.1f s | %.1f | %.1f | %.0f MB | %.1f |",
			devices, channels, run.pageSize, r.online.Seconds(), r.channels.Seconds(), r.settled.Seconds(),
			r.cpuChannels, r.cpuSettled, float64(r.peakRSS)/1e6, r.simCPU))
		perKA := (r.kaCPU - r.idleShare/100*r.kaWindow.Seconds()) / float64(r.keepalives)
		ka = append(ka, fmt.Sprintf("| %s | %.0f s | %d (%.0f/s) | %.2f %% | %.2f %% | %.2f %% | %.0f µs | %.2f %% |",
			run.keepalive, r.kaWindow.Seconds(), r.keepalives, float64(r.keepalives)/r.kaWindow.Seconds(),
			r.kaShare, r.idleShare, r.kaShare-r.idleShare, perKA*1e6,
			perKA*float64(devices)/60*100))
		t.Log(storm[len(storm)-1])
		t.Log(ka[len(ka)-1])
	}
	fmt.Printf("\nmachine: %s, %d CPUs, %s; load average before: %s\n\n", cpuModel(), runtime.NumCPU(), runtime.Version(), loadAvg)
	fmt.Println("| devices × channels | catalog items per MESSAGE | all online | all channels stored | all info and clocks stored | platform CPU-s to all channels | platform CPU-s to all stored | platform peak RSS | simulator CPU-s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range storm {
		fmt.Println(r)
	}
	fmt.Println()
	fmt.Println("| keepalive interval | window | keepalives | platform CPU (% of one core) | idle platform | marginal | CPU per keepalive | projected at 60 s for all devices |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range ka {
		fmt.Println(r)
	}
	// share = fixed + rate × per-keepalive, from the two rates: the fixed
	// part is what 3,000 online devices cost without keepalives (the SIP
	// server's liveness scan, the flushes of keepalive times).
	r0, r1 := results[0], results[1]
	rate0, rate1 := float64(r0.keepalives)/r0.kaWindow.Seconds(), float64(r1.keepalives)/r1.kaWindow.Seconds()
	per := (r1.kaShare - r0.kaShare) / 100 / (rate1 - rate0)
	fixed := r0.kaShare - rate0*per*100
	fmt.Printf("\nfrom the two rates: %.0f µs per keepalive and %.2f %% of a core that does not depend on the rate\n", per*1e6, fixed)
	t.Logf("from the two rates: %.0f µs per keepalive and %.2f %% of a core that does not depend on the rate", per*1e6, fixed)
}

type stormRun struct {
	pageSize  int
	keepalive time.Duration
	window    time.Duration // of the keepalive measurement
}

type stormResult struct {
	online, channels, settled time.Duration // since the simulator started
	cpuChannels, cpuSettled   float64       // platform CPU-s since the simulator started
	simCPU                    float64       // the simulator's CPU-s until settled, its start included
	peakRSS                   int64         // VmHWM of the platform
	idleShare, kaShare        float64       // platform CPU, % of one core
	kaCPU                     float64       // platform CPU-s over kaWindow
	kaWindow                  time.Duration
	keepalives                int64
}

// buildBinary builds xueliang into the bench folder.
func (b *bench) buildBinary() {
	b.bin = filepath.Join(b.dir, "xueliang")
	cmd := exec.Command("go", "build", "-o", b.bin, "github.com/xueliang/xueliang/cmd/xueliang")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("build: %v\n%s", err, out)
	}
}

// gbServeEnv configures `xueliang serve` with the GB/T 28181 platform on
// sipAddr, admitting any device with gbBenchPassword.
func gbServeEnv(sipAddr string) []string {
	return []string{
		"XUELIANG_GB28181_ENABLED=true", "XUELIANG_GB28181_SIP_ADDR=" + sipAddr, "XUELIANG_GB28181_SIP_HOST=127.0.0.1",
		"XUELIANG_GB28181_PASSWORD=" + gbBenchPassword, "XUELIANG_GB28181_ALLOW_UNKNOWN=true",
		"XUELIANG_GB28181_MEDIA_IP=127.0.0.1", "XUELIANG_GB28181_MEDIA_BIND=127.0.0.1",
		"XUELIANG_STREAMS_PROBE_INTERVAL=0s", "XUELIANG_LOG_LEVEL=warn", "XUELIANG_LIVE_WEBRTC_UDP_ADDR=127.0.0.1:0",
	}
}

// freeSIPPort returns a port free on both UDP and TCP of 127.0.0.1.
func freeSIPPort(t *testing.T) int {
	for range 50 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free on both UDP and TCP")
	return 0
}

// storm runs one registration storm and the keepalive measurement after it.
func (b *bench) storm(devices, channels int, run stormRun) stormResult {
	t := b.t
	data := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sipAddr := fmt.Sprintf("127.0.0.1:%d", freeSIPPort(t))
	cmd, stop := b.start(gbServeEnv(sipAddr), b.bin, "serve", "--data", data, "--http", httpAddr)
	defer stop()
	waitTCP(t, httpAddr)
	pid := cmd.Process.Pid
	time.Sleep(3 * time.Second)

	var r stormResult
	const idle = 20 * time.Second
	c0 := must(procCPU(pid))
	time.Sleep(idle)
	r.idleShare = (must(procCPU(pid)) - c0) / idle.Seconds() * 100

	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "xueliang.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string) int {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	simLog := &simLog{}
	t0 := time.Now()
	cpu0 := must(procCPU(pid))
	simCmd, stopSim := b.startTo(simLog, nil, b.bin, "sim", "gb", "--server", sipAddr, "--password", gbBenchPassword,
		"--devices", strconv.Itoa(devices), "--channels", strconv.Itoa(channels), "--division", gbBenchDivision,
		"--page-size", strconv.Itoa(run.pageSize), "--keepalive", run.keepalive.String(), "--rate", "0")
	defer stopSim()
	deadline := t0.Add(5 * time.Minute)
	for r.settled == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("page size %d: after 5 min: online %v, channels %v, settled %v; %d online, %d channels, %d with info; simulator:\n%s",
				run.pageSize, r.online, r.channels, r.settled,
				count(`SELECT COUNT(*) FROM devices WHERE status = 'online'`), count(`SELECT COUNT(*) FROM channels WHERE device_id IS NOT NULL`),
				count(`SELECT COUNT(*) FROM devices WHERE manufacturer != '' AND clock_offset_ms IS NOT NULL`), simLog.Tail())
		}
		time.Sleep(100 * time.Millisecond)
		now := time.Since(t0)
		if r.online == 0 && count(`SELECT COUNT(*) FROM devices WHERE status = 'online'`) == devices {
			r.online = now
		}
		if r.channels == 0 && count(`SELECT COUNT(*) FROM channels WHERE device_id IS NOT NULL`) == devices*channels {
			r.channels = now
			r.cpuChannels = must(procCPU(pid)) - cpu0
		}
		if r.channels != 0 && count(`SELECT COUNT(*) FROM devices WHERE manufacturer != '' AND clock_offset_ms IS NOT NULL`) == devices {
			r.settled = now
			r.cpuSettled = must(procCPU(pid)) - cpu0
			r.simCPU = must(procCPU(simCmd.Process.Pid))
		}
	}
	r.peakRSS = procHWM(t, pid)
	t.Logf("page size %d: all %d devices online after %v, %d channels stored after %v (platform CPU %.2f s), info and clocks after %v (CPU %.2f s); peak RSS %.0f MB; idle platform %.2f %% of a core",
		run.pageSize, devices, r.online.Round(time.Millisecond), devices*channels, r.channels.Round(time.Millisecond), r.cpuChannels,
		r.settled.Round(time.Millisecond), r.cpuSettled, float64(r.peakRSS)/1e6, r.idleShare)

	// Steady keepalives, between two of the simulator's stats lines (every
	// 10 s) so that the keepalive count matches the CPU window. The window
	// starts 40 s after the storm, when sipgo has dropped the storm's
	// transactions (Timer J: 32 s, RFC 3261 §17.2.2) and the heap has shrunk.
	time.Sleep(40 * time.Second)
	lines := simLog.Counts()
	next := func(after int) (int, float64, time.Time) {
		for {
			if c := simLog.Counts(); len(c) > after {
				return len(c), must(procCPU(pid)), time.Now()
			}
			if time.Since(t0) > 15*time.Minute {
				t.Fatalf("simulator stopped logging its stats:\n%s", simLog.Tail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	i0, ka0, w0 := next(len(lines))
	i1, ka1, w1 := next(i0 + int(run.window/(10*time.Second)) - 1)
	counts := simLog.Counts()
	r.kaWindow = w1.Sub(w0)
	r.kaCPU = ka1 - ka0
	r.kaShare = r.kaCPU / r.kaWindow.Seconds() * 100
	r.keepalives = counts[i1-1] - counts[i0-1]
	if f := simLog.Failures(); f > 0 {
		t.Logf("the simulator counted %d failures (REGISTER, keepalive or response not answered 200 OK)", f)
	}
	t.Logf("keepalives every %v: %d in %v, platform CPU %.2f s (%.2f %% of a core; idle %.2f %%)",
		run.keepalive, r.keepalives, r.kaWindow.Round(time.Millisecond), r.kaCPU, r.kaShare, r.idleShare)
	return r
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// procHWM returns the peak resident set size of a process (VmHWM).
func procHWM(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no VmHWM for %d", pid)
	return 0
}

func loadAverage() string {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		return strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return "unknown"
}

// startTo runs a process with its output going to out; it is killed when
// the test ends or stop is called.
func (b *bench) startTo(out io.Writer, env []string, name string, args ...string) (*exec.Cmd, func()) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start %s: %v", name, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
	}
	b.t.Cleanup(stop)
	return cmd, stop
}

// simLog reads the output of `xueliang sim gb`: the keepalive counts of
// its stats lines (one every 10 s), the failure count, and a tail for
// error messages.
type simLog struct {
	mu       sync.Mutex
	partial  []byte
	counts   []int64
	failures int64
	tail     []byte
}

var (
	keepalivesRE = regexp.MustCompile(`keepalives=(\d+) failures=(\d+)`)
)

func (l *simLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tail = append(l.tail, p...)
	if len(l.tail) > 64<<10 {
		l.tail = slices.Clone(l.tail[len(l.tail)-32<<10:])
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := l.partial[:i]
		if m := keepalivesRE.FindSubmatch(line); m != nil && bytes.Contains(line, []byte("msg=devices")) {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			f, _ := strconv.ParseInt(string(m[2]), 10, 64)
			l.counts = append(l.counts, n)
			l.failures = f
		}
		l.partial = l.partial[i+1:]
	}
	l.partial = slices.Clone(l.partial)
	return len(p), nil
}

// Counts returns the keepalive counts of the stats lines so far.
func (l *simLog) Counts() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.counts)
}

// Failures returns the last failure count logged.
func (l *simLog) Failures() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}

// Tail returns the end of the output.
func (l *simLog) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.tail)
}

// TestGBIngestBenchmark measures the CPU per live stream of PS over RTP
// (GB/T 28181, UDP and TCP passive) against RTSP over TCP, with the same
// 2 Mbit/s clip as the relay benchmark, at XUELIANG_BENCH_GB_N streams
// (default 50,100,200).
//
// The platform runs in this process: the GB/T 28181 platform (SQLite
// store, SIP server, media receivers) or RTSP sources, the stream hub, and
// one reader per stream that takes every unit (the stand-in for an
// egress; no muxing, no HTTP). CPU is this process's user+system time
// (getrusage) over the window after a warm-up, per stream and minute. The
// devices (`xueliang sim gb`, NVRs of 10 channels) and cameras (`xueliang
// sim`) run in their own processes. Loss is the receivers' count of RTP
// sequence numbers that never arrived (the platform's metrics), over the
// window.
//
// Environment: XUELIANG_BENCH=1 (required), XUELIANG_BENCH_GB_N (default
// "50,100,200"), XUELIANG_BENCH_SECONDS (window, default 40),
// XUELIANG_BENCH_PROFILE (a file name: CPU profiles of this process over
// the window of each ingest at the largest N go next to it, with -udp,
// -tcp-passive and -rtsp added).
func TestGBIngestBenchmark(t *testing.T) {
	if os.Getenv("XUELIANG_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (XUELIANG_BENCH=1)")
	}
	ns := []int{50, 100, 200}
	if v := os.Getenv("XUELIANG_BENCH_GB_N"); v != "" {
		ns = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				t.Fatalf("XUELIANG_BENCH_GB_N=%q", v)
			}
			ns = append(ns, n)
		}
	}
	window := 40 * time.Second
	if os.Getenv("XUELIANG_BENCH_SECONDS") != "" {
		window = benchWindow()
	}
	b := &bench{t: t, dir: t.TempDir(), window: window, warmup: 10 * time.Second}
	b.build()
	t.Log(describeClip(t, b.clip))
	// As `xueliang serve` does (internal/app/cli.go).
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	loadAvg := loadAverage()

	rig := startGBRig(t, slog.New(slog.NewTextHandler(io.Discard, nil)))
	maxN := slices.Max(ns)
	const perDevice = 10
	devices := (maxN + perDevice - 1) / perDevice
	control := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b.start(nil, b.bin, "sim", "gb", "--server", rig.p.SIPAddr(), "--password", gbBenchPassword,
		"--devices", strconv.Itoa(devices), "--channels", strconv.Itoa(perDevice), "--division", gbBenchDivision,
		"--clip", b.clip, "--keepalive", "60s", "--control", control)
	targets := rig.waitTargets(devices * perDevice)
	simStreams := func() int {
		res, err := http.Get("http://" + control + "/devices")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var devs []struct {
			ActiveStreams int `json:"active_streams"`
		}
		if err := json.NewDecoder(res.Body).Decode(&devs); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range devs {
			n += d.ActiveStreams
		}
		return n
	}
	rtspMetrics, err := rtsp.NewMetrics(rig.reg)
	if err != nil {
		t.Fatal(err)
	}

	var rows []string
	for _, n := range ns {
		for _, tr := range []string{platform.TransportUDP, platform.TransportTCPPassive} {
			profile := ""
			if n == maxN {
				profile = os.Getenv("XUELIANG_BENCH_PROFILE")
				if profile != "" {
					profile = strings.TrimSuffix(profile, ".prof") + "-" + tr + ".prof"
				}
			}
			r := b.ingest(n, rig.reg, gbCounters, profile, func(i int) (media.Source, error) {
				return rig.p.LiveSource(targets[i].device, targets[i].channel, tr), nil
			})
			r.name = "GB/T 28181 PS/RTP over " + map[string]string{platform.TransportUDP: "UDP", platform.TransportTCPPassive: "TCP (passive)"}[tr]
			rows = append(rows, r.row(n))
			t.Log(rows[len(rows)-1])
			deadline := time.Now().Add(20 * time.Second)
			for simStreams() > 0 {
				if time.Now().After(deadline) {
					t.Errorf("N=%d %s: the simulator still sends %d streams 20 s after the platform ended them", n, tr, simStreams())
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		simAddr, stopSim := b.startSim(n)
		profile := ""
		if n == maxN && os.Getenv("XUELIANG_BENCH_PROFILE") != "" {
			profile = strings.TrimSuffix(os.Getenv("XUELIANG_BENCH_PROFILE"), ".prof") + "-rtsp.prof"
		}
		r := b.ingest(n, rig.reg, rtspCounters, profile, func(i int) (media.Source, error) {
			return rtsp.NewSource(rtsp.Config{URL: fmt.Sprintf("rtsp://%s/cam/%d", simAddr, i+1), Transport: rtsp.TransportTCP, Metrics: rtspMetrics})
		})
		stopSim()
		r.name = "RTSP over TCP (interleaved)"
		rows = append(rows, r.row(n))
		t.Log(rows[len(rows)-1])
	}
	if rig.logs.Len() > 0 {
		t.Logf("platform warnings:\n%s", rig.logs.String())
	}
	fmt.Printf("\nmachine: %s, %d CPUs, %s; load average before: %s; window %s after %s warm-up\n\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), loadAvg, window, b.warmup)
	fmt.Println("| N | ingest | CPU-s per stream-minute | cores at N | received per stream (Mbit/s) | RTP packets lost | slowest reader | notes |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
}

// Counter names of the receivers' metrics: packets, lost, bytes.
var (
	gbCounters = [3]string{"xueliang_gb28181_media_rtp_packets_total", "xueliang_gb28181_media_rtp_packets_lost_total",
		"xueliang_gb28181_media_rtp_bytes_total"}
	rtspCounters = [3]string{"xueliang_rtsp_rtp_packets_total", "xueliang_rtsp_rtp_packets_lost_total",
		"xueliang_rtsp_payload_bytes_total"}
)

type ingestResult struct {
	name              string
	cpuPerStreamMin   float64
	cores             float64
	mbps              float64 // per stream
	packets, lost     float64
	minFPS            float64
	restarts, dropped int64
	acquired          time.Duration
}

func (r ingestResult) row(n int) string {
	notes := fmt.Sprintf("all %d started in %.1f s", n, r.acquired.Seconds())
	if r.restarts > 0 {
		notes += fmt.Sprintf("; %d streams restarted in the window", r.restarts)
	}
	if r.dropped > 0 {
		notes += fmt.Sprintf("; %d units dropped by slow readers", r.dropped)
	}
	return fmt.Sprintf("| %d | %s | %.3f | %.2f | %.2f | %.0f of %.0f (%.3f %%) | %.1f fps | %s |", n, r.name, r.cpuPerStreamMin, r.cores,
		r.mbps, r.lost, r.packets+r.lost, 100*r.lost/max(1, r.packets+r.lost), r.minFPS, notes)
}

// selfCPU returns this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// counterSum returns the value of a counter of reg, summed over labels.
func counterSum(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// ingest runs n sources through a stream hub, one reader each, and
// measures this process over the window.
func (b *bench) ingest(n int, reg *prometheus.Registry, names [3]string, profile string, source func(i int) (media.Source, error)) ingestResult {
	t := b.t
	hub, err := streams.New(streams.Config{
		Resolver:    streams.ResolverFunc(func(_ context.Context, id int64) (media.Source, error) { return source(int(id)) }),
		IdleTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		hub.Close() // closes the streams, which ends the readers
		wg.Wait()
	}()
	frames := make([]atomic.Int64, n)
	var started, restarts, dropped atomic.Int64
	all := make(chan struct{})
	t0 := time.Now()
	sem := make(chan struct{}, 20) // concurrent first Acquires
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			first := true
			for ctx.Err() == nil {
				s, release, err := hub.Acquire(ctx, int64(i))
				if first && err == nil {
					<-sem
				}
				if err != nil {
					if ctx.Err() == nil {
						t.Logf("stream %d: %v", i, err)
						time.Sleep(500 * time.Millisecond)
					}
					continue
				}
				if first {
					first = false
					if started.Add(1) == int64(n) {
						close(all)
					}
				}
				r := s.AddReader("bench", 0)
				video := s.VideoTrack()
				for u := range r.C() {
					if u.Track == video {
						frames[i].Add(1)
					}
				}
				dropped.Add(int64(r.Dropped()))
				release()
				if ctx.Err() == nil {
					restarts.Add(1)
				}
			}
		}()
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d of %d streams started in 2 min", started.Load(), n)
	}
	res := ingestResult{acquired: time.Since(t0)}
	time.Sleep(b.warmup)
	snap := func() (cpu float64, f []int64, c [3]float64, r, d int64) {
		for i := range frames {
			f = append(f, frames[i].Load())
		}
		for i, name := range names {
			c[i] = counterSum(reg, name)
		}
		return selfCPU(), f, c, restarts.Load(), dropped.Load()
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
	}
	w0 := time.Now()
	cpu0, f0, c0, r0, d0 := snap()
	time.Sleep(b.window)
	cpu1, f1, c1, r1, d1 := snap()
	if profile != "" {
		pprof.StopCPUProfile()
	}
	win := time.Since(w0)
	res.cpuPerStreamMin = (cpu1 - cpu0) / float64(n) / win.Minutes()
	res.cores = (cpu1 - cpu0) / win.Seconds()
	res.packets, res.lost = c1[0]-c0[0], c1[1]-c0[1]
	res.mbps = (c1[2] - c0[2]) * 8 / win.Seconds() / float64(n) / 1e6
	res.restarts, res.dropped = r1-r0, d1-d0
	res.minFPS = 1e9
	for i := range f0 {
		res.minFPS = min(res.minFPS, float64(f1[i]-f0[i])/win.Seconds())
	}
	return res
}

// gbRig is the GB/T 28181 platform run in this process, on a fresh
// SQLite database.
type gbRig struct {
	t    *testing.T
	st   *store.Store
	p    *platform.Platform
	reg  *prometheus.Registry
	logs *syncBuffer // warnings and errors
}

// startGBRig starts the platform; log receives its records (warnings and
// errors are also kept in rig.logs).
func startGBRig(t *testing.T, log *slog.Logger) *gbRig {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: filepath.Join(t.TempDir(), "xueliang.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rig := &gbRig{t: t, st: st, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	warn := slog.NewTextHandler(rig.logs, &slog.HandlerOptions{Level: slog.LevelWarn})
	p, err := platform.New(platform.Config{
		Store: st, SIPAddr: fmt.Sprintf("127.0.0.1:%d", freeSIPPort(t)), SIPHost: "127.0.0.1",
		ID: "44180000002000000001", Password: gbBenchPassword, AllowUnknown: true,
		MediaIP: "127.0.0.1", MediaBind: "127.0.0.1", RTPPortMin: 36000, RTPPortMax: 36999,
		Log: slog.New(slog.NewMultiHandler(log.Handler(), warn)), Registerer: rig.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	rig.p = p
	return rig
}

type gbTarget struct{ device, channel string }

// waitTargets waits until n channels of GB/T 28181 devices are stored and
// returns them in the order of their codes.
func (rig *gbRig) waitTargets(n int) []gbTarget {
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		chs, err := rig.st.ListChannels(ctx, store.ChannelFilter{})
		if err != nil {
			rig.t.Fatal(err)
		}
		var out []gbTarget
		if len(chs) >= n {
			devs, err := rig.st.ListDevices(ctx, store.DeviceFilter{})
			if err != nil {
				rig.t.Fatal(err)
			}
			code := map[int64]string{}
			for _, d := range devs {
				if d.Kind == model.DeviceKindGB28181 && rig.p.Online(d.Code) {
					code[d.ID] = d.Code
				}
			}
			for _, c := range chs {
				if code[c.DeviceID] != "" {
					out = append(out, gbTarget{code[c.DeviceID], c.Code})
				}
			}
		}
		if len(out) == n {
			slices.SortFunc(out, func(a, b gbTarget) int { return strings.Compare(a.channel, b.channel) })
			return out
		}
		if time.Now().After(deadline) {
			rig.t.Fatalf("%d channels of online devices stored, want %d; platform log:\n%s", len(out), n, rig.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// describeClip reports the bit rate, GOP and keyframe size of a clip.
func describeClip(t *testing.T, path string) string {
	c, err := sim.LoadClip(path)
	if err != nil {
		t.Fatal(err)
	}
	var total, idr, maxIDR int
	var idrs []int
	for i, u := range c.Units {
		size := 0
		for _, n := range u.NALUs {
			size += len(n) + 4
		}
		total += size
		if u.IDR {
			idrs = append(idrs, i)
			idr += size
			maxIDR = max(maxIDR, size)
		}
	}
	gop := len(c.Units)
	if len(idrs) > 1 {
		gop = idrs[1] - idrs[0]
	}
	return fmt.Sprintf("clip %s: %dx%d %s, %.0f fps, %d frames, %.2f Mbit/s, GOP %d frames (%.1f s), keyframes %.0f KB on average (largest %.0f KB)",
		filepath.Base(path), c.Width, c.Height, c.Codec, c.FPS, len(c.Units), float64(total)*8/c.Duration().Seconds()/1e6,
		gop, float64(gop)/c.FPS, float64(idr)/float64(len(idrs))/1e3, float64(maxIDR)/1e3)
}

// TestGBFirstFrameBenchmark measures the time from a play request to the
// first frame of a GB/T 28181 channel whose source is not running: from
// the stream hub's Acquire (what a live request of the HTTP API calls) to
// the first unit at a reader, XUELIANG_BENCH_GB_TRIES times (default 30)
// for each media transport, and for RTSP over TCP beside it. Every try
// uses a channel not played before. The platform runs in this process, the
// devices and cameras in their own, streaming the relay benchmark's clip.
//
// The time is split at two points read from the platform's log records:
// the start of the media receiver (the device answered INVITE 200 OK and
// the platform sent ACK) and the receiver's "receiving media" (the first
// keyframe is complete: the hub gets its tracks).
//
// Environment: XUELIANG_BENCH=1 (required), XUELIANG_BENCH_GB_TRIES
// (default 30).
func TestGBFirstFrameBenchmark(t *testing.T) {
	if os.Getenv("XUELIANG_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (XUELIANG_BENCH=1)")
	}
	tries := envInt(t, "XUELIANG_BENCH_GB_TRIES", 30)
	b := &bench{t: t, dir: t.TempDir()}
	b.build()
	clip := describeClip(t, b.clip)
	t.Log(clip)
	loadAvg := loadAverage()
	marks := &sessionMarks{recv: map[string]time.Time{}, ready: map[string]time.Time{}}
	rig := startGBRig(t, slog.New(marks))
	transports := []string{platform.TransportUDP, platform.TransportTCPPassive, platform.TransportTCPActive}
	const perDevice = 10
	devices := (len(transports)*tries + perDevice - 1) / perDevice
	b.start(nil, b.bin, "sim", "gb", "--server", rig.p.SIPAddr(), "--password", gbBenchPassword,
		"--devices", strconv.Itoa(devices), "--channels", strconv.Itoa(perDevice), "--division", gbBenchDivision,
		"--clip", b.clip, "--keepalive", "60s")
	targets := rig.waitTargets(devices * perDevice)

	var rows []string
	next := 0
	for _, tr := range transports {
		var total, invite, firstKey, hubRead []time.Duration
		for range tries {
			tg := targets[next]
			next++
			d, at := b.firstFrame(func() (media.Source, error) { return rig.p.LiveSource(tg.device, tg.channel, tr), nil })
			total = append(total, d)
			recv, ready := marks.get(tg.channel)
			if recv.IsZero() || ready.IsZero() {
				t.Fatalf("%s %s: no receiver log records", tr, tg.channel)
			}
			invite = append(invite, recv.Sub(at))
			firstKey = append(firstKey, ready.Sub(recv))
			hubRead = append(hubRead, at.Add(d).Sub(ready))
		}
		name := map[string]string{platform.TransportUDP: "UDP", platform.TransportTCPPassive: "TCP passive", platform.TransportTCPActive: "TCP active"}[tr]
		rows = append(rows,
			statRow("GB/T 28181 "+name+": play request to first frame", total, ""),
			statRow("… of which to the receiver's start (INVITE, 200 OK, ACK)", invite, ""),
			statRow("… of which to a complete first keyframe", firstKey, ""),
			statRow("… of which the hub and the reader", hubRead, ""))
	}
	simAddr, stopSim := b.startSim(tries)
	defer stopSim()
	var total []time.Duration
	for i := range tries {
		d, _ := b.firstFrame(func() (media.Source, error) {
			return rtsp.NewSource(rtsp.Config{URL: fmt.Sprintf("rtsp://%s/cam/%d", simAddr, i+1), Transport: rtsp.TransportTCP})
		})
		total = append(total, d)
	}
	rows = append(rows, statRow("RTSP over TCP: play request to first frame", total, ""))
	for _, r := range rows {
		t.Log(r)
	}
	fmt.Printf("\nmachine: %s, %d CPUs, %s; load average before: %s\n%s\n\n", cpuModel(), runtime.NumCPU(), runtime.Version(), loadAvg, clip)
	fmt.Println("| from hub Acquire (cold source) to the first unit at a reader | tries | p50 | p95 | max | |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
}

// firstFrame acquires a cold source through a fresh hub and returns the
// time to the first unit at a reader, and when it started. It waits until
// the source has stopped again.
func (b *bench) firstFrame(source func() (media.Source, error)) (time.Duration, time.Time) {
	t := b.t
	hub, err := streams.New(streams.Config{
		Resolver:    streams.ResolverFunc(func(context.Context, int64) (media.Source, error) { return source() }),
		IdleTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	s, release, err := hub.Acquire(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := s.AddReader("bench", 0)
	u, ok := <-r.C()
	d := time.Since(t0)
	if !ok {
		t.Fatalf("stream closed before its first unit: %v", r.Err())
	}
	if !u.Key {
		t.Errorf("first unit is not a keyframe")
	}
	r.Close()
	release()
	for hub.Active(1) {
		time.Sleep(10 * time.Millisecond)
	}
	return d, t0
}

// sessionMarks is a slog handler that notes, per channel, when a media
// receiver started ("receiving", debug) and when its first keyframe was
// complete ("receiving media").
type sessionMarks struct {
	mu          sync.Mutex
	recv, ready map[string]time.Time
}

func (m *sessionMarks) get(channel string) (recv, ready time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recv[channel], m.ready[channel]
}

func (m *sessionMarks) Enabled(context.Context, slog.Level) bool { return true }

func (m *sessionMarks) Handle(_ context.Context, r slog.Record) error { return m.handle("", r) }

func (m *sessionMarks) handle(channel string, r slog.Record) error {
	var at map[string]time.Time
	switch r.Message {
	case "receiving":
		at = m.recv
	case "receiving media":
		at = m.ready
	default:
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "channel" {
			channel = a.Value.String()
		}
		return true
	})
	m.mu.Lock()
	at[channel] = r.Time
	m.mu.Unlock()
	return nil
}

func (m *sessionMarks) WithAttrs(as []slog.Attr) slog.Handler {
	h := &marksWith{m: m}
	for _, a := range as {
		if a.Key == "channel" {
			h.channel = a.Value.String()
		}
	}
	return h
}

func (m *sessionMarks) WithGroup(string) slog.Handler { return m }

// marksWith is sessionMarks with the channel attribute of a logger's With.
type marksWith struct {
	m       *sessionMarks
	channel string
}

func (h *marksWith) Enabled(context.Context, slog.Level) bool { return true }

func (h *marksWith) Handle(_ context.Context, r slog.Record) error { return h.m.handle(h.channel, r) }

func (h *marksWith) WithAttrs(as []slog.Attr) slog.Handler {
	out := &marksWith{m: h.m, channel: h.channel}
	for _, a := range as {
		if a.Key == "channel" {
			out.channel = a.Value.String()
		}
	}
	return out
}

func (h *marksWith) WithGroup(string) slog.Handler { return h }

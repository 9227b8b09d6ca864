package bench

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestRecordBenchmark measures the cost of recording N 2 Mbit/s cameras to
// disk: CPU per channel and write throughput of xueliang, beside its relay
// figure (one LL-HLS reader per channel, no recording) and beside one
// `ffmpeg -c copy -f segment` per channel writing fragmented MP4, all in
// one run. Run it with make bench; the figures go to docs/BENCHMARKS.md.
//
// Environment: XUELIANG_BENCH=1 (required), XUELIANG_BENCH_N (default
// "25,50,100"), XUELIANG_BENCH_SECONDS (measuring window, default 60),
// XUELIANG_BENCH_PROFILE (a file to write a CPU profile of the recorder at
// the largest N to).
func TestRecordBenchmark(t *testing.T) {
	if os.Getenv("XUELIANG_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (XUELIANG_BENCH=1)")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg missing: make test-deps installs it")
	}
	ns := benchNs(t)
	window := benchWindow()
	b := &bench{t: t, dir: t.TempDir(), window: window, warmup: 10 * time.Second}
	b.build()

	var rows []string
	for _, n := range ns {
		if os.Getenv("XUELIANG_BENCH_RECORD_ONLY") != "" { // profiling the recorder
			r := b.runRecorder(n)
			t.Logf("| %d | %s | %.3f | %.1f | %s |", n, r.name, r.cpuPerStreamMin, r.rssPerStream/1e6, r.note)
			continue
		}
		x := b.runXueliang(n, "hls", nil, "")
		r := b.runRecorder(n)
		f := b.runFFmpegSegment(n)
		for _, res := range []result{x, r.result, f.result} {
			row := fmt.Sprintf("| %d | %s | %.3f | %.1f | %s |", n, res.name, res.cpuPerStreamMin, res.rssPerStream/1e6, res.note)
			rows = append(rows, row)
			t.Log(row)
		}
		t.Logf("N=%d: recording/ffmpeg CPU ratio %.2f; recording/relay %.2f", n, r.cpuPerStreamMin/f.cpuPerStreamMin, r.cpuPerStreamMin/x.cpuPerStreamMin)
	}
	fmt.Printf("\nmachine: %s, %d CPUs, %s; window %s after %s warm-up\n\n", cpuModel(), runtime.NumCPU(), runtime.Version(), window, b.warmup)
	fmt.Println("| N | what | CPU-s per channel-minute | RSS per channel (MB) | notes |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
}

type writeResult struct {
	result
	mbps float64 // written, MB/s for all channels
}

// dirBytes returns the bytes of the files below dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// measureWrites is measure plus the growth of dir over the window.
func (b *bench) measureWrites(pids func() []int, n int, dir string) (cpu float64, rss int64, mbps float64) {
	time.Sleep(b.warmup)
	c0, _, err := sample(pids())
	if err != nil {
		b.t.Fatal(err)
	}
	d0 := dirBytes(dir)
	time.Sleep(b.window)
	c1, r1, err := sample(pids())
	if err != nil {
		b.t.Fatal(err)
	}
	d1 := dirBytes(dir)
	return (c1 - c0) / float64(n) / b.window.Minutes(), r1, float64(d1-d0) / b.window.Seconds() / 1e6
}

// runRecorder records n cameras continuously with xueliang, nobody
// watching.
func (b *bench) runRecorder(n int) writeResult {
	simAddr, stopSim := b.startSim(n)
	defer stopSim()
	data := b.t.TempDir()
	base, pid, stop := b.startPlatformIn(data, simAddr, n, true, "XUELIANG_RECORD_MIN_FREE_MB=0")
	defer stop()
	if profile := os.Getenv("XUELIANG_BENCH_PROFILE"); profile != "" && n == slices.Max(benchNs(b.t)) {
		go func() {
			time.Sleep(b.warmup + b.window/4)
			save(b.t, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(b.window.Seconds()/2)), profile)
		}()
	}
	cpu, rss, mbps := b.measureWrites(func() []int { return []int{pid} }, n, filepath.Join(data, "recordings"))
	recording := 0
	if res, err := http.Get(base + "/api/v1/storage"); err == nil {
		var sto struct {
			Recording int `json:"recording_channels"`
		}
		decodeJSON(res, &sto)
		recording = sto.Recording
	}
	if recording != n {
		b.t.Errorf("xueliang recorded %d of %d channels", recording, n)
	}
	return writeResult{result: result{
		name:            "xueliang recording to disk (60 s fMP4 segments, 1 s parts, index in SQLite, no readers)",
		cpuPerStreamMin: cpu, rssPerStream: float64(rss) / float64(n),
		note: fmt.Sprintf("writes %.2f MB/s in all (%.0f kbit/s per channel); %d of %d channels recording", mbps, mbps*8000/float64(n), recording, n),
	}, mbps: mbps}
}

// runFFmpegSegment records n cameras with one ffmpeg each, writing 60 s
// fragmented MP4 segments.
func (b *bench) runFFmpegSegment(n int) writeResult {
	simAddr, stopSim := b.startSim(n)
	defer stopSim()
	dir := b.t.TempDir()
	var pids []int
	for i := 1; i <= n; i++ {
		out := filepath.Join(dir, fmt.Sprintf("cam%d-%%05d.mp4", i))
		cmd, stop := b.start(nil, "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
			"-i", fmt.Sprintf("rtsp://%s/cam/%d", simAddr, i), "-c", "copy", "-f", "segment",
			"-segment_time", "60", "-segment_format", "mp4",
			"-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof", out)
		defer stop()
		pids = append(pids, cmd.Process.Pid)
	}
	cpu, rss, mbps := b.measureWrites(func() []int { return pids }, n, dir)
	return writeResult{result: result{
		name:            "ffmpeg -c copy -f segment (fragmented MP4, 60 s; 1 process per channel, no index)",
		cpuPerStreamMin: cpu, rssPerStream: float64(rss) / float64(n),
		note: fmt.Sprintf("writes %.2f MB/s in all", mbps),
	}, mbps: mbps}
}

func decodeJSON(res *http.Response, v any) {
	defer res.Body.Close()
	_ = json.NewDecoder(res.Body).Decode(v)
}

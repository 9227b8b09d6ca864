package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/app"
	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/recfile"
	"github.com/xueliang/xueliang/internal/recfile/recfiletest"
	"github.com/xueliang/xueliang/internal/record"
	"github.com/xueliang/xueliang/internal/store"
)

// TestIndexBenchmark measures the segment index at the size of a city: it
// fills the SQLite index with contiguous 60 s segments (250 channels × 30
// days = 10,800,000 rows by default), then times the timeline of one
// channel-day through the store and Catalog and through the HTTP API of a
// platform started in process on that data folder, and the first byte of
// playback of 5-minute ranges (POST /playback then the stitched MP4, and
// the HLS playlist) over real segment files. Run it with make bench; the
// figures go to docs/BENCHMARKS.md.
//
// Only the segment files that the playback ranges touch are written (small
// 160x120 video, so that the disk holds the index, not media); every other
// row points at a file that does not exist, which only playback would
// notice.
//
// Environment: XUELIANG_BENCH=1 (required), XUELIANG_BENCH_INDEX_CHANNELS
// (default 250), XUELIANG_BENCH_INDEX_DAYS (default 30).
func TestIndexBenchmark(t *testing.T) {
	if os.Getenv("XUELIANG_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (XUELIANG_BENCH=1)")
	}
	channels := envInt(t, "XUELIANG_BENCH_INDEX_CHANNELS", 250)
	days := envInt(t, "XUELIANG_BENCH_INDEX_DAYS", 30)
	const (
		timelineTries = 200
		playbackTries = 30
		warmup        = 3 // queries before the timed ones, not counted
		playbackSpan  = 5 * time.Minute
	)
	ctx := context.Background()
	loadAvg := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		loadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	rng := rand.New(rand.NewPCG(2026, 11))

	// The recording ends at midnight UTC today and began days before, one
	// run per channel.
	end := time.Now().UTC().Truncate(24 * time.Hour)
	begin := end.Add(-time.Duration(days) * 24 * time.Hour)
	ib := &indexBench{t: t, data: t.TempDir(), channels: channels, begin: begin, end: end, run: begin.UnixMilli()}
	ib.dbPath = filepath.Join(ib.data, "xueliang.db")
	ib.template()

	genTook := ib.generate(ctx)
	dbSize := fileSize(ib.dbPath) + fileSize(ib.dbPath+"-wal")
	t.Logf("generated %d segments of %d channels in %s (%.0f rows/s); database %.2f GB",
		ib.rows, channels, genTook.Round(time.Millisecond), float64(ib.rows)/genTook.Seconds(), float64(dbSize)/1e9)

	plan := ib.queryPlan(ctx)
	t.Logf("query plan of Store.Segments: %s", plan)
	if !strings.Contains(plan, "segments_channel_start_idx") {
		t.Errorf("Store.Segments does not use segments_channel_start_idx: %s", plan)
	}

	// Playback ranges, chosen now so that their files exist before the
	// platform's start-up scan. The first one is a warm-up.
	ranges := make([]playbackRange, playbackTries+1)
	for i := range ranges {
		from := begin.Add(time.Duration(rng.Int64N(int64(days)*86400-int64(playbackSpan/time.Second))) * time.Second)
		ranges[i] = playbackRange{ch: ib.ids[rng.IntN(len(ib.ids))], from: from, to: from.Add(playbackSpan)}
	}
	files, fileBytes := ib.writeFiles(ranges)
	t.Logf("wrote %d segment files (%.1f MB) for %d playback ranges", files, float64(fileBytes)/1e6, len(ranges))

	// The timeline through the store and the Catalog.
	st, err := store.Open(ctx, store.Config{DSN: ib.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	cat := &record.Catalog{Index: st}
	direct := make([]time.Duration, 0, timelineTries)
	for i := range warmup + timelineTries {
		ch, day := ib.channelDay(rng, days)
		t0 := time.Now()
		tl, err := cat.Timeline(ctx, ch, day, day.Add(24*time.Hour))
		d := time.Since(t0)
		if err != nil {
			t.Fatal(err)
		}
		if tl.Segments != 1440 || len(tl.Gaps) != 0 {
			t.Fatalf("timeline of channel %d on %s: %d segments, %d gaps; want 1440 and none", ch, day.Format(time.DateOnly), tl.Segments, len(tl.Gaps))
		}
		if i >= warmup {
			direct = append(direct, d)
		}
	}
	// The same with the database out of the page cache before each query
	// (root only: /proc/sys/vm/drop_caches), as on a server whose memory
	// went to other things.
	var cold []time.Duration
	if dropCaches() == nil {
		for range 20 {
			ch, day := ib.channelDay(rng, days)
			if err := dropCaches(); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			if _, err := cat.Timeline(ctx, ch, day, day.Add(24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			cold = append(cold, time.Since(t0))
		}
	} else {
		t.Log("cannot drop the page cache (not root?): no cold-cache figure")
	}
	// What retention and the disk guard ask of the index every
	// record.retention_interval (a minute by default).
	t0 := time.Now()
	if _, err := st.RecordedChannels(ctx); err != nil {
		t.Fatal(err)
	}
	recordedTook := time.Since(t0)
	t0 = time.Now()
	if _, _, err := st.CountSegmentsAt(ctx, model.LocationDisk); err != nil {
		t.Fatal(err)
	}
	countTook := time.Since(t0)
	t.Logf("retention queries: RecordedChannels %s, CountSegmentsAt(disk) %s", recordedTook.Round(time.Millisecond), countTook.Round(time.Millisecond))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The platform on the same data folder.
	cfg := config.Default()
	cfg.DataDir = ib.data
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Live.WebRTCUDPAddr = "127.0.0.1:0"
	cfg.Streams.ProbeInterval = 0
	// Keep retention off the generated days: by default it would start
	// expiring the oldest day at once.
	cfg.Record.Retention = config.Duration(time.Duration(days+7) * 24 * time.Hour)
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	startTook := time.Since(t0)
	defer a.Close()
	t.Logf("platform started in %s", startTook.Round(time.Millisecond))
	client := &http.Client{Timeout: time.Minute}
	base := a.URL()
	// The platform runs a retention pass as it starts and every minute
	// after; at this size the pass scans the whole index (RecordedChannels
	// and CountSegmentsAt above) for seconds and slows the queries it
	// meets (p50 of the timeline over HTTP 15 ms against 9 ms in a trial).
	// Wait for the first pass to end, so that the figures are of the
	// steady state, then time the storage report, which counts segments
	// the same way.
	var storage record.Storage
	for deadline := time.Now().Add(5 * time.Minute); storage.Retention.At.IsZero(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no retention pass in 5 min")
		}
		storage, _ = ib.storage(client, base)
	}
	storage, storageTook := ib.storage(client, base)
	if storage.DiskSegments != ib.rows {
		t.Errorf("GET /api/v1/storage: %d segments on the disk, want %d", storage.DiskSegments, ib.rows)
	}

	overHTTP := make([]time.Duration, 0, timelineTries)
	for i := range warmup + timelineTries {
		ch, day := ib.channelDay(rng, days)
		u := fmt.Sprintf("%s/api/v1/channels/%d/recordings?%s", base, ch, url.Values{
			"start": {day.Format(time.RFC3339)}, "end": {day.Add(24 * time.Hour).Format(time.RFC3339)}}.Encode())
		t0 := time.Now()
		res, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var tl record.Timeline
		err = json.NewDecoder(res.Body).Decode(&tl)
		res.Body.Close()
		d := time.Since(t0)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", u, res.Status, err)
		}
		if tl.Segments != 1440 || len(tl.Gaps) != 0 {
			t.Fatalf("GET %s: %d segments, %d gaps; want 1440 and none", u, tl.Segments, len(tl.Gaps))
		}
		if i >= warmup {
			overHTTP = append(overHTTP, d)
		}
	}

	var mp4First, mp4Whole, hlsFirst []time.Duration
	var mp4Bytes int64
	for i, r := range ranges {
		m := ib.playback(client, base, r)
		if i == 0 {
			continue
		}
		mp4First, mp4Whole, hlsFirst = append(mp4First, m.mp4First), append(mp4Whole, m.mp4Whole), append(hlsFirst, m.hlsFirst)
		mp4Bytes += m.mp4Bytes
	}

	rows := []string{
		statRow("timeline of a channel-day (1440 segments), Store + Catalog.Timeline", direct, "< 50 ms"),
		statRow("timeline of a channel-day, GET /api/v1/channels/{id}/recordings", overHTTP, "< 50 ms"),
		statRow("timeline of a channel-day, Store + Catalog.Timeline, page cache dropped before each query", cold, ""),
		statRow("playback of 5 min: POST /playback + GET mp4, to the first body byte", mp4First, "< 200 ms"),
		statRow("playback of 5 min: GET HLS playlist, to the first body byte", hlsFirst, "< 200 ms"),
		statRow(fmt.Sprintf("playback of 5 min: POST /playback + GET mp4, whole file (%.1f MB on average)", float64(mp4Bytes)/float64(len(mp4First))/1e6), mp4Whole, ""),
		fmt.Sprintf("| retention pass: Store.RecordedChannels (each minute) | 1 | %s | | | |", fmtDuration(recordedTook)),
		fmt.Sprintf("| disk guard: Store.CountSegmentsAt(disk) (each minute) | 1 | %s | | | |", fmtDuration(countTook)),
		fmt.Sprintf("| GET /api/v1/storage (counts the segments on the disk and in S3) | 1 | %s | | | |", fmtDuration(storageTook)),
		fmt.Sprintf("| platform start on this data folder (app.Start) | 1 | %s | | | |", fmtDuration(startTook)),
	}
	head := fmt.Sprintf("machine: %s, %d CPUs, %s, load average %s at the start; %d channels × %d days of 60 s segments = %d rows, "+
		"generated in %.1f s (%.0f rows/s, one goroutine), database %.2f GB; page cache warm (the database was just written)",
		cpuModel(), runtime.NumCPU(), runtime.Version(), loadAvg, channels, days, ib.rows, genTook.Seconds(), float64(ib.rows)/genTook.Seconds(), float64(dbSize)/1e9)
	t.Log(head)
	t.Logf("query plan: %s", plan)
	for _, r := range rows {
		t.Log(r)
	}
	fmt.Printf("\n%s\n\nquery plan of Store.Segments: %s\n\n", head, plan)
	fmt.Println("| index and playback | tries | p50 | p95 | max | goal |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
}

// indexBench holds the data folder of TestIndexBenchmark.
type indexBench struct {
	t            *testing.T
	data, dbPath string
	channels     int
	ids          []int64 // channel ids
	begin, end   time.Time
	run          int64 // of every channel: the recording began at begin
	rows         int64

	// Every segment is a copy of one 60 s file, but for its decode times.
	segBytes    int64
	codec, hash string
}

type playbackRange struct {
	ch       int64
	from, to time.Time
}

// template writes one segment to learn what the rows hold: its size,
// codecs and hash.
func (ib *indexBench) template() {
	g := ib.segmentFile(ib.begin)
	f, err := recfile.Scan(bytes.NewReader(g), int64(len(g)))
	if err != nil {
		ib.t.Fatal(err)
	}
	ib.segBytes, ib.codec = int64(len(g)), f.Codecs()
	sum := sha256.Sum256(g)
	ib.hash = hex.EncodeToString(sum[:])
}

// segmentFile returns the file of the segment that starts at start: 60 s of
// video whose decode times count from the start of the run, as the
// recorder writes them, so that consecutive files play without a
// discontinuity.
func (ib *indexBench) segmentFile(start time.Time) []byte {
	w, err := recfiletest.NewWriter(recfiletest.Options{Clip: recfiletest.Testsrc160, BaseTime: start.Sub(ib.begin)})
	if err != nil {
		ib.t.Fatal(err)
	}
	g, err := w.Segment(time.Minute)
	if err != nil {
		ib.t.Fatal(err)
	}
	if g.Duration != time.Minute {
		ib.t.Fatalf("segment of %s lasts %s, want 1m", start, g.Duration)
	}
	return g.Bytes
}

// generate creates the channels through the store, then inserts the
// segments straight into its SQLite file: minute by minute, all channels
// in each (the order in which the recorder adds them, so that the rows of
// a channel-day are spread over the table as in production), 100 rows a
// statement, 100,000 a transaction, without a journal. The indexes stay:
// dropping them and building them at the end was slower (63 s against 20
// s for 100 channels × 30 days, on 2 busy cores).
func (ib *indexBench) generate(ctx context.Context) time.Duration {
	t := ib.t
	t0 := time.Now()
	st, err := store.Open(ctx, store.Config{DSN: ib.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertDivisions(ctx, []model.Division{{Code: "441800", Name: "清远市", Level: model.DivisionLevelCity}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= ib.channels; i++ {
		ch := &model.Channel{Code: fmt.Sprintf("44180000001320%06d", i), Name: fmt.Sprintf("bench %d", i), DivisionCode: "441800",
			SourceURL: fmt.Sprintf("rtsp://127.0.0.1:1/cam/%d", i), Transport: "tcp"}
		if err := st.CreateChannel(ctx, ch); err != nil {
			t.Fatal(err)
		}
		ib.ids = append(ib.ids, ch.ID)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", ib.dbPath+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "off" {
		t.Fatalf("journal_mode %q, %v; want off", mode, err)
	}
	const perStmt, perTx = 100, 100_000
	insert := func(n int) string {
		var b strings.Builder
		b.WriteString(`INSERT INTO segments (channel_id, start_ms, end_ms, bytes, blob_key, location, sha256, codec, run) VALUES `)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		}
		return b.String()
	}
	var tx *sql.Tx
	var stmt *sql.Stmt
	inTx := 0
	args := make([]any, 0, 9*perStmt)
	flush := func(last bool) {
		if len(args) > 0 {
			if tx == nil {
				if tx, err = db.BeginTx(ctx, nil); err != nil {
					t.Fatal(err)
				}
				if stmt, err = tx.PrepareContext(ctx, insert(perStmt)); err != nil {
					t.Fatal(err)
				}
			}
			s := stmt
			if n := len(args) / 9; n < perStmt {
				if s, err = tx.PrepareContext(ctx, insert(n)); err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			if _, err := s.ExecContext(ctx, args...); err != nil {
				t.Fatal(err)
			}
			inTx += len(args) / 9
			ib.rows += int64(len(args) / 9)
			args = args[:0]
		}
		if tx != nil && (last || inTx >= perTx) {
			stmt.Close()
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			tx, inTx = nil, 0
		}
	}
	lastLog := time.Now()
	for at := ib.begin; at.Before(ib.end); at = at.Add(time.Minute) {
		ms := at.UnixMilli()
		for _, ch := range ib.ids {
			args = append(args, ch, ms, ms+60_000, ib.segBytes, record.SegmentKey(ch, at, ib.run), string(model.LocationDisk), ib.hash, ib.codec, ib.run)
			if len(args) == cap(args) {
				flush(false)
			}
		}
		if time.Since(lastLog) > 30*time.Second {
			t.Logf("generating: %d rows, %s", ib.rows, time.Since(t0).Round(time.Second))
			lastLog = time.Now()
		}
	}
	flush(true)
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return took
}

// queryPlan returns the plan of the query of Store.Segments (kept in step
// with internal/store/segment.go by hand).
func (ib *indexBench) queryPlan(ctx context.Context) string {
	db, err := sql.Open("sqlite", ib.dbPath+"?_pragma=query_only(1)")
	if err != nil {
		ib.t.Fatal(err)
	}
	defer db.Close()
	from := ib.begin.UnixMilli()
	rs, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT id, channel_id, start_ms, end_ms, bytes, blob_key, location, sha256, codec, run FROM segments
WHERE channel_id = $1 AND start_ms > $2 AND start_ms < $3 AND end_ms > $4
ORDER BY start_ms`, ib.ids[0], from-store.MaxSegmentDuration.Milliseconds(), from+86_400_000, from)
	if err != nil {
		ib.t.Fatal(err)
	}
	defer rs.Close()
	var steps []string
	for rs.Next() {
		var id, parent, unused int
		var detail string
		if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
			ib.t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rs.Err(); err != nil {
		ib.t.Fatal(err)
	}
	return strings.Join(steps, "; ")
}

// writeFiles writes the segment files that the ranges overlap.
func (ib *indexBench) writeFiles(ranges []playbackRange) (files int, size int64) {
	done := map[string]bool{}
	for _, r := range ranges {
		for at := r.from.Truncate(time.Minute); at.Before(r.to); at = at.Add(time.Minute) {
			key := record.SegmentKey(r.ch, at, ib.run)
			if done[key] {
				continue
			}
			done[key] = true
			g := ib.segmentFile(at)
			if int64(len(g)) != ib.segBytes {
				// The index says every file has the template's size.
				ib.t.Fatalf("%s: %d bytes, the index says %d", key, len(g), ib.segBytes)
			}
			path := filepath.Join(ib.data, "recordings", filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
				ib.t.Fatal(err)
			}
			if err := os.WriteFile(path, g, 0o640); err != nil {
				ib.t.Fatal(err)
			}
			files++
			size += int64(len(g))
		}
	}
	return files, size
}

// channelDay picks a channel and a UTC day of the recording.
func (ib *indexBench) channelDay(rng *rand.Rand, days int) (int64, time.Time) {
	return ib.ids[rng.IntN(len(ib.ids))], ib.begin.Add(time.Duration(rng.IntN(days)) * 24 * time.Hour)
}

// storage returns the storage report of the platform and how long it
// took.
func (ib *indexBench) storage(client *http.Client, base string) (record.Storage, time.Duration) {
	var st record.Storage
	t0 := time.Now()
	res, err := client.Get(base + "/api/v1/storage")
	if err != nil {
		ib.t.Fatal(err)
	}
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		ib.t.Fatalf("GET /api/v1/storage: %s, %v", res.Status, err)
	}
	return st, time.Since(t0)
}

type playbackTimes struct {
	mp4First, mp4Whole, hlsFirst time.Duration
	mp4Bytes                     int64
}

// playback asks for the playback URLs of r, reads the MP4 (timing its
// first byte and the whole), then the HLS playlist (timing its first
// byte).
func (ib *indexBench) playback(client *http.Client, base string, r playbackRange) playbackTimes {
	t := ib.t
	var m playbackTimes
	body, _ := json.Marshal(map[string]time.Time{"start": r.from, "end": r.to})
	t0 := time.Now()
	res, err := client.Post(fmt.Sprintf("%s/api/v1/channels/%d/playback", base, r.ch), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var urls struct{ HLS, MP4 string }
	err = json.NewDecoder(res.Body).Decode(&urls)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST playback of channel %d: %s, %v", r.ch, res.Status, err)
	}

	res, err = client.Get(urls.MP4)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1)
	if _, err := io.ReadFull(res.Body, first); err != nil || res.StatusCode != http.StatusOK {
		rest, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s, %v: %s%s", urls.MP4, res.Status, err, first, rest)
	}
	m.mp4First = time.Since(t0)
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: %v", urls.MP4, err)
	}
	m.mp4Whole, m.mp4Bytes = time.Since(t0), n+1
	if d, _ := strconv.ParseFloat(res.Header.Get("X-Xueliang-Duration"), 64); d < 299 || d > 301 {
		t.Fatalf("GET %s: the MP4 lasts %q s, want 300", urls.MP4, res.Header.Get("X-Xueliang-Duration"))
	}

	t0 = time.Now()
	res, err = client.Get(urls.HLS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, first); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", urls.HLS, res.Status, err)
	}
	m.hlsFirst = time.Since(t0)
	rest, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || !strings.HasPrefix(string(first)+string(rest), "#EXTM3U") {
		t.Fatalf("GET %s: %v: %s%s", urls.HLS, err, first, rest)
	}
	return m
}

// statRow is a row of the table: tries, p50, p95 and max of d.
// dropCaches empties the kernel's page cache (needs root).
func dropCaches() error {
	exec.Command("sync").Run()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

func statRow(name string, d []time.Duration, goal string) string {
	if len(d) == 0 {
		return fmt.Sprintf("| %s | 0 | not measured | | | %s |", name, goal)
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) string {
		return fmtDuration(s[min(len(s)-1, int(float64(len(s))*p))])
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %s |", name, len(s), at(.5), at(.95), fmtDuration(s[len(s)-1]), goal)
}

// fmtDuration prints d in milliseconds to a tenth of one.
func fmtDuration(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

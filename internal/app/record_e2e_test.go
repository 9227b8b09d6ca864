package app

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/blob/s3test"
	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/recfile"
	"github.com/xueliang/xueliang/internal/record"
	"github.com/xueliang/xueliang/internal/sim"
)

// recordingPlatform starts a platform that records one simulated camera
// continuously in segments of segDur, and returns it with the channel.
func recordingPlatform(t *testing.T, segDur time.Duration, edit func(*config.Config)) (*platform, int64) {
	t.Helper()
	p := startPlatform(t, []sim.Camera{{Path: "rec", Audio: "aac"}}, func(c *config.Config) {
		c.Record.SegmentDuration = config.Duration(segDur)
		if edit != nil {
			edit(c)
		}
	})
	id := p.addChannel(p.camURL("rec"))
	var plan struct {
		Mode     string
		Recorder struct{ State string }
	}
	if st := p.call("PUT", fmt.Sprintf("/api/v1/channels/%d/recording-plan", id), map[string]any{"mode": "continuous"}, &plan); st != 200 || plan.Mode != "continuous" {
		t.Fatalf("set plan: %d %+v", st, plan)
	}
	return p, id
}

type timeline struct {
	Recorded []record.Interval
	Gaps     []record.Interval
	Segments int
	Seconds  float64 `json:"recorded_seconds"`
}

func (p *platform) timeline(id int64, from, to time.Time) timeline {
	p.t.Helper()
	var tl timeline
	q := fmt.Sprintf("/api/v1/channels/%d/recordings?start=%s&end=%s", id, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	if st := p.call("GET", q, nil, &tl); st != 200 {
		p.t.Fatalf("timeline: status %d", st)
	}
	return tl
}

type playbackURLs struct {
	HLS, MP4   string
	Start, End time.Time
}

func (p *platform) playback(id int64, from, to time.Time) playbackURLs {
	p.t.Helper()
	var u playbackURLs
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/playback", id), map[string]any{"start": from, "end": to}, &u); st != 200 {
		p.t.Fatalf("playback: status %d", st)
	}
	return u
}

// get fetches a URL into a file and returns its path.
func get(t *testing.T, url, name string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// probe returns what ffprobe says of a file: the duration and, for the
// first video frame, whether it is a keyframe.
func probe(t *testing.T, path string) (dur float64, firstKey bool) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe not installed: run make test-deps")
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	dur, err = strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q", out)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
		"-read_intervals", "%+#1", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v\n%s", path, err, out)
	}
	return dur, strings.HasPrefix(strings.TrimSpace(string(out)), "K")
}

// playlistDuration returns the sum of the EXTINF values of an HLS playlist
// and its EXT-X-START time offset.
func playlistDuration(t *testing.T, body string) (sum, offset float64, entries int) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			d, err := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			if err != nil {
				t.Fatalf("EXTINF %q", line)
			}
			sum += d
			entries++
		}
		if v, ok := strings.CutPrefix(line, "#EXT-X-START:TIME-OFFSET="); ok {
			v, _, _ = strings.Cut(v, ",")
			offset, _ = strconv.ParseFloat(v, 64)
		}
	}
	return sum, offset, entries
}

// checkPlayback asks [from, to) of a recorded channel as MP4 and HLS.
func checkPlayback(t *testing.T, p *platform, id int64, from, to time.Time) {
	t.Helper()
	u := p.playback(id, from, to)
	want := to.Sub(from).Seconds()
	mp4 := get(t, u.MP4, "range.mp4")
	dur, key := probe(t, mp4)
	if dur < want-0.5 || dur > want+0.5 {
		t.Errorf("stitched MP4 lasts %.3f s, want %.1f ±0.5 s", dur, want)
	}
	if !key {
		t.Error("the stitched MP4 does not start with a keyframe")
	}
	// The MP4 answers Range requests, so that <video> can seek in it.
	req, _ := http.NewRequest("GET", u.MP4, nil)
	req.Header.Set("Range", "bytes=1000-1999")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusPartialContent || res.ContentLength != 1000 || res.Header.Get("ETag") == "" {
		t.Errorf("MP4 byte range: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	f, err := os.Open(mp4)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	sf, err := recfile.Scan(f, st.Size())
	if err != nil {
		t.Fatalf("our own reader refuses the stitched MP4: %v", err)
	}
	// It starts at the keyframe at or before from: its creation time is
	// the wall-clock time of the first presented frame.
	if sf.Created.After(from.Add(time.Second)) || sf.Created.Before(from.Add(-3*time.Second)) {
		t.Errorf("stitched MP4 created %v, range starts %v", sf.Created, from)
	}
	res, err := http.Get(u.HLS)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("playlist: %d %s", res.StatusCode, body)
	}
	sum, offset, n := playlistDuration(t, string(body))
	// The playlist lists whole fragments: from the keyframe before from
	// (EXT-X-START skips it) to the end of the fragment that holds to, at
	// most a part (1 s) later.
	if got := sum - offset; got < dur-0.05 || got > dur+1.05 || n == 0 {
		t.Errorf("playlist: %d entries, %.3f s from its start offset %.3f s; the MP4 lasts %.3f s\n%s", n, got, offset, dur, body)
	}
	// Every byte range of the playlist is served.
	seg := ""
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "seg/") {
			seg = line
			break
		}
	}
	req, _ = http.NewRequest("GET", u.HLS[:strings.LastIndex(u.HLS, "/")+1]+seg, nil)
	req.Header.Set("Range", "bytes=0-99")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent {
		t.Errorf("segment byte range: status %d", res.StatusCode)
	}
}

func TestRecordAndPlayBack(t *testing.T) {
	p, id := recordingPlatform(t, 10*time.Second, nil)
	t0 := time.Now()
	time.Sleep(40 * time.Second)
	tl := p.timeline(id, t0.Add(-time.Minute), time.Now())
	if len(tl.Recorded) != 1 || tl.Seconds < 37 || tl.Segments < 4 {
		t.Fatalf("after 40 s of recording the timeline says %+v", tl)
	}
	start := tl.Recorded[0].Start
	checkPlayback(t, p, id, start.Add(10*time.Second), start.Add(30*time.Second))

	// A wrong range is refused with a reason; a range in a gap is 404.
	var e struct {
		Error struct{ Code, Message string }
	}
	if st := p.call("POST", fmt.Sprintf("/api/v1/channels/%d/playback", id), map[string]any{"start": start, "end": start}, &e); st != 400 || e.Error.Code != "invalid_range" {
		t.Errorf("empty range: %d %+v", st, e)
	}
	u := p.playback(id, start.Add(-time.Hour), start.Add(-time.Hour+time.Minute))
	if res, err := http.Get(u.MP4); err != nil || res.StatusCode != 404 {
		t.Errorf("a range without recording: %v %v", res.StatusCode, err)
	}
	// A token for one range does not open another.
	other := strings.Replace(u.MP4, "start=", "start=1"+"", 1)
	if res, err := http.Get(other); err != nil || res.StatusCode == 200 {
		t.Errorf("a tampered range was served: %v", err)
	}

	// Export the range; the manifest's checksums match the files.
	var x struct {
		ID       int64
		State    string
		Progress float64
		Files    []struct {
			Name, SHA256, URL string
			Bytes             int64
		}
	}
	if st := p.call("POST", "/api/v1/exports", map[string]any{"channel_ids": []int64{id}, "start": start.Add(5 * time.Second), "end": start.Add(25 * time.Second)}, &x); st != 202 {
		t.Fatalf("export: status %d", st)
	}
	deadline := time.Now().Add(30 * time.Second)
	for x.State != "done" {
		if time.Now().After(deadline) || x.State == "failed" {
			t.Fatalf("export %+v", x)
		}
		time.Sleep(100 * time.Millisecond)
		p.call("GET", fmt.Sprintf("/api/v1/exports/%d", x.ID), nil, &x)
	}
	if len(x.Files) != 3 {
		t.Fatalf("export files %+v", x.Files)
	}
	for _, f := range x.Files {
		path := get(t, f.URL, f.Name)
		if f.SHA256 == "" {
			continue
		}
		out, err := exec.Command("sha256sum", path).Output()
		if err != nil || !strings.HasPrefix(string(out), f.SHA256) {
			t.Errorf("%s: sha256sum says %s, the export %s", f.Name, out, f.SHA256)
		}
		if strings.HasSuffix(f.Name, ".mp4") {
			if d, key := probe(t, path); d < 19.5 || d > 20.5 || !key {
				t.Errorf("exported MP4 lasts %.3f s (key %v), want 20 s", d, key)
			}
		}
	}
	// Its segments are locked until it is released.
	var sto struct {
		DiskSegments int64 `json:"disk_segments"`
	}
	p.call("GET", "/api/v1/storage", nil, &sto)
	if n, err := p.app.Store().LockedSegments(t.Context(), x.ID); err != nil || n < 2 {
		t.Errorf("export locks %d segments (%v)", n, err)
	}
	if st := p.call("DELETE", fmt.Sprintf("/api/v1/exports/%d", x.ID), nil, &x); st != 200 || x.State != "released" {
		t.Errorf("release: %d %+v", st, x)
	}
	if n, _ := p.app.Store().LockedSegments(t.Context(), x.ID); n != 0 {
		t.Errorf("a released export still locks %d segments", n)
	}
}

func TestRecordToS3ThroughAnOutage(t *testing.T) {
	srv := s3test.Start(t)
	// S3 is down when the platform starts: it starts all the same, and
	// records to the disk.
	srv.Stop()
	p, id := recordingPlatform(t, 4*time.Second, func(c *config.Config) {
		s := srv.Config("xueliang-rec")
		c.Record.Store = "s3"
		c.Record.S3 = config.S3{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
	})
	t0 := time.Now()
	var sto struct {
		DiskSegments  int64  `json:"disk_segments"`
		S3Segments    int64  `json:"s3_segments"`
		UploadBacklog int64  `json:"upload_backlog"`
		S3Error       string `json:"s3_error"`
	}
	time.Sleep(5 * time.Second)
	p.call("GET", "/api/v1/storage", nil, &sto)
	if sto.S3Error == "" || sto.UploadBacklog == 0 {
		t.Errorf("S3 down at start: %+v, want an s3_error and a backlog", sto)
	}
	srv.Restart() // connects within its 10 s retry
	deadline := time.Now().Add(30 * time.Second)
	for sto.S3Segments == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing uploaded after S3 came up: %+v", sto)
		}
		time.Sleep(200 * time.Millisecond)
		p.call("GET", "/api/v1/storage", nil, &sto)
	}
	// Then an outage of 20 s mid-recording.
	srv.Stop()
	time.Sleep(20 * time.Second) // S3 is down: segments wait on the disk
	p.call("GET", "/api/v1/storage", nil, &sto)
	if sto.UploadBacklog < 3 {
		t.Errorf("during the outage: %+v, want a backlog of segments on the disk", sto)
	}
	srv.Restart()
	deadline = time.Now().Add(60 * time.Second)
	for {
		p.call("GET", "/api/v1/storage", nil, &sto)
		if sto.DiskSegments == 0 && sto.S3Segments >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backlog did not drain: %+v", sto)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Nothing was lost: one continuous recording, played back from S3.
	tl := p.timeline(id, t0.Add(-time.Minute), time.Now())
	if len(tl.Recorded) != 1 || tl.Seconds < time.Since(t0).Seconds()-3 {
		t.Fatalf("timeline after the outage: %+v", tl)
	}
	start := tl.Recorded[0].Start
	checkPlayback(t, p, id, start.Add(2*time.Second), start.Add(22*time.Second))
}

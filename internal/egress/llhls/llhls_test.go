package llhls

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/xueliang/xueliang/internal/media"
)

func TestWritePart(t *testing.T) {
	t.Parallel()
	nalA, nalB, nalC := []byte{0x65, 1, 2, 3}, []byte{0x41, 9}, bytes.Repeat([]byte{0x41, 7}, 300)
	for _, tc := range []struct {
		name   string
		seq    uint32
		tracks []fragTrack
	}{
		{"video only, one keyframe", 1, []fragTrack{
			{id: 1, baseTime: 0, video: true, samples: []sample{
				{dur: 3000, nalus: [][]byte{nalA}, size: 8, sync: true, avcc: true},
			}},
		}},
		{"video keyframe and non-sync samples", 7, []fragTrack{
			{id: 1, baseTime: 1 << 40, video: true, samples: []sample{
				{dur: 3000, nalus: [][]byte{nalA, nalB}, size: 14, sync: true, avcc: true},
				{dur: 3003, nalus: [][]byte{nalB}, size: 6, avcc: true},
				{dur: 2997, nalus: [][]byte{nalC}, size: 604, avcc: true},
			}},
		}},
		{"video and audio", 42, []fragTrack{
			{id: 1, baseTime: 90000, video: true, samples: []sample{
				{dur: 6000, nalus: [][]byte{nalB}, size: 6, avcc: true},
				{dur: 6000, nalus: [][]byte{nalC, nalB}, size: 610, avcc: true},
			}},
			{id: 2, baseTime: 48000, samples: []sample{
				{dur: 1024, nalus: [][]byte{{1, 2, 3}}, size: 3, sync: true},
				{dur: 1024, nalus: [][]byte{{4, 5}}, size: 2, sync: true},
				{dur: 1024, nalus: [][]byte{{6}}, size: 1, sync: true},
			}},
		}},
		{"audio only", 3, []fragTrack{
			{id: 1, baseTime: 12345, samples: []sample{
				{dur: 960, nalus: [][]byte{{0xfc, 1}}, size: 2, sync: true},
			}},
		}},
		{"empty audio track is left out", 5, []fragTrack{
			{id: 1, video: true, samples: []sample{
				{dur: 1, nalus: [][]byte{nalA}, size: 8, sync: true, avcc: true},
			}},
			{id: 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := writePart(tc.seq, tc.tracks)
			if total, _ := partSize(tc.tracks); len(buf) != total {
				t.Fatalf("len %d, want %d", len(buf), total)
			}
			var parts fmp4.Parts
			if err := parts.Unmarshal(buf); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if len(parts) != 1 {
				t.Fatalf("%d parts, want 1", len(parts))
			}
			p := parts[0]
			if p.SequenceNumber != tc.seq {
				t.Errorf("sequence %d, want %d", p.SequenceNumber, tc.seq)
			}
			var want []fragTrack
			for _, ft := range tc.tracks {
				if len(ft.samples) > 0 {
					want = append(want, ft)
				}
			}
			if len(p.Tracks) != len(want) {
				t.Fatalf("%d tracks, want %d", len(p.Tracks), len(want))
			}
			for i, ft := range want {
				got := p.Tracks[i]
				if got.ID != int(ft.id) || got.BaseTime != ft.baseTime || len(got.Samples) != len(ft.samples) {
					t.Fatalf("track %d: id %d base %d samples %d, want %d %d %d", i,
						got.ID, got.BaseTime, len(got.Samples), ft.id, ft.baseTime, len(ft.samples))
				}
				for j, s := range ft.samples {
					g := got.Samples[j]
					var payload []byte
					for _, n := range s.nalus {
						if s.avcc {
							payload = append(payload, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
						}
						payload = append(payload, n...)
					}
					if g.Duration != s.dur || g.PTSOffset != 0 || g.IsNonSyncSample == s.sync ||
						!bytes.Equal(g.Payload, payload) {
						t.Errorf("track %d sample %d: dur %d offset %d nonSync %v payload %x, want %d 0 %v %x",
							i, j, g.Duration, g.PTSOffset, g.IsNonSyncSample, g.Payload, s.dur, !s.sync, payload)
					}
				}
			}
		})
	}
}

func TestVideoSample(t *testing.T) {
	t.Parallel()
	sps, pps := []byte{0x67, 1}, []byte{0x68, 2}
	aud, idr, slice := []byte{0x09, 0xf0}, []byte{0x65, 3}, []byte{0x41, 4}
	for _, tc := range []struct {
		name string
		key  bool
		in   [][]byte
		want [][]byte
	}{
		{"keyframe with parameter sets is kept", true, [][]byte{sps, pps, idr}, [][]byte{sps, pps, idr}},
		{"keyframe without parameter sets gets them", true, [][]byte{idr}, [][]byte{sps, pps, idr}},
		{"AUD and empty NAL units are dropped", false, [][]byte{aud, {}, slice}, [][]byte{slice}},
		{"keyframe with AUD and only a PPS", true, [][]byte{aud, pps, idr}, [][]byte{sps, pps, idr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &outTrack{codec: media.CodecH264, sps: sps, pps: pps}
			s := tr.videoSample(&media.Unit{Key: tc.key, Payload: tc.in})
			if fmt.Sprint(s.nalus) != fmt.Sprint(tc.want) {
				t.Errorf("nalus %x, want %x", s.nalus, tc.want)
			}
			size := 0
			for _, n := range tc.want {
				size += 4 + len(n)
			}
			if int(s.size) != size || s.sync != tc.key || !s.avcc {
				t.Errorf("size %d sync %v avcc %v, want %d %v true", s.size, s.sync, s.avcc, size, tc.key)
			}
		})
	}
}

func TestRenderMedia(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 12, 0, 0, 500e6, time.UTC)
	mk := func(id uint64, d time.Duration, ind bool) *part {
		return &part{id: id, dur: d, independent: ind}
	}
	const pd = 500 * time.Millisecond
	segs := []*segment{
		{msn: 4, dur: 2 * time.Second, ntp: at, parts: []*part{mk(10, pd, true), mk(11, pd, false), mk(12, pd, false), mk(13, pd, false)}},
		{msn: 5, dur: 2 * time.Second, ntp: at.Add(2 * time.Second), parts: []*part{mk(14, pd, true), mk(15, pd, false), mk(16, pd, false), mk(17, pd, false)}},
		{msn: 6, dur: 2 * time.Second, ntp: at.Add(4 * time.Second), parts: []*part{mk(18, pd, true), mk(19, pd, false), mk(20, pd, false), mk(21, pd, false)}},
		{msn: 7, dur: 2 * time.Second, ntp: at.Add(6 * time.Second), parts: []*part{mk(22, pd, true), mk(23, pd, false), mk(24, pd, false), mk(25, pd, false)}},
	}
	tpl := renderMedia(mediaPlaylistInput{
		prefix: "ab12", target: 2, partTarget: pd, segs: segs,
		curParts: []*part{mk(26, pd, true)}, nextPart: 27,
	}, nil)
	want := `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:4
#EXT-X-MAP:URI="ab12_init.mp4?token=x"
#EXT-X-PROGRAM-DATE-TIME:2026-11-29T12:00:00.500Z
#EXTINF:2.00000,
ab12_seg4.mp4?token=x
#EXT-X-PROGRAM-DATE-TIME:2026-11-29T12:00:02.500Z
#EXTINF:2.00000,
ab12_seg5.mp4?token=x
#EXT-X-PROGRAM-DATE-TIME:2026-11-29T12:00:04.500Z
#EXT-X-PART:DURATION=0.50000,URI="ab12_part18.mp4?token=x",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="ab12_part19.mp4?token=x"
#EXT-X-PART:DURATION=0.50000,URI="ab12_part20.mp4?token=x"
#EXT-X-PART:DURATION=0.50000,URI="ab12_part21.mp4?token=x"
#EXTINF:2.00000,
ab12_seg6.mp4?token=x
#EXT-X-PROGRAM-DATE-TIME:2026-11-29T12:00:06.500Z
#EXT-X-PART:DURATION=0.50000,URI="ab12_part22.mp4?token=x",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="ab12_part23.mp4?token=x"
#EXT-X-PART:DURATION=0.50000,URI="ab12_part24.mp4?token=x"
#EXT-X-PART:DURATION=0.50000,URI="ab12_part25.mp4?token=x"
#EXTINF:2.00000,
ab12_seg7.mp4?token=x
#EXT-X-PART:DURATION=0.50000,URI="ab12_part26.mp4?token=x",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="ab12_part27.mp4?token=x"
`
	if got := string(tpl.render("token=x")); got != want {
		t.Errorf("playlist:\n%s\nwant:\n%s", got, want)
	}
	if got, want := string(tpl.render("")), strings.ReplaceAll(want, "?token=x", ""); got != want {
		t.Errorf("playlist without query:\n%s\nwant:\n%s", got, want)
	}
	// gohlslib's parser agrees.
	pl, err := playlist.Unmarshal(tpl.render("token=x"))
	if err != nil {
		t.Fatal(err)
	}
	mp := pl.(*playlist.Media)
	if mp.MediaSequence != 4 || len(mp.Segments) != 4 || len(mp.Parts) != 1 || mp.PreloadHint == nil {
		t.Errorf("parsed %+v", mp)
	}

	mv := renderMultivariant(variantInfo{codecs: "avc1.64001f,mp4a.40.2", width: 1280, height: 720}, 2100000)
	wantMV := `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=2100000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720
stream.m3u8?token=x
`
	if got := string(mv.render("token=x")); got != wantMV {
		t.Errorf("multivariant:\n%s\nwant:\n%s", got, wantMV)
	}
}

func TestPlaylistQuery(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                 "",
		"token=a":                          "token=a",
		"token=a&_HLS_msn=3&_HLS_part=1":   "token=a",
		"_HLS_msn=3&token=a&_HLS_skip=YES": "token=a",
		"_HLS_msn=3":                       "",
		"a=1&token=b%26c&_HLS_part=0&&d=2": "a=1&token=b%26c&d=2",
	} {
		if got := playlistQuery(in); got != want {
			t.Errorf("playlistQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// liveMedia starts an H.264 source and a server, and returns the URL of the
// media playlist and its first content.
func liveMedia(t *testing.T, cfg Config, id int64) (*httpFixture, *url.URL, *playlist.Media) {
	t.Helper()
	v := loadClip(t, "clip.h264", media.CodecH264)
	aac := loadAAC(t)
	src := startSource(t, sourceOpts{video: v, audio: aac, audioTrack: 1, tracks: []*media.Track{
		v.track(false), {Codec: media.CodecAAC, ClockRate: aac.rate, Config: aac.config, Channels: 1},
	}})
	if cfg.Hub == nil {
		cfg.Hub = hubOf(func() *source { return src })
	}
	s, ts := newTestServer(t, cfg)
	mURL, pl := mediaPlaylist(t, ts.URL, id)
	return &httpFixture{s: s, base: ts.URL, src: src}, mURL, pl
}

type httpFixture struct {
	s    *Server
	base string
	src  *source
}

func resolve(base *url.URL, ref string) string {
	u, _ := url.Parse(ref)
	return base.ResolveReference(u).String()
}

func TestBlockingRequests(t *testing.T) {
	t.Parallel()
	_, mURL, pl := liveMedia(t, Config{PartMinDuration: 200 * time.Millisecond}, 11)
	next := pl.MediaSequence + len(pl.Segments)

	t.Run("reload returns when the next part arrives", func(t *testing.T) {
		u := *mURL
		u.RawQuery = fmt.Sprintf("token=%s&_HLS_msn=%d&_HLS_part=%d", testToken, next, len(pl.Parts))
		start := time.Now()
		status, body, _ := get(t, u.String())
		if status != http.StatusOK {
			t.Fatalf("status %d %s", status, body)
		}
		p, err := playlist.Unmarshal(body)
		if err != nil {
			t.Fatal(err)
		}
		got := p.(*playlist.Media)
		n := len(got.Parts)
		if got.MediaSequence+len(got.Segments) > next {
			n += 1000 // a segment ended: the part asked for is in it
		}
		if n <= len(pl.Parts) {
			t.Errorf("answered after %v without part %d (has %d)", time.Since(start), len(pl.Parts), len(got.Parts))
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("answered after %v, want about one part", d)
		}
	})

	t.Run("reload too far ahead is 400", func(t *testing.T) {
		u := *mURL
		u.RawQuery = fmt.Sprintf("token=%s&_HLS_msn=%d", testToken, next+5)
		status, body, _ := get(t, u.String())
		if status != http.StatusBadRequest || decodeError(t, body).Code != codeBadRequest {
			t.Errorf("status %d %s, want 400", status, body)
		}
		u.RawQuery = fmt.Sprintf("token=%s&_HLS_msn=x", testToken)
		if status, _, _ := get(t, u.String()); status != http.StatusBadRequest {
			t.Errorf("bad msn: status %d, want 400", status)
		}
	})

	t.Run("preload hint part waits and returns the part", func(t *testing.T) {
		_, mp := mediaPlaylist(t, (&url.URL{Scheme: mURL.Scheme, Host: mURL.Host}).String(), 11)
		start := time.Now()
		status, body, h := get(t, resolve(mURL, mp.PreloadHint.URI))
		if status != http.StatusOK {
			t.Fatalf("status %d %s", status, body)
		}
		t.Logf("hinted part (%d bytes) after %v", len(body), time.Since(start).Round(time.Millisecond))
		if h.Get("Content-Type") != "video/mp4" || h.Get("Cache-Control") == "" {
			t.Errorf("headers %v", h)
		}
		var parts fmp4.Parts
		if err := parts.Unmarshal(body); err != nil || len(parts) != 1 || len(parts[0].Tracks) == 0 {
			t.Fatalf("part: %v, %d parts", err, len(parts))
		}
		// The part after the hint is not hinted yet: 404.
		next := strings.Replace(mp.PreloadHint.URI, "_part", "_part9", 1)
		if status, _, _ := get(t, resolve(mURL, next)); status != http.StatusNotFound {
			t.Errorf("unhinted future part: %d, want 404", status)
		}
	})
}

func TestPreloadHintWaitersEndWithStream(t *testing.T) {
	t.Parallel()
	f, mURL, pl := liveMedia(t, Config{}, 12)
	hint := resolve(mURL, pl.PreloadHint.URI)
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Go(func() { statuses[i], _, _ = get(t, hint) })
	}
	time.Sleep(50 * time.Millisecond) // let them wait
	f.src.close(nil)
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK && st != http.StatusServiceUnavailable {
			t.Errorf("waiter %d: %d", i, st)
		}
	}
	eventually(t, 2*time.Second, "muxer removed", func() bool { return muxerCount(f.s) == 0 })
}

// TestFFprobeSegment checks the init segment and one segment with ffprobe
// and, if ffmpeg is installed too, decodes every segment of the playlist.
func TestFFprobeSegment(t *testing.T) {
	t.Parallel()
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not installed")
	}
	f, mURL, pl := liveMedia(t, Config{}, 13)
	eventually(t, 5*time.Second, "three segments", func() bool {
		_, pl = mediaPlaylist(t, f.base, 13)
		return len(pl.Segments) >= 3
	})
	_, initBody, _ := get(t, resolve(mURL, pl.Map.URI))
	all := bytes.Clone(initBody)
	var last []byte
	for _, seg := range pl.Segments {
		status, body, _ := get(t, resolve(mURL, seg.URI))
		if status != http.StatusOK {
			t.Fatalf("%s: %d", seg.URI, status)
		}
		all, last = append(all, body...), body
	}
	dir := t.TempDir()
	one, whole := filepath.Join(dir, "seg.mp4"), filepath.Join(dir, "all.mp4")
	if err := os.WriteFile(one, append(bytes.Clone(initBody), last...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(whole, all, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), ffprobe, "-v", "error", "-show_streams", one).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"codec_name=h264", "codec_name=aac", "width=160", "height=120", "sample_rate=48000"} {
		if !strings.Contains(s, want) {
			t.Errorf("ffprobe output lacks %q:\n%s", want, s)
		}
	}
	if i := strings.Index(s, "[STREAM]"); i != 0 {
		t.Errorf("ffprobe reported errors:\n%s", s)
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return
	}
	out, err = exec.CommandContext(t.Context(), ffmpeg, "-v", "error", "-i", whole, "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding %d segments: %v\n%s", len(pl.Segments), err, out)
	}
}

// BenchmarkPlaylistRender measures what a playlist request costs beyond
// HTTP: splicing the token into the media playlist rendered once per part.
func BenchmarkPlaylistRender(b *testing.B) {
	const pd = 500 * time.Millisecond
	var segs []*segment
	id := uint64(0)
	for msn := range uint64(7) {
		s := &segment{msn: msn, dur: 2 * time.Second, ntp: time.Now()}
		for i := range 4 {
			s.parts = append(s.parts, &part{id: id, dur: pd, independent: i == 0})
			id++
		}
		segs = append(segs, s)
	}
	in := mediaPlaylistInput{prefix: "ab12cd", target: 2, partTarget: pd, segs: segs,
		curParts: []*part{{id: id, dur: pd, independent: true}}, nextPart: id + 1}
	query := "token=" + strings.Repeat("x", 120) // a signed token
	b.Run("render once per change", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			renderMedia(in, nil)
		}
	})
	tpl := renderMedia(in, nil)
	b.Run("splice per request", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			tpl.render(query)
		}
		b.ReportMetric(float64(len(tpl.render(query))), "bytes")
	})
}

func TestAudioOnly(t *testing.T) {
	t.Parallel()
	aac := loadAAC(t)
	stream := media.NewStream([]*media.Track{{Codec: media.CodecAAC, ClockRate: aac.rate, Config: aac.config, Channels: 1}})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		const perTick = 4 // AUs every 4×1024/48000 s
		tick := time.NewTicker(perTick * 1024 * time.Second / time.Duration(aac.rate))
		defer tick.Stop()
		for i := 0; ; i += perTick {
			for j := range perTick {
				stream.Write(&media.Unit{PTS: 5000 + int64(i+j)*1024, Payload: [][]byte{aac.aus[(i+j)%len(aac.aus)]}})
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done; stream.Close(nil) })
	hub := &fakeHub{acquire: func(context.Context, int64) (*media.Stream, func(), error) { return stream, func() {}, nil }}
	_, ts := newTestServer(t, Config{Hub: hub})
	status, body, _ := get(t, hlsURL(ts.URL, 1, "index.m3u8"))
	if status != http.StatusOK || !strings.Contains(string(body), `CODECS="mp4a.40.2"`) || strings.Contains(string(body), "RESOLUTION") {
		t.Fatalf("index.m3u8: %d\n%s", status, body)
	}
	mURL, pl := mediaPlaylist(t, ts.URL, 1)
	if len(pl.Segments) == 0 || pl.Segments[0].Parts == nil && len(pl.Parts) == 0 {
		t.Fatalf("playlist without segments or parts: %+v", pl)
	}
	_, initBody, _ := get(t, resolve(mURL, pl.Map.URI))
	_, seg, _ := get(t, resolve(mURL, pl.Segments[0].URI))
	var parts fmp4.Parts
	if err := parts.Unmarshal(seg); err != nil || len(parts) == 0 {
		t.Fatalf("segment: %v", err)
	}
	n := 0
	for _, p := range parts {
		n += len(p.Tracks[0].Samples)
	}
	if d := time.Duration(n) * 1024 * time.Second / time.Duration(aac.rate); d < time.Second || d > 1100*time.Millisecond {
		t.Errorf("segment of %d AUs (%v), want about 1 s", n, d)
	}
	if ffmpeg, err := exec.LookPath("ffmpeg"); err == nil {
		file := filepath.Join(t.TempDir(), "a.mp4")
		if err := os.WriteFile(file, append(initBody, seg...), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), ffmpeg, "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("ffmpeg: %v\n%s", err, out)
		}
	}
}

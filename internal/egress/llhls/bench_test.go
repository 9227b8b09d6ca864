package llhls

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/media"
)

// BenchmarkMuxer measures one channel served to one LL-HLS reader, per
// video frame: a 2 Mbit/s-like H.264 stream (the test clip padded with
// filler NAL units to 2 Mbit/s, 15 fps, 2 s GOP) and, in the "+aac" cases,
// 48 kHz AAC, written to a media.Stream; the server under test muxes it;
// one player fetches every part as hls.js does (a blocking playlist reload
// for the next part, then the part), over HTTP on 127.0.0.1. The writer
// stays at most a few parts ahead of the player, so that nothing is
// dropped and time does not matter. cpu-ns/frame is the CPU time of the
// whole process (server, writer and player) per frame, and ns/op the wall
// time; allocs/op and B/op are per frame.
func BenchmarkMuxer(b *testing.B) {
	v := loadClip(b, "clip.h264", media.CodecH264)
	aac := loadAAC(b)
	frames := padClip(v, 2_000_000, 15)
	for _, srv := range []struct {
		name string
		new  func(b *testing.B, hub *fakeHub) http.Handler
	}{
		{"llhls", func(b *testing.B, hub *fakeHub) http.Handler {
			s, err := NewServer(Config{Hub: hub, Authorize: authorizeToken, PartMinDuration: 200 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Close)
			return s
		}},
	} {
		for _, withAudio := range []bool{false, true} {
			name := srv.name
			if withAudio {
				name += "+aac"
			}
			b.Run(name, func(b *testing.B) {
				benchServer(b, srv.new, frames, aac, withAudio)
			})
		}
	}
}

func benchServer(b *testing.B, newServer func(*testing.B, *fakeHub) http.Handler,
	frames []frame, aac *aacClip, withAudio bool,
) {
	tracks := []*media.Track{{Codec: media.CodecH264, ClockRate: 90000}}
	if withAudio {
		tracks = append(tracks, &media.Track{Codec: media.CodecAAC, ClockRate: aac.rate, Config: aac.config, Channels: 1})
	}
	stream := media.NewStream(tracks)
	defer stream.Close(nil)
	hub := &fakeHub{acquire: func(context.Context, int64) (*media.Stream, func(), error) {
		return stream, func() {}, nil
	}}
	mux := http.NewServeMux()
	mux.Handle("/live/{id}/hls/", newServer(b, hub))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	const fps = 15
	var got atomic.Int64 // media time the player has fetched, in ms
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	playerDone := make(chan error, 1)
	go func() { playerDone <- player(ctx, hlsURL(ts.URL, 1, "index.m3u8"), &got, ready) }()

	start := time.Now()
	audioNext := 0
	write := func(i int) {
		f := frames[i%len(frames)]
		pts := int64(i) * 90000 / fps
		ntp := start.Add(time.Duration(pts) * time.Second / 90000)
		stream.Write(&media.Unit{Track: 0, PTS: pts, NTP: ntp, Key: f.key, Payload: f.nalus})
		for withAudio && int64(audioNext)*1024*90000 <= pts*int64(aac.rate) {
			stream.Write(&media.Unit{Track: 1, PTS: int64(audioNext) * 1024,
				NTP: ntp, Payload: [][]byte{aac.aus[audioNext%len(aac.aus)]}})
			audioNext++
		}
	}
	// Until the first playlist, write the first GOPs freely (the reader
	// queue holds 256 units), paced loosely.
	i := 0
	for ; ; i++ {
		select {
		case <-ready:
		case err := <-playerDone:
			b.Fatalf("player: %v", err)
		default:
			write(i)
			time.Sleep(2 * time.Millisecond)
			if i > 400 {
				b.Fatal("no playlist after 400 frames")
			}
			continue
		}
		break
	}
	i0 := i
	// The writer may be that far ahead of the player: enough for any
	// server to finish a part, little enough for the reader queue.
	const aheadMS = 1500
	behind := func(i int) int { return (i-i0)*1000/fps - aheadMS }
	for range 2 * fps { // warm up
		i++
		write(i)
		waitPlayer(b, &got, behind(i), playerDone)
	}

	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		i++
		write(i)
		waitPlayer(b, &got, behind(i), playerDone)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
	b.ReportMetric(float64(ms1.HeapInuse)/(1<<20), "heap-MB")
	cancel()
	<-playerDone
	stream.Close(nil) // ends the requests that wait inside gohlslib whatever their context
}

// waitPlayer waits until the player has fetched n ms of media.
func waitPlayer(b *testing.B, got *atomic.Int64, n int, done chan error) {
	for got.Load() < int64(n) {
		select {
		case err := <-done:
			b.Fatalf("player: %v", err)
		default:
		}
		runtime.Gosched()
		time.Sleep(50 * time.Microsecond)
	}
}

// player plays the channel of index, a multivariant playlist URL, as hls.js does: the multivariant playlist, the
// media playlist and init file, then, for every part, a blocking reload of
// the media playlist for that part and a request for the part. It reads
// playlists with a minimal line scanner and discards media, so that its own
// cost stays small next to the server's.
func player(ctx context.Context, index string, got *atomic.Int64, ready chan struct{}) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var buf bytes.Buffer
	fetch := func(u string, keep bool) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		buf.Reset()
		if keep || res.StatusCode != http.StatusOK {
			_, err = buf.ReadFrom(res.Body)
		} else {
			_, err = io.Copy(io.Discard, res.Body)
		}
		if err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %d %s", u, res.StatusCode, buf.Bytes())
		}
		return buf.Bytes(), nil
	}
	idx, _ := url.Parse(index)
	body, err := fetch(idx.String(), true)
	if err != nil {
		return err
	}
	close(ready)
	var variant string
	for line := range strings.SplitSeq(string(body), "\n") {
		if line != "" && line[0] != '#' {
			variant = line
			break
		}
	}
	ref, _ := url.Parse(variant)
	mURL := idx.ResolveReference(ref)
	body, err = fetch(mURL.String(), true)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	first := true
	for ctx.Err() == nil {
		pl := scanMedia(body)
		if first {
			r, _ := url.Parse(pl.mapURI)
			if _, err := fetch(mURL.ResolveReference(r).String(), false); err != nil {
				return err
			}
		}
		for _, part := range pl.parts {
			if seen[part.uri] {
				continue
			}
			seen[part.uri] = true
			if first {
				continue // start at the live edge
			}
			r, _ := url.Parse(part.uri)
			if _, err := fetch(mURL.ResolveReference(r).String(), false); err != nil {
				return err
			}
			got.Add(part.ms)
		}
		if len(seen) > 200 {
			clear(seen)
			for _, part := range pl.parts {
				seen[part.uri] = true
			}
		}
		first = false
		u := *mURL
		u.RawQuery = fmt.Sprintf("token=%s&_HLS_msn=%d&_HLS_part=%d", testToken, pl.msn+pl.segs, pl.curParts)
		if body, err = fetch(u.String(), true); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// scannedMedia is what the player needs from a media playlist.
type scannedMedia struct {
	mapURI   string
	msn      int // EXT-X-MEDIA-SEQUENCE
	segs     int // segments
	curParts int // parts after the last segment
	parts    []scannedPart
}

type scannedPart struct {
	uri string
	ms  int64
}

func scanMedia(body []byte) scannedMedia {
	var pl scannedMedia
	for line := range strings.SplitSeq(string(body), "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			pl.msn, _ = strconv.Atoi(line[len("#EXT-X-MEDIA-SEQUENCE:"):])
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			pl.mapURI = attr(line, "URI")
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			d, _ := strconv.ParseFloat(attr(line, "DURATION"), 64)
			pl.parts = append(pl.parts, scannedPart{uri: attr(line, "URI"), ms: int64(d * 1000)})
			pl.curParts++
		case line != "" && line[0] != '#':
			pl.segs++
			pl.curParts = 0
		}
	}
	return pl
}

// attr returns the value of attribute name of a tag line, unquoted.
func attr(line, name string) string {
	i := strings.Index(line, name+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(name)+1:]
	if strings.HasPrefix(v, `"`) {
		v, _, _ = strings.Cut(v[1:], `"`)
		return v
	}
	v, _, _ = strings.Cut(v, ",")
	return v
}

// padClip returns the frames of c padded with H.264 filler data NAL units
// (type 12) to about bitrate bit/s at fps, keyframes four times the size of
// other frames.
func padClip(c *clip, bitrate, fps int) []frame {
	gop := 0
	for i, f := range c.frames {
		if i > 0 && f.key {
			gop = i
			break
		}
	}
	if gop == 0 {
		gop = len(c.frames)
	}
	perFrame := bitrate / 8 / fps
	p := perFrame * gop / (gop + 3) // keyframes weigh 4
	out := make([]frame, len(c.frames))
	for i, f := range c.frames {
		want := p
		if f.key {
			want = 4 * p
		}
		size := 0
		for _, n := range f.nalus {
			size += len(n)
		}
		nalus := append([][]byte(nil), f.nalus...)
		if pad := want - size; pad > 2 {
			filler := make([]byte, pad)
			filler[0] = 12
			for j := 1; j < pad-1; j++ {
				filler[j] = 0xff
			}
			filler[pad-1] = 0x80
			nalus = append(nalus, filler)
		}
		out[i] = frame{nalus: nalus, key: f.key}
	}
	return out
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

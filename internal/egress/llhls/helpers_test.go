package llhls

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/xueliang/xueliang/internal/media"
)

// frame is one access unit of a test clip.
type frame struct {
	nalus [][]byte
	key   bool
}

// clip is a video clip of testdata (see testdata/generate.sh), 30 fps.
type clip struct {
	codec         media.Codec
	frames        []frame
	vps, sps, pps []byte
}

// loadClip reads an Annex-B file and splits it into access units.
func loadClip(t testing.TB, name string, codec media.Codec) *clip {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB // the Annex-B syntax is the same for H.265
	if err := nalus.Unmarshal(buf); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := &clip{codec: codec}
	var cur frame
	hasVCL := false
	flush := func() {
		if hasVCL {
			c.frames = append(c.frames, cur)
		}
		cur, hasVCL = frame{}, false
	}
	for _, n := range nalus {
		var vcl, first, key bool
		if codec == media.CodecH264 {
			typ := h264.NALUType(n[0] & 0x1f)
			vcl = typ >= 1 && typ <= 5
			first = vcl && n[1]&0x80 != 0 // first_mb_in_slice == 0
			key = typ == h264.NALUTypeIDR
			switch typ {
			case h264.NALUTypeSPS:
				c.sps = n
			case h264.NALUTypePPS:
				c.pps = n
			}
		} else {
			typ := h265.NALUType((n[0] >> 1) & 0x3f)
			vcl = typ < 32
			first = vcl && n[2]&0x80 != 0 // first_slice_segment_in_pic_flag
			key = typ >= 16 && typ <= 21
			switch typ {
			case h265.NALUType_VPS_NUT:
				c.vps = n
			case h265.NALUType_SPS_NUT:
				c.sps = n
			case h265.NALUType_PPS_NUT:
				c.pps = n
			}
		}
		if hasVCL && (!vcl || first) {
			flush()
		}
		cur.nalus = append(cur.nalus, n)
		cur.key = cur.key || key
		hasVCL = hasVCL || vcl
	}
	flush()
	if len(c.frames) == 0 || !c.frames[0].key {
		t.Fatalf("%s: no frames or not starting with a keyframe", name)
	}
	return c
}

// track returns the media track of the clip; inBand leaves out the
// parameter sets, as a camera that sends them in-band only.
func (c *clip) track(inBand bool) *media.Track {
	tr := &media.Track{Codec: c.codec, ClockRate: 90000}
	if !inBand {
		tr.VPS, tr.SPS, tr.PPS = c.vps, c.sps, c.pps
	}
	return tr
}

// aacClip is the audio of testdata/tone.aac.
type aacClip struct {
	config []byte
	rate   int
	aus    [][]byte
}

func loadAAC(t testing.TB) *aacClip {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join("testdata", "tone.aac"))
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(buf); err != nil {
		t.Fatal(err)
	}
	conf := mpeg4audio.AudioSpecificConfig{
		Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelCount: pkts[0].ChannelCount,
	}
	cb, err := conf.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	a := &aacClip{config: cb, rate: pkts[0].SampleRate}
	for _, p := range pkts {
		a.aus = append(a.aus, p.AU)
	}
	return a
}

// source plays clips into a media.Stream in real time, in a loop, until
// closed: video at 30 fps on track 0, AAC on the track audioTrack if any.
type source struct {
	stream *media.Stream
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	frames atomic.Int64 // video frames written
}

type sourceOpts struct {
	video      *clip
	audio      *aacClip
	audioTrack int // index of the AAC track in tracks
	tracks     []*media.Track
	startPTS   int64 // PTS of the first video frame, 90 kHz
}

func startSource(t testing.TB, o sourceOpts) *source {
	t.Helper()
	s := &source{stream: media.NewStream(o.tracks), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(o)
	t.Cleanup(func() { s.close(nil) })
	return s
}

func (s *source) run(o sourceOpts) {
	defer close(s.done)
	const frameTicks = 3000 // 90 kHz / 30 fps
	start := time.Now()
	ticker := time.NewTicker(time.Second / 30)
	defer ticker.Stop()
	audioNext := 0 // next AU index, counted across loops
	for i := 0; ; i++ {
		f := o.video.frames[i%len(o.video.frames)]
		pts := o.startPTS + int64(i)*frameTicks
		s.stream.Write(&media.Unit{
			Track: 0, PTS: pts, Key: f.key, Payload: f.nalus,
			NTP: start.Add(time.Duration(i) * time.Second / 30),
		})
		s.frames.Add(1)
		if o.audio != nil {
			// audio up to the time of this frame
			videoSec := float64(i) / 30
			for float64(audioNext*1024)/float64(o.audio.rate) <= videoSec {
				au := o.audio.aus[audioNext%len(o.audio.aus)]
				s.stream.Write(&media.Unit{
					Track:   o.audioTrack,
					PTS:     o.startPTS*int64(o.audio.rate)/90000 + int64(audioNext)*1024,
					Payload: [][]byte{au},
					NTP:     start.Add(time.Duration(audioNext) * 1024 * time.Second / time.Duration(o.audio.rate)),
				})
				audioNext++
			}
		}
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
	}
}

// close stops the writer and closes the stream with cause.
func (s *source) close(cause error) {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.stream.Close(cause)
	})
}

// fakeHub is a Hub with function fields.
type fakeHub struct {
	acquire  func(ctx context.Context, id int64) (*media.Stream, func(), error)
	calls    atomic.Int32
	releases atomic.Int32
}

func (h *fakeHub) Acquire(ctx context.Context, id int64) (*media.Stream, func(), error) {
	h.calls.Add(1)
	s, release, err := h.acquire(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return s, func() {
		once.Do(func() { h.releases.Add(1); release() })
	}, nil
}

// hubOf returns a hub that serves the stream of src for every channel.
func hubOf(src func() *source) *fakeHub {
	return &fakeHub{acquire: func(context.Context, int64) (*media.Stream, func(), error) {
		return src().stream, func() {}, nil
	}}
}

const testToken = "s3cret"

// authorizeToken allows requests whose token query parameter is testToken.
func authorizeToken(r *http.Request, _ int64) error {
	switch r.URL.Query().Get("token") {
	case testToken:
		return nil
	case "":
		return ErrUnauthorized
	default:
		return ErrForbidden
	}
}

// newTestServer starts an httptest server with s mounted as the app does.
func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Authorize == nil {
		cfg.Authorize = authorizeToken
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/{id}/hls/", s)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// get fetches url and returns the status, body and headers.
func get(t testing.TB, url string) (int, []byte, http.Header) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body, res.Header
}

// decodeError parses a JSON error body.
func decodeError(t testing.TB, body []byte) errorDetail {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error
}

// eventually retries cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// muxerCount returns the number of muxers serving or stopping.
func muxerCount(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.muxers) + len(s.stopping)
}

package rtsp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/pion/rtp"
)

// framePace is how long the test server waits between two video frames. The
// clips are 10 fps; sending them faster keeps the tests short.
const framePace = 25 * time.Millisecond

// clipUnit is one access unit of a test clip.
type clipUnit struct {
	video bool
	pts   int64 // 90 kHz
	au    [][]byte
}

// clip is a test clip read from testdata.
type clip struct {
	video    []clipUnit // in decoding order
	audio    []clipUnit
	aac      *mpeg4audio.AudioSpecificConfig // nil without AAC
	h265     bool
	duration int64 // 90 kHz, from the first to one frame past the last video unit
}

// params returns the parameter sets of the first keyframe of c: VPS (H.265
// only), SPS, PPS.
func (c *clip) params() (vps, sps, pps []byte) {
	for _, nalu := range c.video[0].au {
		if c.h265 {
			switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				vps = nalu
			case h265.NALUType_SPS_NUT:
				sps = nalu
			case h265.NALUType_PPS_NUT:
				pps = nalu
			}
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = nalu
		case h264.NALUTypePPS:
			pps = nalu
		}
	}
	return vps, sps, pps
}

var clips sync.Map // file name → *clip

// loadClip reads an MPEG-TS file of testdata (see testdata/README.md).
func loadClip(t testing.TB, name string) *clip {
	t.Helper()
	if c, ok := clips.Load(name); ok {
		return c.(*clip)
	}
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := &clip{}
	for _, tr := range r.Tracks() {
		switch codec := tr.Codec.(type) {
		case *tscodecs.H264:
			r.OnDataH264(tr, func(pts, _ int64, au [][]byte) error {
				c.video = append(c.video, clipUnit{video: true, pts: pts, au: au})
				return nil
			})
		case *tscodecs.H265:
			c.h265 = true
			r.OnDataH265(tr, func(pts, _ int64, au [][]byte) error {
				c.video = append(c.video, clipUnit{video: true, pts: pts, au: au})
				return nil
			})
		case *tscodecs.MPEG4Audio:
			conf := codec.Config
			c.aac = &conf
			r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
				c.audio = append(c.audio, clipUnit{pts: pts, au: aus})
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", name, err)
		}
	}
	if len(c.video) < 2 {
		t.Fatalf("%s: only %d video units", name, len(c.video))
	}
	first, last := c.video[0].pts, c.video[len(c.video)-1].pts
	c.duration = last - first + (last-first)/int64(len(c.video)-1)
	clips.Store(name, c)
	return c
}

// serverOptions configures a testServer.
type serverOptions struct {
	user, pass string              // credentials required to read, if user is set
	methods    []auth.VerifyMethod // accepted authentication methods; gortsplib's default if nil
	noUDP      bool                // offer TCP only
}

// testServer is an RTSP server on 127.0.0.1 serving streams by path.
type testServer struct {
	t    *testing.T
	opts serverOptions
	srv  *gortsplib.Server
	addr string // host:port of the RTSP listener

	paused atomic.Bool // feeders stop writing packets

	mu       sync.Mutex
	streams  map[string]*gortsplib.ServerStream
	sessions map[*gortsplib.ServerSession]struct{}

	wg   sync.WaitGroup
	stop chan struct{}
}

// newTestServer starts a server and stops it at the end of the test.
func newTestServer(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{
		t:        t,
		opts:     opts,
		streams:  make(map[string]*gortsplib.ServerStream),
		sessions: make(map[*gortsplib.ServerSession]struct{}),
		stop:     make(chan struct{}),
	}
	var lastErr error
	for range 20 {
		var ln net.Listener
		srv := &gortsplib.Server{
			Handler:     ts,
			RTSPAddress: "127.0.0.1:0",
			AuthMethods: opts.methods,
			Listen: func(network, address string) (net.Listener, error) {
				l, err := net.Listen(network, address)
				ln = l
				return l, err
			},
		}
		if !opts.noUDP {
			// The server needs an even RTP port and the next one for RTCP.
			p := 20000 + 2*rand.IntN(20000)
			srv.UDPRTPAddress = fmt.Sprintf("127.0.0.1:%d", p)
			srv.UDPRTCPAddress = fmt.Sprintf("127.0.0.1:%d", p+1)
		}
		if lastErr = srv.Start(); lastErr == nil {
			ts.srv = srv
			ts.addr = ln.Addr().String()
			break
		}
	}
	if ts.srv == nil {
		t.Fatalf("start server: %v", lastErr)
	}
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	close(ts.stop)
	ts.wg.Wait()
	ts.mu.Lock()
	for _, st := range ts.streams {
		st.Close()
	}
	ts.mu.Unlock()
	ts.srv.Close()
}

// url returns the URL of path, with credentials if user is not empty.
func (ts *testServer) url(path, user, pass string) string {
	if user == "" {
		return "rtsp://" + ts.addr + path
	}
	return "rtsp://" + user + ":" + pass + "@" + ts.addr + path
}

// addStream serves medias at path and returns the stream.
func (ts *testServer) addStream(path string, medias ...*description.Media) *gortsplib.ServerStream {
	ts.t.Helper()
	st := &gortsplib.ServerStream{Server: ts.srv, Desc: &description.Session{Medias: medias}}
	if err := st.Initialize(); err != nil {
		ts.t.Fatal(err)
	}
	ts.mu.Lock()
	ts.streams[path] = st
	ts.mu.Unlock()
	return st
}

// closeSessions ends every session, as a camera that hangs up.
func (ts *testServer) closeSessions() {
	ts.mu.Lock()
	var ss []*gortsplib.ServerSession
	for s := range ts.sessions {
		ss = append(ss, s)
	}
	ts.mu.Unlock()
	for _, s := range ss {
		s.Close()
	}
}

// OnSessionOpen implements gortsplib.ServerHandlerOnSessionOpen.
func (ts *testServer) OnSessionOpen(ctx *gortsplib.ServerHandlerOnSessionOpenCtx) {
	ts.mu.Lock()
	ts.sessions[ctx.Session] = struct{}{}
	ts.mu.Unlock()
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (ts *testServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	ts.mu.Lock()
	delete(ts.sessions, ctx.Session)
	ts.mu.Unlock()
}

// lookup checks the credentials of req and finds the stream of path.
func (ts *testServer) lookup(conn *gortsplib.ServerConn, req *base.Request, path string) (*base.Response, *gortsplib.ServerStream, error) {
	if ts.opts.user != "" && !conn.VerifyCredentials(req, ts.opts.user, ts.opts.pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	ts.mu.Lock()
	st := ts.streams[path]
	ts.mu.Unlock()
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (ts *testServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return ts.lookup(ctx.Conn, ctx.Request, ctx.Path)
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (ts *testServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return ts.lookup(ctx.Conn, ctx.Request, ctx.Path)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (ts *testServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// videoMedia returns a video media for c, with the parameter sets in the SDP
// if inSDP, in-band only otherwise.
func videoMedia(c *clip, inSDP bool) *description.Media {
	var f format.Format
	vps, sps, pps := c.params()
	if !inSDP {
		vps, sps, pps = nil, nil, nil
	}
	if c.h265 {
		f = &format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}
	} else {
		f = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}
	}
	return &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
}

// aacMedia returns an AAC media for c.
func aacMedia(c *clip) *description.Media {
	return &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.MPEG4Audio{
		PayloadTyp: 97, Config: c.aac, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
	}}}
}

// g711Media returns a G.711 A-law media, 8 kHz mono.
func g711Media() *description.Media {
	return &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{
		PayloadTyp: 8, MULaw: false, SampleRate: 8000, ChannelCount: 1,
	}}}
}

// feed loops c over the medias of st, in real time divided by the speed-up
// of framePace, until the server closes. RTP timestamps keep increasing
// across loops. A G.711 media gets 20 ms of silence per video frame.
func (ts *testServer) feed(st *gortsplib.ServerStream, c *clip) {
	ts.t.Helper()
	type sender struct {
		medi   *description.Media
		encode func(au [][]byte) ([]*rtp.Packet, error)
		rate   int64
		base   uint32
	}
	var video, audio *sender
	for _, medi := range st.Desc.Medias {
		s := &sender{medi: medi, rate: int64(medi.Formats[0].ClockRate()), base: rand.Uint32()}
		switch f := medi.Formats[0].(type) {
		case *format.H264:
			enc, err := f.CreateEncoder()
			if err != nil {
				ts.t.Fatal(err)
			}
			s.encode, video = enc.Encode, s
		case *format.H265:
			enc, err := f.CreateEncoder()
			if err != nil {
				ts.t.Fatal(err)
			}
			s.encode, video = enc.Encode, s
		case *format.MPEG4Audio:
			enc, err := f.CreateEncoder()
			if err != nil {
				ts.t.Fatal(err)
			}
			s.encode, audio = enc.Encode, s
		case *format.G711:
			enc, err := f.CreateEncoder()
			if err != nil {
				ts.t.Fatal(err)
			}
			s.encode = func(au [][]byte) ([]*rtp.Packet, error) { return enc.Encode(au[0]) }
			audio = s
		}
	}

	write := func(s *sender, pts int64, au [][]byte) {
		pkts, err := s.encode(au)
		if err != nil {
			ts.t.Errorf("encode: %v", err)
			return
		}
		for _, p := range pkts {
			p.Timestamp = s.base + uint32(pts*s.rate/90000)
			if err := st.WritePacketRTP(s.medi, p); err != nil {
				return // the stream is closed
			}
		}
	}

	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		tick := time.NewTicker(framePace)
		defer tick.Stop()
		silence := bytes.Repeat([]byte{0xd5}, 160) // 20 ms of A-law silence
		var offset int64                           // 90 kHz, added at each loop
		a := 0
		for {
			for _, v := range c.video {
				select {
				case <-ts.stop:
					return
				case <-tick.C:
				}
				if ts.paused.Load() {
					continue
				}
				pts := v.pts - c.video[0].pts + offset
				if video != nil {
					write(video, pts, v.au)
				}
				if audio == nil {
					continue
				}
				if _, ok := audio.medi.Formats[0].(*format.G711); ok {
					write(audio, pts, [][]byte{silence})
					continue
				}
				// AAC units up to the video frame.
				for ; a < len(c.audio) && c.audio[a].pts <= v.pts; a++ {
					write(audio, c.audio[a].pts-c.video[0].pts+offset, c.audio[a].au)
				}
			}
			offset += c.duration
			a = 0
		}
	}()
}

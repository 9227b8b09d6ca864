package whep

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// StatusError is the error Dial returns when the server refuses the offer.
type StatusError struct {
	StatusCode int    // HTTP status
	Code       string // the code of the JSON error body, if any
	Message    string // its message, or the body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("whep: server answered %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// DialOption configures Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	httpClient *http.Client
	token      string
	h265       bool
	buffer     int
}

// WithToken sends token as "Authorization: Bearer <token>" (RFC 9725 §4.7.1).
func WithToken(token string) DialOption { return func(c *dialConfig) { c.token = token } }

// WithHTTPClient makes Dial and Close use hc instead of http.DefaultClient.
func WithHTTPClient(hc *http.Client) DialOption { return func(c *dialConfig) { c.httpClient = hc } }

// WithH265 offers H.265 before H.264, as a browser with an H.265 decoder does.
func WithH265() DialOption { return func(c *dialConfig) { c.h265 = true } }

// WithPacketBuffer sets how many packets VideoPackets and AudioPackets hold
// before new ones are dropped (default 4096).
func WithPacketBuffer(n int) DialOption { return func(c *dialConfig) { c.buffer = n } }

// ClientSession is a minimal WHEP player for tests and benchmarks: it
// receives the media of one session and hands over the RTP packets without
// decoding them. Its methods are safe for concurrent use.
type ClientSession struct {
	pc       *webrtc.PeerConnection
	hc       *http.Client
	token    string
	location string // absolute URL of the session resource
	answer   string
	started  time.Time

	video, audio chan *rtp.Packet
	firstVideo   atomic.Int64 // unix nanoseconds of the first video packet, 0 before
	dropped      atomic.Uint64
	videoCodec   atomic.Pointer[webrtc.RTPCodecParameters]
	done         chan struct{} // closed when the peer connection fails or closes
	doneOnce     sync.Once

	mu      sync.Mutex // guards closed and readers.Add
	closed  bool
	readers sync.WaitGroup
}

// Dial opens a WHEP session at endpoint (such as
// "http://host/live/7/whep?token=..."): it POSTs a non-trickle offer that
// receives one video (H.264, and H.265 with WithH265) and one audio (PCMA,
// PCMU) track, and applies the answer. A refusal is a *StatusError. The
// returned session receives until Close, which also DELETEs the resource.
func Dial(ctx context.Context, endpoint string, opts ...DialOption) (*ClientSession, error) {
	conf := dialConfig{httpClient: http.DefaultClient, buffer: 4096}
	for _, o := range opts {
		o(&conf)
	}
	pc, err := newClientPeerConnection(conf.h265)
	if err != nil {
		return nil, err
	}
	c := &ClientSession{
		pc:    pc,
		hc:    conf.httpClient,
		token: conf.token,
		video: make(chan *rtp.Packet, conf.buffer),
		audio: make(chan *rtp.Packet, conf.buffer),
		done:  make(chan struct{}),
	}
	if err := c.connect(ctx, endpoint); err != nil {
		_ = pc.Close()
		c.shutdown()
		return nil, err
	}
	return c, nil
}

func newClientPeerConnection(h265 bool) (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	var video []webrtc.RTPCodecParameters
	if h265 {
		video = append(video, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000,
				SDPFmtpLine: "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"},
			PayloadType: 49,
		})
	}
	// The H.264 payload types a browser offers, in its order.
	for i, plid := range []string{"42001f", "42e01f", "4d001f", "640032"} {
		video = append(video, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		})
	}
	for _, c := range video {
		c.RTCPFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("whep: client codecs: %w", err)
		}
	}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("whep: client codecs: %w", err)
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, fmt.Errorf("whep: client interceptors: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("whep: client interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.LoggerFactory = newPionLoggerFactory(discardLogger)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("whep: client peer connection: %w", err)
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, fmt.Errorf("whep: client transceiver: %w", err)
		}
	}
	return pc, nil
}

func (c *ClientSession) connect(ctx context.Context, endpoint string) error {
	c.pc.OnTrack(c.onTrack)
	c.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			c.doneOnce.Do(func() { close(c.done) })
		}
	})
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("whep: create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("whep: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("whep: ice gathering: %w", ctx.Err())
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader([]byte(c.pc.LocalDescription().SDP)))
	if err != nil {
		return fmt.Errorf("whep: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	c.started = time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("whep: post offer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("whep: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return statusError(resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("whep: answer without Location: %w", err)
	}
	c.location = loc.String()
	c.answer = string(body)
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: c.answer}); err != nil {
		_ = c.delete(context.WithoutCancel(ctx))
		return fmt.Errorf("whep: set answer: %w", err)
	}
	return nil
}

func statusError(status int, body []byte) error {
	e := &StatusError{StatusCode: status, Message: string(body)}
	var b errorBody
	if json.Unmarshal(body, &b) == nil && b.Error.Code != "" {
		e.Code, e.Message = b.Error.Code, b.Error.Message
	}
	return e
}

func (c *ClientSession) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.readers.Add(1)
	c.mu.Unlock()
	defer c.readers.Done()

	out := c.audio
	if track.Kind() == webrtc.RTPCodecTypeVideo {
		out = c.video
		codec := track.Codec()
		c.videoCodec.Store(&codec)
	}
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		if out == c.video && c.firstVideo.Load() == 0 {
			c.firstVideo.CompareAndSwap(0, time.Now().UnixNano())
		}
		select {
		case out <- pkt:
		default:
			c.dropped.Add(1)
		}
	}
}

// VideoPackets returns the received video packets. The channel is closed by
// Close.
func (c *ClientSession) VideoPackets() <-chan *rtp.Packet { return c.video }

// AudioPackets returns the received audio packets. The channel is closed by
// Close.
func (c *ClientSession) AudioPackets() <-chan *rtp.Packet { return c.audio }

// VideoCodec returns the codec of the video track once its first packet
// arrived.
func (c *ClientSession) VideoCodec() (webrtc.RTPCodecParameters, bool) {
	p := c.videoCodec.Load()
	if p == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return *p, true
}

// Started returns when the offer was POSTed.
func (c *ClientSession) Started() time.Time { return c.started }

// FirstVideoPacket returns when the first video packet arrived.
func (c *ClientSession) FirstVideoPacket() (time.Time, bool) {
	ns := c.firstVideo.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// TimeToFirstVideoPacket returns the time from POST to the first video packet.
func (c *ClientSession) TimeToFirstVideoPacket() (time.Duration, bool) {
	t, ok := c.FirstVideoPacket()
	if !ok {
		return 0, false
	}
	return t.Sub(c.started), true
}

// Location returns the URL of the session resource.
func (c *ClientSession) Location() string { return c.location }

// Answer returns the SDP answer of the server.
func (c *ClientSession) Answer() string { return c.answer }

// Dropped returns how many packets were dropped because a channel was full.
func (c *ClientSession) Dropped() uint64 { return c.dropped.Load() }

// Done is closed when the peer connection fails or closes, for instance
// because the server ended the session.
func (c *ClientSession) Done() <-chan struct{} { return c.done }

// Close DELETEs the session resource, closes the peer connection and waits
// for the goroutines of the session. It returns the DELETE error, if any; a
// session the server already ended gives a *StatusError 404.
func (c *ClientSession) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.delete(ctx)
	if cerr := c.pc.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("whep: close peer connection: %w", cerr)
	}
	c.shutdown()
	return err
}

// shutdown waits for the track readers and closes the packet channels.
func (c *ClientSession) shutdown() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.readers.Wait()
	close(c.video)
	close(c.audio)
	c.doneOnce.Do(func() { close(c.done) })
}

func (c *ClientSession) delete(ctx context.Context) error {
	if c.location == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.location, nil)
	if err != nil {
		return fmt.Errorf("whep: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("whep: delete session: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return statusError(resp.StatusCode, body)
	}
	return nil
}

package whep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/xueliang/xueliang/internal/media"
)

// Why sessions end. The reason label of the sessions_closed_total metric is
// given by closeReason.
var (
	errDeleted        = errors.New("whep: session deleted")
	errConnectTimeout = errors.New("whep: peer did not connect in time")
	errPeerFailed     = errors.New("whep: peer connection failed")
	errPeerClosed     = errors.New("whep: peer connection closed")
	errStreamEnded    = errors.New("whep: stream ended")
	errServerClosing  = errors.New("whep: server closing")
)

func closeReason(err error) string {
	switch {
	case errors.Is(err, errDeleted):
		return "deleted"
	case errors.Is(err, errConnectTimeout):
		return "connect_timeout"
	case errors.Is(err, errPeerFailed):
		return "peer_failed"
	case errors.Is(err, errPeerClosed):
		return "peer_closed"
	case errors.Is(err, errStreamEnded):
		return "stream_ended"
	case errors.Is(err, errServerClosing):
		return "server_closed"
	default:
		return "write_failed"
	}
}

// Backlog handling, see the package comment.
const (
	// maxBacklogBytes bounds the cached GOP sent in a burst at session start.
	maxBacklogBytes = 2 << 20
	// backlogStep is the timestamp step between cached frames: 1 ms at 90 kHz.
	backlogStep = 90
	// keyframeRequestInterval rate-limits Config.OnKeyframeRequest per session.
	keyframeRequestInterval = time.Second
)

// session is one WHEP playback session: a peer connection fed by a reader of
// a stream. Its control flow lives in run, on one goroutine; the pion
// callbacks only signal it through connected and cancel.
type session struct {
	srv       *Server
	secret    string // the last path segment of the resource URL; never logged
	logID     string // names the session in logs and stream statistics
	etag      string // names the ICE session (RFC 9725 §4.3)
	channelID int64
	log       *slog.Logger
	started   time.Time

	stream  *media.Stream
	release func() // the Hub lease; called once, by teardown or by a failed setup
	plan    *plan

	pc         *webrtc.PeerConnection
	videoTrack *webrtc.TrackLocalStaticRTP
	audioTrack *webrtc.TrackLocalStaticRTP

	ctx       context.Context // done when the session must end; the cause says why
	cancel    context.CancelCauseFunc
	connected chan struct{} // closed when the peer connection is connected
	connOnce  sync.Once
	done      chan struct{} // closed when teardown is complete
	rtcpWG    sync.WaitGroup

	// Set up by post and setup, then used by run only.
	video     videoPacketizer
	videoPW   packetWriter
	audioPW   packetWriter
	nalus     [][]byte
	vClock    clockMap
	aClock    clockMap
	sending   bool // a video keyframe was sent (or there is no video)
	backlog   int  // units left of the cached GOP
	lastDrops uint64
	sent      uint64

	lastKeyReq time.Time // guarded by keyReqMu
	keyReqMu   sync.Mutex
}

// clockMap maps the PTS of a track to RTP timestamps: a random start, then
// the PTS distance from an anchor unit.
type clockMap struct {
	set       bool
	anchorPTS int64
	anchorTS  uint32
}

// ts returns the RTP timestamp of pts; num/den converts PTS units to RTP
// clock units (equal when both clocks are the same).
func (c *clockMap) ts(pts int64, num, den int64) uint32 {
	if !c.set {
		c.set = true
		c.anchorPTS = pts
		c.anchorTS = rand.Uint32()
	}
	d := pts - c.anchorPTS
	if num != den {
		d = d * num / den
	}
	return c.anchorTS + uint32(d)
}

// reanchor makes pts map to ts from now on.
func (c *clockMap) reanchor(pts int64, ts uint32) {
	c.set, c.anchorPTS, c.anchorTS = true, pts, ts
}

// newAPI builds the pion API of one session: a MediaEngine with exactly the
// codecs negotiated, the shared settings, NACK retransmission and RTCP sender
// reports.
func (s *Server) newAPI(p *plan) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if p.video >= 0 {
		if err := me.RegisterCodec(p.videoCodec, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	if p.audio >= 0 {
		if err := me.RegisterCodec(p.audioCodec, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	responder, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(responder)
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(sr)
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(me),
		webrtc.WithSettingEngine(s.settings),
		webrtc.WithInterceptorRegistry(ir),
	), nil
}

// setup builds the peer connection of ss from the offer and returns the
// answer, once ICE gathering is complete or ctx is done. On error the caller
// closes ss.pc (if set).
func (ss *session) setup(ctx context.Context, offerSDP string) (string, error) {
	api, err := ss.srv.newAPI(ss.plan)
	if err != nil {
		return "", fmt.Errorf("whep: media engine: %w", err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("whep: new peer connection: %w", err)
	}
	ss.pc = pc
	pc.OnConnectionStateChange(ss.onConnectionState)

	streamID := fmt.Sprintf("channel-%d", ss.channelID)
	var senders []*webrtc.RTPSender
	if ss.plan.video >= 0 {
		ss.videoTrack, err = webrtc.NewTrackLocalStaticRTP(ss.plan.videoCodec.RTPCodecCapability, "video", streamID)
		if err != nil {
			return "", fmt.Errorf("whep: video track: %w", err)
		}
		snd, err := pc.AddTrack(ss.videoTrack)
		if err != nil {
			return "", fmt.Errorf("whep: add video track: %w", err)
		}
		senders = append(senders, snd)
		ss.videoPW = packetWriter{w: ss.videoTrack, seq: uint16(rand.Uint32())}
	}
	if ss.plan.audio >= 0 {
		ss.audioTrack, err = webrtc.NewTrackLocalStaticRTP(ss.plan.audioCodec.RTPCodecCapability, "audio", streamID)
		if err != nil {
			return "", fmt.Errorf("whep: audio track: %w", err)
		}
		snd, err := pc.AddTrack(ss.audioTrack)
		if err != nil {
			return "", fmt.Errorf("whep: add audio track: %w", err)
		}
		senders = append(senders, snd)
		ss.audioPW = packetWriter{w: ss.audioTrack, seq: uint16(rand.Uint32())}
	}

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("%w: %w", errBadOffer, err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("whep: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("whep: ice gathering: %w", context.Cause(ctx))
	}

	// Reading RTCP runs the interceptors (NACK retransmissions) and tells
	// us about keyframe requests. The readers end when pc closes.
	for _, snd := range senders {
		ss.rtcpWG.Go(func() { ss.readRTCP(snd) })
	}
	return pc.LocalDescription().SDP, nil
}

func (ss *session) onConnectionState(st webrtc.PeerConnectionState) {
	ss.log.Debug("peer connection state", "state", st.String())
	switch st {
	case webrtc.PeerConnectionStateConnected:
		ss.connOnce.Do(func() { close(ss.connected) })
	case webrtc.PeerConnectionStateFailed:
		ss.cancel(errPeerFailed)
	case webrtc.PeerConnectionStateClosed:
		ss.cancel(errPeerClosed)
	}
}

func (ss *session) readRTCP(snd *webrtc.RTPSender) {
	for {
		pkts, _, err := snd.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication:
				ss.srv.metrics.keyframe.WithLabelValues("pli").Inc()
				ss.keyframeRequested()
			case *rtcp.FullIntraRequest:
				ss.srv.metrics.keyframe.WithLabelValues("fir").Inc()
				ss.keyframeRequested()
			}
		}
	}
}

func (ss *session) keyframeRequested() {
	hook := ss.srv.conf.OnKeyframeRequest
	if hook == nil {
		return
	}
	ss.keyReqMu.Lock()
	now := time.Now()
	due := now.Sub(ss.lastKeyReq) >= keyframeRequestInterval
	if due {
		ss.lastKeyReq = now
	}
	ss.keyReqMu.Unlock()
	if due {
		hook(ss.channelID)
	}
}

// run is the session goroutine: it waits for the connection, then moves
// units from the stream to the peer until something ends the session.
func (ss *session) run() {
	defer ss.srv.wg.Done()
	cause := ss.serve()
	ss.teardown(cause)
}

func (ss *session) serve() error {
	timer := time.NewTimer(ss.srv.conf.SessionTimeout)
	select {
	case <-ss.connected:
		timer.Stop()
	case <-timer.C:
		return errConnectTimeout
	case <-ss.ctx.Done():
		timer.Stop()
		return context.Cause(ss.ctx)
	}
	ss.log.Debug("connected", "after", time.Since(ss.started))

	// The reader is added only now: units written before the connection is
	// up would be dropped by pion, and now the cached GOP is the freshest.
	r := ss.stream.AddReader("whep/"+ss.logID, ss.srv.conf.QueueSize)
	defer func() {
		r.Close()
		ss.countDrops(r)
	}()
	ss.startBacklog(r)

	for {
		select {
		case u, ok := <-r.C():
			if !ok {
				return fmt.Errorf("%w: %w", errStreamEnded, r.Err())
			}
			if err := ss.writeUnit(u); err != nil {
				return fmt.Errorf("whep: write: %w", err)
			}
			ss.countDrops(r)
		case <-ss.ctx.Done():
			return context.Cause(ss.ctx)
		}
	}
}

// startBacklog notes how many units of the reader's queue are the cached
// GOP. A cache too large for one burst is dropped: the session then waits
// for the next keyframe.
func (ss *session) startBacklog(r *media.Reader) {
	n := len(r.C())
	if n == 0 {
		return
	}
	units := make([]*media.Unit, 0, n)
	size := 0
	for range n {
		u, ok := <-r.C()
		if !ok {
			break
		}
		units = append(units, u)
		size += u.Size()
	}
	if size > maxBacklogBytes {
		ss.log.Info("cached GOP too large for a burst; waiting for the next keyframe", "units", len(units), "bytes", size)
		return
	}
	ss.backlog = len(units)
	for _, u := range units {
		if err := ss.writeUnit(u); err != nil {
			return // the write loop meets the error again
		}
	}
}

// writeUnit sends u if it belongs to a track being sent.
func (ss *session) writeUnit(u *media.Unit) error {
	backlog := ss.backlog > 0
	if backlog {
		ss.backlog--
	}
	switch {
	case ss.video != nil && u.Track == ss.plan.video:
		if !ss.sending {
			if !u.Key {
				return nil
			}
			ss.sending = true
		}
		t := ss.stream.Tracks()[u.Track]
		var ts uint32
		if backlog && ss.vClock.set {
			// Cached frames are sent 1 ms apart; the last one anchors the
			// live frames, which keep their real spacing.
			ts = ss.vClock.anchorTS + backlogStep
			ss.vClock.reanchor(u.PTS, ts)
		} else {
			ts = ss.vClock.ts(u.PTS, 90000, int64(clockRateOr(t.ClockRate, 90000)))
		}
		ss.nalus = ss.video.nalus(ss.nalus[:0], u.Payload, u.Key)
		err := ss.video.send(&ss.videoPW, ss.nalus, ts)
		clear(ss.nalus) // drop references to the shared buffers
		if err != nil {
			return err
		}
		ss.sent++
		ss.srv.metrics.frames.WithLabelValues("video").Inc()
	case ss.audioTrack != nil && u.Track == ss.plan.audio:
		if backlog || !ss.sending {
			return nil // cached audio cannot be fast-forwarded
		}
		ts := ss.aClock.ts(u.PTS, 1, 1)
		if err := sendG711(&ss.audioPW, u.Payload, ts); err != nil {
			return err
		}
		ss.srv.metrics.frames.WithLabelValues("audio").Inc()
	}
	return nil
}

func clockRateOr(rate, def int) int {
	if rate <= 0 {
		return def
	}
	return rate
}

func (ss *session) countDrops(r *media.Reader) {
	if d := r.Dropped(); d > ss.lastDrops {
		ss.srv.metrics.drops.Add(float64(d - ss.lastDrops))
		ss.lastDrops = d
	}
}

// stop asks the session to end and waits until it has, or until ctx is done.
func (ss *session) stop(ctx context.Context, cause error) {
	ss.cancel(cause)
	select {
	case <-ss.done:
	case <-ctx.Done():
	}
}

// teardown closes the peer connection, waits for the RTCP readers, releases
// the lease and unregisters the session.
func (ss *session) teardown(cause error) {
	ss.cancel(cause)
	if err := ss.pc.Close(); err != nil {
		ss.log.Debug("close peer connection", "err", err)
	}
	ss.rtcpWG.Wait()
	ss.release()
	ss.srv.removeSession(ss)
	reason := closeReason(cause)
	ss.srv.metrics.closed.WithLabelValues(reason).Inc()
	ss.log.Info("session closed", "reason", reason, "err", cause,
		"duration", time.Since(ss.started).Round(time.Millisecond), "video_frames", ss.sent)
	close(ss.done)
}

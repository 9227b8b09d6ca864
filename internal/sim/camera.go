package sim

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

const (
	// firstFrameDelay lets gortsplib activate the reader whose PLAY started
	// the camera before the first frame, an IDR, goes out.
	firstFrameDelay = 20 * time.Millisecond
	// maxLag is how far pacing may fall behind (a starved process) before
	// it skips ahead, to the next IDR, instead of bursting.
	maxLag = time.Second
)

// Session states on a camera.
const (
	sessionSetup   = iota // SETUP done, never played
	sessionPlaying        // a reader
	sessionPaused         // played, then paused
)

// camera is one simulated camera: its on-demand stream, its sessions and,
// while it has readers, one pacing goroutine.
type camera struct {
	cfg   Camera
	log   *slog.Logger
	speed float64
	video *videoSource // set by Server.Start
	audio *audioSource // set by Server.Start; nil without audio
	fault atomic.Int32 // Fault
	total atomic.Uint64

	// mu guards the fields below. The pacer never takes it, so holding mu
	// while waiting for the pacer to stop cannot deadlock. stream and its
	// medias are set once, by the first DESCRIBE or SETUP, before any pacer
	// starts; the pacer reads them unlocked.
	mu       sync.Mutex
	stream   *gortsplib.ServerStream
	vmedia   *description.Media
	amedia   *description.Media
	sessions map[*gortsplib.ServerSession]int // session state
	conns    map[*gortsplib.ServerConn]struct{}
	readers  int
	stop     chan struct{} // closed to stop the pacer; nil when idle
	done     chan struct{} // closed by the pacer when it returns
	closed   bool

	// Pacing state. Only the running pacer touches it; the next pacer starts
	// after the previous one is done.
	epoch      time.Time // wall-clock time of timeline frame 0; set by Server.Start
	next       uint64    // timeline number of the next frame
	pos        int       // clip unit of the next frame
	anext      uint64    // timeline number of the next audio payload
	vts, ats   uint32    // random RTP timestamp offsets
	vseq, aseq uint16
	vpkt, apkt rtp.Packet
}

func newCamera(s *Server, cfg Camera) *camera {
	return &camera{
		cfg:      cfg,
		log:      s.log.With("camera", cfg.Path),
		speed:    s.cfg.Speed,
		sessions: make(map[*gortsplib.ServerSession]int),
		conns:    make(map[*gortsplib.ServerConn]struct{}),
		vts:      rand.Uint32(),
		ats:      rand.Uint32(),
		vseq:     uint16(rand.Uint32()),
		aseq:     uint16(rand.Uint32()),
	}
}

// getStream returns the camera's stream, creating it on first use.
func (c *camera) getStream(srv *gortsplib.Server) (*gortsplib.ServerStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil || c.closed {
		return c.stream, nil
	}
	c.vmedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{c.video.format()}}
	medias := []*description.Media{c.vmedia}
	if c.audio != nil {
		c.amedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{c.audio.format()}}
		medias = append(medias, c.amedia)
	}
	title := c.cfg.Label
	if title == "" {
		title = c.cfg.Path
	}
	st := &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Title: title, Medias: medias}}
	if err := st.Initialize(); err != nil {
		return nil, err
	}
	c.stream = st
	return st, nil
}

// addConn records a connection that addressed the camera; false if the
// camera is dropped and the connection must go.
func (c *camera) addConn(sc *gortsplib.ServerConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if Fault(c.fault.Load()) == FaultDrop {
		return false
	}
	c.conns[sc] = struct{}{}
	return true
}

func (c *camera) removeConn(sc *gortsplib.ServerConn) {
	c.mu.Lock()
	delete(c.conns, sc)
	c.mu.Unlock()
}

// attach records a session's SETUP; false if the camera is dropped.
func (c *camera) attach(ss *gortsplib.ServerSession) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if Fault(c.fault.Load()) == FaultDrop || c.closed {
		return false
	}
	if _, ok := c.sessions[ss]; !ok {
		c.sessions[ss] = sessionSetup
	}
	return true
}

// play makes a session a reader, starting the pacer for the first one;
// false if the camera is dropped.
func (c *camera) play(ss *gortsplib.ServerSession) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.sessions[ss]
	if !ok || Fault(c.fault.Load()) == FaultDrop || c.closed {
		return false
	}
	if st == sessionPlaying {
		return true
	}
	if st == sessionSetup {
		c.total.Add(1)
	}
	c.sessions[ss] = sessionPlaying
	c.readers++
	if c.readers == 1 {
		c.stop, c.done = make(chan struct{}), make(chan struct{})
		go c.pace(c.stream, c.stop, c.done)
		c.log.Debug("streaming")
	}
	return true
}

// pause makes a reader stop reading; remove forgets a closed session.
func (c *camera) pause(ss *gortsplib.ServerSession)  { c.leave(ss, false) }
func (c *camera) remove(ss *gortsplib.ServerSession) { c.leave(ss, true) }

func (c *camera) leave(ss *gortsplib.ServerSession, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.sessions[ss]
	if !ok {
		return
	}
	if closed {
		delete(c.sessions, ss)
	} else {
		c.sessions[ss] = sessionPaused
	}
	if st == sessionPlaying {
		if c.readers--; c.readers == 0 {
			c.stopPacerLocked()
			c.log.Debug("idle")
		}
	}
}

func (c *camera) stopPacerLocked() {
	if c.stop != nil {
		close(c.stop)
		<-c.done
		c.stop, c.done = nil, nil
	}
}

func (c *camera) setFault(f Fault) {
	c.mu.Lock()
	prev := Fault(c.fault.Swap(int32(f)))
	var sessions []*gortsplib.ServerSession
	var conns []*gortsplib.ServerConn
	if f == FaultDrop {
		for ss := range c.sessions {
			sessions = append(sessions, ss)
		}
		for sc := range c.conns {
			conns = append(conns, sc)
		}
	}
	c.mu.Unlock()

	// Close only cancels; the sessions and connections report back through
	// the handler, which takes c.mu.
	for _, ss := range sessions {
		ss.Close()
	}
	for _, sc := range conns {
		sc.Close()
	}
	if f != prev {
		c.log.Info("fault injected", "fault", f, "previous", prev,
			"closed_sessions", len(sessions), "closed_conns", len(conns))
	}
}

func (c *camera) stats() CameraStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CameraStats{ActiveSessions: len(c.sessions), TotalSessions: c.total.Load(), Readers: c.readers}
}

// close stops the pacer and the stream; called once the RTSP server is closed.
func (c *camera) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.stopPacerLocked()
	if c.stream != nil {
		c.stream.Close()
		c.stream = nil
	}
}

// pace writes the camera's frames to st, on time, until stop is closed.
// Timeline frame n is due at epoch + n/(fps·speed); RTP timestamps and NTP
// times derive from n, so they only grow, across clip loops and idle spells.
func (c *camera) pace(st *gortsplib.ServerStream, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	c.resync(time.Now().Add(firstFrameDelay))
	t := time.NewTimer(time.Until(c.due(c.next)))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if lag := now.Sub(c.due(c.next)); lag > maxLag {
				c.log.Warn("pacing fell behind; skipping to the next IDR", "lag", lag)
				c.resync(now)
			}
			for !c.due(c.next).After(now) {
				if err := c.writeFrame(st); err != nil {
					c.log.Debug("stream closed", "error", err)
					return
				}
			}
			t.Reset(time.Until(c.due(c.next)))
		}
	}
}

// due returns the wall-clock time timeline frame n is due.
func (c *camera) due(n uint64) time.Time {
	return c.epoch.Add(time.Duration(float64(n) / (c.video.clip.FPS * c.speed) * float64(time.Second)))
}

// resync moves the timeline to the first frame due at or after t, and the
// clip to its next IDR.
func (c *camera) resync(t time.Time) {
	fps := c.video.clip.FPS
	c.next = uint64(math.Ceil(t.Sub(c.epoch).Seconds() * fps * c.speed))
	units := c.video.clip.Units
	for !units[c.pos].IDR {
		c.pos = (c.pos + 1) % len(units)
	}
	if a := c.audio; a != nil {
		c.anext = uint64(math.Ceil(float64(c.next) / fps * float64(a.clockRate) / float64(a.samples)))
	}
}

// writeFrame writes frame c.next, and the audio due until the following one.
func (c *camera) writeFrame(st *gortsplib.ServerStream) error {
	v, n := c.video, c.next
	fps := v.clip.FPS
	stalled := Fault(c.fault.Load()) == FaultStall
	if !stalled {
		ts := c.vts + uint32(uint64(math.Round(float64(n)*90000/fps)))
		ntp := c.due(n)
		payloads := v.units[c.pos]
		for i, p := range payloads {
			c.vpkt.Header = rtp.Header{
				Version: 2, PayloadType: videoPT, SequenceNumber: c.vseq, Timestamp: ts,
				Marker: i == len(payloads)-1,
			}
			c.vpkt.Payload = p
			c.vseq++
			if err := st.WritePacketRTPWithNTP(c.vmedia, &c.vpkt, ntp); err != nil {
				return err
			}
		}
	}
	c.next++
	c.pos = (c.pos + 1) % len(v.units)

	a := c.audio
	if a == nil {
		return nil
	}
	until := float64(c.next) / fps // media seconds
	for ; float64(c.anext*uint64(a.samples))/float64(a.clockRate) < until; c.anext++ {
		if stalled {
			continue
		}
		sample := c.anext * uint64(a.samples)
		ntp := c.epoch.Add(time.Duration(float64(sample) / float64(a.clockRate) / c.speed * float64(time.Second)))
		c.apkt.Header = rtp.Header{
			Version: 2, PayloadType: a.payloadType, SequenceNumber: c.aseq,
			Timestamp: c.ats + uint32(sample), Marker: a.marker,
		}
		c.apkt.Payload = a.units[c.anext%uint64(len(a.units))]
		c.aseq++
		if err := st.WritePacketRTPWithNTP(c.amedia, &c.apkt, ntp); err != nil {
			return err
		}
	}
	return nil
}

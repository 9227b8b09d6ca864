package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/rtprecv"
	"github.com/xueliang/xueliang/internal/gb28181/sdp"
	"github.com/xueliang/xueliang/internal/gb28181/sipserver"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
)

// Reasons a GB/T 28181 media session fails before any media arrives, for
// the channel's status (the receiver adds no_packets, wrong_ssrc, not_ps,
// no_tcp_connection).
const (
	ReasonDeviceOffline media.Reason = model.ReasonDeviceOffline // the device is not registered
	ReasonInviteRefused media.Reason = "invite_refused"          // the device answered INVITE with an error
	ReasonNoAnswer      media.Reason = "invite_timeout"          // the device did not answer INVITE
	ReasonBadAnswer     media.Reason = "bad_sdp_answer"          // the answer's SDP is unusable
)

// Session kinds.
const (
	kindLive     = "live"
	kindPlayback = "playback"
	kindDownload = "download"
)

// Source is a media session with a device as a source of the stream hub:
// live video, or a range of the device's own recordings. Each Run is one
// INVITE dialog; it ends with BYE.
type Source struct {
	p         *Platform
	device    string
	channel   string
	kind      string
	transport string
	sub       bool // the device's sub-stream (a=streamnumber:1)
	start     time.Time
	end       time.Time
	speed     int

	mu   sync.Mutex
	call *sipserver.Call // of the running session
	eof  chan struct{}   // closed by the device's MediaStatus 121
}

// LiveSource returns the live source of a channel of a device. transport
// is "udp", "tcp-passive", "tcp-active" or "" (the configured default).
func (p *Platform) LiveSource(device, channel, transport string) *Source {
	if transport == "" {
		transport = p.cfg.Transport
	}
	return &Source{p: p, device: device, channel: channel, kind: kindLive, transport: transport}
}

// SubStreamSource is LiveSource for the device's sub-stream (the smaller
// second encoding of most cameras, for video walls): the offer asks for it
// with a=streamnumber:1 (GB/T 28181-2022 §F.3); devices without one send
// their main stream.
func (p *Platform) SubStreamSource(device, channel, transport string) *Source {
	s := p.LiveSource(device, channel, transport)
	s.sub = true
	return s
}

// PlaybackSource returns a source that plays [start, end) of a channel's
// recordings on the device; speed above 1 downloads that many times faster
// than real time.
func (p *Platform) PlaybackSource(device, channel string, start, end time.Time, speed int) *Source {
	kind := kindPlayback
	if speed > 1 {
		kind = kindDownload
	}
	return &Source{p: p, device: device, channel: channel, kind: kind, transport: p.cfg.Transport,
		start: start, end: end, speed: speed}
}

func receiverMode(transport string) rtprecv.Mode {
	switch transport {
	case TransportTCPPassive:
		return rtprecv.TCPPassive
	case TransportTCPActive:
		return rtprecv.TCPActive
	}
	return rtprecv.UDP
}

// Run opens the session and delivers its media until ctx ends, the device
// ends it, or the media fails.
func (s *Source) Run(ctx context.Context, ready func([]*media.Track) *media.Stream) (err error) {
	p := s.p
	log := p.log.With("device", s.device, "channel", s.channel, "kind", s.kind, "transport", s.transport)
	defer func() {
		result := "ok"
		if err != nil {
			result = string(media.ReasonOf(err))
		}
		p.metrics.invites.WithLabelValues(s.kind, result).Inc()
	}()
	dev, ok := p.sip.Device(s.device)
	if !ok || dev.State != sipserver.StateOnline {
		return media.Fail(ReasonDeviceOffline, fmt.Errorf("device %s is not registered; check that it is powered and can reach the SIP server at %s", s.device, p.sip.Addr()))
	}
	seq := uint16(p.ssrcSeq.Add(1) % 10000)
	ssrc, err := sdp.NewSSRC(s.kind == kindLive, p.cfg.ID, seq)
	if err != nil {
		return media.Fail(media.ReasonProtocol, err)
	}
	_, _, _, ssrcValue, _ := sdp.ParseSSRC(ssrc)
	ip := p.mediaIP(dev.Addr)
	recv, err := rtprecv.Listen(rtprecv.Config{
		Mode: receiverMode(s.transport), IP: p.cfg.MediaBind, AdvertisedIP: ip, Ports: p.ports,
		SSRC: ssrcValue, CheckSSRC: !p.cfg.IgnoreSSRC,
		FirstPacketTimeout: p.cfg.MediaTimeout, ReadTimeout: p.cfg.ReadTimeout,
		Log: log, Metrics: p.recvMetrics,
	})
	if err != nil {
		return media.Fail(media.ReasonProtocol, fmt.Errorf("open a media port: %w (widen gb28181.rtp_port_min/max?)", err))
	}
	defer recv.Close()
	port := recv.Port()
	if port == 0 {
		port = 9 // TCP active: we connect, our port is the discard port (RFC 4145 §4)
	}
	tcp := s.transport != TransportUDP
	setup := "passive"
	if s.transport == TransportTCPActive {
		setup = "active"
	}
	var offer *sdp.Session
	if s.kind == kindLive {
		offer = sdp.LiveOffer(p.cfg.ID, s.channel, ip, port, tcp, setup, ssrc)
	} else {
		speed := 0
		if s.kind == kindDownload {
			speed = s.speed
		}
		offer = sdp.PlaybackOffer(p.cfg.ID, s.channel, ip, port, tcp, setup, ssrc, s.start, s.end, speed)
	}
	if s.sub {
		offer.Media[0].Extra = append(offer.Media[0].Extra, sdp.Line{Type: "a", Value: "streamnumber:1"})
	}
	subject := s.channel + ":" + ssrc + "," + p.cfg.ID + ":0"
	ictx, cancel := context.WithTimeout(ctx, p.cfg.InviteTimeout)
	call, err := p.sip.Invite(ictx, s.device, s.channel, subject, sdp.Marshal(offer))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return inviteError(s.device, err)
	}
	defer func() {
		bctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := call.Bye(bctx); err != nil {
			log.Debug("BYE", "err", err)
		}
	}()
	answer, err := sdp.Parse(call.Answer)
	if err != nil {
		return media.Fail(ReasonBadAnswer, fmt.Errorf("device %s answered INVITE with SDP that does not parse: %w", s.device, err))
	}
	a, err := sdp.ReadAnswer(answer)
	if err != nil {
		return media.Fail(ReasonBadAnswer, fmt.Errorf("device %s: %w", s.device, err))
	}
	if problems := sdp.Check(offer, answer); len(problems) > 0 {
		log.Info("the device's SDP answer differs from the offer", "problems", problems)
	}
	if a.SSRCErr == nil && a.SSRCValue != ssrcValue {
		// GB/T 28181-2016 §9.2: the media carries the answer's SSRC.
		log.Info("the device answered with another SSRC; expecting it", "offered", ssrc, "answered", a.SSRC)
		recv.SetSSRC(a.SSRCValue)
	}
	remote := net.JoinHostPort(a.IP, strconv.Itoa(a.Port))
	if s.kind == kindLive {
		// A camera mid-GOP would make the viewer wait for its next
		// keyframe (up to a GOP, seconds): ask for one now.
		go func() {
			ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if err := p.Command(ictx, s.device, s.channel, "iframe"); err != nil {
				log.Debug("I-frame request", "err", err)
			}
		}()
	}

	s.mu.Lock()
	s.call = call
	s.eof = make(chan struct{})
	eof := s.eof
	s.mu.Unlock()
	p.addSession(s)
	defer func() {
		p.removeSession(s)
		s.mu.Lock()
		s.call = nil
		s.mu.Unlock()
	}()

	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	done := make(chan error, 1)
	go func() { done <- recv.Run(rctx, remote, ready) }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			return nil
		}
		return err
	case <-call.Done():
		rcancel()
		<-done
		if ctx.Err() != nil {
			return nil
		}
		if s.kind != kindLive {
			log.Info("the device ended the playback")
			<-ctx.Done()
			return nil
		}
		return media.Fail(media.ReasonClosed, fmt.Errorf("device %s ended the session (BYE)", s.device))
	case <-eof:
		// The range is over: keep the stream (viewers see its end) until
		// they leave, but end the dialog.
		log.Info("the device reached the end of the playback")
		select {
		case err := <-done:
			if ctx.Err() == nil && err != nil && media.ReasonOf(err) != media.ReasonTimeout {
				return err
			}
		case <-ctx.Done():
		}
		<-ctx.Done()
		return nil
	}
}

// mediaIP is the IP put in offers for a device at addr.
func (p *Platform) mediaIP(addr string) string {
	if p.cfg.MediaIP != "" {
		return p.cfg.MediaIP
	}
	if ip := sipserver.LocalIP(addr); ip != "" {
		return ip
	}
	return "127.0.0.1"
}

// inviteError classifies a failed INVITE.
func inviteError(device string, err error) error {
	var se *sipserver.StatusError
	switch {
	case errors.Is(err, sipserver.ErrNotOnline):
		return media.Fail(ReasonDeviceOffline, fmt.Errorf("device %s is not registered", device))
	case errors.As(err, &se):
		return media.Fail(ReasonInviteRefused, fmt.Errorf("device %s refused the stream: %d %s", device, se.Code, se.Reason))
	case errors.Is(err, sipserver.ErrNoAnswer), errors.Is(err, context.DeadlineExceeded):
		return media.Fail(ReasonNoAnswer, fmt.Errorf("device %s did not answer INVITE in time; check that it reaches the platform and is not overloaded", device))
	}
	return media.Fail(media.ReasonProtocol, err)
}

// Control sends MANSRTSP (GB/T 28181-2016 §9.9, Annex B) to a running
// playback: "pause", "resume", "seek" (value: seconds from the start) or
// "speed" (value: scale 0.25–8).
func (s *Source) Control(ctx context.Context, action string, value float64) error {
	s.mu.Lock()
	call := s.call
	s.mu.Unlock()
	if call == nil {
		return ErrNotPlaying
	}
	cseq := int(s.p.nextSN())
	var body string
	switch action {
	case "pause":
		body = fmt.Sprintf("PAUSE RTSP/1.0\r\nCSeq: %d\r\nPauseTime: now\r\n\r\n", cseq)
	case "resume":
		body = fmt.Sprintf("PLAY RTSP/1.0\r\nCSeq: %d\r\nRange: npt=now-\r\n\r\n", cseq)
	case "seek":
		if value < 0 || (!s.end.IsZero() && value > s.end.Sub(s.start).Seconds()) {
			return fmt.Errorf("%w: seek offset must be within the range (0-%.0f s), got %g", ErrBadCommand, s.end.Sub(s.start).Seconds(), value)
		}
		body = fmt.Sprintf("PLAY RTSP/1.0\r\nCSeq: %d\r\nRange: npt=%d-\r\n\r\n", cseq, int(value))
	case "speed":
		if value < 0.25 || value > 8 {
			return fmt.Errorf("%w: speed must be 0.25-8, got %g", ErrBadCommand, value)
		}
		body = fmt.Sprintf("PLAY RTSP/1.0\r\nCSeq: %d\r\nScale: %s\r\n\r\n", cseq, strconv.FormatFloat(value, 'f', -1, 64))
	default:
		return fmt.Errorf("%w: action must be pause, resume, seek or speed, got %q", ErrBadCommand, action)
	}
	return call.Info(ctx, "Application/MANSRTSP", []byte(body))
}

// ErrNotPlaying means a playback control found no running session.
var ErrNotPlaying = errors.New("platform: the playback is not running")

func sessionKey(device, channel string) string { return device + "/" + channel }

func (p *Platform) addSession(s *Source) {
	if s.kind == kindLive {
		return
	}
	p.mu.Lock()
	p.sessions[sessionKey(s.device, s.channel)] = s
	p.mu.Unlock()
}

func (p *Platform) removeSession(s *Source) {
	p.mu.Lock()
	if p.sessions[sessionKey(s.device, s.channel)] == s {
		delete(p.sessions, sessionKey(s.device, s.channel))
	}
	p.mu.Unlock()
}

// mediaStatus handles a device's MediaStatus notify: 121 is the end of a
// playback or download.
func (p *Platform) mediaStatus(device string, m *manscdp.Message) {
	ms, err := m.MediaStatus()
	if err != nil {
		p.log.Warn("bad MediaStatus notify", "device", device, "err", err)
		return
	}
	if !ms.EndOfFile() {
		return
	}
	p.mu.Lock()
	var found *Source
	for _, s := range p.sessions {
		if s.device == device && (m.DeviceID == "" || m.DeviceID == s.channel || m.DeviceID == device) {
			found = s
			break
		}
	}
	p.mu.Unlock()
	if found == nil {
		p.log.Debug("end of a playback nobody watches", "device", device, "channel", m.DeviceID)
		return
	}
	found.mu.Lock()
	if found.eof != nil {
		select {
		case <-found.eof:
		default:
			close(found.eof)
		}
	}
	found.mu.Unlock()
}

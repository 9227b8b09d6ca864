package devsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// The SIP side of media sessions (GB/T 28181-2016 §9.2 live, §9.8
// playback, §9.9 download): INVITE with an SDP offer, 200 OK with the
// device's answer, ACK, then media until BYE. The platform controls a
// playback with INFO (MANSRTSP, Annex B). A device that stops a stream by
// itself (the end of a playback left unanswered, a broken connection,
// ICMP errors for MediaTimeout) says so with a BYE.

// session is one stream of a device: from the INVITE to the BYE.
type session struct {
	sim      *Sim
	d        *device
	id       string // the invited code
	offer    *offer
	clip     *clipData
	fault    Fault // the device's faults at the INVITE
	ssrc     uint32
	ssrcText string // y= of the answer
	port     int    // m= port of the answer

	// Media transport, opened at the INVITE; closed by release.
	udp *net.UDPConn // connected to the platform's address
	ln  net.Listener // TCP, when the platform connects (offer a=setup:active)

	dlg      *sipgo.DialogServerSession
	dialogID string

	ctx    context.Context // cancelled by BYE, by stop and by Close
	cancel context.CancelFunc

	unhook func() bool // undoes the cancellation of ctx by the dialog's end

	ctl      chan rtspCmd // MANSRTSP commands for the streaming goroutine
	keyframe atomic.Bool  // IFameCmd: the next frame is an IDR
	stopped  atomic.Bool  // stop was called: the device ends without BYE
	once     sync.Once    // release
}

// onInvite answers an INVITE for a channel (or an IPC's own code).
func (s *Sim) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	id := req.Recipient.User
	d := s.byID[id]
	reject := func(code int, reason string) {
		s.rejected.Add(1)
		s.log.Info("INVITE rejected", "target", id, "code", code, "reason", reason)
		respond(tx, req, code, reason)
	}
	switch {
	case d == nil:
		reject(404, "Not Found")
		return
	case d.rebooting.Load():
		return
	case id == d.id && len(d.channels) > 1:
		reject(404, "Not Found: "+id+" is an NVR, invite one of its channels")
		return
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		reject(488, "Not Acceptable Here: re-INVITE is not supported")
		return
	}
	d.mu.Lock()
	st := d.state[d.canonical(id)]
	deleted, off := st != nil && st.deleted, st != nil && st.status == statusOff
	d.mu.Unlock()
	switch {
	case deleted:
		reject(404, "Not Found: channel deleted")
		return
	case off:
		reject(480, "Temporarily Unavailable: channel off")
		return
	}
	if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(ct.Value()), "application/sdp") {
		reject(415, "Unsupported Media Type: want application/sdp")
		return
	}
	o, err := parseOffer(req.Body())
	if err != nil {
		var se *sdpError
		if errors.As(err, &se) && se.code == 488 {
			reject(488, "Not Acceptable Here: "+se.msg)
		} else {
			reject(400, "Bad Request: "+strings.TrimPrefix(err.Error(), "sdp: "))
		}
		return
	}
	if ip := net.ParseIP(o.ip); ip == nil || ip.To4() == nil {
		reject(488, "Not Acceptable Here: c= must be an IPv4 address")
		return
	}
	if s.streams(d, id) >= s.cfg.MaxStreams {
		reject(486, "Busy Here")
		return
	}
	ss, err := s.newSession(d, id, o, req)
	if err != nil {
		s.log.Warn("cannot open media socket", "target", id, "err", err)
		reject(500, "Server Internal Error: media socket")
		return
	}
	dlg, err := d.dialogs.ReadInvite(req, tx)
	if err != nil {
		ss.release()
		reject(400, "Bad Request: "+firstLine(err.Error()))
		return
	}
	ss.dlg, ss.dialogID = dlg, dlg.ID
	ss.unhook = context.AfterFunc(dlg.Context(), ss.cancel)
	if !s.addSession(ss) {
		ss.release()
		reject(486, "Busy Here")
		return
	}
	res := sip.NewSDPResponseFromRequest(dlg.InviteRequest, ss.answer())
	contact := d.dialogs.ContactHDR.Clone()
	contact.Address.User = id
	res.AppendHeader(contact)
	s.invites.Add(1)
	s.log.Info("INVITE answered", "target", id, "session", o.name, "tcp", o.tcp, "setup", o.setup,
		"to", net.JoinHostPort(o.ip, fmt.Sprint(o.port)), "ssrc", ss.ssrcText)
	if err := s.answerAndWaitAck(dlg, tx, res); err != nil {
		s.log.Warn("no ACK for the 200 OK", "target", id, "err", err)
		s.removeSession(ss)
		ss.release()
		return
	}
	if !s.goTracked(ss.run) {
		s.removeSession(ss)
		ss.release()
	}
}

// answerAndWaitAck sends the 200 OK and retransmits it until the ACK
// comes (RFC 3261 §13.3.1.4: from T1, doubling up to T2, for 64*T1). It
// is sipgo's DialogServerSession.WriteResponse, but one that Close can
// interrupt.
func (s *Sim) answerAndWaitAck(dlg *sipgo.DialogServerSession, tx sip.ServerTransaction, res *sip.Response) error {
	states := dlg.StateRead()
	dlg.InviteResponse = res
	if err := tx.Respond(res); err != nil {
		return err
	}
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	for {
		select {
		case st := <-states:
			switch st {
			case sip.DialogStateConfirmed:
				return nil
			case sip.DialogStateEnded:
				return errors.New("the dialog ended before the ACK")
			}
		case <-retransmit.C:
			if err := tx.Respond(res); err != nil {
				return err
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
		case <-giveUp.C:
			return fmt.Errorf("no ACK within %v", 64*sip.T1)
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

// newSession opens the media transport the offer asks for and chooses
// the SSRC.
func (s *Sim) newSession(d *device, id string, o *offer, req *sip.Request) (*session, error) {
	ss := &session{sim: s, d: d, id: id, offer: o, clip: d.clip(d.channelIndex(id)), fault: d.faults(), ctl: make(chan rtspCmd, 16)}
	ss.ctx, ss.cancel = context.WithCancel(s.ctx)
	y := o.ssrc
	if y == "" {
		y = subjectSSRC(req)
	}
	if y == "" {
		// No y= (some platforms leave it out): the device chooses, with
		// the shape of GB/T 28181-2016 §9.2.1.
		flag := 1
		if o.name == namePlay {
			flag = 0
		}
		y = fmt.Sprintf("%d%09d", flag, s.nextSN()%1_000_000_000)
	}
	ss.ssrcText = y
	ss.ssrc, _ = ssrcValue(y)
	if ss.fault.WrongSSRC {
		// Answer with the offered y=, then stream with another SSRC:
		// the platform cannot follow the answer, it must say why no
		// media arrives.
		if ss.ssrc < 1<<32-1 {
			ss.ssrc++
		} else {
			ss.ssrc--
		}
	}
	mediaIP := net.ParseIP(s.cfg.MediaIP)
	switch {
	case !o.tcp:
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: mediaIP}, &net.UDPAddr{IP: net.ParseIP(o.ip), Port: o.port})
		if err != nil {
			return nil, err
		}
		ss.udp = c
		ss.port = c.LocalAddr().(*net.UDPAddr).Port
	case o.setup == "active":
		// The platform connects: listen on the port of the answer.
		ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: mediaIP})
		if err != nil {
			return nil, err
		}
		ss.port = ln.Addr().(*net.TCPAddr).Port
		if ss.fault.NoTCPConnect {
			ln.Close() // connections to the port are refused
		} else {
			ss.ln = ln
		}
	default:
		// The device connects from a port of its choosing: RFC 4145 §4.1
		// has the active side name port 9.
		ss.port = 9
	}
	return ss, nil
}

// subjectSSRC reads the SSRC of a Subject header ("<channelID>:<ssrc>,
// <platformID>:0", GB/T 28181-2016 §8.1.2), "" when there is none.
func subjectSSRC(req *sip.Request) string {
	h := req.GetHeader("Subject")
	if h == nil {
		return ""
	}
	first, _, _ := strings.Cut(h.Value(), ",")
	_, y, _ := strings.Cut(first, ":")
	if _, err := ssrcValue(strings.TrimSpace(y)); err != nil {
		return ""
	}
	return strings.TrimSpace(y)
}

// answer is the SDP of the 200 OK.
func (ss *session) answer() []byte {
	o := ss.offer
	a := answer{id: ss.id, ip: ss.sim.cfg.MediaIP, name: o.name, port: ss.port, tcp: o.tcp, ssrc: ss.ssrcText}
	if o.name != namePlay {
		a.start, a.stop = o.start, o.stop
	}
	if o.tcp {
		a.setup = "passive"
		if o.setup == "passive" {
			a.setup = "active"
		}
	}
	if o.name == nameDownload {
		a.fileSize = int64(float64(o.stop-o.start) * ss.clip.bytesPerSecond)
	}
	return a.marshal()
}

// release closes the media transport. It is idempotent.
func (ss *session) release() {
	ss.once.Do(func() {
		ss.cancel()
		if ss.unhook != nil {
			ss.unhook()
		}
		if ss.udp != nil {
			ss.udp.Close()
		}
		if ss.ln != nil {
			ss.ln.Close()
		}
	})
}

// stop ends the session without a BYE (a reboot).
func (ss *session) stop() {
	ss.stopped.Store(true)
	ss.release()
}

// streams counts the sessions of a code of d.
func (s *Sim) streams(d *device, id string) int {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	return s.streamsLocked(d, id)
}

func (s *Sim) streamsLocked(d *device, id string) int {
	n := 0
	for _, ss := range s.sessions {
		if ss.d == d && d.canonical(ss.id) == d.canonical(id) {
			n++
		}
	}
	return n
}

// addSession registers ss unless its channel is busy.
func (s *Sim) addSession(ss *session) bool {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.streamsLocked(ss.d, ss.id) >= s.cfg.MaxStreams {
		return false
	}
	s.sessions[ss.dialogID] = ss
	return true
}

func (s *Sim) removeSession(ss *session) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.sessions[ss.dialogID] == ss {
		delete(s.sessions, ss.dialogID)
	}
}

// takeSessions removes and returns the sessions of d, or all with nil.
func (s *Sim) takeSessions(d *device) []*session {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	var out []*session
	for k, ss := range s.sessions {
		if d == nil || ss.d == d {
			out = append(out, ss)
			delete(s.sessions, k)
		}
	}
	return out
}

// sessionOf finds the session of an in-dialog request.
func (s *Sim) sessionOf(req *sip.Request) *session {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	return s.sessions[id]
}

// deviceSessions counts the sessions of each device.
func (s *Sim) deviceSessions() map[*device]int {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	n := map[*device]int{}
	for _, ss := range s.sessions {
		n[ss.d]++
	}
	return n
}

func (s *Sim) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if ss := s.sessionOf(req); ss != nil {
		if err := ss.dlg.ReadAck(req, tx); err != nil {
			s.log.Warn("ACK not taken", "target", ss.id, "err", err)
		}
	}
}

func (s *Sim) onBye(req *sip.Request, tx sip.ServerTransaction) {
	ss := s.sessionOf(req)
	if ss == nil {
		if d := s.deviceOf(req); d != nil && d.rebooting.Load() {
			return
		}
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if ss.d.rebooting.Load() {
		return
	}
	if err := ss.dlg.ReadBye(req, tx); err != nil {
		respond(tx, req, 400, "Bad Request: "+err.Error())
		return
	}
	s.removeSession(ss)
	ss.release() // ReadBye ended the dialog, which cancelled ss.ctx
	s.log.Info("BYE", "target", ss.id)
}

// onInfo takes a MANSRTSP command (GB/T 28181-2016 §9.8.2, Annex B) for a
// playback or download.
func (s *Sim) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	ss := s.sessionOf(req)
	if ss == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if ss.d.rebooting.Load() {
		return
	}
	if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(ct.Value()), "Application/MANSRTSP") {
		respond(tx, req, 415, "Unsupported Media Type: want Application/MANSRTSP")
		return
	}
	c, err := parseMANSRTSP(req.Body())
	if err != nil {
		respond(tx, req, 400, "Bad Request: "+err.Error())
		return
	}
	o := ss.offer
	if c.seek {
		if o.name == namePlay {
			respond(tx, req, 400, "Bad Request: Range on a live stream")
			return
		}
		if d := float64(o.stop - o.start); c.npt >= d {
			respond(tx, req, 400, fmt.Sprintf("Bad Request: Range npt=%g- is beyond the %gs played back", c.npt, d))
			return
		}
	}
	if c.scale != 0 && o.name == namePlay {
		respond(tx, req, 400, "Bad Request: Scale on a live stream")
		return
	}
	_ = ss.dlg.ReadRequest(req, tx) // keeps the dialog's CSeq; a lower one is harmless here
	select {
	case ss.ctl <- c:
	default:
		respond(tx, req, 503, "Service Unavailable: too many commands")
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", []byte(fmt.Sprintf("RTSP/1.0 200 OK\r\nCSeq: %d\r\n", c.cseq)))
	res.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSRTSP"))
	tx.Respond(res)
	s.log.Info("MANSRTSP", "target", ss.id, "method", c.method, "seek", c.seek, "npt", c.npt, "scale", c.scale)
}

// forceKeyframe makes the live streams of a code (all of the device's for
// its own code) send an IDR next.
func (s *Sim) forceKeyframe(d *device, id string) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	for _, ss := range s.sessions {
		if ss.d == d && (id == d.id || d.canonical(ss.id) == d.canonical(id)) {
			ss.keyframe.Store(true)
		}
	}
}

package devsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/gb28181/rtpframe"
	"github.com/xueliang/xueliang/internal/gb28181/sdp"
	"github.com/xueliang/xueliang/internal/media"
)

func TestMain(m *testing.M) {
	// Before any sipgo goroutine runs: sipgo reads the limit unsynchronised.
	RaiseSIPUDPLimit()
	os.Exit(m.Run())
}

// peer is the media side of the test platform: a sipgo user agent on its
// own UDP socket that sends INVITE, INFO, BYE, MESSAGE and SUBSCRIBE to
// devices and receives their BYEs and NOTIFYs. (REGISTER and the devices'
// MESSAGEs go to the sipserver of platform.)
type peer struct {
	ua       *sipgo.UserAgent
	client   *sipgo.Client
	conn     net.PacketConn
	addr     string
	contact  sip.ContactHeader
	dialogs  *sipgo.DialogClientCache
	byes     chan string // Call-IDs of the devices' BYEs
	notifies chan *sip.Request
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test platform"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{ua: ua, conn: conn, addr: conn.LocalAddr().String(),
		byes: make(chan string, 16), notifies: make(chan *sip.Request, 64)}
	host, port, _ := sip.ParseAddr(p.addr)
	p.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: platformID, Host: host, Port: port}}
	p.client, err = sipgo.NewClient(ua, sipgo.WithClientAddr(p.addr), sipgo.WithClientConnectionAddr(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	p.dialogs = sipgo.NewDialogClientCache(p.client, p.contact)
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dialogs.ReadBye(req, tx); err != nil {
			respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		p.byes <- string(*req.CallID())
	})
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, 200, "OK")
		p.notifies <- req
	})
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeUDP(conn) }()
	tp := ua.TransportLayer()
	for c, _ := tp.GetConnection("udp", p.addr); c == nil; c, _ = tp.GetConnection("udp", p.addr) {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		ua.Close()
		conn.Close()
		<-done
	})
	return p
}

// deviceAddr is where the platform reaches a device: the source of its
// REGISTER.
func deviceAddr(t testing.TB, p *platform, id string) string {
	t.Helper()
	d, ok := p.Device(id)
	if !ok {
		t.Fatalf("platform does not know %s", id)
	}
	return d.Addr
}

// call is an INVITE dialog of the test platform.
type call struct {
	dlg    *sipgo.DialogClientSession
	offer  *sdp.Session
	answer *sdp.Session
	info   sdp.Answer
}

// invite INVITEs channel at the device's address with offer (built by the
// platform's sdp package), ACKs the 200 OK and reads the answer with the
// platform's reader. A refusal is returned as sipgo.ErrDialogResponse.
func (p *peer) invite(t testing.TB, addr, channel string, offer *sdp.Session) (*call, error) {
	t.Helper()
	return p.inviteBody(t, addr, channel, offer, sdp.Marshal(offer), "APPLICATION/SDP")
}

func (p *peer) inviteBody(t testing.TB, addr, channel string, offer *sdp.Session, body []byte, contentType string) (*call, error) {
	t.Helper()
	host, port, _ := sip.ParseAddr(addr)
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: channel, Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: platformID, Host: platformID[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: channel, Host: platformID[:10]}, Params: sip.NewParams()})
	if offer != nil {
		req.AppendHeader(sip.NewHeader("Subject", fmt.Sprintf("%s:%s,%s:0", channel, offer.SSRC, platformID)))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dlg, err := p.dialogs.WriteInvite(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		dlg.Close()
		return nil, err
	}
	if err := dlg.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	c := &call{dlg: dlg, offer: offer}
	if c.answer, err = sdp.Parse(dlg.InviteResponse.Body()); err != nil {
		t.Fatalf("answer %q: %v", dlg.InviteResponse.Body(), err)
	}
	if len(c.answer.Problems) > 0 {
		t.Errorf("answer problems %q in\n%s", c.answer.Problems, dlg.InviteResponse.Body())
	}
	if c.info, err = sdp.ReadAnswer(c.answer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dlg.Close() })
	return c, nil
}

// refusal returns the status of an INVITE error, or fails.
func refusal(t testing.TB, err error) *sip.Response {
	t.Helper()
	var re *sipgo.ErrDialogResponse
	if !errors.As(err, &re) {
		t.Fatalf("INVITE error %v, want a response", err)
	}
	return re.Res
}

func (c *call) bye(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.dlg.Bye(ctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
}

// infoReq sends an INFO with a MANSRTSP body and returns the response.
func (c *call) infoReq(t testing.TB, contentType, body string) *sip.Response {
	t.Helper()
	req := sip.NewRequest(sip.INFO, c.dlg.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	req.SetBody([]byte(body))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	return res
}

func (c *call) mansrtsp(t testing.TB, body string) {
	t.Helper()
	if res := c.infoReq(t, "Application/MANSRTSP", body); res.StatusCode != 200 {
		t.Fatalf("INFO %q: %d %s", body, res.StatusCode, res.Reason)
	}
}

// send sends a MESSAGE with a MANSCDP body (from the platform's
// encoder) to a device and wants 200 OK.
func (p *peer) send(t testing.TB, addr, to string, v any) {
	t.Helper()
	if code, reason := p.sendCode(t, addr, to, v); code != 200 {
		t.Fatalf("MESSAGE: %d %s", code, reason)
	}
}

func (p *peer) sendCode(t testing.TB, addr, to string, v any) (int, string) {
	t.Helper()
	body, ok := v.([]byte)
	if !ok {
		var err error
		if body, err = manscdp.Marshal(v, "GB2312"); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := sip.ParseAddr(addr)
	req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: to, Host: host, Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: platformID, Host: platformID[:10]}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to, Host: platformID[:10]}})
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Reason
}

// sink receives the RTP packets of one stream.
type sink struct {
	pkts   chan []byte
	closed chan struct{} // closed when the transport ends (TCP EOF)
	err    error         // why, once closed
	port   int
	conn   io.Closer
}

const sinkBuffer = 4096

// udpSink receives RTP over UDP, as the platform does for an UDP offer.
func udpSink(t testing.TB) *sink {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{pkts: make(chan []byte, sinkBuffer), closed: make(chan struct{}), port: c.LocalAddr().(*net.UDPAddr).Port, conn: c}
	go func() {
		defer close(s.closed)
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.pkts <- append([]byte(nil), buf[:n]...):
			default: // the test stopped reading
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-s.closed })
	return s
}

// tcpListenSink listens for the device's connection (offer a=setup:passive).
func tcpListenSink(t testing.TB) (*sink, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{pkts: make(chan []byte, sinkBuffer), closed: make(chan struct{}), port: ln.Addr().(*net.TCPAddr).Port, conn: ln}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		defer close(s.closed)
		c, err := ln.Accept()
		if err != nil {
			s.err = err
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		s.readFramed(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		<-s.closed
	})
	return s, ln
}

// tcpDialSink connects to the device (offer a=setup:active).
func tcpDialSink(t testing.TB, addr string) *sink {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the device's media port %s: %v", addr, err)
	}
	s := &sink{pkts: make(chan []byte, sinkBuffer), closed: make(chan struct{}), conn: c}
	go func() {
		defer close(s.closed)
		s.readFramed(c)
	}()
	t.Cleanup(func() { c.Close(); <-s.closed })
	return s
}

// readFramed reads RFC 4571 frames with the platform's reader.
func (s *sink) readFramed(c net.Conn) {
	r := rtpframe.NewReader(c)
	for {
		pkt, err := r.Next()
		if err != nil {
			s.err = err
			return
		}
		select {
		case s.pkts <- append([]byte(nil), pkt...):
		default:
		}
	}
}

// frame is a demuxed frame with the RTP details of its packets.
type frame struct {
	ps.Frame
	ssrc    uint32
	rtpTS   uint32
	arrived time.Time
}

// receiver checks RTP packets and demuxes their payloads with the
// platform's PS demuxer, flushing on the marker bit.
type receiver struct {
	t          testing.TB
	dm         *ps.Demuxer
	frames     []frame
	packets    int
	maxPayload int
	lastSeq    uint16
	seqErrors  int
	curSSRC    uint32
	curTS      uint32
	raw        [][]byte // payloads, when keepRaw
	keepRaw    bool
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t}
	r.dm = ps.NewDemuxer(func(f ps.Frame) {
		r.frames = append(r.frames, frame{Frame: f, ssrc: r.curSSRC, rtpTS: r.curTS, arrived: time.Now()})
	})
	return r
}

func (r *receiver) packet(b []byte) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		r.t.Errorf("RTP packet of %d bytes: %v", len(b), err)
		return
	}
	if p.PayloadType != 96 || p.Version != 2 {
		r.t.Errorf("RTP PT %d version %d, want 96 and 2", p.PayloadType, p.Version)
	}
	if r.packets > 0 && p.SequenceNumber != r.lastSeq+1 {
		r.seqErrors++
	}
	r.lastSeq = p.SequenceNumber
	r.packets++
	r.maxPayload = max(r.maxPayload, len(p.Payload))
	r.curSSRC, r.curTS = p.SSRC, p.Timestamp
	if r.keepRaw {
		r.raw = append(r.raw, append([]byte(nil), p.Payload...))
	}
	r.dm.Write(p.Payload)
	if p.Marker {
		r.dm.Flush()
	}
}

// until reads packets from s until cond holds, or fails after within.
func (r *receiver) until(s *sink, within time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(within)
	for !cond() {
		select {
		case b := <-s.pkts:
			r.packet(b)
		case <-s.closed:
			for len(s.pkts) > 0 {
				r.packet(<-s.pkts)
			}
			if !cond() {
				r.t.Fatalf("%s: the media transport ended (%v) after %d packets, %d frames", what, s.err, r.packets, len(r.frames))
			}
			return
		case <-deadline:
			r.t.Fatalf("%s: not within %v (%d packets, %d frames)", what, within, r.packets, len(r.frames))
		}
	}
}

// span is the PTS range of the frames received, in seconds.
func (r *receiver) span() float64 {
	if len(r.frames) < 2 {
		return 0
	}
	return float64(r.frames[len(r.frames)-1].PTS-r.frames[0].PTS) / 90000
}

func (r *receiver) last() frame { return r.frames[len(r.frames)-1] }

// check verifies the frames from index from on: the codec, PTS that
// increase by one frame time, RTP timestamps that follow the PTS, keyframes
// that carry their parameter sets, payloads within 1,400 bytes and one
// SSRC.
func (r *receiver) check(from int, codec media.Codec, ssrc uint32) (keys int) {
	r.t.Helper()
	if r.maxPayload > 1400 {
		r.t.Errorf("RTP payload of %d bytes, want at most 1400", r.maxPayload)
	}
	if r.seqErrors > 0 {
		r.t.Errorf("%d sequence number gaps", r.seqErrors)
	}
	for i := from; i < len(r.frames); i++ {
		f := r.frames[i]
		if f.Codec != codec || !f.HasPTS || f.DTS != f.PTS || f.Stream != 0xE0 {
			r.t.Fatalf("frame %d: codec %v stream %#x PTS %v/%d DTS %d", i, f.Codec, f.Stream, f.HasPTS, f.PTS, f.DTS)
		}
		if f.ssrc != ssrc {
			r.t.Fatalf("frame %d: SSRC %d, want %d", i, f.ssrc, ssrc)
		}
		if f.rtpTS != uint32(f.PTS) {
			r.t.Fatalf("frame %d: RTP timestamp %d, PTS %d", i, f.rtpTS, f.PTS)
		}
		if i > from {
			if d := f.PTS - r.frames[i-1].PTS; d < 5900 || d > 6100 { // 15 fps: 6000
				r.t.Fatalf("frame %d: PTS step %d, want 6000", i, d)
			}
		}
		types := naluTypes(codec, f.Data)
		if f.Key {
			keys++
			want := []int{7, 8, 5}
			if codec == media.CodecH265 {
				want = []int{32, 33, 34}
			}
			for _, w := range want {
				if !contains(types, w) {
					r.t.Fatalf("keyframe %d: NAL types %v lack %d", i, types, w)
				}
			}
		}
		if len(types) == 0 {
			r.t.Fatalf("frame %d: no NAL units", i)
		}
	}
	return keys
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// naluTypes lists the NAL unit types of an Annex-B access unit.
func naluTypes(c media.Codec, b []byte) []int {
	var out []int
	for i := 0; i+3 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			h := b[i+3]
			if c == media.CodecH265 {
				out = append(out, int(h>>1&0x3F))
			} else {
				out = append(out, int(h&0x1F))
			}
			i += 3
		}
	}
	return out
}

// quiet reports whether no packet arrives for d (after a drain of what
// was in flight).
func quiet(s *sink, drain, d time.Duration) bool {
	end := time.After(drain)
	for {
		select {
		case <-s.pkts:
			continue
		case <-end:
		}
		break
	}
	select {
	case <-s.pkts:
		return false
	case <-time.After(d):
		return true
	}
}

// waitFor polls cond until it holds or fails after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nextMsg returns the next MANSCDP message the platform receives with
// the CmdType, skipping others.
func nextMsg(t testing.TB, p *platform, cmd string, within time.Duration) *manscdp.Message {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-p.msgs:
			if m.CmdType == cmd {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s message within %v", cmd, within)
		}
	}
}

// mediaSetup starts a platform and a simulation of one device for media
// tests and returns the device's address.
func mediaSetup(t testing.TB, edit func(*Config)) (*platform, *Sim, *peer, string) {
	t.Helper()
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) {
		c.Devices = 1
		c.ChannelsPerDevice = 2
		c.MediaTimeout = 2 * time.Second
		if edit != nil {
			edit(c)
		}
	})
	waitOnline(t, p, s, 5*time.Second)
	return p, s, newPeer(t), deviceAddr(t, p, s.DeviceIDs()[0])
}

func ssrc(t testing.TB, live bool, seq uint16) string {
	t.Helper()
	y, err := sdp.NewSSRC(live, platformID, seq)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

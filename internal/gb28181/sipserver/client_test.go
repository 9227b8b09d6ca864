package sipserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// answeringDevice is a device that registers over a transport and answers
// the platform's requests on the connection it registered from.
type answeringDevice struct {
	*device
	mu       sync.Mutex
	got      []string // "METHOD to-user transport"
	inviteTo int      // status to answer INVITE with
}

func newAnsweringDevice(t *testing.T, id, server, transport string) *answeringDevice {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-nvr"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); srv.Close(); ua.Close() })
	d := &answeringDevice{device: &device{t: t, id: id, client: c, server: server + ";transport=" + transport}, inviteTo: 200}
	record := func(req *sip.Request) {
		d.mu.Lock()
		d.got = append(d.got, fmt.Sprintf("%s %s %s", req.Method, req.Recipient.User, req.Transport()))
		d.mu.Unlock()
	}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		record(req)
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		record(req)
		d.mu.Lock()
		code := d.inviteTo
		d.mu.Unlock()
		if code != 200 {
			tx.Respond(sip.NewResponseFromRequest(req, code, "Not Here", nil))
			return
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", []byte("v=0\r\no=x 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\ny=0418000001\r\n"))
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: req.Recipient.User, Host: "127.0.0.1", Port: 5060}})
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		tx.Respond(res)
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { record(req) })
	srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		record(req)
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		record(req)
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	return d
}

func (d *answeringDevice) received(want string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		for _, g := range d.got {
			if g == want {
				d.mu.Unlock()
				return true
			}
		}
		d.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestRequestsToDevices sends MESSAGE, SUBSCRIBE-less queries, INVITE,
// INFO and BYE to devices registered over UDP and over TCP: each goes back
// over the transport (and for TCP the connection) the device registered on.
func TestRequestsToDevices(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.KeepaliveInterval = time.Minute })
	for i, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			id := fmt.Sprintf("4418000000118000000%d", i+1)
			d := newAnsweringDevice(t, id, s.Addr(), transport)
			if res := d.register("12345678", 3600); res.StatusCode != 200 {
				t.Fatalf("REGISTER over %s: %d", transport, res.StatusCode)
			}
			dev, _ := s.Device(id)
			if !strings.EqualFold(dev.Transport, transport) {
				t.Fatalf("registered over %s, server says %q", transport, dev.Transport)
			}
			ctx := t.Context()
			up := strings.ToUpper(transport)
			if err := s.Message(ctx, id, "", []byte("<?xml version=\"1.0\"?><Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>"+id+"</DeviceID></Query>")); err != nil {
				t.Fatalf("MESSAGE: %v", err)
			}
			if !d.received("MESSAGE "+id+" "+up, time.Second) {
				t.Fatalf("MESSAGE not received over %s: %v", up, d.got)
			}
			channel := id[:10] + "1310000001"
			call, err := s.Invite(ctx, id, channel, channel+":0418000001,"+platformID+":0", []byte("v=0\r\n"))
			if err != nil {
				t.Fatalf("INVITE: %v", err)
			}
			if !strings.Contains(string(call.Answer), "y=0418000001") || !d.received("ACK "+channel+" "+up, time.Second) {
				t.Fatalf("answer %q, device got %v", call.Answer, d.got)
			}
			if err := call.Info(ctx, "Application/MANSRTSP", []byte("PAUSE RTSP/1.0\r\nCSeq: 1\r\n\r\n")); err != nil {
				t.Fatalf("INFO: %v", err)
			}
			if err := call.Bye(ctx); err != nil {
				t.Fatalf("BYE: %v", err)
			}
			select {
			case <-call.Done():
			default:
				t.Error("Done not closed after Bye")
			}
			if call.EndedByDevice() {
				t.Error("EndedByDevice after our BYE")
			}
			if !d.received("BYE "+channel+" "+up, time.Second) {
				t.Fatalf("BYE not received: %v", d.got)
			}

			d.mu.Lock()
			d.inviteTo = 404
			d.mu.Unlock()
			_, err = s.Invite(ctx, id, channel, "x", []byte("v=0\r\n"))
			var se *StatusError
			if !errors.As(err, &se) || se.Code != 404 {
				t.Fatalf("refused INVITE: %v", err)
			}
		})
	}
	if err := s.Message(t.Context(), "44180000001189999999", "", nil); !errors.Is(err, ErrNotOnline) {
		t.Errorf("MESSAGE to an unknown device: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_ = ctx
}

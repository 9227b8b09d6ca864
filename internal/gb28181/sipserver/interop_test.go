package sipserver

// Interoperability: the server against SIP implementations nobody here
// wrote — SIPp (Debian sip-tester) and sipsak — and against malformed
// input written to raw UDP and TCP sockets.
//
// make test-deps installs sipp and sipsak. Without them the tests that need
// them skip, unless XUELIANG_REQUIRE_TOOLS is set (CI sets it: there a
// missing tool is a failure, not a silent skip).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// The IDs of the interop tests (GB/T 28181-2022 Annex E: 20 digits; the
// realm is the platform's first 10).
const (
	interopPlatform = "44010200492000000001"
	interopRealm    = "4401020049"
	interopPassword = "12345678"
)

// startInteropServer starts a server for the interop tests. Its keepalive
// interval is long enough that no device goes offline during a test.
func startInteropServer(t *testing.T, edit func(*Config)) (*Server, chan Event) {
	t.Helper()
	return startServer(t, func(c *Config) {
		c.ID = interopPlatform
		c.Password = interopPassword
		c.KeepaliveInterval = time.Minute
		if edit != nil {
			edit(c)
		}
	})
}

// requireTool returns the path of an external tool, or skips the test when
// it is missing and XUELIANG_REQUIRE_TOOLS is unset.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed: make test-deps installs it (Debian package %s)", name, debianPackage)
	if os.Getenv("XUELIANG_REQUIRE_TOOLS") != "" {
		t.Fatal(msg + "; XUELIANG_REQUIRE_TOOLS is set, so this is a failure")
	}
	t.Skip(msg)
	return ""
}

// freePort returns a port free on 127.0.0.1 for network ("udp" or "tcp").
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readIfExists(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(none)"
	}
	return string(b)
}

// runSipp runs one call of a scenario of testdata/interop against s over
// network ("udp" or "tcp") and fails the test, with SIPp's output, its
// errors and every message it exchanged, unless SIPp exits 0 (every call
// successful). It returns SIPp's log (the <log> actions).
func runSipp(t *testing.T, s *Server, network, scenario string, args ...string) string {
	t.Helper()
	sipp := requireTool(t, "sipp", "sip-tester")
	sf, err := filepath.Abs(filepath.Join("testdata", "interop", scenario))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	errFile, msgFile, logFile := filepath.Join(dir, "errors.log"), filepath.Join(dir, "messages.log"), filepath.Join(dir, "logs.log")
	transport := map[string]string{"udp": "u1", "tcp": "t1"}[network]
	full := append([]string{
		"-sf", sf, "-m", "1", "-t", transport,
		"-i", "127.0.0.1", "-p", strconv.Itoa(freePort(t, network)),
		"-key", "platform", interopPlatform, "-key", "realm", interopRealm,
		"-nostdin", "-timeout", "5", "-timeout_error",
		"-trace_err", "-error_file", errFile,
		"-trace_msg", "-message_file", msgFile,
		"-trace_logs", "-log_file", logFile,
	}, args...)
	full = append(full, s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, full...)
	cmd.Dir = dir // SIPp writes nothing into the source tree
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sipp %s over %s failed after %v (%v); SIPp exits non-zero when a call fails\n"+
			"command: sipp %s\n--- output:\n%s\n--- errors:\n%s\n--- messages:\n%s",
			scenario, network, time.Since(start).Round(time.Millisecond), err,
			strings.Join(full, " "), out, readIfExists(errFile), readIfExists(msgFile))
	}
	return readIfExists(logFile)
}

// TestSIPp runs a GB/T 28181 device's life against the server with SIPp,
// over UDP and TCP, and checks the server's view after each step.
func TestSIPp(t *testing.T) {
	requireTool(t, "sipp", "sip-tester")
	for _, tc := range []struct{ network, device string }{
		{"udp", "44010200491320000001"},
		{"tcp", "44010200491320000002"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			s, evs := startInteropServer(t, nil)
			dev := []string{"-key", "device", tc.device, "-au", tc.device}
			transport := strings.ToUpper(tc.network)

			// A keepalive before registering: 403, so that the device
			// registers.
			runSipp(t, s, tc.network, "keepalive_unregistered.xml", dev...)
			if _, ok := s.Device(tc.device); ok {
				t.Fatal("a device that never registered is listed")
			}

			// A wrong password: 403, and nothing is known of the device.
			runSipp(t, s, tc.network, "register_wrong_password.xml", append(dev, "-ap", "wrong-password", "-key", "expires", "3600")...)
			if _, ok := s.Device(tc.device); ok {
				t.Fatal("a device refused for its password is listed")
			}

			// 401 with an MD5 challenge, then 200 with the Date header
			// (the scenario checks its layout with a regexp and logs it).
			log := runSipp(t, s, tc.network, "register.xml", append(dev, "-ap", interopPassword, "-key", "expires", "3600")...)
			m := regexp.MustCompile(`Date:\s+(\S+)`).FindStringSubmatch(log)
			if m == nil {
				t.Fatalf("SIPp logged no Date header:\n%s", log)
			}
			if d, err := time.ParseInLocation(DateLayout, m[1], time.Local); err != nil || time.Since(d).Abs() > 5*time.Second {
				t.Errorf("Date %q is not the platform's clock in GB/T 28181 layout: %v", m[1], err)
			}
			if e := next(t, evs, time.Second); e.DeviceID != tc.device || e.State != StateOnline || e.Reason != "registered" {
				t.Errorf("event %+v, want %s online (registered)", e, tc.device)
			}
			d, ok := s.Device(tc.device)
			if !ok || d.State != StateOnline || d.Transport != transport || time.Until(d.Expires) < 3590*time.Second {
				t.Fatalf("after REGISTER over %s: %+v (listed %v), want online over %s for an hour", transport, d, ok, transport)
			}

			// A keepalive: 200, and the server notes it.
			before := time.Now()
			runSipp(t, s, tc.network, "keepalive.xml", dev...)
			if d, _ := s.Device(tc.device); d.LastKeepalive.Before(before) || d.State != StateOnline {
				t.Errorf("after a keepalive: %+v, want online with a keepalive after %v", d, before)
			}

			// Expires: 0 unregisters.
			runSipp(t, s, tc.network, "register.xml", append(dev, "-ap", interopPassword, "-key", "expires", "0")...)
			if e := next(t, evs, time.Second); e.DeviceID != tc.device || e.State != StateOffline || e.Reason != "unregistered" {
				t.Errorf("event %+v, want %s offline (unregistered)", e, tc.device)
			}
			if d, _ := s.Device(tc.device); d.State != StateOffline {
				t.Errorf("after unregistering: %+v", d)
			}
			// And its keepalives are refused again.
			runSipp(t, s, tc.network, "keepalive_unregistered.xml", dev...)
		})
	}
}

// runSipsak runs sipsak -vvv (every message in full) with args and returns
// its exit code and output. sipsak exits 0 on a 2xx, 1 on another final answer, 3 on none.
func runSipsak(t *testing.T, args ...string) (int, string) {
	t.Helper()
	sipsak := requireTool(t, "sipsak", "sipsak")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipsak, append([]string{"-vvv"}, args...)...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("sipsak %s: %v\n%s", strings.Join(args, " "), err, out)
	return 0, ""
}

// sipsakFile writes a request for sipsak -f: the lines joined by CRLF, and
// the body with its Content-Length. sipsak adds its Via header.
func sipsakFile(t *testing.T, body string, lines ...string) string {
	t.Helper()
	msg := strings.Join(lines, "\r\n") + "\r\n"
	if body != "" {
		msg += "Content-Type: Application/MANSCDP+xml\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	f := filepath.Join(t.TempDir(), "request.sip")
	if err := os.WriteFile(f, []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func keepaliveBody(device string) string {
	return `<?xml version="1.0"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>` + device + `</DeviceID><Status>OK</Status></Notify>`
}

// TestSipsak registers with sipsak's digest implementation and sends it
// OPTIONS, MESSAGEs and malformed requests.
func TestSipsak(t *testing.T) {
	requireTool(t, "sipsak", "sipsak")
	got := make(chan *manscdp.Message, 10)
	s, evs := startInteropServer(t, func(c *Config) {
		c.OnMessage = func(_ string, m *manscdp.Message) { got <- m }
	})
	_, port, _ := net.SplitHostPort(s.Addr())
	platformURI := "sip:" + interopPlatform + "@127.0.0.1:" + port

	expect := func(t *testing.T, wantExit int, wantStatus string, args ...string) string {
		t.Helper()
		code, out := runSipsak(t, args...)
		if code != wantExit || !strings.Contains(out, "SIP/2.0 "+wantStatus) {
			t.Fatalf("sipsak %s: exit %d, want %d and a %q answer\n%s", strings.Join(args, " "), code, wantExit, wantStatus, out)
		}
		return out
	}

	t.Run("OPTIONS", func(t *testing.T) {
		// The platform takes no calls, so no OPTIONS either (RFC 3261
		// §11.2): 405, with the Allow header that §8.2.1 requires.
		out := expect(t, 1, "405", "-s", platformURI)
		if !regexp.MustCompile(`(?m)^Allow: .*REGISTER`).MatchString(out) {
			t.Errorf("405 without an Allow header listing REGISTER:\n%s", out)
		}
	})

	for _, tc := range []struct{ network, device string }{
		{"udp", "44010200491320000011"},
		{"tcp", "44010200491320000012"},
	} {
		t.Run("REGISTER/"+tc.network, func(t *testing.T) {
			deviceURI := "sip:" + tc.device + "@127.0.0.1:" + port
			// sipsak authenticates as "<user>@" (its own quirk); the
			// server verifies the digest as sent.
			expect(t, 1, "403", "-U", "-i", "-E", tc.network, "-s", deviceURI, "-a", "wrong-password", "-x", "3600")
			if _, ok := s.Device(tc.device); ok {
				t.Fatal("a device refused for its password is listed")
			}
			out := expect(t, 0, "200", "-U", "-i", "-E", tc.network, "-s", deviceURI, "-a", interopPassword, "-x", "3600")
			if !regexp.MustCompile(`(?m)^Date: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\r?$`).MatchString(out) {
				t.Errorf("no GB/T 28181 Date header in the 200 OK:\n%s", out)
			}
			if e := next(t, evs, time.Second); e.DeviceID != tc.device || e.State != StateOnline {
				t.Errorf("event %+v", e)
			}
			if d, _ := s.Device(tc.device); d.State != StateOnline || d.Transport != strings.ToUpper(tc.network) {
				t.Errorf("after sipsak's REGISTER: %+v", d)
			}

			// MESSAGEs through -f (sipsak's own message mode, -M,
			// crashes in 0.9.8.1 before it sends anything).
			msg := func(body string) string {
				return sipsakFile(t, body,
					"MESSAGE sip:"+interopPlatform+"@"+interopRealm+" SIP/2.0",
					"From: <sip:"+tc.device+"@"+interopRealm+">;tag=sipsak"+tc.network,
					"To: <sip:"+interopPlatform+"@"+interopRealm+">",
					"Call-ID: sipsak-"+strconv.FormatInt(time.Now().UnixNano(), 36)+"@127.0.0.1",
					"CSeq: 1 MESSAGE", "Max-Forwards: 70")
			}
			expect(t, 0, "200", "-E", tc.network, "-s", platformURI, "-f", msg(keepaliveBody(tc.device)))
			// A body that is not XML, and XML that is not MANSCDP: 400.
			expect(t, 1, "400", "-E", tc.network, "-s", platformURI, "-f", msg("hello, platform"))
			expect(t, 1, "400", "-E", tc.network, "-s", platformURI, "-f", msg(`<?xml version="1.0"?><Hello><CmdType>Keepalive</CmdType></Hello>`))
			// MANSCDP of a CmdType the server does not know: it is the
			// caller's (Config.OnMessage), so 200.
			expect(t, 0, "200", "-E", tc.network, "-s", platformURI, "-f",
				msg(`<?xml version="1.0"?><Notify><CmdType>VendorHeartbeat</CmdType><SN>2</SN><DeviceID>`+tc.device+`</DeviceID></Notify>`))
			select {
			case m := <-got:
				if m.CmdType != "VendorHeartbeat" {
					t.Errorf("OnMessage got %v", m)
				}
			case <-time.After(time.Second):
				t.Error("the MESSAGE of an unknown CmdType did not reach OnMessage")
			}
			// A REGISTER without From: 400.
			expect(t, 1, "400", "-E", tc.network, "-s", platformURI, "-f", sipsakFile(t, "",
				"REGISTER sip:"+interopPlatform+"@"+interopRealm+" SIP/2.0",
				"To: <sip:"+tc.device+"@"+interopRealm+">",
				"Call-ID: sipsak-nofrom@127.0.0.1", "CSeq: 1 REGISTER", "Max-Forwards: 70", "Expires: 3600"))

			// Unregister.
			expect(t, 0, "200", "-U", "-i", "-E", tc.network, "-s", deviceURI, "-a", interopPassword, "-x", "0")
			if e := next(t, evs, time.Second); e.DeviceID != tc.device || e.State != StateOffline || e.Reason != "unregistered" {
				t.Errorf("event %+v", e)
			}
			expect(t, 1, "403", "-E", tc.network, "-s", platformURI, "-f", msg(keepaliveBody(tc.device)))
		})
	}
}

// rawConn is a socket that writes bytes and reads SIP responses.
type rawConn struct {
	t       *testing.T
	network string
	conn    net.Conn
	stream  *sip.ParserStream // TCP
	queue   []*sip.Response
}

func dialRaw(t *testing.T, network, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, network: network, conn: c, stream: sip.NewParser().NewSIPStream()}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next response within d, or nil and the reason there is
// none: a timeout or, on TCP, the server closing the connection (io.EOF).
func (c *rawConn) read(d time.Duration) (*sip.Response, error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 65535)
	for len(c.queue) == 0 {
		c.conn.SetReadDeadline(deadline)
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil, err
		}
		var msgs []sip.Message
		if c.network == "udp" {
			m, err := sip.ParseMessage(buf[:n])
			if err != nil {
				c.t.Fatalf("the server sent a datagram that does not parse: %v\n%q", err, buf[:n])
			}
			msgs = append(msgs, m)
		} else {
			err := c.stream.ParseSIPStream(buf[:n], func(m sip.Message) { msgs = append(msgs, m) })
			if err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
				c.t.Fatalf("the server sent a stream that does not parse: %v\n%q", err, buf[:n])
			}
		}
		for _, m := range msgs {
			res, ok := m.(*sip.Response)
			if !ok {
				c.t.Fatalf("the server sent a request: %v", m)
			}
			c.queue = append(c.queue, res)
		}
	}
	res := c.queue[0]
	c.queue = c.queue[1:]
	return res, nil
}

// request builds a request from this socket: the start line, a Via with the
// socket's address, the headers, and the body with its Content-Length
// unless the headers have one.
func (c *rawConn) request(startLine, body string, headers ...string) []byte {
	via := fmt.Sprintf("Via: SIP/2.0/%s %s;rport;branch=z9hG4bK%d", strings.ToUpper(c.network), c.conn.LocalAddr(), time.Now().UnixNano())
	var b strings.Builder
	b.WriteString(startLine + "\r\n" + via + "\r\n")
	hasLength := false
	for _, h := range headers {
		b.WriteString(h + "\r\n")
		hasLength = hasLength || strings.HasPrefix(strings.ToLower(h), "content-length:")
	}
	if !hasLength {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

// register returns a REGISTER of device, with the extra headers.
func (c *rawConn) register(device, callID string, extra ...string) []byte {
	return c.request("REGISTER sip:"+interopPlatform+"@"+interopRealm+" SIP/2.0", "", append([]string{
		"From: <sip:" + device + "@" + interopRealm + ">;tag=raw1",
		"To: <sip:" + device + "@" + interopRealm + ">",
		"Call-ID: " + callID,
		"CSeq: 1 REGISTER",
		"Contact: <sip:" + device + "@" + c.conn.LocalAddr().String() + ">",
		"Max-Forwards: 70",
		"Expires: 3600",
	}, extra...)...)
}

// login registers device: REGISTER, the challenge, REGISTER with its
// digest (computed by github.com/icholy/digest), 200.
func (c *rawConn) login(device string) {
	c.t.Helper()
	callID := fmt.Sprintf("login-%d@127.0.0.1", time.Now().UnixNano())
	c.write(c.register(device, callID))
	res, err := c.read(2 * time.Second)
	if err != nil || res.StatusCode != 401 || res.GetHeader("WWW-Authenticate") == nil {
		c.t.Fatalf("REGISTER: %v, %v; want a 401 challenge", res, err)
	}
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		c.t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:" + interopPlatform + "@" + interopRealm,
		Username: device, Password: interopPassword})
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(c.register(device, callID, "Authorization: "+cred.String()))
	if res, err = c.read(2 * time.Second); err != nil || res.StatusCode != 200 {
		c.t.Fatalf("REGISTER with credentials: %v, %v; want 200", res, err)
	}
}

// message returns a MESSAGE of device with a MANSCDP body.
func (c *rawConn) message(device, callID, body string, extra ...string) []byte {
	return c.request("MESSAGE sip:"+interopPlatform+"@"+interopRealm+" SIP/2.0", body, append([]string{
		"From: <sip:" + device + "@" + interopRealm + ">;tag=raw2",
		"To: <sip:" + interopPlatform + "@" + interopRealm + ">",
		"Call-ID: " + callID,
		"CSeq: 1 MESSAGE",
		"Content-Type: Application/MANSCDP+xml",
		"Max-Forwards: 70",
	}, extra...)...)
}

// TestMalformedInput writes malformed requests to raw sockets: each gets a
// 4xx, or is dropped where SIP has nobody to answer (RFC 3261 §18.3), and
// the server serves a valid REGISTER afterwards.
func TestMalformedInput(t *testing.T) {
	got := make(chan *manscdp.Message, 10)
	s, _ := startInteropServer(t, func(c *Config) {
		c.OnMessage = func(_ string, m *manscdp.Message) { got <- m }
	})
	const registered, stranger = "44010200491320000021", "44010200491320000022"
	dialRaw(t, "udp", s.Addr()).login(registered)
	keepalive := keepaliveBody(registered)

	// What a malformed request gets instead of an answer.
	const (
		dropped = 0  // nothing (the connection stays open)
		closed  = -1 // TCP: the server closes the connection, a framing error leaving no next message to find
		notOver = -2 // the request cannot be sent over this transport
	)
	// noAnswer is the wait that tells a dropped request from an answered
	// one: the server answers in a millisecond on loopback.
	const noAnswer = 300 * time.Millisecond

	for _, tc := range []struct {
		name string
		// send returns the request and, for TCP, the rest of it that
		// completes it (nil when it is complete).
		send     func(c *rawConn, callID string) (req, rest []byte)
		udp, tcp int    // the answer's status, or dropped, closed, notOver
		reason   string // in the answer's reason phrase
	}{{
		name: "garbage",
		send: func(c *rawConn, _ string) ([]byte, []byte) {
			return []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not SIP at all\r\n\r\n"), nil
		},
		udp: dropped, tcp: closed,
	}, {
		name: "REGISTER without From",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return removeHeader(c.register(registered, id), "From"), nil
		},
		udp: 400, tcp: 400, reason: "From",
	}, {
		name: "REGISTER without CSeq",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return removeHeader(c.register(registered, id), "CSeq"), nil
		},
		udp: 400, tcp: 400,
	}, {
		name: "truncated in the headers",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			b := c.register(registered, id)
			return b[:len(b)/2], b[len(b)/2:]
		},
		// A datagram is a whole message, and this one is cut; on TCP the
		// rest may come, and then it is served.
		udp: dropped, tcp: 401,
	}, {
		name: "Content-Length larger than the body",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.message(registered, id, keepalive, fmt.Sprintf("Content-Length: %d", len(keepalive)+100)),
				bytes.Repeat([]byte(" "), 100)
		},
		// RFC 3261 §18.3 asks for a 400 over UDP; sipgo drops it. On TCP
		// the rest of the body may come.
		udp: dropped, tcp: 200,
	}, {
		name: "negative Content-Length",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.message(registered, id, keepalive, "Content-Length: -5"), nil
		},
		udp: dropped, tcp: closed,
	}, {
		name: "huge header (20 kB)",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.register(registered, id, "Subject: "+strings.Repeat("x", 20<<10)), nil
		},
		udp: 401, tcp: 401, // within every limit: served as usual
	}, {
		name: "huge header (40 kB)",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.register(registered, id, "Subject: "+strings.Repeat("x", 40<<10)), nil
		},
		// The server reads whole 64 kB datagrams (sipgo's default 32 kB
		// would cut this one), and TCP carries up to 64 kB a message.
		udp: 401, tcp: 401,
	}, {
		name: "huge header (70 kB)",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.register(registered, id, "Subject: "+strings.Repeat("x", 70<<10)), nil
		},
		// More than a datagram carries; more than sipgo's 64 kB a message.
		udp: notOver, tcp: closed,
	}, {
		name: "Authorization that is not digest",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.register(registered, id, "Authorization: Basic NDQwMTAyMDA0OTEzMjAwMDAwMjE6MTIzNDU2Nzg="), nil
		},
		udp: 400, tcp: 400, reason: "Authorization",
	}, {
		name: "digest Authorization with a foreign nonce",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.register(registered, id, `Authorization: Digest username="`+registered+`", realm="`+interopRealm+
				`", nonce="0123456789abcdef", uri="sip:`+interopPlatform+`@`+interopRealm+`", response="00000000000000000000000000000000", algorithm=MD5`), nil
		},
		udp: 401, tcp: 401, // challenged again (stale)
	}, {
		name: "MESSAGE with a body that is not XML",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.message(registered, id, `{"CmdType": "Keepalive"}`), nil
		},
		udp: 400, tcp: 400,
	}, {
		name: "MESSAGE with XML that is not MANSCDP",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.message(registered, id, `<?xml version="1.0"?><Hello><CmdType>Keepalive</CmdType></Hello>`), nil
		},
		udp: 400, tcp: 400,
	}, {
		name: "MESSAGE with MANSCDP without CmdType",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.message(registered, id, `<?xml version="1.0"?><Notify><SN>1</SN><DeviceID>`+registered+`</DeviceID></Notify>`), nil
		},
		udp: 400, tcp: 400, reason: "CmdType",
	}, {
		name: "MESSAGE with an unknown CmdType from a registered device",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.message(registered, id, `<?xml version="1.0"?><Notify><CmdType>NoSuchCmd</CmdType><SN>3</SN><DeviceID>`+registered+`</DeviceID></Notify>`), nil
		},
		udp: 200, tcp: 200, // the caller's to judge (Config.OnMessage)
	}, {
		name: "MESSAGE with an unknown CmdType from an unregistered device",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.message(stranger, id, `<?xml version="1.0"?><Notify><CmdType>NoSuchCmd</CmdType><SN>3</SN><DeviceID>`+stranger+`</DeviceID></Notify>`), nil
		},
		udp: 403, tcp: 403,
	}, {
		name: "unknown method",
		send: func(c *rawConn, id string) ([]byte, []byte) {
			return c.request("FROBNICATE sip:"+interopPlatform+"@"+interopRealm+" SIP/2.0", "",
				"From: <sip:"+registered+"@"+interopRealm+">;tag=raw3", "To: <sip:"+interopPlatform+"@"+interopRealm+">",
				"Call-ID: "+id, "CSeq: 1 FROBNICATE", "Max-Forwards: 70"), nil
		},
		udp: 405, tcp: 405,
	}} {
		for _, network := range []string{"udp", "tcp"} {
			want := map[string]int{"udp": tc.udp, "tcp": tc.tcp}[network]
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				if want == notOver {
					t.Skipf("cannot be sent over %s", network)
				}
				c := dialRaw(t, network, s.Addr())
				callID := fmt.Sprintf("raw-%d@127.0.0.1", time.Now().UnixNano())
				req, rest := tc.send(c, callID)
				c.write(req)
				if network == "tcp" && rest != nil {
					// Nothing until the rest comes.
					if res, err := c.read(noAnswer); !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("got %v, %v before the rest of the message", res, err)
					}
					c.write(rest)
				}
				res, err := c.read(noAnswer)
				switch want {
				case closed:
					if res != nil || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("got %v, %v; want the server to close the connection", res, err)
					}
					c = dialRaw(t, network, s.Addr()) // for the check below
				case dropped:
					if res != nil {
						t.Fatalf("got %d %s; want no answer", res.StatusCode, res.Reason)
					}
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("got %v; want no answer on an open connection", err)
					}
				default:
					if err != nil {
						t.Fatalf("no answer, want %d: %v", want, err)
					}
					if res.StatusCode != want || res.CallID() == nil || res.CallID().Value() != callID || !strings.Contains(res.Reason, tc.reason) {
						t.Fatalf("answer %d %q (Call-ID %v), want %d (reason with %q) for Call-ID %s",
							res.StatusCode, res.Reason, res.CallID(), want, tc.reason, callID)
					}
					if allow := res.GetHeader("Allow"); want == 405 && (allow == nil || !strings.Contains(allow.Value(), "REGISTER")) {
						t.Errorf("405 with Allow %v, want the methods taken (RFC 3261 §8.2.1)", allow)
					}
				}
				// The server serves a valid request afterwards.
				id := fmt.Sprintf("raw-after-%d@127.0.0.1", time.Now().UnixNano())
				c.write(c.register(registered, id))
				res, err = c.read(2 * time.Second)
				if err != nil || res.StatusCode != 401 || res.CallID().Value() != id {
					t.Fatalf("a valid REGISTER afterwards: %v, %v; want 401 for Call-ID %s", res, err, id)
				}
			})
		}
	}
	// The unknown CmdTypes reached the caller, twice (UDP and TCP).
	for range 2 {
		select {
		case m := <-got:
			if m.CmdType != "NoSuchCmd" {
				t.Errorf("OnMessage got %v", m)
			}
		default:
			t.Error("a MESSAGE of an unknown CmdType did not reach OnMessage")
		}
	}
	// And the device is still registered, and registers again.
	if d, _ := s.Device(registered); d.State != StateOnline {
		t.Errorf("device after the malformed input: %+v", d)
	}
	dialRaw(t, "tcp", s.Addr()).login(registered)
}

// removeHeader removes the header name from a request.
func removeHeader(req []byte, name string) []byte {
	var out [][]byte
	for _, l := range bytes.Split(req, []byte("\r\n")) {
		if !bytes.HasPrefix(bytes.ToLower(l), []byte(strings.ToLower(name)+":")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\r\n"))
}

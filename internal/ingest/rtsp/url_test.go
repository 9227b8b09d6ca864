package rtsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"github.com/xueliang/xueliang/internal/media"
)

// urlCases are the ValidateURL table and the seeds of FuzzValidateURL. err
// is a prefix of the expected error, empty for a valid URL.
var urlCases = []struct {
	name string
	url  string
	err  string
}{
	{name: "plain", url: "rtsp://192.168.1.10/Streaming/Channels/101"},
	{name: "port", url: "rtsp://cam.local:8554/live"},
	{name: "rtsps", url: "rtsps://cam.example.com:322/live"},
	{name: "upper-case scheme", url: "RTSP://cam/live"},
	{name: "credentials", url: "rtsp://admin:12345@192.168.1.10:554/h264"},
	{name: "password with at sign", url: "rtsp://admin:p@ss@192.168.1.10/h264"},
	{name: "password percent-encoded", url: "rtsp://admin:50%25off@192.168.1.10/h264"},
	{name: "password with bare percent", url: "rtsp://admin:50%off@192.168.1.10/h264", err: "rtsp: url: invalid URL escape"},
	{name: "query", url: "rtsp://cam/cam/realmonitor?channel=1&subtype=0"},
	{name: "ipv6", url: "rtsp://[fe80::1]:554/live"},
	{name: "no path", url: "rtsp://cam"},
	{name: "empty", url: "", err: "rtsp: url: empty"},
	{name: "http", url: "http://cam/live", err: "rtsp: url: scheme must be rtsp or rtsps"},
	{name: "rtmp", url: "rtmp://cam/live", err: "rtsp: url: scheme must be rtsp or rtsps"},
	{name: "no scheme", url: "cam/live", err: "rtsp: url: scheme must be rtsp or rtsps"},
	{name: "host only", url: "192.168.1.10:554", err: "rtsp: url: scheme must be rtsp or rtsps"},
	{name: "missing host", url: "rtsp:///live", err: "rtsp: url: missing host"},
	{name: "credentials without host", url: "rtsp://admin:secret@/live", err: "rtsp: url: missing host"},
	{name: "port zero", url: "rtsp://cam:0/live", err: "rtsp: url: invalid port"},
	{name: "port too large", url: "rtsp://cam:65536/live", err: "rtsp: url: invalid port"},
	{name: "port not a number", url: "rtsp://cam:http/live", err: "rtsp: url: invalid port"},
	{name: "space", url: "rtsp://cam/live stream", err: "rtsp: url: contains spaces"},
	{name: "newline", url: "rtsp://cam/live\n", err: "rtsp: url: contains spaces"},
	{name: "fragment", url: "rtsp://cam/live#x", err: "rtsp: url: URLs with fragments"},
	{name: "bad ipv6", url: "rtsp://[fe80::1/live", err: "rtsp: url: missing ']'"},
}

func TestValidateURL(t *testing.T) {
	for _, tc := range urlCases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateURL(tc.url)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("ValidateURL(%q) = %v, want nil", tc.url, err)
			case tc.err != "" && err == nil:
				t.Fatalf("ValidateURL(%q) = nil, want %q", tc.url, tc.err)
			case tc.err != "" && !strings.HasPrefix(err.Error(), tc.err):
				t.Fatalf("ValidateURL(%q) = %q, want prefix %q", tc.url, err, tc.err)
			}
		})
	}
}

// FuzzValidateURL checks that ValidateURL never panics, accepts only what the
// client can dial, and never puts a password in its error.
func FuzzValidateURL(f *testing.F) {
	for _, tc := range urlCases {
		f.Add(tc.url)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseURL(raw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "rtsp: url: ") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			// The password must not leak, unless it also appears in the
			// URL outside the user info (the error may quote a port).
			if pu, perr := url.Parse(raw); perr == nil && pu.User != nil {
				if pass, ok := pu.User.Password(); ok && len(pass) >= 4 &&
					strings.Contains(err.Error(), pass) && !strings.Contains(pu.Host+pu.Path+pu.RawQuery, pass) {
					t.Fatalf("error %q leaks password %q", err, pass)
				}
			}
			return
		}
		if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if u.Hostname() == "" {
			t.Fatalf("accepted %q without host", raw)
		}
		if _, err := NewSource(Config{URL: raw}); err != nil {
			t.Fatalf("ValidateURL accepts %q but NewSource says %v", raw, err)
		}
		if pass, ok := u.User.Password(); ok && len(pass) >= 4 && strings.Contains(redact(u), pass) && !strings.Contains(u.Host+u.Path, pass) {
			t.Fatalf("redacted URL %q shows the password", redact(u))
		}
	})
}

func TestClassify(t *testing.T) {
	dialErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		name      string
		err       error
		withCreds bool
		reason    media.Reason
		words     []string
	}{
		{name: "401 without credentials", err: liberrors.ErrClientBadStatusCode{Code: base.StatusUnauthorized, Message: "Unauthorized"},
			reason: media.ReasonAuthFailed, words: []string{"requires credentials", "401"}},
		{name: "401 with credentials", err: liberrors.ErrClientBadStatusCode{Code: base.StatusUnauthorized, Message: "Unauthorized"},
			withCreds: true, reason: media.ReasonAuthFailed, words: []string{"credentials refused", "401"}},
		{name: "403", err: liberrors.ErrClientBadStatusCode{Code: base.StatusForbidden, Message: "Forbidden"},
			reason: media.ReasonAuthFailed, words: []string{"forbidden"}},
		{name: "bad WWW-Authenticate", err: liberrors.ErrClientAuthSetup{Err: errors.New("no supported method")},
			reason: media.ReasonAuthFailed},
		{name: "404", err: liberrors.ErrClientBadStatusCode{Code: base.StatusNotFound, Message: "Not Found"},
			reason: media.ReasonProtocol, words: []string{"stream not found on camera", "404"}},
		{name: "454", err: liberrors.ErrClientBadStatusCode{Code: base.StatusSessionNotFound, Message: "Session Not Found"},
			reason: media.ReasonProtocol, words: []string{"454"}},
		{name: "503", err: liberrors.ErrClientBadStatusCode{Code: base.StatusServiceUnavailable, Message: "Service Unavailable"},
			reason: media.ReasonProtocol, words: []string{"camera answered 503"}},
		{name: "teardown", err: liberrors.ErrClientUnhandledMethod{Method: base.Teardown},
			reason: media.ReasonClosed, words: []string{"TEARDOWN"}},
		{name: "other request", err: liberrors.ErrClientUnhandledMethod{Method: base.Announce}, reason: media.ReasonProtocol},
		{name: "eof", err: io.EOF, reason: media.ReasonClosed, words: []string{"connection closed"}},
		{name: "unexpected eof", err: fmt.Errorf("read: %w", io.ErrUnexpectedEOF), reason: media.ReasonClosed},
		{name: "reset", err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, reason: media.ReasonClosed},
		{name: "refused", err: dialErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)), reason: media.ReasonUnreachable},
		{name: "no route", err: dialErr(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), reason: media.ReasonUnreachable},
		{name: "network unreachable", err: dialErr(os.NewSyscallError("connect", syscall.ENETUNREACH)), reason: media.ReasonUnreachable},
		{name: "dns", err: dialErr(&net.DNSError{Err: "no such host", Name: "cam", IsNotFound: true}), reason: media.ReasonUnreachable},
		{name: "dns timeout", err: dialErr(&net.DNSError{Err: "i/o timeout", Name: "cam", IsTimeout: true}), reason: media.ReasonUnreachable},
		{name: "dial timeout", err: dialErr(context.DeadlineExceeded), reason: media.ReasonTimeout},
		{name: "request timed out", err: liberrors.ErrClientRequestTimedOut{}, reason: media.ReasonTimeout, words: []string{"no answer"}},
		{name: "tcp timeout", err: liberrors.ErrClientTCPTimeout{}, reason: media.ReasonTimeout},
		{name: "udp timeout", err: liberrors.ErrClientUDPTimeout{}, reason: media.ReasonTimeout},
		{name: "bad sdp", err: liberrors.ErrClientSDPInvalid{Err: errors.New("bad")}, reason: media.ReasonProtocol},
		{name: "already classified", err: media.Fail(media.ReasonNoVideo, errors.New("rtsp: no video")), reason: media.ReasonNoVideo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("describe", tc.err, tc.withCreds)
			if got := media.ReasonOf(err); got != tc.reason {
				t.Fatalf("reason = %s, want %s (err: %v)", got, tc.reason, err)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
			if tc.reason != media.ReasonNoVideo && !strings.Contains(err.Error(), "rtsp: describe: ") {
				t.Errorf("err = %q, want the step", err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

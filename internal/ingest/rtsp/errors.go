package rtsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"github.com/xueliang/xueliang/internal/media"
)

// classify turns an error of the gortsplib client or of the network into a
// *media.SourceError whose Reason tells operators what went wrong. step names
// what was being done ("describe", "setup", "play", "read") and prefixes the
// message; withCreds says whether the URL carried credentials, which words
// a 401 deserves. An error that is already a *media.SourceError is returned as
// is.
//
// The mapping, checked in this order:
//
//	401 Unauthorized, 403 Forbidden, unusable WWW-Authenticate  → auth_failed
//	404 Not Found                                               → protocol_error, "stream not found on camera"
//	any other non-2xx status (454, 503, ...)                    → protocol_error, with the status
//	TEARDOWN or another request sent by the camera               → source_closed (TEARDOWN) / protocol_error
//	EOF, connection reset, broken pipe                          → source_closed
//	DNS failure, connection refused, no route to host/network   → unreachable
//	request timed out, TCP/UDP read timeout, dial timeout       → timeout
//	any other dial error                                        → unreachable
//	anything else                                               → protocol_error
func classify(step string, err error, withCreds bool) error {
	if _, ok := errors.AsType[*media.SourceError](err); ok {
		return err
	}
	reason, what := reasonOf(err, withCreds)
	if what != "" {
		return media.Fail(reason, fmt.Errorf("rtsp: %s: %s: %w", step, what, err))
	}
	return media.Fail(reason, fmt.Errorf("rtsp: %s: %w", step, err))
}

// reasonOf returns the Reason for err and, when the bare error would not say
// it plainly, a few words for people.
func reasonOf(err error, withCreds bool) (media.Reason, string) {
	if bs, ok := errors.AsType[liberrors.ErrClientBadStatusCode](err); ok {
		switch bs.Code {
		case base.StatusUnauthorized:
			if withCreds {
				return media.ReasonAuthFailed, "credentials refused"
			}
			return media.ReasonAuthFailed, "camera requires credentials and the url has none"
		case base.StatusForbidden:
			return media.ReasonAuthFailed, "access forbidden"
		case base.StatusNotFound:
			return media.ReasonProtocol, "stream not found on camera"
		default:
			return media.ReasonProtocol, fmt.Sprintf("camera answered %d", bs.Code)
		}
	}
	if _, ok := errors.AsType[liberrors.ErrClientAuthSetup](err); ok {
		return media.ReasonAuthFailed, ""
	}
	if um, ok := errors.AsType[liberrors.ErrClientUnhandledMethod](err); ok {
		if um.Method == base.Teardown {
			return media.ReasonClosed, "camera sent TEARDOWN"
		}
		return media.ReasonProtocol, ""
	}
	if _, ok := errors.AsType[liberrors.ErrClientTerminated](err); ok {
		// Only reported when the client is closed while ctx is not done.
		return media.ReasonClosed, ""
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED):
		return media.ReasonClosed, "connection closed by camera"
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return media.ReasonUnreachable, ""
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTDOWN),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EADDRNOTAVAIL):
		return media.ReasonUnreachable, ""
	}
	if _, ok := errors.AsType[liberrors.ErrClientRequestTimedOut](err); ok {
		return media.ReasonTimeout, "no answer"
	}
	if _, ok := errors.AsType[liberrors.ErrClientTCPTimeout](err); ok {
		return media.ReasonTimeout, "no packets"
	}
	if _, ok := errors.AsType[liberrors.ErrClientUDPTimeout](err); ok {
		return media.ReasonTimeout, "no packets"
	}
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
		return media.ReasonTimeout, ""
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		return media.ReasonUnreachable, ""
	}
	return media.ReasonProtocol, ""
}

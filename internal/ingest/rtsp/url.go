package rtsp

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// ValidateURL reports whether raw is a URL that a Source can pull from: an
// rtsp:// or rtsps:// URL with a host, an optional port in 1-65535, optional
// user:password@ credentials, and no fragment.
//
// The error says what is wrong in words an operator understands. It never
// contains the password, so it may be shown and logged as is.
func ValidateURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

// parseURL validates raw as ValidateURL does and returns it in the form the
// gortsplib client takes.
func parseURL(raw string) (*base.URL, error) {
	if raw == "" {
		return nil, errors.New("rtsp: url: empty")
	}
	if i := strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return nil, errors.New("rtsp: url: contains spaces or control characters")
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("rtsp: url: scheme must be rtsp or rtsps (want rtsp://host[:port]/path)")
	}
	switch strings.ToLower(scheme) {
	case "rtsp", "rtsps":
	default:
		return nil, errors.New("rtsp: url: scheme must be rtsp or rtsps")
	}

	u, err := base.ParseURL(raw)
	if err != nil {
		// A *url.Error quotes the whole URL, password included: keep only
		// the reason.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("rtsp: url: %w", err)
	}
	if u.Hostname() == "" {
		return nil, errors.New("rtsp: url: missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("rtsp: url: invalid port %q (want 1-65535)", p)
		}
	}
	return u, nil
}

// redact returns u for logs: the password, if any, is replaced by "xxxxx".
func redact(u *base.URL) string { return (*url.URL)(u).Redacted() }

package model

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// ChannelStatus is the streaming state of a channel, as seen by the platform.
type ChannelStatus string

// The channel statuses.
const (
	// ChannelStatusOffline: the source cannot be reached or the device is
	// not registered. Reason says why, when known.
	ChannelStatusOffline ChannelStatus = "offline"
	// ChannelStatusConnecting: a session to the source is being set up.
	ChannelStatusConnecting ChannelStatus = "connecting"
	// ChannelStatusOnline: media is flowing.
	ChannelStatusOnline ChannelStatus = "online"
	// ChannelStatusIdle: configured and reachable, but not streaming because
	// nobody needs it (the on-demand source was closed).
	ChannelStatusIdle ChannelStatus = "idle"
	// ChannelStatusError: the source answered but cannot be used (bad
	// credentials, unsupported codec, ...). Reason and LastError say why.
	ChannelStatusError ChannelStatus = "error"
)

// Valid reports whether s is one of the defined statuses.
func (s ChannelStatus) Valid() bool {
	switch s {
	case ChannelStatusOffline, ChannelStatusConnecting, ChannelStatusOnline,
		ChannelStatusIdle, ChannelStatusError:
		return true
	}
	return false
}

// String returns the status as stored and sent in JSON.
func (s ChannelStatus) String() string { return string(s) }

// ParseChannelStatus parses a status, ignoring case and surrounding space.
func ParseChannelStatus(s string) (ChannelStatus, error) {
	st := ChannelStatus(strings.ToLower(strings.TrimSpace(s)))
	if !st.Valid() {
		return "", fmt.Errorf("model: unknown channel status %q", s)
	}
	return st, nil
}

// Machine-readable reasons for a channel's status, for Channel.Reason. The
// list is open: other packages may report further codes of the same shape
// (see ValidReason), which the console shows verbatim.
const (
	ReasonUnreachable      = "unreachable"       // no route, connection refused, DNS failure
	ReasonAuthFailed       = "auth_failed"       // credentials rejected
	ReasonNoVideo          = "no_video"          // session up but no video track or no media
	ReasonCodecUnsupported = "codec_unsupported" // video codec the platform cannot carry
	ReasonTimeout          = "timeout"           // the source stopped answering
	ReasonSourceClosed     = "source_closed"     // the source ended the session
	ReasonDeviceOffline    = "device_offline"    // its GB/T 28181 device is not registered
)

// MaxReasonLen is the longest Reason, in bytes.
const MaxReasonLen = 64

// ValidReason reports whether r is a well-formed reason code: "" or a
// lowercase ASCII letter followed by lowercase letters, digits and
// underscores, at most MaxReasonLen bytes.
func ValidReason(r string) bool {
	if r == "" {
		return true
	}
	if len(r) > MaxReasonLen || r[0] < 'a' || r[0] > 'z' {
		return false
	}
	for i := 1; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// MaxLastErrorLen is the longest LastError, in bytes, that Validate accepts.
// The store truncates longer messages given to SetChannelStatus.
const MaxLastErrorLen = 1024

// The transports a channel may ask for when pulling its source.
const (
	TransportAuto = "auto" // try UDP, fall back to TCP (interleaved)
	TransportTCP  = "tcp"
	TransportUDP  = "udp"
	// TransportTCPActive is for GB/T 28181 channels: the platform
	// connects to the device for the media (TCP active); "tcp" has the
	// device connect to the platform (TCP passive). An RTSP channel treats
	// it as "tcp".
	TransportTCPActive = "tcp-active"
)

// Channel is one video source: a camera, or one input of an NVR or encoder.
type Channel struct {
	ID int64 `json:"id"`
	// Code is the 20-digit GB/T 28181 code, unique among channels.
	Code string `json:"code"`
	Name string `json:"name"`
	// DeviceID is the device the channel belongs to; 0 for none.
	DeviceID int64 `json:"device_id"`
	// DivisionCode places the channel in the tree; required.
	DivisionCode string `json:"division"`
	// SourceURL is the rtsp:// or rtsps:// URL to pull; "" for channels
	// that are reached another way (GB/T 28181 INVITE). It may carry
	// credentials: show RedactedSourceURL to people and logs.
	SourceURL string `json:"source_url"`
	// Transport is TransportAuto, TransportTCP, TransportUDP or
	// TransportTCPActive; "" means auto (for GB/T 28181 channels, the
	// configured gb28181.transport).
	Transport string `json:"transport"`
	// Lat and Lng are WGS-84 degrees; 0,0 means not surveyed.
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
	// Heading is the direction the camera looks, in degrees clockwise from
	// north, in [0,360). FOV is the horizontal field of view in degrees (0 = unknown), in
	// (0,360]. Range is how far it usefully sees, in metres; 0 is unknown.
	Heading float64 `json:"heading"`
	FOV     float64 `json:"fov"`
	Range   float64 `json:"range"`

	// From the device's catalog (GB/T 28181), not from configuration
	// edits: the code of the group or device it hangs under, its PTZ type
	// (1 dome, 2 half-dome, 3 fixed, 4 remote-controlled fixed; 0 unknown)
	// and the status the device reports (ON, OFF, VLOST, DEFECT).
	ParentCode    string `json:"parent_code,omitempty"`
	PTZType       int    `json:"ptz_type,omitempty"`
	CatalogStatus string `json:"catalog_status,omitempty"`

	// Status, LastError, Reason and StatusChangedAt are owned by the stream
	// supervisor (store.SetChannelStatus), not by configuration edits.
	Status ChannelStatus `json:"status"`
	// LastError is the human-readable error behind the status, if any.
	LastError string `json:"last_error"`
	// Reason is a machine code (ReasonUnreachable, ...) or "".
	Reason          string    `json:"reason"`
	StatusChangedAt time.Time `json:"status_changed_at"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// Validate checks the fields a caller sets. It ignores ID and the
// timestamps. An empty Status or Transport is accepted and means offline and
// auto. Validate never puts the source URL's password in an error.
func (c Channel) Validate() error {
	var errs fieldErrors
	if msg := checkCode20(c.Code); msg != "" {
		errs.add("code", msg)
	}
	checkName(&errs, c.Name)
	if c.DeviceID < 0 {
		errs.add("device_id", fmt.Sprintf("must be 0 (none) or a device ID, got %d", c.DeviceID))
	}
	if msg := checkDivisionCode(c.DivisionCode); msg != "" {
		errs.add("division", msg)
	}
	if msg := checkSourceURL(c.SourceURL); msg != "" {
		errs.add("source_url", msg)
	}
	switch c.Transport {
	case "", TransportAuto, TransportTCP, TransportUDP, TransportTCPActive:
	default:
		errs.add("transport", fmt.Sprintf("must be auto, tcp, udp or tcp-active, got %q", c.Transport))
	}
	checkRange(&errs, "lat", c.Lat, -90, 90, true, true)
	checkRange(&errs, "lng", c.Lng, -180, 180, true, true)
	checkRange(&errs, "heading", c.Heading, 0, 360, true, false)
	if c.FOV != 0 { // 0: not surveyed yet
		checkRange(&errs, "fov", c.FOV, 0, 360, false, true)
	}
	if math.IsNaN(c.Range) || math.IsInf(c.Range, 0) || c.Range < 0 {
		errs.add("range", fmt.Sprintf("must be a finite number >= 0, got %v", c.Range))
	}
	if c.Status != "" && !c.Status.Valid() {
		errs.add("status", fmt.Sprintf("must be offline, connecting, online, idle or error, got %q", string(c.Status)))
	}
	if !ValidReason(c.Reason) {
		errs.add("reason", fmt.Sprintf("must be a lowercase code like %q, got %q", ReasonUnreachable, c.Reason))
	}
	if len(c.LastError) > MaxLastErrorLen {
		errs.add("last_error", fmt.Sprintf("must be at most %d bytes, got %d", MaxLastErrorLen, len(c.LastError)))
	}
	return errs.err()
}

// checkRange adds an error unless v is finite and within [lo,hi], with each
// end open or closed as told. The message shows the interval in the usual
// notation, for example "heading: must be in [0,360), got 360".
func checkRange(errs *fieldErrors, field string, v, lo, hi float64, loClosed, hiClosed bool) {
	ok := !math.IsNaN(v) && !math.IsInf(v, 0)
	if ok {
		ok = (v > lo || loClosed && v == lo) && (v < hi || hiClosed && v == hi)
	}
	if ok {
		return
	}
	l, r := "(", ")"
	if loClosed {
		l = "["
	}
	if hiClosed {
		r = "]"
	}
	errs.add(field, fmt.Sprintf("must be in %s%g,%g%s, got %v", l, lo, hi, r, v))
}

// checkSourceURL returns "" for an empty or acceptable URL. Messages never
// quote the URL, which may carry a password.
func checkSourceURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL"
	}
	switch strings.ToLower(u.Scheme) {
	case "rtsp", "rtsps":
	default:
		return "scheme must be rtsp or rtsps"
	}
	// An unencoded '#', '?' or '/' in a password makes the parser read the
	// rest of the authority as fragment, query or path.
	if u.User == nil && strings.Contains(s, "@") || u.Fragment != "" {
		return "is ambiguous: percent-encode '#', '?', '/' and '@' in user and password"
	}
	if u.Hostname() == "" {
		return "host is required"
	}
	if p := u.Port(); p != "" {
		if !isDigits(p) || len(p) > 5 {
			return "port must be a number"
		}
	}
	return ""
}

// RedactedSourceURL returns SourceURL with the password, if any, replaced by
// "xxxxx", for showing to people and writing to logs. A URL that does not
// parse, or whose parse leaves an '@' outside the user info (a password with
// a bare '#', '?' or '/'), has everything between "://" and the last '@'
// replaced, so a malformed URL does not leak its credentials either.
func (c Channel) RedactedSourceURL() string {
	if c.SourceURL == "" {
		return ""
	}
	// When the parse put an '@' outside the user info (an unencoded '#',
	// '?' or '/' in the password), redact by hand as for a failed parse.
	if u, err := url.Parse(c.SourceURL); err == nil && (u.User != nil || !strings.Contains(c.SourceURL, "@")) {
		return u.Redacted()
	}
	i := strings.Index(c.SourceURL, "://")
	if i < 0 {
		i = -3 // no scheme: the authority starts at the beginning
	}
	at := strings.LastIndex(c.SourceURL, "@")
	if at < i+3 {
		return c.SourceURL
	}
	return c.SourceURL[:i+3] + "xxxxx" + c.SourceURL[at:]
}

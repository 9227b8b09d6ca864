// Package sdp reads and writes the SDP bodies of GB/T 28181 INVITEs and of
// their answers (GB/T 28181-2016 §9.2 and Annex F; GB/T 28181-2022 keeps the
// same shape and adds H.265).
//
// GB/T 28181 SDP is RFC 4566 SDP with extra lines that generic parsers
// reject: y= (the 10-digit SSRC, GB/T 28181-2016 Annex F) and f= (media
// parameters, Annex F), both written after the m= section, and attributes
// such as a=downloadspeed and a=filesize. Parse is tolerant of what real
// devices send (LF or CRLF, trailing spaces, lines out of order, missing s=
// or t=, unknown lines) and fails only on lines it cannot make sense of, such
// as a bad port or a bad rtpmap; it lists lesser faults in Session.Problems.
// Marshal writes the usual line order that devices expect.
//
// The package does no I/O and is safe for concurrent use; a Session is a
// plain value owned by its caller.
package sdp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxBodySize is the largest body Parse accepts. GB/T 28181 SDP bodies are a
// few hundred bytes.
const MaxBodySize = 64 << 10

// Errors returned by this package, wrapped with the details.
var (
	// ErrTooLarge means the body is over MaxBodySize.
	ErrTooLarge = errors.New("body too large")
	// ErrSyntax means a line is malformed (not "x=value", a bad port,
	// a bad rtpmap, ...); the error names the line.
	ErrSyntax = errors.New("syntax error")
	// ErrNoMedia means the body has no m= line.
	ErrNoMedia = errors.New("no m= line")
	// ErrSSRCFormat means an SSRC is not 10 decimal digits.
	ErrSSRCFormat = errors.New("ssrc must be 10 decimal digits")
	// ErrSSRCFlag means the first SSRC digit is neither 0 (live) nor 1
	// (history).
	ErrSSRCFlag = errors.New("ssrc first digit must be 0 (live) or 1 (history)")
	// ErrSSRCRange means a 10-digit SSRC is above 4294967295 and does not
	// fit the 32-bit RTP SSRC field; some devices send such values.
	ErrSSRCRange = errors.New("ssrc does not fit in 32 bits")
	// ErrPlatformID means a platform ID is too short or not all digits to
	// take the SSRC domain digits from.
	ErrPlatformID = errors.New("platform id must be 10 or 20 digits")
	// ErrSequence means an SSRC sequence number is above 9999.
	ErrSequence = errors.New("ssrc sequence must be 0-9999")
)

// Session names (s=) defined by GB/T 28181-2016 §9.2 and Annex F.
const (
	NamePlay     = "Play"
	NamePlayback = "Playback"
	NameDownload = "Download"
	NameTalk     = "Talk"
)

// Transports (m= protocol field).
const (
	TransportUDP = "RTP/AVP"
	TransportTCP = "TCP/RTP/AVP"
)

// Payload types of GB/T 28181-2016 Annex F: PS 96, MPEG-4 97, H.264 98;
// PTH265 is what GB/T 28181-2022 devices and platforms use for H.265.
const (
	PTPS    = 96
	PTMPEG4 = 97
	PTH264  = 98
	PTH265  = 99
	PTPCMA  = 8
	PTPCMU  = 0
)

// Line is one line that the package does not interpret, kept in the order
// it came: Type is the letter before '=' ("a", "b", "i", ...), Value the rest
// (for a= lines, "name" or "name:value").
type Line struct {
	Type  string
	Value string
}

// Format is one payload type of an m= line with its a=rtpmap.
type Format struct {
	PT       int
	Name     string // "PS", "H264", "H265", "MPEG4", "PCMA", ...; "" without rtpmap
	Rate     int    // clock rate, 90000 for video
	Channels int    // the optional third rtpmap field; 0 when absent
}

// Media is one m= section.
type Media struct {
	Kind          string   // "video", "audio"
	Port          int      // 0–65535
	Transport     string   // TransportUDP or TransportTCP, as written
	Formats       []Format // in m= order
	ConnectionIP  string   // a c= line inside the section; "" uses Session.ConnectionIP
	Direction     string   // "recvonly", "sendonly", "sendrecv", "inactive" or ""
	Setup         string   // a=setup (RFC 4145): "active", "passive", "actpass" or ""
	Connection    string   // a=connection (RFC 4145): "new", "existing" or ""
	DownloadSpeed int      // a=downloadspeed (Download only); 0 when absent
	Extra         []Line   // other lines of the section, in order (a=filesize, a=fmtp, b=, ...)
}

// TCP reports whether the media is RTP over TCP (RFC 4571).
func (m *Media) TCP() bool {
	return strings.HasPrefix(strings.ToUpper(m.Transport), "TCP/")
}

// Attr returns the value of the first a=name or a=name:value line in
// m.Extra.
func (m *Media) Attr(name string) (string, bool) { return attr(m.Extra, name) }

// Session is a GB/T 28181 SDP body.
type Session struct {
	Origin       string  // o= username: the sender's device or platform ID
	OriginIP     string  // o= address; Marshal uses ConnectionIP when empty
	SessionName  string  // s=: NamePlay, NamePlayback, NameDownload, NameTalk
	URI          string  // u=: "channelID:0" for playback and download
	ConnectionIP string  // session-level c= address
	Start, Stop  int64   // t=, seconds since the Unix epoch; 0 0 for live
	Media        []Media // m= sections in order
	SSRC         string  // y=, 10 digits as written
	F            string  // f=, e.g. "v/2/5/25/1/4000a/1/8/1"
	Extra        []Line  // other session-level lines, in order

	// Problems lists what Parse accepted but found wrong (a y= that is not
	// 10 digits, a missing s=, an rtpmap for a payload type not in m=, ...).
	// Marshal ignores it.
	Problems []string
}

// Video returns the first video m= section, else the first section, else
// nil.
func (s *Session) Video() *Media {
	for i := range s.Media {
		if s.Media[i].Kind == "video" {
			return &s.Media[i]
		}
	}
	if len(s.Media) > 0 {
		return &s.Media[0]
	}
	return nil
}

// Attr returns the value of the first a=name or a=name:value line among the
// session-level lines.
func (s *Session) Attr(name string) (string, bool) { return attr(s.Extra, name) }

func attr(lines []Line, name string) (string, bool) {
	for _, l := range lines {
		if l.Type != "a" {
			continue
		}
		k, v, _ := strings.Cut(l.Value, ":")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// Parse reads an SDP body. It accepts LF or CRLF line ends, surrounding
// spaces, empty lines, lines in any order after m=, and unknown lines
// (kept in Extra). It fails, wrapping ErrSyntax and naming the line, on a
// line that is not "x=value" or whose value is malformed (c=, t=, m= port
// or payload types, a=rtpmap, a=downloadspeed); with ErrNoMedia when there
// is no m= line; with ErrTooLarge above MaxBodySize. Lesser faults are
// listed in Session.Problems.
func Parse(body []byte) (*Session, error) {
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("sdp: parse: %w (%d bytes, limit %d)", ErrTooLarge, len(body), MaxBodySize)
	}
	s := &Session{}
	var cur *Media
	var seenV, seenO, seenS, seenT bool
	n := 0
	for len(body) > 0 {
		var raw []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			raw, body = body[:i], body[i+1:]
		} else {
			raw, body = body, nil
		}
		n++
		line := strings.TrimSpace(string(raw))
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || !isLetter(line[0]) {
			return nil, lineErr(n, line, "not type=value")
		}
		typ, val := line[:1], strings.TrimSpace(line[2:])
		switch typ {
		case "v":
			seenV = true
			if val != "0" {
				s.problem("line %d: v=%s, want v=0", n, val)
			}
		case "o":
			seenO = true
			f := strings.Fields(val)
			if len(f) > 0 {
				s.Origin = f[0]
			}
			if len(f) >= 6 {
				s.OriginIP = f[5]
			} else {
				s.problem("line %d: o= has %d fields, want 6", n, len(f))
			}
		case "s":
			seenS = true
			s.SessionName = val
		case "u":
			s.URI = val
		case "c":
			ip, err := parseConnection(val)
			if err != nil {
				return nil, lineErr(n, line, err.Error())
			}
			if cur != nil {
				cur.ConnectionIP = ip
			} else {
				s.ConnectionIP = ip
			}
		case "t":
			seenT = true
			f := strings.Fields(val)
			if len(f) != 2 {
				return nil, lineErr(n, line, "want t=<start> <stop>")
			}
			start, err1 := strconv.ParseInt(f[0], 10, 64)
			stop, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil || start < 0 || stop < 0 {
				return nil, lineErr(n, line, "bad time")
			}
			s.Start, s.Stop = start, stop
		case "m":
			m, err := parseMedia(val)
			if err != nil {
				return nil, lineErr(n, line, err.Error())
			}
			s.Media = append(s.Media, m)
			cur = &s.Media[len(s.Media)-1]
		case "y":
			s.SSRC = val
			if !isSSRCShape(val) {
				s.problem("line %d: y=%s is not 10 decimal digits", n, val)
			}
		case "f":
			s.F = val
		case "a":
			if cur == nil {
				s.Extra = append(s.Extra, Line{typ, val})
				continue
			}
			if err := cur.parseAttr(s, n, val); err != nil {
				return nil, lineErr(n, line, err.Error())
			}
		default:
			if cur != nil {
				cur.Extra = append(cur.Extra, Line{typ, val})
			} else {
				s.Extra = append(s.Extra, Line{typ, val})
			}
		}
	}
	if len(s.Media) == 0 {
		return nil, fmt.Errorf("sdp: parse: %w", ErrNoMedia)
	}
	if !seenV {
		s.problem("no v= line")
	}
	if !seenO {
		s.problem("no o= line")
	}
	if !seenS {
		s.problem("no s= line")
	}
	if !seenT {
		s.problem("no t= line; taken as t=0 0")
	}
	if s.ConnectionIP == "" {
		for _, m := range s.Media {
			if m.ConnectionIP == "" {
				s.problem("no c= line for m=%s", m.Kind)
			}
		}
	}
	return s, nil
}

func (s *Session) problem(format string, args ...any) {
	if len(s.Problems) < 64 {
		s.Problems = append(s.Problems, fmt.Sprintf(format, args...))
	}
}

func lineErr(n int, line, why string) error {
	if len(line) > 80 {
		line = line[:80] + "..."
	}
	return fmt.Errorf("sdp: line %d %q: %w: %s", n, line, ErrSyntax, why)
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// parseConnection reads "IN IP4 <addr>[/ttl]" and returns the address.
func parseConnection(v string) (string, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[2] == "" {
		return "", errors.New("want c=IN IP4 <address>")
	}
	addr, _, _ := strings.Cut(f[2], "/")
	if addr == "" {
		return "", errors.New("empty address")
	}
	return addr, nil
}

// parseMedia reads "<kind> <port>[/<count>] <transport> <pt>...".
func parseMedia(v string) (Media, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Media{}, errors.New("want m=<media> <port> <proto> <fmt>...")
	}
	p, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return Media{}, fmt.Errorf("bad port %q", f[1])
	}
	m := Media{Kind: f[0], Port: port, Transport: f[2]}
	for _, s := range f[3:] {
		pt, err := strconv.Atoi(s)
		if err != nil || pt < 0 || pt > 127 {
			return Media{}, fmt.Errorf("bad payload type %q", s)
		}
		m.Formats = append(m.Formats, staticFormat(pt))
	}
	return m, nil
}

// staticFormat names the static payload types of RFC 3551 that GB/T 28181
// audio uses, for m= lines without an rtpmap.
func staticFormat(pt int) Format {
	switch pt {
	case PTPCMU:
		return Format{PT: pt, Name: "PCMU", Rate: 8000}
	case PTPCMA:
		return Format{PT: pt, Name: "PCMA", Rate: 8000}
	}
	return Format{PT: pt}
}

func (m *Media) parseAttr(s *Session, n int, v string) error {
	name, val, hasVal := strings.Cut(v, ":")
	switch name {
	case "recvonly", "sendonly", "sendrecv", "inactive":
		if hasVal {
			break
		}
		if m.Direction != "" && m.Direction != name {
			s.problem("line %d: a=%s after a=%s", n, name, m.Direction)
		}
		m.Direction = name
		return nil
	case "rtpmap":
		f, err := parseRtpmap(val)
		if err != nil {
			return err
		}
		for i := range m.Formats {
			if m.Formats[i].PT == f.PT {
				m.Formats[i] = f
				return nil
			}
		}
		s.problem("line %d: a=rtpmap for payload type %d, which m= does not list", n, f.PT)
		if len(m.Formats) < 128 {
			m.Formats = append(m.Formats, f)
		}
		return nil
	case "setup":
		m.Setup = strings.TrimSpace(val)
		return nil
	case "connection":
		m.Connection = strings.TrimSpace(val)
		return nil
	case "downloadspeed":
		sp, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || sp < 0 {
			return fmt.Errorf("bad downloadspeed %q", val)
		}
		m.DownloadSpeed = sp
		return nil
	}
	m.Extra = append(m.Extra, Line{"a", v})
	return nil
}

// parseRtpmap reads "<pt> <name>/<rate>[/<channels>]" (RFC 4566 §6).
func parseRtpmap(v string) (Format, error) {
	p, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return Format{}, errors.New("want a=rtpmap:<pt> <name>/<rate>")
	}
	pt, err := strconv.Atoi(p)
	if err != nil || pt < 0 || pt > 127 {
		return Format{}, fmt.Errorf("bad rtpmap payload type %q", p)
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return Format{}, fmt.Errorf("bad rtpmap encoding %q", enc)
	}
	rate, err := strconv.Atoi(parts[1])
	if err != nil || rate <= 0 {
		return Format{}, fmt.Errorf("bad rtpmap clock rate %q", parts[1])
	}
	f := Format{PT: pt, Name: parts[0], Rate: rate}
	if len(parts) == 3 {
		ch, err := strconv.Atoi(parts[2])
		if err != nil || ch <= 0 {
			return Format{}, fmt.Errorf("bad rtpmap channels %q", parts[2])
		}
		f.Channels = ch
	}
	return f, nil
}

// Marshal writes s with CRLF line ends in the order GB/T 28181 devices
// expect (GB/T 28181-2016 Annex F): v, o, s, u, c, t, the other
// session-level lines, then each m= section (c, direction, rtpmap, setup,
// connection, downloadspeed, other lines), then y= and f=. Empty optional
// fields (u=, y=, f=, attributes) are left out; a missing s= is written
// as "s=Play".
func Marshal(s *Session) []byte {
	var b strings.Builder
	w := func(typ, format string, args ...any) {
		b.WriteString(typ)
		b.WriteByte('=')
		b.WriteString(noNewlines.Replace(fmt.Sprintf(format, args...)))
		b.WriteString("\r\n")
	}
	originIP := s.OriginIP
	if originIP == "" {
		originIP = s.ConnectionIP
	}
	origin := s.Origin
	if origin == "" {
		origin = "-"
	}
	name := s.SessionName
	if name == "" {
		name = NamePlay
	}
	w("v", "0")
	w("o", "%s 0 0 IN %s %s", origin, addrType(originIP), originIP)
	w("s", "%s", name)
	if s.URI != "" {
		w("u", "%s", s.URI)
	}
	if s.ConnectionIP != "" {
		w("c", "IN %s %s", addrType(s.ConnectionIP), s.ConnectionIP)
	}
	w("t", "%d %d", s.Start, s.Stop)
	for _, l := range s.Extra {
		w(l.Type, "%s", l.Value)
	}
	for i := range s.Media {
		m := &s.Media[i]
		transport := m.Transport
		if transport == "" {
			transport = TransportUDP
		}
		b.WriteString("m=")
		b.WriteString(noNewlines.Replace(m.Kind))
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(m.Port))
		b.WriteByte(' ')
		b.WriteString(noNewlines.Replace(transport))
		for _, f := range m.Formats {
			b.WriteByte(' ')
			b.WriteString(strconv.Itoa(f.PT))
		}
		b.WriteString("\r\n")
		if m.ConnectionIP != "" {
			w("c", "IN %s %s", addrType(m.ConnectionIP), m.ConnectionIP)
		}
		if m.Direction != "" {
			w("a", "%s", m.Direction)
		}
		for _, f := range m.Formats {
			if f.Name == "" || f.Rate <= 0 {
				continue
			}
			if f.Channels > 0 {
				w("a", "rtpmap:%d %s/%d/%d", f.PT, f.Name, f.Rate, f.Channels)
			} else {
				w("a", "rtpmap:%d %s/%d", f.PT, f.Name, f.Rate)
			}
		}
		if m.Setup != "" {
			w("a", "setup:%s", m.Setup)
		}
		if m.Connection != "" {
			w("a", "connection:%s", m.Connection)
		}
		if m.DownloadSpeed > 0 {
			w("a", "downloadspeed:%d", m.DownloadSpeed)
		}
		for _, l := range m.Extra {
			w(l.Type, "%s", l.Value)
		}
	}
	if s.SSRC != "" {
		w("y", "%s", s.SSRC)
	}
	if s.F != "" {
		w("f", "%s", s.F)
	}
	return []byte(b.String())
}

// noNewlines keeps a caller's field from adding lines to the body.
var noNewlines = strings.NewReplacer("\r", " ", "\n", " ")

func addrType(ip string) string {
	if strings.Contains(ip, ":") {
		return "IP6"
	}
	return "IP4"
}

package devsim

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// The devices' reading of the platform's SDP offers and writing of their
// answers (RFC 4566, RFC 4145, RFC 4571; GB/T 28181-2016 §9.2 and Annex F;
// GB/T 28181-2022 keeps the shape). Written here, not with
// internal/gb28181/sdp, so that the platform's SDP is checked by a second
// reader and its answer reader by a second writer.

// Session names (s=) of GB/T 28181-2016 Annex F.
const (
	namePlay     = "Play"
	namePlayback = "Playback"
	nameDownload = "Download"
)

// sdpError is an offer the device cannot use; code is the SIP status it
// answers: 400 for a malformed body, 488 for one it does not support.
type sdpError struct {
	code int
	msg  string
}

func (e *sdpError) Error() string { return "sdp: " + e.msg }

func badSDP(format string, a ...any) error {
	return &sdpError{code: 400, msg: fmt.Sprintf(format, a...)}
}

func unsupportedSDP(format string, a ...any) error {
	return &sdpError{code: 488, msg: fmt.Sprintf(format, a...)}
}

// offer is what the device reads from the platform's INVITE.
type offer struct {
	name        string // namePlay, namePlayback or nameDownload
	origin      string // o= user: the platform's ID
	uri         string // u=, "channelID:0" for playback and download
	ip          string // where the media goes (UDP, TCP setup passive) or comes from
	port        int
	tcp         bool
	setup       string // the platform's TCP role: "passive" (it listens) or "active" (it connects)
	start, stop int64  // t=, Unix seconds
	ssrc        string // y= as written, "" if absent
	speed       int    // a=downloadspeed, 1 if absent
	subStream   bool   // a=streamnumber:1 or a=stream:sub (the device sends its one stream anyway)
}

// maxDownloadSpeed bounds a=downloadspeed; devices offer 1–16, a few more.
const maxDownloadSpeed = 32

// parseOffer reads an offer. It wants v=0, a known s=, a c= address, a
// video m= line whose transport is RTP/AVP or TCP/RTP/AVP (RTP/AVP/TCP as
// some platforms write it) and whose payload types include PS/90000, a t=
// range for playback and download, and a y= of 10 digits that fits 32 bits
// when there is one. It ignores lines it does not need, and audio sections.
func parseOffer(body []byte) (*offer, error) {
	o := &offer{speed: 1}
	var seenV, inVideo, inOther, seenVideo bool
	var pts []string
	rtpmap := map[string]string{}
	var mediaIP string
	n := 0
	for line := range bytes.Lines(body) {
		n++
		l := strings.TrimSpace(string(line))
		if l == "" {
			continue
		}
		if len(l) < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z' {
			return nil, badSDP("line %d %q is not <type>=<value>", n, trunc(l))
		}
		typ, val := l[0], strings.TrimSpace(l[2:])
		if typ == 'm' {
			f := strings.Fields(val)
			if len(f) < 4 {
				return nil, badSDP("line %d %q: want m=<media> <port> <transport> <formats>", n, trunc(l))
			}
			inVideo = f[0] == "video" && !seenVideo
			inOther = !inVideo
			if inOther {
				continue
			}
			seenVideo = true
			port, err := strconv.Atoi(f[1])
			if err != nil || port < 0 || port > 65535 {
				return nil, badSDP("line %d: bad port %q", n, f[1])
			}
			o.port = port
			switch strings.ToUpper(f[2]) {
			case "RTP/AVP":
			case "TCP/RTP/AVP", "RTP/AVP/TCP":
				o.tcp = true
			default:
				return nil, unsupportedSDP("transport %q: want RTP/AVP or TCP/RTP/AVP", f[2])
			}
			pts = f[3:]
			continue
		}
		if inOther && (typ == 'a' || typ == 'c' || typ == 'b') {
			continue // a line of another media section
		}
		switch typ {
		case 'v':
			if val != "0" {
				return nil, badSDP("line %d: v=%s, want v=0", n, val)
			}
			seenV = true
		case 'o':
			if f := strings.Fields(val); len(f) > 0 {
				o.origin = f[0]
			}
		case 's':
			switch {
			case strings.EqualFold(val, namePlay):
				o.name = namePlay
			case strings.EqualFold(val, namePlayback):
				o.name = namePlayback
			case strings.EqualFold(val, nameDownload):
				o.name = nameDownload
			default:
				return nil, unsupportedSDP("s=%s: this device plays Play, Playback and Download", val)
			}
		case 'u':
			o.uri = val
		case 'c':
			f := strings.Fields(val)
			if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
				return nil, badSDP("line %d %q: want c=IN IP4 <address>", n, trunc(l))
			}
			ip, _, _ := strings.Cut(f[2], "/")
			if net.ParseIP(ip) == nil {
				return nil, unsupportedSDP("c= address %q is not an IP address", ip)
			}
			if inVideo {
				mediaIP = ip
			} else {
				o.ip = ip
			}
		case 't':
			f := strings.Fields(val)
			if len(f) != 2 {
				return nil, badSDP("line %d %q: want t=<start> <stop>", n, trunc(l))
			}
			start, err1 := strconv.ParseInt(f[0], 10, 64)
			stop, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil || start < 0 || stop < 0 {
				return nil, badSDP("line %d %q: bad times", n, trunc(l))
			}
			o.start, o.stop = start, stop
		case 'y':
			o.ssrc = val
		case 'a':
			name, v, _ := strings.Cut(val, ":")
			v = strings.TrimSpace(v)
			switch strings.ToLower(name) {
			case "rtpmap":
				pt, enc, _ := strings.Cut(v, " ")
				rtpmap[pt] = strings.TrimSpace(enc)
			case "setup":
				o.setup = strings.ToLower(v)
			case "downloadspeed":
				sp, err := strconv.Atoi(v)
				if err != nil || sp < 1 || sp > maxDownloadSpeed {
					return nil, unsupportedSDP("a=downloadspeed:%s: want 1-%d", v, maxDownloadSpeed)
				}
				o.speed = sp
			case "streamnumber":
				o.subStream = v != "0"
			case "stream":
				o.subStream = strings.Contains(strings.ToLower(v), "sub") || v == "1"
			case "sendonly", "inactive":
				return nil, unsupportedSDP("a=%s: the device only sends (the offer must be recvonly)", name)
			}
		}
	}
	switch {
	case !seenV:
		return nil, badSDP("no v= line")
	case o.name == "":
		return nil, badSDP("no s= line")
	case !seenVideo:
		return nil, unsupportedSDP("no m=video line")
	case o.port == 0:
		return nil, unsupportedSDP("m=video port 0: the stream is disabled")
	}
	if mediaIP != "" {
		o.ip = mediaIP
	}
	if o.ip == "" {
		return nil, badSDP("no c= address")
	}
	ps := false
	for _, pt := range pts {
		enc := rtpmap[pt]
		ps = ps || strings.EqualFold(enc, "PS/90000")
	}
	if !ps {
		return nil, unsupportedSDP("no payload type maps to PS/90000 (a=rtpmap:96 PS/90000): the device sends PS only")
	}
	if o.tcp {
		switch o.setup {
		case "":
			o.setup = "passive" // what platforms mean when they say nothing
		case "passive", "active":
		case "actpass":
			o.setup = "passive" // the device takes the active role
		default:
			return nil, badSDP("a=setup:%s: want active or passive", o.setup)
		}
	}
	if o.name != namePlay {
		if o.start <= 0 || o.stop <= o.start {
			return nil, badSDP("s=%s needs t=<start> <stop> with start before stop, got t=%d %d", o.name, o.start, o.stop)
		}
	}
	if o.ssrc != "" {
		if _, err := ssrcValue(o.ssrc); err != nil {
			return nil, unsupportedSDP("y=%s: %v", o.ssrc, err)
		}
	}
	return o, nil
}

var errSSRCShape = errors.New("not 10 decimal digits")

// ssrcValue is the RTP SSRC of a y= line: the 10 digits read as a decimal
// number (GB/T 28181-2016 Annex F), which must fit in 32 bits.
func ssrcValue(y string) (uint32, error) {
	if len(y) != 10 || strings.Trim(y, "0123456789") != "" {
		return 0, errSSRCShape
	}
	v, err := strconv.ParseUint(y, 10, 32)
	if err != nil {
		return 0, errors.New("above 4294967295, does not fit the 32-bit RTP SSRC")
	}
	return uint32(v), nil
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// answer is the device's SDP answer.
type answer struct {
	id          string // o= user: the invited channel
	ip          string
	name        string
	start, stop int64
	port        int
	tcp         bool
	setup       string // the device's TCP role, the opposite of the offer's
	ssrc        string
	fileSize    int64 // a=filesize for Download, 0 to leave it out
}

// marshal writes the answer in the line order of GB/T 28181-2016 Annex F.
func (a *answer) marshal() []byte {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\r\n")
	}
	line("v=0")
	line("o=%s 0 0 IN IP4 %s", a.id, a.ip)
	line("s=%s", a.name)
	line("c=IN IP4 %s", a.ip)
	line("t=%d %d", a.start, a.stop)
	transport := "RTP/AVP"
	if a.tcp {
		transport = "TCP/RTP/AVP"
	}
	line("m=video %d %s %d", a.port, transport, payloadTypePS)
	line("a=sendonly")
	line("a=rtpmap:%d PS/90000", payloadTypePS)
	if a.tcp {
		line("a=setup:%s", a.setup)
		line("a=connection:new")
	}
	if a.fileSize > 0 {
		line("a=filesize:%d", a.fileSize)
	}
	line("y=%s", a.ssrc)
	return []byte(b.String())
}

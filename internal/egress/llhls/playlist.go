package llhls

import (
	"strconv"
	"strings"
	"time"
)

// template is a rendered playlist without the query string of its URIs:
// the query, "?token=...", goes at each of the offsets in cuts. It is
// immutable once built, and shared by every request.
type template struct {
	text []byte
	cuts []int // increasing offsets into text
}

// cut marks the end of a URI at the current end of the text.
func (t *template) cut() { t.cuts = append(t.cuts, len(t.text)) }

// render returns the playlist with "?"+query spliced in at every cut, or
// the text itself if query is empty. The result must not be modified.
func (t *template) render(query string) []byte {
	if query == "" {
		return t.text
	}
	out := make([]byte, 0, len(t.text)+len(t.cuts)*(1+len(query)))
	prev := 0
	for _, c := range t.cuts {
		out = append(out, t.text[prev:c]...)
		out = append(out, '?')
		out = append(out, query...)
		prev = c
	}
	return append(out, t.text[prev:]...)
}

// playlistQuery returns the query string to append to the URIs of a
// playlist: the request's, without the _HLS_ delivery directives of
// RFC 8216bis-16 §6.2.5, which apply to one request only.
func playlistQuery(raw string) string {
	if !strings.Contains(raw, "_HLS_") {
		return raw
	}
	var b strings.Builder
	for kv := range strings.SplitSeq(raw, "&") {
		if kv == "" || strings.HasPrefix(kv, "_HLS_") {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv)
	}
	return b.String()
}

// mediaPlaylistInput is what renderMedia needs.
type mediaPlaylistInput struct {
	prefix     string
	target     int           // EXT-X-TARGETDURATION, seconds
	partTarget time.Duration // EXT-X-PART-INF PART-TARGET
	segs       []*segment    // complete segments, oldest first
	curParts   []*part       // parts of the segment being written
	nextPart   uint64        // the part being written, for the preload hint
}

// renderMedia renders the media playlist (RFC 8216bis-16 §4.4; the LL-HLS
// tags of §4.4.3.7 EXT-X-PART-INF, §4.4.3.8 EXT-X-SERVER-CONTROL, §4.4.4.9
// EXT-X-PART and §4.4.5.3 EXT-X-PRELOAD-HINT). Parts are listed for the
// segment being written and for the complete segments that start within
// three target durations of the end of the playlist (§4.4.4.9: older ones
// SHOULD be removed); since a segment lasts less than a target duration
// plus a half, that is always at least the last one.
func renderMedia(in mediaPlaylistInput, buf []byte) template {
	t := template{text: buf[:0]}
	b := t.text
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:"...)
	b = strconv.AppendInt(b, int64(in.target), 10)
	// PART-HOLD-BACK: at least 2 part targets, 3 recommended (§4.4.3.8).
	b = append(b, "\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK="...)
	b = appendSeconds(b, 3*in.partTarget, 3)
	b = append(b, "\n#EXT-X-PART-INF:PART-TARGET="...)
	b = appendSeconds(b, in.partTarget, 3)
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	msn := uint64(0)
	if len(in.segs) > 0 {
		msn = in.segs[0].msn
	}
	b = strconv.AppendUint(b, msn, 10)
	b = append(b, "\n#EXT-X-MAP:URI=\""...)
	b = append(b, in.prefix...)
	b = append(b, "_init.mp4"...)
	t.text = b
	t.cut()
	b = append(t.text, "\"\n"...)

	// Which segments list their parts: those that start within 3 target
	// durations of the end.
	window := 3 * time.Duration(in.target) * time.Second
	var acc time.Duration
	for _, p := range in.curParts {
		acc += p.dur
	}
	firstWithParts := len(in.segs)
	for i := len(in.segs) - 1; i >= 0 && acc+in.segs[i].dur <= window; i-- {
		firstWithParts = i
		acc += in.segs[i].dur
	}
	for i, s := range in.segs {
		b = append(b, "#EXT-X-PROGRAM-DATE-TIME:"...)
		b = s.ntp.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, '\n')
		if i >= firstWithParts {
			t.text = b
			for _, p := range s.parts {
				t.appendPart(in.prefix, p)
			}
			b = t.text
		}
		b = append(b, "#EXTINF:"...)
		b = appendSeconds(b, s.dur, 5)
		b = append(b, ",\n"...)
		b = append(b, in.prefix...)
		b = append(b, "_seg"...)
		b = strconv.AppendUint(b, s.msn, 10)
		b = append(b, ".mp4"...)
		t.text = b
		t.cut()
		b = append(t.text, '\n')
	}
	t.text = b
	for _, p := range in.curParts {
		t.appendPart(in.prefix, p)
	}
	b = append(t.text, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""...)
	b = append(b, in.prefix...)
	b = append(b, "_part"...)
	b = strconv.AppendUint(b, in.nextPart, 10)
	b = append(b, ".mp4"...)
	t.text = b
	t.cut()
	t.text = append(t.text, "\"\n"...)
	return t
}

// appendPart appends the EXT-X-PART line of p.
func (t *template) appendPart(prefix string, p *part) {
	b := append(t.text, "#EXT-X-PART:DURATION="...)
	b = appendSeconds(b, p.dur, 5)
	b = append(b, ",URI=\""...)
	b = append(b, prefix...)
	b = append(b, "_part"...)
	b = strconv.AppendUint(b, p.id, 10)
	b = append(b, ".mp4"...)
	t.text = b
	t.cut()
	b = append(t.text, '"')
	if p.independent {
		b = append(b, ",INDEPENDENT=YES"...)
	}
	t.text = append(b, '\n')
}

// renderMultivariant renders the multivariant playlist of the one rendition
// (RFC 8216bis-16 §4.4.6.2 EXT-X-STREAM-INF).
func renderMultivariant(vi variantInfo, bandwidth int) template {
	var t template
	b := append(t.text, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH="...)
	b = strconv.AppendInt(b, int64(bandwidth), 10)
	b = append(b, ",CODECS=\""...)
	b = append(b, vi.codecs...)
	b = append(b, '"')
	if vi.width > 0 && vi.height > 0 {
		b = append(b, ",RESOLUTION="...)
		b = strconv.AppendInt(b, int64(vi.width), 10)
		b = append(b, 'x')
		b = strconv.AppendInt(b, int64(vi.height), 10)
	}
	b = append(b, "\nstream.m3u8"...)
	t.text = b
	t.cut()
	t.text = append(t.text, '\n')
	return t
}

// appendSeconds appends d in seconds with prec decimals.
func appendSeconds(b []byte, d time.Duration, prec int) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'f', prec, 64)
}

package sdp

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics, that what it accepts Marshal
// writes and Parse reads again, and that it refuses large bodies.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
		f.Add([]byte(crlf(tc.in)))
	}
	f.Add([]byte("m=video 5 RTP/AVP\na=rtpmap:1 X/1/1\n"))
	f.Add([]byte("v=0\r\nm=audio 0/2 RTP/AVP 0 8\r\nc=IN IP6 ::1/127\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Parse(body)
		if len(body) > MaxBodySize && err == nil {
			t.Fatal("accepted a body over MaxBodySize")
		}
		if err != nil {
			return
		}
		out := Marshal(s)
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("bare LF in output %q", out)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("marshal output does not parse: %v\n%q", err, out)
		}
		_, _ = ReadAnswer(s)
		_ = Check(s, s)
	})
}

func FuzzParseSSRC(f *testing.F) {
	for _, s := range []string{"0200000001", "4294967296", "9999999999", "1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _, v, err := ParseSSRC(s)
		if err == nil && (len(s) != SSRCLen || v > 1999999999) {
			t.Fatalf("ParseSSRC(%q) accepted %d", s, v)
		}
	})
}

package manscdp

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Charset names reported in Message.Charset.
const (
	CharsetUTF8    = "UTF-8"
	CharsetGB18030 = "GB18030"
)

// declaredCharset returns the encoding named in the XML declaration at the
// start of body, upper-cased, or "" when there is none.
func declaredCharset(body []byte) string {
	b := bytes.TrimLeft(body, " \t\r\n")
	if !bytes.HasPrefix(b, []byte("<?xml")) {
		return ""
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 {
		return ""
	}
	decl := b[:end]
	i := bytes.Index(bytes.ToLower(decl), []byte("encoding"))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(decl[i+len("encoding"):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '=' {
		return ""
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	q := rest[0]
	j := bytes.IndexByte(rest[1:], q)
	if j < 0 {
		return ""
	}
	return strings.ToUpper(strings.TrimSpace(string(rest[1 : 1+j])))
}

func isGBName(cs string) bool {
	switch cs {
	case "GB2312", "GBK", "GB18030", "CP936", "EUC-CN", "X-GBK", "GB_2312-80", "HZ-GB-2312":
		return true
	}
	return false
}

// toUTF8 returns body as UTF-8 and the charset it was decoded from.
//
// The declared encoding is only a hint, because devices get it wrong both
// ways: a body that is valid UTF-8 is taken as UTF-8 whatever it declares
// (a GB2312-encoded Chinese name is practically never valid UTF-8, while a
// UTF-8 body declared GB2312 is common), and a body that is not valid UTF-8
// is decoded as GB18030, the superset of GB2312 and GBK, whatever it
// declares. Bytes that are valid in neither become U+FFFD.
func toUTF8(body []byte) ([]byte, string) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	if utf8.Valid(body) {
		return body, CharsetUTF8
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(body)
	if err != nil {
		// The GB18030 decoder replaces invalid sequences instead of failing;
		// fall back to replacing invalid UTF-8 should that ever change.
		return bytes.ToValidUTF8(body, []byte("\uFFFD")), CharsetUTF8
	}
	return out, CharsetGB18030
}

// repairAmpersands escapes each '&' that does not begin a character or
// entity reference, outside CDATA sections and comments. Device names such
// as "A&B" are sent unescaped by many devices. It returns b itself when
// nothing needs repair.
func repairAmpersands(b []byte) []byte {
	if bytes.IndexByte(b, '&') < 0 {
		return b
	}
	var out []byte
	last := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '<':
			if bytes.HasPrefix(b[i:], []byte("<![CDATA[")) {
				if j := bytes.Index(b[i:], []byte("]]>")); j >= 0 {
					i += j + 2
				} else {
					i = len(b)
				}
			} else if bytes.HasPrefix(b[i:], []byte("<!--")) {
				if j := bytes.Index(b[i:], []byte("-->")); j >= 0 {
					i += j + 2
				} else {
					i = len(b)
				}
			}
		case '&':
			if isReference(b[i+1:]) {
				continue
			}
			if out == nil {
				out = make([]byte, 0, len(b)+16)
			}
			out = append(out, b[last:i]...)
			out = append(out, "&amp;"...)
			last = i + 1
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// isReference reports whether b (what follows '&') starts with "name;",
// "#digits;" or "#xhex;".
func isReference(b []byte) bool {
	const maxRef = 32
	if len(b) == 0 {
		return false
	}
	if b[0] == '#' {
		b = b[1:]
		hex := len(b) > 0 && (b[0] == 'x' || b[0] == 'X')
		if hex {
			b = b[1:]
		}
		n := 0
		for n < len(b) && n < maxRef && (isDigit(b[n]) || hex && isHex(b[n])) {
			n++
		}
		return n > 0 && n < len(b) && b[n] == ';'
	}
	n := 0
	for n < len(b) && n < maxRef && (isLetter(b[n]) || n > 0 && (isDigit(b[n]) || b[n] == '.' || b[n] == '-' || b[n] == '_')) {
		n++
	}
	return n > 0 && n < len(b) && b[n] == ';'
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isHex(c byte) bool    { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' }

package manscdp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// node is one element of a parsed body. Names keep the case the device used;
// lookups ignore case.
type node struct {
	name  string
	attrs []xml.Attr
	text  string
	kids  []*node
}

// parseTree reads the first element of b (UTF-8) and its descendants.
// Anything after the end of that element is not read.
func parseTree(b []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.Entity = xml.HTMLEntity // &nbsp; and friends appear in names
	// The body is UTF-8 by now whatever the declaration says.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var stack []*node
	var root *node
	count := 0
	var text [][]byte // character data of each open element
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if root == nil {
					return nil, ErrEmpty
				}
				line, _ := d.InputPos()
				return nil, fmt.Errorf("%w: line %d: unexpected end of body inside <%s>", ErrSyntax, line, stack[len(stack)-1].name)
			}
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("%w: line %d: %s", ErrSyntax, se.Line, se.Msg)
			}
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				line, _ := d.InputPos()
				return nil, fmt.Errorf("%w: line %d", ErrTooDeep, line)
			}
			if count++; count > maxElements {
				line, _ := d.InputPos()
				return nil, fmt.Errorf("%w: line %d", ErrTooManyElements, line)
			}
			n := &node{name: t.Name.Local, attrs: t.Attr}
			if root == nil {
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
			text = append(text, nil)
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = strings.TrimSpace(string(text[len(text)-1]))
			stack = stack[:len(stack)-1]
			text = text[:len(text)-1]
			if len(stack) == 0 {
				return root, nil // ignore trailing garbage
			}
		case xml.CharData:
			if len(text) > 0 {
				text[len(text)-1] = append(text[len(text)-1], t...)
			}
		}
	}
}

// child returns the first child named name (any case), or nil.
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if strings.EqualFold(k.name, name) {
			return k
		}
	}
	return nil
}

// children returns all children named name (any case).
func (n *node) children(name string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if strings.EqualFold(k.name, name) {
			out = append(out, k)
		}
	}
	return out
}

func (n *node) attr(name string) (string, bool) {
	if n == nil {
		return "", false
	}
	for _, a := range n.attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return strings.TrimSpace(a.Value), true
		}
	}
	return "", false
}

// reader extracts values below one element and remembers the first error,
// so that decoders read like a list of fields.
type reader struct {
	n    *node
	path string
	err  error
}

func (r *reader) sub(name string) *reader {
	return &reader{n: r.n.child(name), path: r.path + "/" + name}
}

func (r *reader) str(name string) string {
	if c := r.n.child(name); c != nil {
		return c.text
	}
	return ""
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// int reads an optional integer; empty or absent is 0.
func (r *reader) int(name string) int {
	v := r.int64(name)
	return int(v)
}

func (r *reader) int64(name string) int64 {
	s := r.str(name)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
	if err != nil {
		r.fail(fieldErr(r.path+"/"+name, s, ErrInvalid))
		return 0
	}
	return v
}

func (r *reader) float(name string) float64 {
	s := r.str(name)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		r.fail(fieldErr(r.path+"/"+name, s, ErrInvalid))
		return 0
	}
	return v
}

// count reads a SumNum element or, with attr set, a Num attribute, and
// enforces MaxSumNum.
func (r *reader) count(name string, attr bool) int {
	var s, where string
	if attr {
		s, _ = r.n.attr(name)
		where = r.path + "@" + name
	} else {
		s = r.str(name)
		where = r.path + "/" + name
	}
	if s == "" {
		return 0
	}
	v, err := strconv.Atoi(s)
	switch {
	case err != nil || v < 0:
		r.fail(fieldErr(where, s, ErrInvalid))
		return 0
	case v > MaxSumNum:
		r.fail(fieldErr(where, s, ErrSumNumTooLarge))
		return 0
	}
	return v
}

// Time layouts accepted for DeviceTime, AlarmTime, StartTime and EndTime.
// The standard (schema type dateTime) writes local time without a
// zone, "2006-01-02T15:04:05"; devices also send a space instead of the T,
// fractional seconds (accepted by time.Parse without a layout change) and,
// rarely, a zone.
var timeLayouts = []string{
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	time.RFC3339Nano,
}

// ParseTime parses a MANSCDP dateTime. Times without a zone are read in loc
// (time.Local when nil).
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.Local
	}
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: time %q", ErrInvalid, s)
}

// FormatTime writes t as a MANSCDP dateTime in t's location.
func FormatTime(t time.Time) string { return t.Format("2006-01-02T15:04:05") }

// optTime parses s when possible, else returns the zero time.
func optTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := ParseTime(s, nil)
	if err != nil {
		return time.Time{}
	}
	return t
}

func (r *reader) errOr() error { return r.err }

func upper(s string) string { return strings.ToUpper(s) }

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

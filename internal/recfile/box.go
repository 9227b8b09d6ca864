package recfile

import (
	"encoding/binary"
	"fmt"
)

// Bounds on what Scan reads into memory (ISO/IEC 14496-12 does not bound
// box sizes; files of the recorder stay far below these).
const (
	// MaxInitSize is the largest ftyp+moov that Scan accepts.
	MaxInitSize = 1 << 20
	// MaxMoofSize is the largest moof that Scan accepts: a fragment of at
	// most a second holds at most a few thousand samples.
	MaxMoofSize = 1 << 20
	// maxSamplesPerTrun bounds the samples of one trun (as mediacommon
	// does: 120 fps for 160 s).
	maxSamplesPerTrun = 120 * 160
	// maxBoxDepth bounds the nesting that the init rewriter walks.
	maxBoxDepth = 8
)

// boxHeader is the header of a box (ISO/IEC 14496-12 §4.2).
type boxHeader struct {
	size    uint64 // of the whole box, header included; 0 is "to the end"
	typ     [4]byte
	hdrSize int // 8, or 16 with a largesize
}

func (h boxHeader) typeString() string { return string(h.typ[:]) }

// parseBoxHeader reads the header at the start of b. ok is false when b is
// too short to hold it.
func parseBoxHeader(b []byte) (h boxHeader, ok bool) {
	if len(b) < 8 {
		return h, false
	}
	h.size = uint64(binary.BigEndian.Uint32(b))
	copy(h.typ[:], b[4:8])
	h.hdrSize = 8
	if h.size == 1 {
		if len(b) < 16 {
			return h, false
		}
		h.size = binary.BigEndian.Uint64(b[8:])
		h.hdrSize = 16
	}
	return h, true
}

// printableType reports whether a box type is four printable ASCII
// characters, as every type in use is.
func printableType(t [4]byte) bool {
	for _, c := range t {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// child is one box inside a byte slice.
type child struct {
	typ  string
	hdr  int    // header size
	full []byte // the whole box, header included
}

func (c child) payload() []byte { return c.full[c.hdr:] }

// children splits b, the payload of a container box, into its boxes. A
// box that overruns b is an error.
func children(b []byte) ([]child, error) {
	var out []child
	for off := 0; off < len(b); {
		h, ok := parseBoxHeader(b[off:])
		if !ok {
			return nil, fmt.Errorf("box header at +%d is cut short", off)
		}
		size := h.size
		if size == 0 {
			size = uint64(len(b) - off)
		}
		if size < uint64(h.hdrSize) || size > uint64(len(b)-off) {
			return nil, fmt.Errorf("box %q at +%d has an invalid size %d", h.typeString(), off, h.size)
		}
		out = append(out, child{typ: h.typeString(), hdr: h.hdrSize, full: b[off : off+int(size)]})
		off += int(size)
	}
	return out, nil
}

// appendBox appends a box of type typ around payload.
func appendBox(dst []byte, typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, typ...)
	for _, p := range payload {
		dst = append(dst, p...)
	}
	return dst
}

package ps

import "bytes"

var startCode = []byte{0, 0, 1}

// indexStartCode returns the index of the first 00 00 01 in b, or -1.
func indexStartCode(b []byte) int { return bytes.Index(b, startCode) }

// indexSync returns the index of the first start code in b that begins a
// program stream structure (stream_id >= 0xB9), or -1. Such a start code never
// occurs inside H.264 or H.265 data, whose NAL header byte is below 0x80.
// If b ends with a possible prefix of a start code, partial is the index
// where that prefix starts; otherwise partial is len(b).
func indexSync(b []byte) (i, partial int) {
	off := 0
	for {
		j := bytes.Index(b[off:], startCode)
		if j < 0 {
			break
		}
		j += off
		if j+3 >= len(b) {
			return -1, j
		}
		if b[j+3] >= idProgramEnd {
			return j, len(b)
		}
		off = j + 1
	}
	n := len(b)
	switch {
	case n >= 2 && b[n-2] == 0 && b[n-1] == 0:
		return -1, n - 2
	case n >= 1 && b[n-1] == 0:
		return -1, n - 1
	}
	return -1, n
}

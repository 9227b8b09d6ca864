// Package rtpframe carries RTP packets over byte streams and puts RTP packets
// received over UDP back in order.
//
// GB/T 28181-2022 §5.3 lets media flow as RTP over UDP or over TCP (passive or
// active). Over TCP every packet is preceded by a 2-byte big-endian length, as
// in RFC 4571 §2; Reader and Append implement that framing. Over UDP packets
// may arrive late, twice or not at all; Reorder restores the order within a
// small window and counts what it could not restore.
//
// The package does no I/O of its own beyond reading the io.Reader it is given,
// and never panics on any input.
package rtpframe

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPacketSize is the largest packet RFC 4571 framing can carry.
const MaxPacketSize = 0xFFFF

// Errors of Reader and Append.
var (
	// ErrZeroLength means a frame announced a length of 0. No RTP packet is
	// that short, so the stream is most likely not RFC 4571 framed or out of
	// step; the connection should be closed.
	ErrZeroLength = errors.New("rtpframe: zero-length frame")
	// ErrTruncated means the peer closed the stream inside a frame. It
	// wraps io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("rtpframe: stream ended inside a frame: %w", io.ErrUnexpectedEOF)
	// ErrTooLarge is returned by Append for a packet longer than MaxPacketSize.
	ErrTooLarge = errors.New("rtpframe: packet longer than 65535 bytes")
	// ErrEmpty is returned by Append for an empty packet.
	ErrEmpty = errors.New("rtpframe: empty packet")
)

// Reader reads RFC 4571 framed packets from a byte stream.
//
// A Reader is not safe for concurrent use. Errors are sticky: once Next has
// returned an error it returns the same error forever.
type Reader struct {
	r   *bufio.Reader
	buf []byte
	err error

	packets uint64
	bytes   uint64
}

// NewReader returns a Reader reading from r. It buffers r; the caller must
// not read from r directly afterwards.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{r: br, buf: make([]byte, MaxPacketSize)}
}

// Next returns the next packet. The returned slice is owned by the Reader and
// is valid only until the next call to Next; copy it (or parse it into a
// structure that copies) to keep it.
//
// Next returns io.EOF when the stream ends cleanly between two frames,
// an error wrapping ErrTruncated when it ends inside a frame, ErrZeroLength
// for a zero length, and the reader's error otherwise.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	var hdr [2]byte
	n, err := io.ReadFull(r.r, hdr[:])
	if err != nil {
		switch {
		case errors.Is(err, io.EOF) && n == 0:
			r.err = io.EOF
		case errors.Is(err, io.ErrUnexpectedEOF):
			r.err = fmt.Errorf("%w (got 1 of 2 length bytes after %d packets)", ErrTruncated, r.packets)
		default:
			r.err = fmt.Errorf("rtpframe: read length: %w", err)
		}
		return nil, r.err
	}
	size := int(binary.BigEndian.Uint16(hdr[:]))
	if size == 0 {
		r.err = fmt.Errorf("%w (after %d packets)", ErrZeroLength, r.packets)
		return nil, r.err
	}
	n, err = io.ReadFull(r.r, r.buf[:size])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			r.err = fmt.Errorf("%w (got %d of %d bytes after %d packets)", ErrTruncated, n, size, r.packets)
		} else {
			r.err = fmt.Errorf("rtpframe: read packet: %w", err)
		}
		return nil, r.err
	}
	r.packets++
	r.bytes += uint64(size) + 2
	return r.buf[:size], nil
}

// Packets returns how many packets Next has returned.
func (r *Reader) Packets() uint64 { return r.packets }

// Bytes returns how many bytes, length prefixes included, Next has consumed
// for the packets it returned.
func (r *Reader) Bytes() uint64 { return r.bytes }

// Append appends pkt to dst with its RFC 4571 length prefix and returns the
// extended buffer. It refuses empty packets and packets longer than
// MaxPacketSize, returning dst unchanged.
func Append(dst, pkt []byte) ([]byte, error) {
	switch {
	case len(pkt) == 0:
		return dst, ErrEmpty
	case len(pkt) > MaxPacketSize:
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(pkt))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(pkt)))
	return append(dst, pkt...), nil
}

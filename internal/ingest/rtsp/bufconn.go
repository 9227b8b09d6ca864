package rtsp

import (
	"bufio"
	"net"
)

// readBufferSize is the read buffer of an RTSP connection. gortsplib reads
// through a 4 KiB bufio.Reader, which costs one read system call (and one
// netpoll wake-up) per 2-3 RTP packets of interleaved TCP; reading up to a
// whole frame at a time cuts the system calls of a 2 Mbit/s camera by about
// four times for one memory copy.
const readBufferSize = 32 << 10

// bufferedConn is a net.Conn whose reads go through a large buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

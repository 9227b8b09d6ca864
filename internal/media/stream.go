package media

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Errors reported by Reader.Err.
var (
	// ErrStreamClosed means the source of the stream ended (it failed, was
	// stopped, or reconnected with a new stream).
	ErrStreamClosed = errors.New("media: stream closed")
	// ErrReaderClosed means the reader was closed by its owner.
	ErrReaderClosed = errors.New("media: reader closed")
)

// Limits of the keyframe cache kept for new readers.
const (
	maxGOPUnits = 1500    // about 50 s of 30 fps video
	maxGOPBytes = 8 << 20 // a GOP larger than this is not cached
)

// DefaultQueueSize is the reader queue length used when AddReader is given
// zero: about 4 s of 30 fps video with audio.
const DefaultQueueSize = 256

// Stream fans out the units of one source to any number of readers.
//
// Write must be called from one goroutine at a time (the source). AddReader,
// Reader.Close, Stats and Close may be called from any goroutine.
type Stream struct {
	tracks []*Track
	video  int // index of the first video track, or -1

	written atomic.Uint64 // units written
	bytes   atomic.Uint64 // payload bytes written
	dropped atomic.Uint64 // units dropped across all readers, ever

	mu       sync.Mutex // guards the fields below
	readers  map[*Reader]struct{}
	gop      []*Unit // units since the last video keyframe, starting with it
	gopBytes int
	closed   bool
	cause    error
}

// NewStream returns a Stream carrying tracks. The tracks must not be changed
// afterwards.
func NewStream(tracks []*Track) *Stream {
	s := &Stream{tracks: tracks, video: -1, readers: make(map[*Reader]struct{})}
	for i, t := range tracks {
		if t.Codec.IsVideo() {
			s.video = i
			break
		}
	}
	return s
}

// Tracks returns the tracks of the stream. The caller must not modify them.
func (s *Stream) Tracks() []*Track { return s.tracks }

// VideoTrack returns the index of the first video track, or -1.
func (s *Stream) VideoTrack() int { return s.video }

// Write delivers u to every reader without blocking. A reader whose queue is
// full loses u and every following unit, audio included, up to the next
// video keyframe, so that its tracks resume together.
// Write takes ownership of u; nobody may modify it afterwards.
func (s *Stream) Write(u *Unit) {
	s.written.Add(1)
	s.bytes.Add(uint64(u.Size()))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.cacheLocked(u)
	for r := range s.readers {
		if !r.pushLocked(u) {
			s.dropped.Add(1)
		}
	}
}

// cacheLocked keeps the units since the last keyframe so that a new reader
// can start decoding at once.
func (s *Stream) cacheLocked(u *Unit) {
	if s.video < 0 {
		return
	}
	if u.Track == s.video && u.Key {
		clear(s.gop) // drop references for the collector
		s.gop = s.gop[:0]
		s.gopBytes = 0
	} else if len(s.gop) == 0 {
		return // no keyframe seen yet
	}
	s.gop = append(s.gop, u)
	s.gopBytes += u.Size()
	if len(s.gop) > maxGOPUnits || s.gopBytes > maxGOPBytes {
		clear(s.gop)
		s.gop = s.gop[:0]
		s.gopBytes = 0
	}
}

// AddReader attaches a new reader whose queue holds queueSize units (0 means
// DefaultQueueSize) beyond the cached group of pictures, which it receives
// first so that it starts on a keyframe. name is used in statistics.
//
// If the stream is already closed, the returned reader is closed too.
func (s *Stream) AddReader(name string, queueSize int) *Reader {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Reader{name: name, s: s, queue: make(chan *Unit, queueSize+len(s.gop)), needKey: s.video >= 0}
	if s.closed {
		r.closeLocked(s.cause)
		return r
	}
	for _, u := range s.gop {
		r.pushLocked(u)
	}
	s.readers[r] = struct{}{}
	return r
}

// Close ends the stream: every reader's queue is closed after the units it
// holds, and Reader.Err reports cause (ErrStreamClosed if nil).
func (s *Stream) Close(cause error) {
	if cause == nil {
		cause = ErrStreamClosed
	} else if !errors.Is(cause, ErrStreamClosed) {
		cause = errors.Join(ErrStreamClosed, cause)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.cause = cause
	for r := range s.readers {
		r.closeLocked(cause)
	}
	clear(s.readers)
	clear(s.gop)
	s.gop = nil
}

// StreamStats is a snapshot of a stream's counters.
type StreamStats struct {
	Units   uint64 // units written
	Bytes   uint64 // payload bytes written
	Dropped uint64 // units lost by slow readers
	Readers int    // readers attached now
}

// Stats returns a snapshot of the stream's counters.
func (s *Stream) Stats() StreamStats {
	st := StreamStats{Units: s.written.Load(), Bytes: s.bytes.Load(), Dropped: s.dropped.Load()}
	s.mu.Lock()
	st.Readers = len(s.readers)
	s.mu.Unlock()
	return st
}

// Reader receives the units of a Stream through a bounded queue.
type Reader struct {
	name    string
	s       *Stream
	queue   chan *Unit
	dropped atomic.Uint64

	// guarded by s.mu
	needKey bool // waiting for a video keyframe after a loss or at start
	closed  bool
	err     error
}

// C returns the queue of the reader. It is closed when the stream ends or the
// reader is closed; Err then tells why.
func (r *Reader) C() <-chan *Unit { return r.queue }

// Name returns the name given to AddReader.
func (r *Reader) Name() string { return r.name }

// Tracks returns the tracks of the reader's stream.
func (r *Reader) Tracks() []*Track { return r.s.tracks }

// Dropped returns how many units this reader has lost.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Err returns why the queue was closed, or nil while it is open.
func (r *Reader) Err() error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.err
}

// Close detaches the reader from its stream. Units already queued stay
// readable. Close is idempotent.
func (r *Reader) Close() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.closed {
		return
	}
	delete(r.s.readers, r)
	r.closeLocked(ErrReaderClosed)
}

func (r *Reader) closeLocked(cause error) {
	if r.closed {
		return
	}
	r.closed = true
	r.err = cause
	close(r.queue)
}

// pushLocked queues u without blocking. It reports false if u was dropped.
func (r *Reader) pushLocked(u *Unit) bool {
	video := u.Track == r.s.video
	if r.needKey {
		if !video || !u.Key {
			// Audio before the first keyframe is dropped as well, so that
			// tracks start together.
			r.dropped.Add(1)
			return false
		}
		r.needKey = false
	}
	select {
	case r.queue <- u:
		return true
	default:
		r.dropped.Add(1)
		if r.s.video >= 0 {
			r.needKey = true
		}
		return false
	}
}

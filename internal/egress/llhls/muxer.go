package llhls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xueliang/xueliang/internal/media"
)

// Reasons a muxer stops, besides failures.
var (
	errIdle        = errors.New("llhls: idle")
	errStreamEnded = errors.New("llhls: stream ended")
)

// part is a finished partial segment (RFC 8216bis-16 §3.1.2). It is
// immutable.
type part struct {
	id          uint64 // global part number in the muxer, from 0
	buf         []byte // moof+mdat
	dur         time.Duration
	independent bool // starts with a keyframe
}

// segment is a media segment: the concatenation of its parts, served one
// buffer after the other without a copy. A complete segment is immutable;
// the segment being written is only changed by the muxer's goroutine, which
// only appends to its parts slice and publishes length-capped subslices.
type segment struct {
	msn   uint64
	parts []*part
	dur   time.Duration
	size  int
	ntp   time.Time // wall-clock time of its first sample
}

// snapshot is the state of a muxer that requests see. It is immutable and
// replaced, never modified, on every change.
type snapshot struct {
	segs     []*segment    // complete segments kept, oldest first
	parts    []*part       // every part of segs and of the segment being written, by id
	curMSN   uint64        // media sequence number of the segment being written
	curParts int           // parts of that segment finished
	nextPart uint64        // id of the part being written
	target   int           // EXT-X-TARGETDURATION
	media    template      // the media playlist
	changed  chan struct{} // closed when a newer snapshot is published
}

// partByID returns part n, or nil if it is not kept.
func (s *snapshot) partByID(n uint64) *part {
	if len(s.parts) == 0 || n < s.parts[0].id || n-s.parts[0].id >= uint64(len(s.parts)) {
		return nil
	}
	return s.parts[n-s.parts[0].id]
}

// segByMSN returns complete segment msn, or nil if it is not kept.
func (s *snapshot) segByMSN(msn uint64) *segment {
	if len(s.segs) == 0 || msn < s.segs[0].msn || msn-s.segs[0].msn >= uint64(len(s.segs)) {
		return nil
	}
	return s.segs[msn-s.segs[0].msn]
}

// has reports whether the playlist of s contains segment msn, or its part
// number partIdx if partIdx >= 0 (§6.2.5.2).
func (s *snapshot) has(msn uint64, partIdx int) bool {
	if msn < s.curMSN {
		return true
	}
	return msn == s.curMSN && partIdx >= 0 && partIdx < s.curParts
}

// muxer is the LL-HLS muxer of one channel. Its control state and the
// fragmenter live in one goroutine, run; requests read the latest snapshot
// (an atomic pointer, no lock) and wait on its changed channel.
type muxer struct {
	s      *Server
	id     int64
	log    *slog.Logger
	prev   *muxer // the previous muxer of the channel, still stopping, or nil
	prefix string // of the media file names, random

	acquired chan struct{} // closed when the stream is acquired
	ready    chan struct{} // closed when the first segment exists
	done     chan struct{} // closed when the muxer stops serving; err is set before
	stopped  chan struct{} // closed when everything is released
	err      error         // why the muxer stopped
	startErr error         // set with err when the muxer never started: Acquire or the tracks failed

	lastRequest atomic.Int64 // unix nanoseconds (Config.Now) of the last request
	waiting     atomic.Int32 // requests waiting for the muxer, which keep it from idling
	isReady     atomic.Bool
	snap        atomic.Pointer[snapshot] // never nil

	// Written by run before ready is closed, read-only after.
	init         []byte
	multivariant template

	f fragmenter // owned by run
}

func newMuxer(s *Server, id int64, prev *muxer) *muxer {
	m := &muxer{
		s:        s,
		id:       id,
		log:      s.log.With("channel", id),
		prev:     prev,
		prefix:   fmt.Sprintf("%08x", rand.Uint32()),
		acquired: make(chan struct{}),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	m.snap.Store(&snapshot{changed: make(chan struct{})})
	m.touch()
	return m
}

// touch records a request for the channel.
func (m *muxer) touch() { m.lastRequest.Store(m.s.cfg.Now().UnixNano()) }

// run is the life of the muxer: it acquires the stream, fragments its units
// until the stream ends, the muxer is idle, the server closes or something
// fails, then releases everything. reqCtx is the context of the request
// that started the muxer: its values are kept, its cancellation is not,
// since the muxer outlives the request.
func (m *muxer) run(reqCtx context.Context) {
	s := m.s
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqCtx))
	stopAfter := context.AfterFunc(s.ctx, cancel)
	defer func() {
		stopAfter()
		cancel()
		close(m.stopped)
		s.remove(m)
		s.metrics.muxers.Dec()
	}()

	stream, release, err := m.acquire(ctx)
	if err != nil {
		if !errors.Is(err, errClosed) {
			m.startErr = err
		}
		m.stop(err)
		return
	}
	defer release()
	close(m.acquired)

	reader := stream.AddReader("llhls", 0)
	var dropped uint64
	countDropped := func() {
		n := reader.Dropped()
		s.metrics.dropped.Add(float64(n - dropped))
		dropped = n
	}
	err = m.pump(ctx, stream, reader, countDropped)
	m.stop(err) // wakes every waiting request
	reader.Close()
	countDropped()
}

// acquire waits for the previous muxer of the channel to release its stream,
// then acquires the stream.
func (m *muxer) acquire(ctx context.Context) (*media.Stream, func(), error) {
	if m.prev != nil {
		select {
		case <-m.prev.stopped:
		case <-ctx.Done():
			return nil, nil, errClosed
		}
		m.prev = nil // let the collector have it
	}
	actx, cancel := context.WithTimeout(ctx, m.s.cfg.AcquireTimeout)
	defer cancel()
	stream, release, err := m.s.cfg.Hub.Acquire(actx, m.id)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, errClosed
		}
		return nil, nil, fmt.Errorf("llhls: channel %d: acquire: %w", m.id, err)
	}
	if ctx.Err() != nil { // closed while Acquire was succeeding
		release()
		return nil, nil, errClosed
	}
	return stream, release, nil
}

// stop marks the muxer as stopped because of err: new requests for the
// channel start a new muxer, requests waiting for this one give up.
func (m *muxer) stop(err error) {
	m.s.detach(m)
	m.err = err
	close(m.done)
	switch {
	case m.startErr != nil, errors.Is(err, errIdle), errors.Is(err, errClosed), errors.Is(err, errStreamEnded):
		m.log.Info("muxer stopped", "reason", err)
	default:
		m.s.metrics.errors.Inc()
		m.log.Warn("muxer failed", "err", err)
	}
}

// pump reads the units of the stream and fragments them, once the
// parameter sets of the video track are known. It returns why it stopped.
func (m *muxer) pump(ctx context.Context, stream *media.Stream, reader *media.Reader, countDropped func()) error {
	s := m.s
	video, audio, err := planTracks(stream.Tracks(), m.log)
	if err != nil {
		m.startErr = err
		return err
	}
	started := false
	tick := min(s.cfg.IdleTimeout/4, time.Second)
	ticker := time.NewTicker(max(tick, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return errClosed
		case <-ticker.C:
			countDropped()
			idle := s.cfg.Now().Sub(time.Unix(0, m.lastRequest.Load()))
			if idle >= s.cfg.IdleTimeout && m.waiting.Load() == 0 {
				return fmt.Errorf("%w: no request for %v", errIdle, idle.Round(time.Millisecond))
			}
		case u, ok := <-reader.C():
			if !ok {
				if err := reader.Err(); err != nil {
					return fmt.Errorf("%w: %w", errStreamEnded, err)
				}
				return errStreamEnded
			}
			if !started {
				if video != nil {
					if u.Track != video.in || !u.Key {
						continue // start on a keyframe
					}
					video.learn(u.Payload)
					if !video.ready() {
						continue // wait for a keyframe with parameter sets
					}
				}
				if err := m.start(video, audio); err != nil {
					return err
				}
				started = true
			}
			m.f.write(u, s.cfg.Now)
		}
	}
}

// start builds the init segment and prepares the fragmenter.
func (m *muxer) start(video, audio *outTrack) error {
	vi, err := describe(video, audio)
	if err != nil {
		return fmt.Errorf("llhls: channel %d: %w", m.id, err)
	}
	init, err := initFile(video, audio)
	if err != nil {
		return fmt.Errorf("llhls: channel %d: %w", m.id, err)
	}
	m.init = init
	lead, other := video, audio
	if lead == nil {
		lead, other = audio, nil
	}
	m.f = fragmenter{
		m:          m,
		lead:       lead,
		other:      other,
		byIn:       map[int]*outTrack{},
		segMin:     m.s.cfg.SegmentMinDuration,
		partTarget: m.s.cfg.PartMinDuration,
		segCount:   m.s.cfg.SegmentCount,
		info:       vi,
		startedAt:  m.s.cfg.Now(),
		cur:        &segment{},
	}
	for _, t := range []*outTrack{video, audio} {
		if t != nil {
			m.f.byIn[t.in] = t
		}
	}
	m.log.Info("muxer started", "codecs", vi.codecs)
	return nil
}

// fragmenter cuts the units of a stream into parts and segments. It is
// owned by the muxer's goroutine.
//
// Parts end on the lead track (video, or the audio of an audio-only
// stream): a part is closed before a sample that would make it longer
// than the part target, and as soon as one more sample of the last
// duration would. A segment starts on a keyframe and ends at the first
// keyframe once it lasts SegmentMinDuration (RFC 8216bis-16 §6.2.1).
// Samples are held back until the next one of the track gives their
// duration.
type fragmenter struct {
	m           *muxer
	lead, other *outTrack
	byIn        map[int]*outTrack

	segMin, partTarget time.Duration
	segCount           int
	info               variantInfo
	startedAt          time.Time

	based       bool          // whether the time bases are set
	partDur     int64         // lead ticks in the part being built
	segDur      time.Duration // of the finished parts of cur
	independent bool          // the part being built starts with a keyframe
	cur         *segment      // being written; its parts slice only grows
	segs        []*segment
	parts       []*part
	nextMSN     uint64
	nextPart    uint64
	maxSegDur   time.Duration
	frags       [2]fragTrack
	lastLen     int // of the media playlist, to size the next
}

// write adds a unit of the stream.
func (f *fragmenter) write(u *media.Unit, now func() time.Time) {
	t := f.byIn[u.Track]
	if t == nil || len(u.Payload) == 0 {
		return
	}
	if !f.based {
		// The first unit is a video keyframe (a reader starts on one),
		// or the first audio unit of an audio-only stream. Its time
		// becomes 0 in every track.
		if t != f.lead {
			return
		}
		f.based = true
		for _, o := range []*outTrack{f.lead, f.other} {
			if o != nil {
				o.base = media.Rescale(u.PTS, t.track.ClockRate, o.track.ClockRate)
			}
		}
	}
	ntp := u.NTP
	if ntp.IsZero() {
		ntp = now()
	}
	pts := media.Rescale(u.PTS-t.base, t.track.ClockRate, t.timescale)
	switch t.codec {
	case media.CodecH264, media.CodecH265:
		smp := t.videoSample(u)
		smp.pts = pts
		f.push(t, smp, ntp)
	case media.CodecAAC:
		// One unit may carry several access units of 1024 samples.
		for i, au := range u.Payload {
			if len(au) != 0 {
				smp := audioSample(au)
				smp.pts = pts + int64(i)*1024
				f.push(t, smp, ntp)
			}
		}
	case media.CodecOpus:
		for _, pkt := range u.Payload {
			if len(pkt) != 0 {
				smp := audioSample(pkt)
				smp.pts = pts
				f.push(t, smp, ntp)
			}
		}
	}
}

// push holds smp back and adds the previous sample of its track, whose
// duration it gives.
func (f *fragmenter) push(t *outTrack, smp sample, ntp time.Time) {
	if smp.pts < 0 {
		return // audio from before the first keyframe
	}
	prev, had := t.pending, t.hasPending
	t.pending, t.hasPending = smp, true
	if !had {
		t.pendingNTP = ntp
		return
	}
	prev.dur = media.SampleDuration(prev.pts, smp.pts, t.lastDur, t.timescale)
	t.lastDur = prev.dur
	prevNTP := t.pendingNTP
	t.pendingNTP = ntp
	f.add(t, prev, prevNTP)
}

// add puts a sample whose duration is known into the part being built.
func (f *fragmenter) add(t *outTrack, smp sample, ntp time.Time) {
	if !t.started {
		t.started = true
		t.decode = uint64(smp.pts)
	}
	if t != f.lead {
		if len(t.samples) == 0 {
			t.partBase = t.decode
		} else if len(t.samples) >= maxPendingSamples {
			// The lead track stalled: drop rather than grow without bound.
			clear(t.samples)
			t.samples = t.samples[:0]
			t.partBase = t.decode
		}
		t.samples = append(t.samples, smp)
		t.decode += uint64(smp.dur)
		return
	}
	target := int64(f.partTarget) * int64(t.timescale) / int64(time.Second)
	switch {
	case smp.sync && f.segDur+f.partDuration() >= f.segMin && (f.partDur > 0 || len(f.cur.parts) > 0):
		f.flush(true)
	case f.partDur > 0 && f.partDur+int64(smp.dur) > target:
		f.flush(false)
	}
	if f.partDur == 0 {
		if len(f.cur.parts) == 0 {
			f.cur.ntp = ntp
		}
		f.independent = smp.sync
		t.partBase = t.decode
	}
	t.samples = append(t.samples, smp)
	t.decode += uint64(smp.dur)
	f.partDur += int64(smp.dur)
	if f.partDur+int64(smp.dur) > target {
		// One more sample like this one would not fit: close now rather
		// than one frame later.
		f.flush(false)
	}
}

// partDuration returns the duration of the part being built.
func (f *fragmenter) partDuration() time.Duration {
	return time.Duration(f.partDur) * time.Second / time.Duration(f.lead.timescale)
}

// flush closes the part being built, if it has samples, and with endSeg the
// segment being written, then publishes the new state.
func (f *fragmenter) flush(endSeg bool) {
	if f.partDur > 0 {
		frags := f.frags[:0]
		for _, t := range []*outTrack{f.lead, f.other} {
			if t != nil && len(t.samples) > 0 {
				frags = append(frags, fragTrack{
					id: t.id, baseTime: t.partBase, video: t.codec.IsVideo(), samples: t.samples,
				})
			}
		}
		p := &part{
			id:          f.nextPart,
			buf:         writePart(uint32(f.nextPart+1), frags),
			dur:         f.partDuration(),
			independent: f.independent,
		}
		for _, t := range []*outTrack{f.lead, f.other} {
			if t != nil {
				clear(t.samples) // drop the references to the units
				t.samples = t.samples[:0]
			}
		}
		clear(frags)
		f.nextPart++
		f.cur.parts = append(f.cur.parts, p)
		f.cur.dur += p.dur
		f.cur.size += len(p.buf)
		f.segDur += p.dur
		f.parts = append(f.parts, p)
		f.partDur = 0
	}
	first := false
	if endSeg && len(f.cur.parts) > 0 {
		f.cur.msn = f.nextMSN
		f.nextMSN++
		f.segs = append(f.segs, f.cur)
		f.maxSegDur = max(f.maxSegDur, f.cur.dur)
		first = len(f.segs) == 1 && f.cur.msn == 0
		if n := len(f.segs) - f.segCount; n > 0 {
			gone := 0
			for _, s := range f.segs[:n] {
				gone += len(s.parts)
			}
			// Copy rather than reslice, so that the dropped parts can be
			// collected; older snapshots keep their own slices.
			f.segs = append(make([]*segment, 0, f.segCount+1), f.segs[n:]...)
			f.parts = append(make([]*part, 0, len(f.parts)-gone+16), f.parts[gone:]...)
		}
		f.cur = &segment{msn: f.nextMSN}
		f.segDur = 0
	}
	f.publish(first)
}

// targetDuration returns EXT-X-TARGETDURATION: the longest segment so far,
// rounded to the nearest second (RFC 8216bis-16 §4.4.3.1), at least 1.
func (f *fragmenter) targetDuration() int {
	return max(1, int(math.Round(f.maxSegDur.Seconds())))
}

// publish renders the media playlist, replaces the snapshot, wakes the
// requests waiting for a change and, on the first segment, makes the muxer
// ready.
func (f *fragmenter) publish(first bool) {
	m := f.m
	if len(f.segs) == 0 {
		// Not playable yet: requests wait for the first segment.
		return
	}
	in := mediaPlaylistInput{
		prefix:     m.prefix,
		target:     f.targetDuration(),
		partTarget: f.partTarget,
		segs:       f.segs,
		curParts:   f.cur.parts[:len(f.cur.parts):len(f.cur.parts)],
		nextPart:   f.nextPart,
	}
	tpl := renderMedia(in, make([]byte, 0, f.lastLen+256))
	f.lastLen = len(tpl.text)
	next := &snapshot{
		segs:     f.segs[:len(f.segs):len(f.segs)],
		parts:    f.parts[:len(f.parts):len(f.parts)],
		curMSN:   f.cur.msn,
		curParts: len(f.cur.parts),
		nextPart: f.nextPart,
		target:   in.target,
		media:    tpl,
		changed:  make(chan struct{}),
	}
	if first {
		s := f.segs[0]
		bw := int(float64(s.size*8) / max(s.dur.Seconds(), 0.001))
		m.multivariant = renderMultivariant(f.info, bw)
	}
	old := m.snap.Swap(next)
	close(old.changed)
	if first {
		m.s.metrics.startSeconds.Observe(m.s.cfg.Now().Sub(f.startedAt).Seconds())
		m.isReady.Store(true)
		close(m.ready)
	}
}

// detach removes m from the muxers serving channels, so that the next
// request starts a new muxer, and keeps it among the stopping ones: the new
// muxer waits until m has released its stream.
func (s *Server) detach(m *muxer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.muxers[m.id] == m {
		delete(s.muxers, m.id)
		s.stopping[m.id] = m
	}
}

// remove forgets m, which has stopped.
func (s *Server) remove(m *muxer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.muxers[m.id] == m {
		delete(s.muxers, m.id)
	}
	if s.stopping[m.id] == m {
		delete(s.stopping, m.id)
	}
}

// serve answers a request for file name. It returns the result for the
// metrics.
func (m *muxer) serve(w http.ResponseWriter, r *http.Request, name string) string {
	switch name {
	case "index.m3u8":
		if status, code, msg := m.waitReady(r.Context()); status != 0 {
			return writeError(w, status, code, msg)
		}
		writePlaylist(w, m.multivariant.render(playlistQuery(r.URL.RawQuery)))
		return codeOK
	case "stream.m3u8":
		return m.serveMedia(w, r)
	}
	file, ok := strings.CutPrefix(name, m.prefix+"_")
	if !ok || !m.isReady.Load() {
		return writeError(w, http.StatusNotFound, codeNotFound, "no such file")
	}
	if file == "init.mp4" {
		writeMP4(w, "max-age=30", m.init)
		return codeOK
	}
	if n, ok := fileNumber(file, "seg"); ok {
		seg := m.snap.Load().segByMSN(n)
		if seg == nil {
			return writeError(w, http.StatusNotFound, codeNotFound, "no such segment")
		}
		bufs := make([][]byte, len(seg.parts))
		for i, p := range seg.parts {
			bufs[i] = p.buf
		}
		writeMP4(w, "max-age=3600", bufs...)
		return codeOK
	}
	if n, ok := fileNumber(file, "part"); ok {
		p, status, code, msg := m.waitPart(r.Context(), n)
		if status != 0 {
			return writeError(w, status, code, msg)
		}
		writeMP4(w, "max-age=3600", p.buf)
		return codeOK
	}
	return writeError(w, http.StatusNotFound, codeNotFound, "no such file")
}

// serveMedia answers a request for the media playlist, blocking until the
// segment or part it asks for with _HLS_msn and _HLS_part exists
// (RFC 8216bis-16 §6.2.5.2). _HLS_skip is ignored: the server does not
// advertise CAN-SKIP-UNTIL.
func (m *muxer) serveMedia(w http.ResponseWriter, r *http.Request) string {
	if status, code, msg := m.waitReady(r.Context()); status != 0 {
		return writeError(w, status, code, msg)
	}
	raw := r.URL.RawQuery
	snap := m.snap.Load()
	if strings.Contains(raw, "_HLS_") {
		q := r.URL.Query()
		msnStr, partStr := q.Get("_HLS_msn"), q.Get("_HLS_part")
		if msnStr != "" || partStr != "" {
			msn, err1 := strconv.ParseUint(msnStr, 10, 64)
			partIdx, err2 := int64(-1), error(nil)
			if partStr != "" {
				partIdx, err2 = strconv.ParseInt(partStr, 10, 32)
			}
			if err1 != nil || err2 != nil || partIdx < -1 {
				return writeError(w, http.StatusBadRequest, codeBadRequest, "invalid LL-HLS query parameters")
			}
			var status int
			var code, msg string
			snap, status, code, msg = m.waitPlaylist(r.Context(), msn, int(partIdx))
			if status != 0 {
				return writeError(w, status, code, msg)
			}
		}
	}
	writePlaylist(w, snap.media.render(playlistQuery(raw)))
	return codeOK
}

// maxPendingSamples bounds the samples of the other track that wait for
// the lead track to end a part: about 10 s of 48 kHz AAC.
const maxPendingSamples = 512

// advancePartLimit is the Advance Part Limit of RFC 8216bis-16 §6.2.5.2.
const advancePartLimit = 3

// waitPlaylist waits until the playlist contains segment msn (partIdx < 0)
// or its part partIdx, at most three target durations (§6.2.5.2), and
// returns the snapshot that does, or the error to answer: 400 for a
// request too far ahead, 503 on timeout or when the muxer stops.
func (m *muxer) waitPlaylist(ctx context.Context, msn uint64, partIdx int) (*snapshot, int, string, string) {
	m.waiting.Add(1)
	defer m.waiting.Add(-1)
	var timer *time.Timer
	for {
		snap := m.snap.Load()
		if snap.has(msn, partIdx) {
			return snap, 0, "", ""
		}
		if msn > snap.curMSN+1 || (msn == snap.curMSN && partIdx >= snap.curParts+advancePartLimit) {
			return nil, http.StatusBadRequest, codeBadRequest, "_HLS_msn or _HLS_part too far ahead"
		}
		if timer == nil {
			timer = time.NewTimer(3 * time.Duration(snap.target) * time.Second)
			defer timer.Stop()
		}
		if status, code, msg := m.await(ctx, snap.changed, timer, "playlist update not ready, retry"); status != 0 {
			return nil, status, code, msg
		}
	}
}

// await waits until changed is closed (a zero status), or returns the error
// to answer when the muxer stops, the request ends or timer fires.
func (m *muxer) await(ctx context.Context, changed <-chan struct{}, timer *time.Timer, notReady string) (int, string, string) {
	select {
	case <-changed:
		return 0, "", ""
	case <-m.done:
		return m.stoppedError()
	case <-ctx.Done():
		return http.StatusServiceUnavailable, codeCanceled, "request canceled"
	case <-timer.C:
		return http.StatusServiceUnavailable, codeNotReady, notReady
	}
}

// waitPart returns part n, waiting for it if it is the part being written
// (the EXT-X-PRELOAD-HINT), at most ReadyTimeout. It returns the error to
// answer otherwise: 404 for a part not kept or not the next one, 503 on
// timeout or when the muxer stops.
func (m *muxer) waitPart(ctx context.Context, n uint64) (*part, int, string, string) {
	m.waiting.Add(1)
	defer m.waiting.Add(-1)
	var timer *time.Timer
	for {
		snap := m.snap.Load()
		if p := snap.partByID(n); p != nil {
			return p, 0, "", ""
		}
		if n != snap.nextPart {
			return nil, http.StatusNotFound, codeNotFound, "no such part"
		}
		if timer == nil {
			timer = time.NewTimer(m.s.cfg.ReadyTimeout)
			defer timer.Stop()
		}
		if status, code, msg := m.await(ctx, snap.changed, timer, "part not ready, retry"); status != 0 {
			return nil, status, code, msg
		}
	}
}

// fileNumber parses "<kind><n>.mp4" with n in its canonical form.
func fileNumber(file, kind string) (uint64, bool) {
	rest, ok := strings.CutPrefix(file, kind)
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ".mp4")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// writePlaylist answers a playlist. Playlists are not cacheable: a new
// muxer of the channel may have other codecs and file names.
func writePlaylist(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeMP4 answers the concatenation of bufs, without copying them.
func writeMP4(w http.ResponseWriter, cacheControl string, bufs ...[]byte) {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	for _, b := range bufs {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// waitReady waits until the muxer has its first segment, or it stops, or
// ctx ends, or Config.ReadyTimeout passes after the stream was acquired.
// It returns a zero status when the muxer is ready, else the error to
// answer.
func (m *muxer) waitReady(ctx context.Context) (status int, code, msg string) {
	m.waiting.Add(1)
	defer m.waiting.Add(-1)
	if m.isReady.Load() {
		select {
		case <-m.done:
			return m.stoppedError()
		default:
			return 0, "", ""
		}
	}
	select {
	case <-m.acquired:
	case <-m.done:
		return m.stoppedError()
	case <-ctx.Done():
		return http.StatusServiceUnavailable, codeCanceled, "request canceled"
	}
	timer := time.NewTimer(m.s.cfg.ReadyTimeout)
	defer timer.Stop()
	select {
	case <-m.ready:
		select {
		case <-m.done:
			return m.stoppedError()
		default:
			return 0, "", ""
		}
	case <-m.done:
		return m.stoppedError()
	case <-ctx.Done():
		return http.StatusServiceUnavailable, codeCanceled, "request canceled"
	case <-timer.C:
		return http.StatusServiceUnavailable, codeNotReady, "live stream is starting, retry"
	}
}

// stoppedError returns the answer to a request for a muxer that stopped.
// It must be called after done is closed.
func (m *muxer) stoppedError() (status int, code, msg string) {
	switch err := m.err; {
	case m.startErr != nil:
		return acquireError(m.startErr)
	case errors.Is(err, errClosed):
		return http.StatusServiceUnavailable, codeUnavailable, "server closed"
	case !m.isReady.Load() && !errors.Is(err, errIdle) && !errors.Is(err, errStreamEnded):
		return http.StatusServiceUnavailable, codeUnavailable, oneLine(err.Error())
	}
	return http.StatusServiceUnavailable, codeStreamEnded, "live stream ended, retry"
}

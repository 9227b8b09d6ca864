package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// maxAudioBacklog caps the audio samples waiting for the video track to
// close a part: a stream whose video stalls does not grow without bound.
const maxAudioBacklog = 2000

// run writes the units of one stream (one connection of the source) into
// consecutive segment files. Decode times start at zero with the run and
// continue across its files, so that a player can read a run's segments
// back to back.
//
// A part (one moof+mdat) is closed at every video keyframe and before it
// would last more than partDur; a segment is closed at the first keyframe
// once it lasts segDur. Each part is written to the file with one write as
// soon as it is closed: a crash loses at most the part being built.
type run struct {
	channelID int64
	id        int64 // run id: the wall-clock start in Unix milliseconds
	dir       string
	segDur    time.Duration
	partDur   time.Duration
	now       func() time.Time

	video, audio *track
	byIn         map[int]*track
	based        bool
	start        time.Time // wall-clock time of decode time 0
	init         []byte
	codec        string

	file      *os.File
	hash      hash.Hash
	seg       model.Segment // the segment being written
	segBase   uint64        // video decode time at the start of seg
	seq       uint32
	partVideo uint64 // video ticks in the part being built
	buf       seekablebuffer.Buffer

	// onPart is called after each part is written, with the segment as it
	// stands; onSegment when a segment is finished (synced and closed).
	onPart    func(model.Segment)
	onSegment func(model.Segment)
}

func newRun(channelID int64, tracks []*media.Track, dir string, segDur, partDur time.Duration, now func() time.Time) (*run, error) {
	video, audio, err := planTracks(tracks)
	if err != nil {
		return nil, err
	}
	r := &run{channelID: channelID, dir: dir, segDur: segDur, partDur: partDur, now: now,
		video: video, audio: audio, byIn: map[int]*track{video.in: video}}
	if audio != nil {
		r.byIn[audio.in] = audio
	}
	return r, nil
}

// write adds a unit of the stream. It returns an error only when a file
// cannot be written (a full or failing disk); the run is then over.
func (r *run) write(u *media.Unit) error {
	t := r.byIn[u.Track]
	if t == nil || len(u.Payload) == 0 {
		return nil
	}
	if !r.based {
		// Start on a video keyframe whose parameter sets are known.
		if t != r.video || !u.Key {
			return nil
		}
		payload := t.videoPayload(u) // learns in-band parameter sets
		if !t.ready() {
			return nil
		}
		init, codec, err := initSegment(r.video, r.audio)
		if err != nil {
			return media.Fail(media.ReasonCodecUnsupported, err)
		}
		r.init, r.codec, r.based = init, codec, true
		r.start = captureTime(u.NTP, r.now()).UTC().Truncate(time.Millisecond)
		r.id = r.start.UnixMilli()
		for _, o := range []*track{r.video, r.audio} {
			if o != nil {
				o.base = media.Rescale(u.PTS, t.clock, o.clock)
			}
		}
		return r.pushVideo(media.Rescale(u.PTS-t.base, t.clock, videoTimescale), payload, true)
	}
	pts := media.Rescale(u.PTS-t.base, t.clock, t.timescale)
	if t == r.video {
		if u.Key && r.file != nil && media.Duration(pts-int64(r.segBase), videoTimescale) >= r.segDur {
			// A segment ends here. If the camera's clock and the wall
			// clock have drifted apart, or timestamps jumped, end the run
			// instead: the next one starts at this keyframe, on time.
			want := captureTime(u.NTP, r.now())
			if d := want.Sub(r.start.Add(media.Duration(pts, videoTimescale))); d > maxDrift || d < -maxDrift {
				return &driftError{d}
			}
		}
		return r.pushVideo(pts, t.videoPayload(u), u.Key)
	}
	t.audioSamples(u, pts, func(pts int64, payload []byte) {
		if pts >= 0 { // audio from before the first keyframe is dropped
			r.pushAudio(pts, payload)
		}
	})
	return nil
}

// hold puts a new sample in t.pending and returns the previous one with
// its duration, if there was one.
func (t *track) hold(pts int64, s fmp4.Sample) (prev fmp4.Sample, ok bool) {
	prev, prevPTS, had := t.pending, t.pendingPTS, t.hasPending
	t.pending, t.pendingPTS, t.hasPending = s, pts, true
	if !had {
		return prev, false
	}
	prev.Duration = media.SampleDuration(prevPTS, pts, t.lastDur, t.timescale)
	t.lastDur = prev.Duration
	return prev, true
}

func (r *run) pushAudio(pts int64, payload []byte) {
	t := r.audio
	prev, ok := t.hold(pts, fmp4.Sample{Payload: payload})
	if !ok {
		if !r.audioStarted() {
			t.decode = uint64(pts)
		}
		return
	}
	if len(t.samples) == 0 {
		t.partBase = t.decode
	}
	if len(t.samples) >= maxAudioBacklog {
		clear(t.samples)
		t.samples = t.samples[:0]
		t.partBase = t.decode
	}
	p := prev
	t.samples = append(t.samples, &p)
	t.decode += uint64(prev.Duration)
}

func (r *run) audioStarted() bool { return r.audio.lastDur != 0 || len(r.audio.samples) > 0 }

func (r *run) pushVideo(pts int64, payload []byte, key bool) error {
	t := r.video
	prev, ok := t.hold(pts, fmp4.Sample{Payload: payload, IsNonSyncSample: !key})
	if !ok {
		t.decode = 0
		return nil
	}
	target := uint64(r.partDur.Seconds() * videoTimescale)
	segLen := media.Duration(int64(t.decode-r.segBase), videoTimescale)
	if r.file != nil && segLen >= maxSegment {
		// No keyframe for most of an hour: cut anyway, so that the
		// segment stays within what the index accepts.
		if err := r.flush(); err != nil {
			return err
		}
		if err := r.closeSegment(); err != nil {
			return err
		}
	} else if !prev.IsNonSyncSample && r.partVideo > 0 {
		// A keyframe starts a new part, and a new segment once the
		// current one is long enough.
		if err := r.flush(); err != nil {
			return err
		}
		if r.file != nil && segLen >= r.segDur {
			if err := r.closeSegment(); err != nil {
				return err
			}
		}
	} else if r.partVideo > 0 && r.partVideo+uint64(prev.Duration) > target {
		if err := r.flush(); err != nil {
			return err
		}
	}
	if r.file == nil {
		if err := r.openSegment(); err != nil {
			return err
		}
	}
	if len(t.samples) == 0 {
		t.partBase = t.decode
	}
	p := prev
	t.samples = append(t.samples, &p)
	t.decode += uint64(prev.Duration)
	r.partVideo += uint64(prev.Duration)
	return nil
}

// openSegment creates the file of a new segment that starts at the video
// decode time of the next sample, and writes the init segment.
func (r *run) openSegment() error {
	start := r.start.Add(media.Duration(int64(r.video.decode), videoTimescale)).Truncate(time.Millisecond)
	key := SegmentKey(r.channelID, start, r.id)
	path := filepath.Join(r.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return &storageError{fmt.Errorf("record: %w", err)}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return &storageError{fmt.Errorf("record: %w", err)}
	}
	r.file, r.hash, r.segBase = f, sha256.New(), r.video.decode
	r.seg = model.Segment{ChannelID: r.channelID, Start: start, End: start, Key: key,
		Location: model.LocationDisk, Codec: r.codec, Run: r.id, Open: true}
	if err := r.writeFile(r.init); err != nil {
		return err
	}
	return nil
}

// writeFile appends b to the segment file in one write.
func (r *run) writeFile(b []byte) error {
	n, err := r.file.Write(b)
	if err != nil {
		// Keep the file as it was before the failed write: the tail
		// would otherwise be a partial box.
		if n > 0 {
			_ = r.file.Truncate(r.seg.Bytes)
		}
		return &storageError{fmt.Errorf("record: write %s: %w", r.seg.Key, err)}
	}
	r.hash.Write(b)
	r.seg.Bytes += int64(n)
	return nil
}

// flush writes the part being built, if it has video.
func (r *run) flush() error {
	if r.partVideo == 0 {
		return nil
	}
	if r.file == nil {
		if err := r.openSegment(); err != nil {
			return err
		}
	}
	r.seq++
	part := fmp4.Part{SequenceNumber: r.seq}
	part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: r.video.id, BaseTime: r.video.partBase, Samples: r.video.samples})
	// Audio goes with the part up to where its video ends; the rest waits
	// for the next part, so that both tracks of a segment end together.
	var audioN int
	if a := r.audio; a != nil && len(a.samples) > 0 {
		end := uint64(media.Rescale(int64(r.video.decode), videoTimescale, a.timescale))
		at := a.partBase
		for audioN < len(a.samples) && at+uint64(a.samples[audioN].Duration) <= end {
			at += uint64(a.samples[audioN].Duration)
			audioN++
		}
		if audioN > 0 {
			part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: a.id, BaseTime: a.partBase, Samples: a.samples[:audioN]})
		}
	}
	r.buf.Reset()
	if err := part.Marshal(&r.buf); err != nil {
		return fmt.Errorf("record: part of %s: %w", r.seg.Key, err)
	}
	err := r.writeFile(r.buf.Bytes())
	r.video.recycle(r.video.samples)
	clear(r.video.samples)
	r.video.samples = r.video.samples[:0]
	if a := r.audio; a != nil && audioN > 0 {
		for _, smp := range a.samples[:audioN] {
			a.partBase += uint64(smp.Duration)
		}
		n := copy(a.samples, a.samples[audioN:])
		clear(a.samples[n:])
		a.samples = a.samples[:n]
	}
	r.partVideo = 0
	if err != nil {
		return err
	}
	r.seg.End = r.seg.Start.Add(media.Duration(int64(r.video.decode-r.segBase), videoTimescale))
	if r.onPart != nil {
		r.onPart(r.seg)
	}
	return nil
}

// closeSegment syncs and closes the segment file and reports it finished.
func (r *run) closeSegment() error {
	if r.file == nil {
		return nil
	}
	f := r.file
	r.file = nil
	err := errors.Join(f.Sync(), f.Close())
	seg := r.seg
	seg.Open = false
	seg.SHA256 = hex.EncodeToString(r.hash.Sum(nil))
	if seg.Bytes <= int64(len(r.init)) {
		// Nothing but the init: not a recording.
		os.Remove(filepath.Join(r.dir, filepath.FromSlash(seg.Key)))
		return err
	}
	if r.onSegment != nil {
		r.onSegment(seg)
	}
	if err != nil {
		return &storageError{fmt.Errorf("record: close %s: %w", seg.Key, err)}
	}
	return nil
}

// maxDrift is how far the media time of a run may drift from the wall
// clock before the run is ended at a segment boundary and a new one
// starts on time (a camera clock 0.01 % off drifts 8.6 s a day).
const maxDrift = 2 * time.Second

// driftError ends a run whose media time drifted from the wall clock.
type driftError struct{ d time.Duration }

func (e *driftError) Error() string {
	return fmt.Sprintf("record: media time drifted %v from the wall clock; starting a new run", e.d.Round(time.Millisecond))
}

// maxSegment is the longest segment the recorder writes, within the
// index's store.MaxSegmentDuration.
const maxSegment = store.MaxSegmentDuration - 5*time.Minute

// captureTime returns the wall-clock time of a unit's capture as the
// source reports it (a unit from the hub's GOP cache is up to a GOP old),
// or now when that is missing or implausible (a camera clock set wrong).
func captureTime(ntp, now time.Time) time.Time {
	if ntp.IsZero() || ntp.After(now.Add(time.Second)) || ntp.Before(now.Add(-time.Minute)) {
		return now
	}
	return ntp
}

// close ends the run: the part being built is written (the samples held
// back for their duration are lost: at most a frame per track) and the
// segment is finished.
func (r *run) close() error {
	if r.file == nil && r.partVideo == 0 {
		return nil
	}
	err := r.flush()
	return errors.Join(err, r.closeSegment())
}

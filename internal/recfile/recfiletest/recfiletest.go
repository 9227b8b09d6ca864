// Package recfiletest writes segment files the way the recorder does, for
// the tests of the packages that read them (recfile, playback).
//
// The video is real H.264 kept in testdata (see testdata/README.md), so
// that what a test builds plays in ffprobe, ffplay and browsers; the
// audio is real AAC, or a synthetic tone as 16-bit PCM like the recorder
// makes of G.711.
package recfiletest

import (
	"bytes"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mcodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

//go:embed testdata/*.h264 testdata/*.aac
var media embed.FS

// Clips of testdata: H.264 at 15 fps with a keyframe every 30 frames (2 s)
// and no B-frames, every keyframe with its SPS and PPS.
const (
	// Testsrc320 is 8 s of 320x240 testsrc, High profile.
	Testsrc320 = "testsrc-320x240-15fps"
	// Testsrc160 is 4 s of 160x120 testsrc2, Main profile.
	Testsrc160 = "testsrc2-160x120-15fps"
)

// aacFile is 8 s of a 440 Hz tone, AAC-LC, 16 kHz, mono, in ADTS.
const aacFile = "testdata/sine-440hz-16khz.aac"

// Audio is the audio track of the files a Writer writes.
type Audio int

// Audio tracks.
const (
	AudioNone Audio = iota
	AudioAAC        // AAC-LC, 16 kHz mono, timescale 16000
	AudioLPCM       // 16-bit big-endian PCM, 8 kHz mono, in samples of 20 ms
)

// Timescales of the tracks.
const (
	VideoTimescale = 90000
	frameDuration  = VideoTimescale / 15
	lpcmRate       = 8000
	lpcmSamples    = 160 // per MP4 sample: 20 ms
)

// Options configure a Writer.
type Options struct {
	Clip  string // Testsrc320 (the default) or Testsrc160
	Audio Audio
	// PartDuration is the longest fragment; a new one also starts at each
	// keyframe. The default is a second, like the recorder's.
	PartDuration time.Duration
	// BaseTime is the decode time of the first sample of each run.
	BaseTime time.Duration
}

// Segment is a file written by a Writer.
type Segment struct {
	Bytes    []byte
	Duration time.Duration // of the video
	Parts    int           // moof+mdat fragments
	InitSize int
}

// unit is a video access unit.
type unit struct {
	avcc []byte
	key  bool
}

// clip is an H.264 clip in access units.
type clip struct {
	units    []unit
	sps, pps []byte
}

// Writer writes the segment files of a channel: each call of Segment
// continues the timeline of the previous one until NewRun starts another.
// The clip loops. A Writer is not safe for concurrent use.
type Writer struct {
	o       Options
	clip    *clip
	aac     [][]byte
	aacConf mpeg4audio.AudioSpecificConfig
	init    []byte

	next       int    // index of the next unit of the clip
	videoTime  uint64 // decode time of the next video sample
	audioTime  uint64 // decode time of the next audio sample
	audioIndex int    // of the next AAC frame, or of the next PCM sample
	seq        uint32
}

// NewWriter returns a Writer at the start of a run.
func NewWriter(o Options) (*Writer, error) {
	if o.Clip == "" {
		o.Clip = Testsrc320
	}
	if o.PartDuration <= 0 {
		o.PartDuration = time.Second
	}
	c, err := loadClip(o.Clip)
	if err != nil {
		return nil, err
	}
	w := &Writer{o: o, clip: c}
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: VideoTimescale, Codec: &mcodecs.H264{SPS: c.sps, PPS: c.pps}}}}
	switch o.Audio {
	case AudioAAC:
		if w.aac, w.aacConf, err = loadAAC(); err != nil {
			return nil, err
		}
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: 2, TimeScale: uint32(w.aacConf.SampleRate), Codec: &mcodecs.MPEG4Audio{Config: w.aacConf}})
	case AudioLPCM:
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: 2, TimeScale: lpcmRate, Codec: &mcodecs.LPCM{BitDepth: 16, SampleRate: lpcmRate, ChannelCount: 1}})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("recfiletest: init: %w", err)
	}
	w.init = buf.Bytes()
	w.NewRun()
	return w, nil
}

// NewRun starts a new timeline: decode times go back to Options.BaseTime
// and the clip to its start.
func (w *Writer) NewRun() {
	w.next, w.audioIndex, w.seq = 0, 0, 0
	w.videoTime = uint64(w.o.BaseTime) * VideoTimescale / uint64(time.Second)
	w.audioTime = uint64(w.o.BaseTime) * uint64(w.audioTimescale()) / uint64(time.Second)
}

func (w *Writer) audioTimescale() uint32 {
	switch w.o.Audio {
	case AudioAAC:
		return uint32(w.aacConf.SampleRate)
	case AudioLPCM:
		return lpcmRate
	}
	return 1
}

// Segment writes the next file of the run: at least d of video, up to the
// next keyframe (so the next file starts with one).
func (w *Writer) Segment(d time.Duration) (*Segment, error) {
	want := uint64(d) * VideoTimescale / uint64(time.Second)
	partMax := uint64(w.o.PartDuration) * VideoTimescale / uint64(time.Second)
	seg := &Segment{InitSize: len(w.init)}
	out := bytes.NewBuffer(append([]byte(nil), w.init...))
	var total uint64
	for {
		u := w.clip.units[w.next]
		if total >= want && u.key {
			break
		}
		// One part: a keyframe starts a new one, and so does the
		// longest duration.
		var samples []*fmp4.Sample
		base := w.videoTime
		var dur uint64
		for len(samples) == 0 || (!w.clip.units[w.next].key && dur+frameDuration <= partMax) {
			u := w.clip.units[w.next]
			samples = append(samples, &fmp4.Sample{Duration: frameDuration, IsNonSyncSample: !u.key, Payload: u.avcc})
			dur += frameDuration
			w.next = (w.next + 1) % len(w.clip.units)
		}
		w.videoTime += dur
		w.seq++
		part := fmp4.Part{SequenceNumber: w.seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: base, Samples: samples}}}
		if at := w.audioPart(); at != nil {
			part.Tracks = append(part.Tracks, at)
		}
		var buf seekablebuffer.Buffer
		if err := part.Marshal(&buf); err != nil {
			return nil, fmt.Errorf("recfiletest: part: %w", err)
		}
		out.Write(buf.Bytes())
		total += dur
		seg.Parts++
	}
	seg.Bytes = out.Bytes()
	seg.Duration = time.Duration(total) * time.Second / VideoTimescale
	return seg, nil
}

// audioPart returns the audio samples that end at or before the end of the
// video written so far, as the recorder does.
func (w *Writer) audioPart() *fmp4.PartTrack {
	if w.o.Audio == AudioNone {
		return nil
	}
	ts := uint64(w.audioTimescale())
	end := w.videoTime * ts / VideoTimescale
	pt := &fmp4.PartTrack{ID: 2, BaseTime: w.audioTime}
	for {
		var s *fmp4.Sample
		switch w.o.Audio {
		case AudioAAC:
			s = &fmp4.Sample{Duration: mpeg4audio.SamplesPerAccessUnit, Payload: w.aac[w.audioIndex%len(w.aac)]}
		case AudioLPCM:
			s = &fmp4.Sample{Duration: lpcmSamples, Payload: tone(w.audioIndex)}
		}
		if w.audioTime+uint64(s.Duration) > end {
			break
		}
		pt.Samples = append(pt.Samples, s)
		w.audioTime += uint64(s.Duration)
		w.audioIndex++
	}
	if len(pt.Samples) == 0 {
		return nil
	}
	return pt
}

// tone returns the i-th 20 ms of a 440 Hz tone as 16-bit big-endian PCM.
func tone(i int) []byte {
	b := make([]byte, 0, lpcmSamples*2)
	for n := range lpcmSamples {
		t := float64(i*lpcmSamples+n) / lpcmRate
		v := int16(8000 * math.Sin(2*math.Pi*440*t))
		b = binary.BigEndian.AppendUint16(b, uint16(v))
	}
	return b
}

var (
	clipsMu sync.Mutex
	clips   = map[string]*clip{}
)

// loadClip splits a clip of testdata into access units (one slice per
// picture: every VCL NAL unit ends one).
func loadClip(name string) (*clip, error) {
	clipsMu.Lock()
	defer clipsMu.Unlock()
	if c, ok := clips[name]; ok {
		return c, nil
	}
	b, err := media.ReadFile("testdata/" + name + ".h264")
	if err != nil {
		return nil, fmt.Errorf("recfiletest: clip %q: %w", name, err)
	}
	c := &clip{}
	var au [][]byte
	key := false
	for _, n := range splitAnnexB(b) {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			if c.sps == nil {
				c.sps = n
			}
		case h264.NALUTypePPS:
			if c.pps == nil {
				c.pps = n
			}
		case h264.NALUTypeIDR:
			key = true
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		}
		au = append(au, n)
		if t := h264.NALUType(n[0] & 0x1f); t == h264.NALUTypeIDR || t == h264.NALUTypeNonIDR {
			avcc, err := h264.AVCC(au).Marshal()
			if err != nil {
				return nil, fmt.Errorf("recfiletest: clip %q: %w", name, err)
			}
			c.units = append(c.units, unit{avcc: avcc, key: key})
			au, key = nil, false
		}
	}
	if len(c.units) == 0 || !c.units[0].key || c.sps == nil || c.pps == nil {
		return nil, fmt.Errorf("recfiletest: clip %q: no keyframe with SPS and PPS first", name)
	}
	clips[name] = c
	return c, nil
}

// splitAnnexB returns the NAL units of an Annex B stream (ITU-T H.264
// Annex B), without start codes or trailing zeros.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// loadAAC returns the access units and the config of the AAC of testdata.
func loadAAC() ([][]byte, mpeg4audio.AudioSpecificConfig, error) {
	var conf mpeg4audio.AudioSpecificConfig
	b, err := media.ReadFile(aacFile)
	if err != nil {
		return nil, conf, fmt.Errorf("recfiletest: %w", err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(b); err != nil {
		return nil, conf, fmt.Errorf("recfiletest: %s: %w", aacFile, err)
	}
	if len(pkts) == 0 {
		return nil, conf, errors.New("recfiletest: no AAC")
	}
	conf = mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}
	aus := make([][]byte, len(pkts))
	for i, p := range pkts {
		aus[i] = p.AU
	}
	return aus, conf, nil
}

package rtprecv

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/media"
)

// Timing limits, in 90 kHz ticks.
const (
	clock90 = 90000
	// defaultFrameDur is the spacing assumed for a video frame before one
	// is measured: 25 fps, the PAL rate of most GB/T 28181 cameras.
	defaultFrameDur = clock90 / 25
	// maxJumpBack and maxJumpForward bound the step between two frames of a
	// track that is taken as it is; a larger one is a device restarting or
	// jumping its clock, and the track is rebased to continue smoothly.
	maxJumpBack    = clock90
	maxJumpForward = 10 * clock90
	// maxPTSDelay bounds PTS - DTS (B-frames); beyond it the DTS is
	// ignored.
	maxPTSDelay = 2 * clock90
	// maxAudioSkew is how far the first audio frame may be from the video
	// before it is taken for another clock and aligned with the video.
	maxAudioSkew = 10 * clock90
)

// pending is a frame kept between the first keyframe and the start of the
// stream.
type pending struct {
	video, key    bool
	payload       [][]byte
	dts, pts, dur int64 // raw, 90 kHz
	size          int
}

// output turns the frames of the demuxer into tracks and units: it waits
// for the first video keyframe with its parameter sets (and briefly for
// audio), calls ready, and writes units with continuous timestamps.
type output struct {
	s *session

	// Before the start.
	videoID     byte // stream_id of the video used; 0 until the first video frame
	vcodec      media.Codec
	fixCodec    media.Codec // the codec of the parameter sets, when the stream map says another
	vps         []byte
	sps         []byte
	pps         []byte
	haveKey     bool
	keyDTS      int64
	keyAt       time.Time
	videoFrames uint64 // of videoID
	pending     []pending
	pendBytes   int
	pendLastDTS int64
	firstRaw    int64 // raw DTS of the first frame, for NTP
	haveFirst   bool

	// Audio.
	audioID   byte // stream_id of the audio used; 0 if none
	atrack    *media.Track
	aac       adtsConfig
	audioNext int64 // raw timestamp following the last audio frame
	haveNext  bool

	vunwrap, aunwrap unwrapper

	// After the start.
	stream  *media.Stream
	vtrack  *media.Track
	width   int
	height  int
	lastSPS []byte
	vclock  clock
	aclock  clock
	ntpZero time.Time
}

func (o *output) init(s *session) { o.s = s }

func (o *output) started() bool { return o.stream != nil }

func (o *output) drop() { o.s.cnt.dropped.Add(1) }

// discontinuity notes that the demuxer dropped what it was collecting.
func (o *output) discontinuity() {
	if o.s.psSeen {
		o.drop()
	}
}

// frames handles the frames the demuxer delivered for one packet.
func (o *output) frames(fs []ps.Frame, now time.Time) error {
	for i := range fs {
		f := &fs[i]
		var err error
		if f.Codec.IsVideo() {
			err = o.video(f, now)
		} else {
			err = o.audio(f, now)
		}
		if err != nil {
			return err
		}
	}
	if o.stream == nil {
		return o.maybeStart(now)
	}
	return nil
}

func (o *output) video(f *ps.Frame, now time.Time) error {
	if o.videoID == 0 {
		o.videoID = f.Stream
	}
	if f.Stream != o.videoID {
		o.drop()
		return nil
	}
	o.videoFrames++
	dts, pts := o.videoTime(f)
	o.noteFirst(dts)
	nalus := splitAnnexB(f.Data)
	if len(nalus) == 0 {
		o.drop()
		return nil
	}
	codec, key := o.videoCodec(f, nalus)
	if o.stream != nil {
		if err := o.checkVideo(codec, nalus); err != nil {
			return err
		}
		o.writeVideo(nalus, key, dts, pts)
		return nil
	}

	if codec != o.vcodec { // the first frame, or a guess of the demuxer corrected
		o.vcodec, o.vps, o.sps, o.pps = codec, nil, nil, nil
		if o.haveKey {
			o.haveKey = false
			o.dropPending()
		}
	}
	o.learn(nalus)
	if !o.haveKey {
		if !key || !o.hasParams() {
			o.drop()
			return nil
		}
		o.haveKey, o.keyDTS, o.keyAt = true, dts, now
	}
	o.pend(pending{video: true, key: key, payload: nalus, dts: dts, pts: pts, size: len(f.Data)})
	o.pendLastDTS = dts
	return nil
}

// videoCodec returns the codec of a video frame and whether it is a
// keyframe. Some devices declare H.264 in their stream map and send H.265,
// or the reverse (ZLMediaKit issue 1192): before the stream starts, parameter
// sets of the other codec overrule the map for the rest of the session.
func (o *output) videoCodec(f *ps.Frame, nalus [][]byte) (media.Codec, bool) {
	c := f.Codec
	if o.fixCodec == media.CodecUnknown && o.stream == nil {
		if other := foreignNALU(c, nalus...); other != media.CodecUnknown {
			o.s.log.Warn("the stream map declares another video codec than the parameter sets show: believing the parameter sets",
				"map", c.String(), "parameter_sets", other.String())
			o.fixCodec = other
		}
	}
	if o.fixCodec == media.CodecUnknown || o.fixCodec == c {
		return c, f.Key
	}
	return o.fixCodec, isKeyFrame(o.fixCodec, nalus)
}

// videoTime returns the raw DTS and PTS of a video frame: from its PES
// header, or from the RTP timestamp of its packets when the video has no
// usable PES timestamps.
func (o *output) videoTime(f *ps.Frame) (dts, pts int64) {
	if !f.HasPTS || o.s.probe.timed() {
		t := o.s.frameTS
		return t, t
	}
	pts = o.vunwrap.unwrap33(f.PTS)
	d := f.DTS - f.PTS
	if d > 0 || d < -maxPTSDelay {
		d = 0
	}
	return pts + d, pts
}

func (o *output) noteFirst(raw int64) {
	if !o.haveFirst {
		o.haveFirst, o.firstRaw = true, raw
	}
}

// learn keeps the parameter sets of a video frame.
func (o *output) learn(nalus [][]byte) {
	for _, n := range nalus {
		switch media.KindOf(o.vcodec, n) {
		case media.NALUVPS:
			o.vps = n
		case media.NALUSPS:
			o.sps = n
		case media.NALUPPS:
			o.pps = n
		}
	}
}

func (o *output) hasParams() bool {
	switch o.vcodec {
	case media.CodecH264:
		return o.sps != nil && o.pps != nil
	case media.CodecH265:
		return o.vps != nil && o.sps != nil && o.pps != nil
	}
	return false
}

func (o *output) pend(p pending) {
	o.pending = append(o.pending, p)
	o.pendBytes += p.size
}

func (o *output) dropPending() {
	o.s.cnt.dropped.Add(uint64(len(o.pending)))
	clear(o.pending)
	o.pending, o.pendBytes = o.pending[:0], 0
}

func (o *output) audio(f *ps.Frame, now time.Time) error {
	if o.audioID == 0 {
		if o.stream != nil {
			o.drop() // audio that starts after the stream is not used
			return nil
		}
		t, cfg, ok := audioTrack(f)
		if !ok {
			o.drop()
			return nil
		}
		o.audioID, o.atrack, o.aac = f.Stream, t, cfg
		o.s.log.Debug("audio found", "stream_id", fmt.Sprintf("%#02x", f.Stream), "track", t.String(), "channels", t.Channels)
	}
	if f.Stream != o.audioID {
		o.drop()
		return nil
	}
	if f.Codec != o.atrack.Codec {
		if o.stream != nil {
			return media.Fail(media.ReasonProtocol, fmt.Errorf(
				"rtprecv: the audio codec changed from %s to %s mid-stream (the device was reconfigured); reconnecting", o.atrack.Codec, f.Codec))
		}
		o.drop()
		return nil
	}
	payload, samples, err := o.audioPayload(f)
	if err != nil {
		if errors.Is(err, errAACConfig) && o.stream != nil {
			return media.Fail(media.ReasonProtocol, fmt.Errorf("rtprecv: %w mid-stream (the device was reconfigured); reconnecting", err))
		}
		o.drop()
		return nil
	}
	dur := int64(samples) * clock90 / int64(o.atrack.ClockRate)
	raw := o.audioTime(f, dur)
	o.noteFirst(raw)
	if o.stream != nil {
		o.writeAudio(payload, raw, dur)
		return nil
	}
	if !o.haveKey {
		o.drop()
		return nil
	}
	o.pend(pending{payload: payload, dts: raw, pts: raw, dur: dur, size: len(f.Data)})
	return nil
}

// audioTime returns the raw timestamp of an audio frame of dur ticks: its
// PTS, or the end of the previous frame.
func (o *output) audioTime(f *ps.Frame, dur int64) int64 {
	var raw int64
	switch {
	case f.HasPTS:
		raw = o.aunwrap.unwrap33(f.PTS)
	case o.haveNext:
		raw = o.audioNext
	default:
		raw = o.s.frameTS
	}
	o.audioNext, o.haveNext = raw+dur, true
	return raw
}

// audioPayload returns the unit payload of an audio frame and its number of
// samples.
func (o *output) audioPayload(f *ps.Frame) ([][]byte, int, error) {
	if f.Codec != media.CodecAAC {
		return [][]byte{f.Data}, len(f.Data) / max(o.atrack.Channels, 1), nil
	}
	aus, cfg, err := parseADTS(f.Data)
	if err != nil {
		return nil, 0, err
	}
	if cfg != o.aac {
		return nil, 0, fmt.Errorf("%w from %s to %s", errAACConfig, o.aac, cfg)
	}
	return aus, len(aus) * aacSamples, nil
}

// maybeStart calls ready once the video is ready and the audio is known or
// no longer waited for.
func (o *output) maybeStart(now time.Time) error {
	if o.stream != nil || !o.haveKey {
		return nil
	}
	if o.atrack == nil && o.awaitAudio(now) {
		return nil
	}
	return o.start(now)
}

// awaitAudio reports whether to wait longer for the first audio frame.
func (o *output) awaitAudio(now time.Time) bool {
	switch {
	case len(o.pending) >= maxPendingFrames || o.pendBytes >= maxPendingBytes,
		now.Sub(o.s.psAt) >= min(audioWait, o.s.cfg.ReadTimeout/2),
		o.pendLastDTS-o.keyDTS >= int64(audioWait/time.Millisecond)*clock90/1000: // faster than real time: a download
		return false
	}
	if o.s.demux.Stats().PSMs == 0 {
		return true // no stream map yet: audio may come
	}
	for _, si := range o.s.demux.Streams() {
		if si.ID >= 0xC0 && si.ID <= 0xDF && si.Type != 0 && audioCodec(si.Codec) {
			return true // the map announces it
		}
	}
	return false
}

func audioCodec(c media.Codec) bool {
	return c == media.CodecAAC || c == media.CodecPCMA || c == media.CodecPCMU
}

// start calls ready and writes the pending frames.
func (o *output) start(now time.Time) error {
	o.vtrack = &media.Track{Codec: o.vcodec, ClockRate: clock90,
		VPS: bytes.Clone(o.vps), SPS: bytes.Clone(o.sps), PPS: bytes.Clone(o.pps)}
	tracks := []*media.Track{o.vtrack}
	if o.atrack != nil {
		tracks = append(tracks, o.atrack)
	}
	o.width, o.height, _ = spsSize(o.vcodec, o.vtrack.SPS)
	o.lastSPS = o.vtrack.SPS
	o.vps, o.sps, o.pps = nil, nil, nil

	// The timeline starts at the keyframe; the NTP time of its start is
	// the arrival of the first packet plus the media time since.
	origin := o.keyDTS
	o.ntpZero = o.keyAt
	if d := origin - o.firstRaw; o.haveFirst && d >= 0 && d <= 60*clock90 {
		o.ntpZero = o.s.firstAt.Add(media.Duration(d, clock90))
	}
	o.vclock = clock{offset: -origin}
	o.aclock = clock{offset: -origin}

	st := o.s.ready(tracks)
	if st == nil {
		return errors.New("rtprecv: ready returned no stream")
	}
	o.stream = st
	names := make([]string, len(tracks))
	for i, t := range tracks {
		names[i] = t.String()
	}
	o.s.log.Info("receiving media", "tracks", strings.Join(names, ", "), "width", o.width, "height", o.height,
		"after", now.Sub(o.s.start).Round(time.Millisecond))

	pend := o.pending
	o.pending, o.pendBytes = nil, 0
	for i := range pend {
		p := &pend[i]
		if !p.video {
			o.writeAudio(p.payload, p.dts, p.dur)
			continue
		}
		if err := o.checkVideo(o.vtrack.Codec, p.payload); err != nil {
			return err
		}
		o.writeVideo(p.payload, p.key, p.dts, p.pts)
	}
	return nil
}

// checkVideo fails when a frame shows that the device changed its codec or
// resolution: the tracks of a stream cannot change.
func (o *output) checkVideo(c media.Codec, nalus [][]byte) error {
	t := o.vtrack
	if c != t.Codec {
		return media.Fail(media.ReasonProtocol, fmt.Errorf(
			"rtprecv: the video codec changed from %s to %s mid-stream (the device was reconfigured); reconnecting", t.Codec, c))
	}
	for _, n := range nalus {
		if other := foreignNALU(t.Codec, n); other != media.CodecUnknown {
			return media.Fail(media.ReasonProtocol, fmt.Errorf(
				"rtprecv: the video codec changed from %s to %s mid-stream (the device was reconfigured, its parameter sets show it); reconnecting", t.Codec, other))
		}
		if media.KindOf(c, n) != media.NALUSPS || bytes.Equal(n, o.lastSPS) {
			continue
		}
		w, h, ok := spsSize(c, n)
		if !ok {
			continue
		}
		if o.width != 0 && (w != o.width || h != o.height) {
			return media.Fail(media.ReasonProtocol, fmt.Errorf(
				"rtprecv: the video resolution changed from %dx%d to %dx%d mid-stream (the device was reconfigured); reconnecting", o.width, o.height, w, h))
		}
		o.width, o.height, o.lastSPS = w, h, bytes.Clone(n)
	}
	return nil
}

func (o *output) writeVideo(nalus [][]byte, key bool, dts, pts int64) {
	_, pts = o.vclock.place(dts, pts, defaultFrameDur)
	o.stream.Write(&media.Unit{Track: 0, PTS: pts, NTP: o.ntp(pts), Key: key, Payload: nalus})
	o.s.cnt.frames.Add(1)
	if key {
		o.s.cnt.keyframes.Add(1)
	}
}

func (o *output) writeAudio(payload [][]byte, raw, dur int64) {
	if !o.aclock.started {
		out := raw + o.aclock.offset
		if o.vclock.started && (out-o.vclock.last > maxAudioSkew || o.vclock.last-out > maxAudioSkew) {
			o.s.log.Debug("audio timestamps far from the video: aligning them", "skew", media.Duration(out-o.vclock.last, clock90))
			o.aclock.offset = o.vclock.last - raw
			out = o.vclock.last
		}
		if out < 0 {
			o.drop() // before the first keyframe
			return
		}
	}
	out, _ := o.aclock.place(raw, raw, dur)
	o.stream.Write(&media.Unit{Track: 1, PTS: media.Rescale(out, clock90, o.atrack.ClockRate), NTP: o.ntp(out), Payload: payload})
	o.s.cnt.frames.Add(1)
}

func (o *output) ntp(out int64) time.Time { return o.ntpZero.Add(media.Duration(out, clock90)) }

// unusable fails at once when the stream map shows that the video cannot be
// used: it announces video streams, none of a supported codec.
func (o *output) unusable() error {
	if o.videoFrames > 0 || o.s.demux.Stats().PSMs == 0 {
		return nil
	}
	var bad []string
	for _, si := range o.s.demux.Streams() {
		if si.ID < 0xE0 {
			continue
		}
		if si.Codec.IsVideo() {
			return nil
		}
		bad = append(bad, describeStream(si))
	}
	if len(bad) == 0 {
		return nil
	}
	return media.Fail(media.ReasonCodecUnsupported, fmt.Errorf(
		"rtprecv: the device sends video as %s, which the platform cannot carry; set its encoder to H.264 or H.265", strings.Join(bad, ", ")))
}

// noTracks explains why the tracks are not known after waited.
func (o *output) noTracks(waited time.Duration) error {
	if err := o.unusable(); err != nil {
		return err
	}
	streams := o.s.demux.Streams()
	var names []string
	video := false
	for _, si := range streams {
		names = append(names, describeStream(si))
		video = video || si.ID >= 0xE0
	}
	if len(names) == 0 {
		names = []string{"none"}
	}
	switch {
	case !video:
		return media.Fail(media.ReasonNoVideo, fmt.Errorf(
			"rtprecv: the program stream carries no video (streams: %s) after %s; check the device's channel and encoder settings",
			strings.Join(names, ", "), waited.Round(time.Millisecond)))
	case o.videoFrames == 0:
		return media.Fail(media.ReasonTimeout, fmt.Errorf(
			"rtprecv: no complete video frame within %s of the first program stream packet (streams: %s)",
			waited.Round(time.Millisecond), strings.Join(names, ", ")))
	}
	return media.Fail(media.ReasonTimeout, fmt.Errorf(
		"rtprecv: no %s keyframe with its parameter sets within %s of the first packet (%d video frames received); "+
			"check the device's I-frame interval", o.vcodec, waited.Round(time.Millisecond), o.videoFrames))
}

// describeStream returns "0xe0 H264" or "0xe0 stream type 0x80 (SVAC)".
func describeStream(si ps.StreamInfo) string {
	if si.Codec != media.CodecUnknown {
		return fmt.Sprintf("%#02x %s", si.ID, si.Codec)
	}
	name := map[byte]string{
		ps.StreamTypeSVAC: "SVAC", ps.StreamTypeSVACA: "SVAC audio", ps.StreamTypeG7221: "G.722.1",
		ps.StreamTypeG7231: "G.723.1", ps.StreamTypeG729: "G.729", 0x01: "MPEG-1 video", 0x02: "MPEG-2 video",
		0x10: "MPEG-4 video", 0x03: "MPEG-1 audio", 0x04: "MPEG-2 audio",
	}[si.Type]
	if name == "" {
		name = "unknown"
	}
	return fmt.Sprintf("%#02x stream type %#02x (%s)", si.ID, si.Type, name)
}

// clock maps the raw timestamps of one track onto the output timeline: the
// same offset for every frame, so that the media keeps its pace, until a
// step too large to be real moves it.
type clock struct {
	offset  int64 // added to raw timestamps
	last    int64 // output DTS of the last frame
	dur     int64 // last normal step between two frames
	started bool
}

// place returns the output DTS and PTS of a frame of raw dts and pts.
// Output DTS strictly increase; dur is the step assumed across a jump
// before one was measured.
func (c *clock) place(dts, pts, dur int64) (int64, int64) {
	if pts < dts || pts-dts > maxPTSDelay {
		pts = dts
	}
	out := dts + c.offset
	if c.started {
		switch d := out - c.last; {
		case d > maxJumpForward || d < -maxJumpBack:
			step := c.dur
			if step <= 0 {
				step = max(dur, 1)
			}
			c.offset = c.last + step - dts
			out = c.last + step
		case d <= 0:
			out = c.last + 1 // a small step back: hold the pace without moving the offset
		default:
			c.dur = d
		}
	}
	c.started, c.last = true, out
	return out, pts + out - dts
}

// unwrapper extends timestamps that wrap around (33-bit PTS, 32-bit RTP
// timestamps) into a continuous int64.
type unwrapper struct {
	last, ext int64
	ok        bool
}

func (u *unwrapper) unwrap(v int64, bits uint) int64 {
	mod := int64(1) << bits
	v &= mod - 1
	if !u.ok {
		u.ok, u.last, u.ext = true, v, v
		return v
	}
	d := (v - u.last) & (mod - 1)
	if d >= mod/2 {
		d -= mod
	}
	u.ext += d
	u.last = v
	return u.ext
}

func (u *unwrapper) unwrap32(v uint32) int64 { return u.unwrap(int64(v), 32) }
func (u *unwrapper) unwrap33(v int64) int64  { return u.unwrap(v, 33) }

// probeFrames is how many RTP timestamps of packets with video PES headers
// the probe sees before it decides that the PES timestamps are unusable.
const probeFrames = 4

// probeMaxPackets bounds the packets the probe scans: a stream still
// undecided then keeps its PES timestamps.
const probeMaxPackets = 5000

// clockProbe decides, from the first video PES headers, whether video can be
// timed by its PES timestamps. Some devices send none, or the same one on
// every frame; the demuxer then cannot tell frames apart, and the receiver
// cuts frames where the RTP timestamp changes and times them by it.
type clockProbe struct {
	decided bool
	rtp     bool // time video by RTP timestamps
	packets int
	ptsSeen bool
	pts     int64    // first PES PTS
	ts      []uint32 // distinct RTP timestamps of packets with video PES headers
}

// timed reports whether video is timed by RTP timestamps.
func (c *clockProbe) timed() bool { return c.rtp }

// scan looks at the video PES headers of a payload; it reports whether the
// probe decided.
func (c *clockProbe) scan(b []byte, ts uint32) bool {
	c.packets++
	found := false
	for i := 0; ; {
		j := bytes.Index(b[i:], startCode)
		if j < 0 {
			break
		}
		j += i
		if j+9 > len(b) {
			break
		}
		if id := b[j+3]; id >= 0xE0 && id <= 0xEF && b[j+6]&0xC0 == 0x80 {
			found = true
			if b[j+7]&0x80 != 0 && b[j+8] >= 5 && j+14 <= len(b) {
				p := readTimestamp(b[j+9:])
				switch {
				case !c.ptsSeen:
					c.ptsSeen, c.pts = true, p
				case p != c.pts:
					c.decided = true // PES timestamps move: use them
					return true
				}
			}
		}
		i = j + 3
	}
	if found && !containsTS(c.ts, ts) {
		c.ts = append(c.ts, ts)
		if len(c.ts) >= probeFrames {
			c.decided, c.rtp = true, true
			return true
		}
	}
	if c.packets >= probeMaxPackets {
		c.decided = true
		return true
	}
	return false
}

func containsTS(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// readTimestamp decodes a 33-bit PTS or DTS (ISO/IEC 13818-1 §2.4.3.7).
func readTimestamp(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

var startCode = []byte{0, 0, 1}

// splitAnnexB returns the NAL units of an Annex-B access unit, without
// start codes and trailing zero bytes. Bytes before the first start code
// (the tail of a NAL unit cut by a lost packet) and NAL units whose
// forbidden_zero_bit is set are dropped. The NAL units alias b.
func splitAnnexB(b []byte) [][]byte {
	i := bytes.Index(b, startCode)
	if i < 0 {
		return nil
	}
	out := make([][]byte, 0, 4)
	for b = b[i+3:]; len(b) > 0; {
		n := b
		if j := bytes.Index(b, startCode); j >= 0 {
			n, b = b[:j], b[j+3:]
		} else {
			b = nil
		}
		for len(n) > 0 && n[len(n)-1] == 0 {
			n = n[:len(n)-1]
		}
		if len(n) > 0 && n[0]&0x80 == 0 {
			out = append(out, n[:len(n):len(n)])
		}
	}
	return out
}

// foreignNALU returns the codec the NAL units of an access unit of codec c
// belong to when they are plainly not c: an H.265 VPS, SPS or PPS header
// (0x40, 0x42, 0x44 then 0x01; unspecified or data-partition types in
// H.264), or an H.264 SPS header 0x67 (an unspecified type in H.265).
func foreignNALU(c media.Codec, nalus ...[]byte) media.Codec {
	for _, n := range nalus {
		switch {
		case c == media.CodecH264 && len(n) >= 2 && (n[0] == 0x40 || n[0] == 0x42 || n[0] == 0x44) && n[1] == 0x01:
			return media.CodecH265
		case c == media.CodecH265 && len(n) >= 1 && n[0] == 0x67:
			return media.CodecH264
		}
	}
	return media.CodecUnknown
}

// isKeyFrame reports whether an access unit holds an H.264 IDR picture or an
// H.265 IRAP picture (ITU-T H.264 and H.265, Table 7-1).
func isKeyFrame(c media.Codec, nalus [][]byte) bool {
	for _, n := range nalus {
		switch {
		case len(n) == 0:
		case c == media.CodecH264 && n[0]&0x1F == 5:
			return true
		case c == media.CodecH265 && n[0]>>1&0x3F >= 16 && n[0]>>1&0x3F <= 23:
			return true
		}
	}
	return false
}

// spsSize returns the picture size an SPS declares.
func spsSize(c media.Codec, sps []byte) (w, h int, ok bool) {
	if len(sps) == 0 {
		return 0, 0, false
	}
	switch c {
	case media.CodecH264:
		var s h264.SPS
		if s.Unmarshal(sps) == nil {
			return s.Width(), s.Height(), true
		}
	case media.CodecH265:
		var s h265.SPS
		if s.Unmarshal(sps) == nil {
			return s.Width(), s.Height(), true
		}
	}
	return 0, 0, false
}

// AAC in ADTS (ISO/IEC 13818-7 §6.2, ISO/IEC 14496-3 §1.A.2).
const aacSamples = 1024 // per access unit (AAC-LC)

var errAACConfig = errors.New("the AAC configuration changed")

// aacRates are the sampling frequencies by sampling_frequency_index
// (ISO/IEC 14496-3 Table 1.18).
var aacRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// adtsConfig is what an ADTS header says of the stream.
type adtsConfig struct {
	objectType uint8 // profile + 1
	rateIndex  uint8
	channels   uint8 // channel_configuration
}

func (c adtsConfig) String() string {
	return fmt.Sprintf("object type %d, %d Hz, channel configuration %d", c.objectType, aacRates[c.rateIndex], c.channels)
}

// audioSpecificConfig returns the 2-byte AudioSpecificConfig of c
// (ISO/IEC 14496-3 §1.6.2.1, GASpecificConfig with no flags).
func (c adtsConfig) audioSpecificConfig() []byte {
	return []byte{c.objectType<<3 | c.rateIndex>>1, (c.rateIndex&1)<<7 | c.channels<<3}
}

// parseADTS splits a PES payload of ADTS frames into raw access units
// (aliasing b), checking that every frame has the same configuration. CRC
// protected frames are accepted; frames of several raw data blocks are not.
func parseADTS(b []byte) ([][]byte, adtsConfig, error) {
	var aus [][]byte
	var first adtsConfig
	for len(b) > 0 {
		if len(b) < 7 || b[0] != 0xFF || b[1]&0xF6 != 0xF0 {
			return nil, first, errors.New("not an ADTS frame")
		}
		hdr := 7
		if b[1]&1 == 0 {
			hdr = 9 // crc_check
		}
		c := adtsConfig{objectType: b[2]>>6 + 1, rateIndex: b[2] >> 2 & 0x0F, channels: b[2]&1<<2 | b[3]>>6}
		size := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5
		switch {
		case int(c.rateIndex) >= len(aacRates):
			return nil, first, fmt.Errorf("ADTS sampling frequency index %d", c.rateIndex)
		case size <= hdr || size > len(b):
			return nil, first, fmt.Errorf("ADTS frame length %d of %d bytes", size, len(b))
		case b[6]&3 != 0:
			return nil, first, errors.New("ADTS frame of several raw data blocks")
		}
		if len(aus) == 0 {
			first = c
		} else if c != first {
			return nil, first, fmt.Errorf("%w within a PES packet", errAACConfig)
		}
		aus = append(aus, b[hdr:size:size])
		b = b[size:]
	}
	if len(aus) == 0 {
		return nil, first, errors.New("empty audio frame")
	}
	return aus, first, nil
}

// audioTrack returns the track of the first frame of an audio stream, and
// reports false for a codec the media plane cannot carry.
func audioTrack(f *ps.Frame) (*media.Track, adtsConfig, bool) {
	switch f.Codec {
	case media.CodecPCMA, media.CodecPCMU:
		return &media.Track{Codec: f.Codec, ClockRate: 8000, Channels: 1}, adtsConfig{}, true
	case media.CodecAAC:
		_, c, err := parseADTS(f.Data)
		if err != nil {
			return nil, c, false
		}
		ch := int(c.channels)
		if ch == 7 {
			ch = 8
		}
		return &media.Track{Codec: media.CodecAAC, ClockRate: aacRates[c.rateIndex], Config: c.audioSpecificConfig(), Channels: ch}, c, true
	}
	return nil, adtsConfig{}, false
}

package rtprecv

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/sim"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// TestReorder shuffles, duplicates and delays UDP packets within the
// window: every frame must come out whole and in order.
func TestReorder(t *testing.T) {
	cl := loadClip(t, sim.DefaultClip, 0)
	c := &collector{}
	s := newTestSession(t, Config{Log: testLog(t)}, false, c, t0)
	pkts := schedule(&device{mtu: 300}, cl.frames, t0)
	rng := rand.New(rand.NewPCG(1, 2))
	var shuffled []timedPacket
	swaps, dups := 0, 0
	for i := 0; i < len(pkts); i++ {
		switch rng.IntN(10) {
		case 0: // swap with the next
			if i+1 < len(pkts) {
				shuffled = append(shuffled, pkts[i+1], pkts[i])
				i++
				swaps++
				continue
			}
		case 1: // hold back by three
			if i+3 < len(pkts) {
				shuffled = append(shuffled, pkts[i+1], pkts[i+2], pkts[i+3], pkts[i])
				i += 3
				swaps++
				continue
			}
		case 2:
			shuffled = append(shuffled, pkts[i])
			dups++
		}
		shuffled = append(shuffled, pkts[i])
	}
	for i := 1; i < len(shuffled); i++ { // a packet held back arrives later
		if shuffled[i].at.Before(shuffled[i-1].at) {
			shuffled[i].at = shuffled[i-1].at
		}
	}
	if err := play(s, shuffled); err != nil {
		t.Fatal(err)
	}
	checkVideo(t, c.units(), cl, len(cl.frames)-1)
	st := s.cnt.snapshot()
	if st.Lost != 0 || st.Duplicates != uint64(dups) || st.Reordered < uint64(swaps) || st.Frames != uint64(len(cl.frames)-1) {
		t.Fatalf("stats %+v; %d swaps, %d duplicates", st, swaps, dups)
	}
}

// TestLoss loses UDP packets: the frames they belong to are dropped, the
// others come out whole, with increasing PTS.
func TestLoss(t *testing.T) {
	for _, tt := range []struct {
		name  string
		every int // lose one packet in every
		mtu   int
		audio bool
	}{
		{name: "sparse", every: 40, mtu: 500},
		{name: "dense", every: 7, mtu: 300},
		{name: "with audio", every: 13, mtu: 400, audio: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl := loadClip(t, sim.DefaultClip, 0)
			frames := cl.frames
			if tt.audio {
				frames = interleave(frames, g711Frames(media.CodecPCMA, 200, 0))
			}
			c := &collector{}
			s := newTestSession(t, Config{ReorderDelay: 20 * time.Millisecond}, false, c, t0)
			pkts := schedule(&device{mtu: tt.mtu}, frames, t0)
			var kept []timedPacket
			lost := 0
			for i, p := range pkts {
				if i > 80 && i%tt.every == 0 { // the first keyframe is whole
					lost++
					continue
				}
				kept = append(kept, p)
			}
			if err := play(s, kept); err != nil {
				t.Fatal(err)
			}
			if err := s.tick(t0.Add(time.Hour)); err != nil && !isReason(err, media.ReasonTimeout) {
				t.Fatal(err)
			}
			us := byTrack(c.units())
			video := us[0]
			if len(video) == 0 || !video[0].Key {
				t.Fatalf("%d video units", len(video))
			}
			for i, u := range video {
				if i > 0 && u.PTS <= video[i-1].PTS {
					t.Fatalf("unit %d: PTS %d after %d", i, u.PTS, video[i-1].PTS)
				}
				k := int(u.PTS / cl.step) // the first keyframe is frame 0, whole
				if u.PTS%cl.step != 0 || k >= len(cl.Units) || !slices.EqualFunc(u.Payload, cl.Units[k].NALUs, bytes.Equal) {
					t.Fatalf("unit %d (PTS %d) is not frame %d of the clip", i, u.PTS, k)
				}
			}
			for i, u := range us[1] {
				if i > 0 && u.PTS <= us[1][i-1].PTS {
					t.Fatalf("audio unit %d: PTS %d after %d", i, u.PTS, us[1][i-1].PTS)
				}
			}
			st := s.cnt.snapshot()
			if st.Lost != uint64(lost) || st.Dropped == 0 || len(video) >= len(cl.frames)-1 {
				t.Fatalf("stats %+v, %d video units; lost %d of %d packets", st, len(video), lost, len(pkts))
			}
			t.Logf("lost %d of %d packets: %d of %d video frames delivered, stats %+v", lost, len(pkts), len(video), len(cl.frames), st)
		})
	}
}

// TestAudio receives each audio codec with the video.
func TestAudio(t *testing.T) {
	aac, ac := aacFrames(t, 0)
	asc, err := ac.Config.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		audio  []ps.Frame
		mux    ps.Muxer
		track  media.Track
		tracks int
	}{
		{name: "g711a", audio: g711Frames(media.CodecPCMA, 150, 0), track: media.Track{Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1}, tracks: 2},
		{name: "g711u", audio: g711Frames(media.CodecPCMU, 150, 0), track: media.Track{Codec: media.CodecPCMU, ClockRate: 8000, Channels: 1}, tracks: 2},
		{name: "aac", audio: aac, track: media.Track{Codec: media.CodecAAC, ClockRate: ac.Config.SampleRate, Config: asc, Channels: int(ac.Config.ChannelConfig)}, tracks: 2},
		{name: "aac without map", audio: aac, mux: ps.Muxer{OmitPSM: true, OmitSystemHeader: true},
			track: media.Track{Codec: media.CodecAAC, ClockRate: ac.Config.SampleRate, Config: asc, Channels: int(ac.Config.ChannelConfig)}, tracks: 2},
		{name: "audio from 0.5 s", audio: g711Frames(media.CodecPCMA, 100, 45000), track: media.Track{Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1}, tracks: 2},
		{name: "audio from 2 s", audio: g711Frames(media.CodecPCMA, 50, 180000), tracks: 1},
		{name: "no audio", tracks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := loadClip(t, sim.DefaultClip, 0)
			c := &collector{}
			s := newTestSession(t, Config{Log: testLog(t)}, true, c, t0)
			d := &device{mux: tt.mux}
			if tt.tracks == 2 && !tt.mux.OmitPSM {
				d.mux.AddStream(0xE0, media.CodecH264) // the map lists both streams from the start
				d.mux.AddStream(0xC0, tt.track.Codec)
			}
			if err := play(s, schedule(d, interleave(cl.frames, tt.audio), t0)); err != nil {
				t.Fatal(err)
			}
			if len(c.tracks) != tt.tracks {
				t.Fatalf("%d tracks, want %d", len(c.tracks), tt.tracks)
			}
			us := byTrack(c.units())
			checkVideo(t, us[0], cl, len(cl.frames)-1)
			if tt.tracks == 1 {
				if len(us[1]) != 0 {
					t.Fatalf("%d audio units without an audio track", len(us[1]))
				}
				return
			}
			tr := c.tracks[1]
			if tr.Codec != tt.track.Codec || tr.ClockRate != tt.track.ClockRate || tr.Channels != tt.track.Channels || !bytes.Equal(tr.Config, tt.track.Config) {
				t.Fatalf("audio track %+v, want %+v", tr, tt.track)
			}
			audio := us[1]
			if len(audio) < len(tt.audio)*3/4 {
				t.Fatalf("%d audio units of %d frames", len(audio), len(tt.audio))
			}
			// Audio starts at the keyframe: the first units are the first frames.
			first := int((media.Rescale(audio[0].PTS, tr.ClockRate, 90000) - tt.audio[0].PTS + 10) / (tt.audio[1].PTS - tt.audio[0].PTS))
			for i, u := range audio {
				f := tt.audio[first+i]
				want := [][]byte{f.Data}
				if tr.Codec == media.CodecAAC {
					want = [][]byte{ac.Units[first+i]}
				}
				if !slices.EqualFunc(u.Payload, want, bytes.Equal) {
					t.Fatalf("audio unit %d: payload differs", i)
				}
				if wantPTS := media.Rescale(f.PTS, 90000, tr.ClockRate); u.PTS != wantPTS {
					t.Fatalf("audio unit %d: PTS %d, want %d", i, u.PTS, wantPTS)
				}
				if u.Key {
					t.Fatalf("audio unit %d is a keyframe", i)
				}
			}
		})
	}
}

// TestADTS checks the AudioSpecificConfig derived from ADTS headers against
// mediacommon's, and CRC-protected frames.
func TestADTS(t *testing.T) {
	for _, c := range []mpeg4audio.AudioSpecificConfig{
		{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 8000, ChannelConfig: 1},
		{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2},
		{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 6},
	} {
		pkts := mpeg4audio.ADTSPackets{{Type: c.Type, SampleRate: c.SampleRate, ChannelConfig: c.ChannelConfig, AU: []byte{1, 2, 3}}}
		b, err := pkts.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := c.Marshal()
		tr, _, ok := audioTrack(&ps.Frame{Codec: media.CodecAAC, Data: b})
		if !ok || !bytes.Equal(tr.Config, want) || tr.ClockRate != c.SampleRate || tr.Channels != int(c.ChannelConfig) {
			t.Fatalf("%+v: track %+v, config %x, want %x", c, tr, tr.Config, want)
		}
		// The same frame with a CRC.
		crc := append([]byte{b[0], b[1] &^ 1}, b[2:7]...)
		crc[4], crc[5] = byte((len(b)+2)>>3), byte((len(b)+2)<<5)|crc[5]&0x1F
		crc = append(append(crc, 0xAB, 0xCD), b[7:]...)
		aus, _, err := parseADTS(crc)
		if err != nil || len(aus) != 1 || !bytes.Equal(aus[0], []byte{1, 2, 3}) {
			t.Fatalf("CRC frame: %x %v", aus, err)
		}
	}
	for _, bad := range [][]byte{{0xFF}, {0xFF, 0xF1, 0x50, 0x80, 0x00, 0x1F, 0xFC}, {0xFF, 0xF1, 0x7C, 0x80, 0x02, 0x1F, 0xFC, 0}} {
		if _, _, err := parseADTS(bad); err == nil {
			t.Errorf("parseADTS(% x) accepted", bad)
		}
	}
}

// TestCodecChange changes the codec or resolution mid-stream: the session
// fails so that the hub reconnects.
func TestCodecChange(t *testing.T) {
	tests := []struct {
		name, first, second string
		mux                 ps.Muxer
		says                string
	}{
		{name: "h264 to h265", first: sim.DefaultClip, second: "testsrc.h265", says: "the video codec changed from H264 to H265"},
		{name: "h265 to h264", first: "testsrc.h265", second: sim.DefaultClip, says: "the video codec changed from H265 to H264"},
		{name: "h264 to h265 without map", first: sim.DefaultClip, second: "testsrc.h265", mux: ps.Muxer{OmitPSM: true},
			says: "the video codec changed from H264 to H265 mid-stream (the device was reconfigured, its parameter sets show it)"},
		{name: "resolution", first: sim.DefaultClip, second: "testdata/320x180.h264", says: "the video resolution changed from 640x360 to 320x180"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := loadClip(t, tt.first, 0)
			b := loadClip(t, tt.second, int64(len(a.frames))*a.step)
			c := &collector{}
			s := newTestSession(t, Config{Log: testLog(t)}, true, c, t0)
			err := play(s, schedule(&device{mux: tt.mux}, append(a.frames, b.frames...), t0))
			wantReason(t, err, media.ReasonProtocol, tt.says)
			if got := len(c.units()); got != len(a.frames) {
				t.Fatalf("%d units before the change, want %d", got, len(a.frames))
			}
		})
	}
}

// TestTimestamps checks that PTS increase whatever the device does with its
// timestamps.
func TestTimestamps(t *testing.T) {
	cl := loadClip(t, sim.DefaultClip, 0)
	shift := func(fs []ps.Frame, by int64) []ps.Frame {
		out := slices.Clone(fs)
		for i := range out {
			out[i].PTS += by
			out[i].DTS += by
		}
		return out
	}
	twice := append(slices.Clone(cl.frames), shift(cl.frames, int64(len(cl.frames))*cl.step)...)
	tests := []struct {
		name   string
		frames []ps.Frame
		dev    device
		// packets overrides the packets of the frames.
		packets func(d *device) []timedPacket
		audio   bool
	}{
		{name: "restart", frames: append(shift(cl.frames, 5_000_000), cl.frames...)},
		{name: "jump forward", frames: append(slices.Clone(cl.frames), shift(cl.frames, 60*90000)...)},
		{name: "small step back", frames: append(slices.Clone(cl.frames), shift(cl.frames, int64(len(cl.frames)-3)*cl.step)...)},
		{name: "33-bit wrap", frames: shift(append(slices.Clone(cl.frames), shift(cl.frames, int64(len(cl.frames))*cl.step)...), 1<<33-90000)},
		{name: "restart with audio", audio: true,
			frames: append(shift(interleave(cl.frames, g711Frames(media.CodecPCMA, 200, 0)), 3_000_000), interleave(cl.frames, g711Frames(media.CodecPCMA, 200, 0))...)},
		{name: "no PTS", frames: twice, dev: device{noPTS: true}},
		{name: "no PTS, unbounded PES", frames: twice, dev: device{noPTS: true, mux: ps.Muxer{UnboundedVideo: true, OmitPSM: true}}},
		{name: "constant PTS", packets: func(d *device) []timedPacket {
			var out []timedPacket
			for i, f := range twice {
				ts := uint32(f.PTS)
				f.PTS, f.DTS = 4242, 4242
				for _, p := range d.rtp(d.mux.Mux(nil, &f), ts) {
					out = append(out, timedPacket{p, t0.Add(time.Duration(i) * 20 * time.Millisecond)})
				}
			}
			return out
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collector{}
			s := newTestSession(t, Config{Log: testLog(t)}, true, c, t0)
			var pkts []timedPacket
			if tt.packets != nil {
				pkts = tt.packets(&tt.dev)
			} else {
				for i, f := range tt.frames {
					at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
					for _, p := range tt.dev.packets(f) {
						pkts = append(pkts, timedPacket{p, at})
					}
				}
			}
			if err := play(s, pkts); err != nil {
				t.Fatal(err)
			}
			us := byTrack(c.units())
			video := us[0]
			if len(video) < len(cl.frames)-2 {
				t.Fatalf("%d video units", len(video))
			}
			k0 := clipIndex(cl, video[0].Payload)
			for i, u := range video {
				if i == 0 {
					if u.PTS != 0 || !u.Key || k0 < 0 {
						t.Fatalf("first unit PTS %d key %v, frame %d of the clip", u.PTS, u.Key, k0)
					}
					continue
				}
				step := u.PTS - video[i-1].PTS
				if step <= 0 || step > 60*90000 {
					t.Fatalf("unit %d: PTS %d after %d", i, u.PTS, video[i-1].PTS)
				}
				if tt.name != "jump forward" && tt.name != "small step back" && step != cl.step {
					t.Fatalf("unit %d: PTS step %d, want %d", i, step, cl.step)
				}
				k := (k0 + i) % len(cl.Units)
				if !slices.EqualFunc(u.Payload, cl.Units[k].NALUs, bytes.Equal) {
					t.Fatalf("unit %d is not frame %d of the clip", i, k)
				}
			}
			if tt.audio && len(us[1]) < 300 {
				t.Fatalf("%d audio units", len(us[1]))
			}
			for i, u := range us[1] {
				if i > 0 && u.PTS <= us[1][i-1].PTS {
					t.Fatalf("audio unit %d: PTS %d after %d", i, u.PTS, us[1][i-1].PTS)
				}
			}
			// NTP is the arrival of the first packet plus the media time.
			if d := video[0].NTP.Sub(t0); k0 == 0 && d != 0 {
				t.Fatalf("first NTP %v after the first packet", d)
			}
		})
	}
}

// TestSSRC checks the SSRC filter with and without the check.
func TestSSRC(t *testing.T) {
	cl := loadClip(t, sim.DefaultClip, 0)
	// A stranger's packets are interleaved with the device's.
	mixed := func(a, b *device) []timedPacket {
		pa, pb := schedule(a, cl.frames, t0), schedule(b, cl.frames[:10], t0)
		var out []timedPacket
		for i, p := range pa {
			out = append(out, p)
			if i < len(pb) {
				out = append(out, pb[i])
			}
		}
		return out
	}
	tests := []struct {
		name      string
		cfg       Config
		pkts      []timedPacket
		wrongSSRC int
	}{
		{name: "check off, another ssrc", cfg: Config{SSRC: testSSRC}, pkts: schedule(&device{ssrc: 5}, cl.frames, t0)},
		{name: "check off, ssrc 0", cfg: Config{CheckSSRC: true}, pkts: schedule(&device{ssrc: 5}, cl.frames, t0)},
		{name: "check on, stranger", cfg: Config{SSRC: testSSRC, CheckSSRC: true},
			pkts: mixed(&device{ssrc: testSSRC}, &device{ssrc: 9}), wrongSSRC: len(schedule(&device{}, cl.frames[:10], t0))},
		{name: "check off, stranger after the first", cfg: Config{SSRC: testSSRC},
			pkts: mixed(&device{ssrc: 5}, &device{ssrc: 9}), wrongSSRC: len(schedule(&device{}, cl.frames[:10], t0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, tcp := range []bool{false, true} {
				c := &collector{}
				s := newTestSession(t, tt.cfg, tcp, c, t0)
				if err := play(s, tt.pkts); err != nil {
					t.Fatal(err)
				}
				checkVideo(t, c.units(), cl, len(cl.frames)-1)
				if st := s.cnt.snapshot(); st.WrongSSRC != uint64(tt.wrongSSRC) {
					t.Fatalf("tcp %v: %d wrong SSRC, want %d", tcp, st.WrongSSRC, tt.wrongSSRC)
				}
			}
		})
	}

	// Without the check, a new SSRC is taken once the first is silent.
	c := &collector{}
	s := newTestSession(t, Config{}, false, c, t0)
	first := schedule(&device{ssrc: 5}, cl.frames, t0)
	second := schedule(&device{ssrc: 6, seq: 5000}, loadClip(t, sim.DefaultClip, 0).frames, t0.Add(6*time.Second))
	if err := play(s, append(first, second...)); err != nil {
		t.Fatal(err)
	}
	if got := len(c.units()); got < 2*len(cl.frames)-3 {
		t.Fatalf("%d units across the SSRC change", got)
	}
}

// TestNoUsableVideo checks the failures of a program stream without usable
// video.
func TestNoUsableVideo(t *testing.T) {
	cl := loadClip(t, sim.DefaultClip, 0)
	svac := func() []timedPacket {
		var m ps.Muxer
		m.AddStream(0xE0, media.CodecUnknown)
		var out []timedPacket
		d := &device{}
		for i, f := range cl.frames {
			stream := m.Mux(nil, &f)
			if i == 0 { // the map names SVAC
				j := bytes.Index(stream, []byte{0, 0, 1, 0xBC})
				k := bytes.Index(stream[j:], []byte{ps.StreamTypeH264, 0xE0})
				stream[j+k] = ps.StreamTypeSVAC
			}
			for _, p := range d.rtp(stream, uint32(f.PTS)) {
				out = append(out, timedPacket{p, t0.Add(media.Duration(f.PTS, 90000))})
			}
		}
		return out
	}
	var pframes []ps.Frame
	for _, f := range cl.frames {
		if !f.Key {
			pframes = append(pframes, f)
		}
	}
	tests := []struct {
		name   string
		pkts   []timedPacket
		reason media.Reason
		says   []string
	}{
		{name: "svac", pkts: svac(), reason: media.ReasonCodecUnsupported, says: []string{"stream type 0x80 (SVAC)", "H.264 or H.265"}},
		{name: "audio only", pkts: schedule(&device{}, g711Frames(media.CodecPCMA, 200, 0), t0), reason: media.ReasonNoVideo,
			says: []string{"carries no video", "0xc0 PCMA"}},
		{name: "no keyframe", pkts: schedule(&device{}, pframes, t0), reason: media.ReasonTimeout,
			says: []string{"no H264 keyframe with its parameter sets", "I-frame interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collector{}
			s := newTestSession(t, Config{ReadTimeout: 2 * time.Second}, true, c, t0)
			err := play(s, tt.pkts)
			if err == nil {
				err = s.tick(tt.pkts[len(tt.pkts)-1].at.Add(time.Second))
			}
			wantReason(t, err, tt.reason, tt.says...)
			if c.calls != 0 {
				t.Fatal("ready was called")
			}
		})
	}
}

// TestPending bounds what is kept while waiting for audio.
func TestPending(t *testing.T) {
	cl := loadClip(t, sim.DefaultClip, 0)
	c := &collector{}
	s := newTestSession(t, Config{}, true, c, t0)
	var d device
	d.mux.OmitPSM = true // no map: the receiver waits for audio
	// All the frames arrive at once, as in a download: the PTS span ends the wait.
	var pkts []timedPacket
	for _, f := range cl.frames {
		for _, p := range d.packets(f) {
			pkts = append(pkts, timedPacket{p, t0})
		}
	}
	if err := play(s, pkts); err != nil {
		t.Fatal(err)
	}
	if c.calls != 1 {
		t.Fatalf("ready called %d times", c.calls)
	}
	if n := len(c.units()); n != len(cl.frames)-1 {
		t.Fatalf("%d units", n)
	}
}

func TestSplitAnnexB(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want [][]byte
	}{
		{nil, nil},
		{[]byte{1, 2, 3}, nil},
		{[]byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0}, [][]byte{{0x67, 1}, {0x68, 2}}},
		{[]byte{9, 9, 0, 0, 1, 0x65, 1, 0, 0, 1, 0, 0, 1}, [][]byte{{0x65, 1}}},
		{[]byte{0, 0, 1, 0xE5, 1, 0, 0, 1, 0x41}, [][]byte{{0x41}}}, // forbidden bit
	} {
		if got := splitAnnexB(tt.in); !slices.EqualFunc(got, tt.want, bytes.Equal) {
			t.Errorf("splitAnnexB(% x) = %x, want %x", tt.in, got, tt.want)
		}
	}
}

func TestClock(t *testing.T) {
	var c clock
	const b = 1_000_000
	steps := []struct{ dts, want int64 }{
		{b, b}, {b + 3600, b + 3600}, {b + 7200, b + 7200}, // normal
		{b + 7200, b + 7201},                // equal: held
		{b + 7200 - 9000, b + 7202},         // a small step back: held
		{100, b + 7202 + 3600},              // restart: rebased by the last step
		{3700, b + 7202 + 7200},             // continues
		{3700 + 20*90000, b + 7202 + 10800}, // jump forward
	}
	for i, s := range steps {
		if got, _ := c.place(s.dts, s.dts, 3600); got != s.want {
			t.Fatalf("step %d: place(%d) = %d, want %d", i, s.dts, got, s.want)
		}
	}
	var u unwrapper
	for i, v := range []struct{ in, want int64 }{{1<<33 - 10, 1<<33 - 10}, {5, 1<<33 + 5}, {1<<33 - 20, 1<<33 - 20}} {
		if got := u.unwrap33(v.in); got != v.want {
			t.Fatalf("%d: unwrap33(%d) = %d, want %d", i, v.in, got, v.want)
		}
	}
}

// clipIndex returns the index of the clip frame whose NAL units are nalus,
// or -1.
func clipIndex(cl *clip, nalus [][]byte) int {
	for i, au := range cl.Units {
		if slices.EqualFunc(au.NALUs, nalus, bytes.Equal) {
			return i
		}
	}
	return -1
}

// TestDeviceQuirks receives what real devices send, over UDP and TCP.
func TestDeviceQuirks(t *testing.T) {
	tests := []struct {
		name string
		clip string
		dev  device
		skip int // packets lost at the start: the session joins mid-stream
		// declare is the video codec the stream map declares, if not the clip's.
		declare media.Codec
	}{
		{name: "no system header", clip: sim.DefaultClip, dev: device{mux: ps.Muxer{OmitSystemHeader: true}}},
		{name: "h265 without map", clip: "testsrc.h265", dev: device{mux: ps.Muxer{OmitPSM: true, OmitSystemHeader: true}}},
		{name: "unbounded video PES", clip: "street.h264", dev: device{mux: ps.Muxer{UnboundedVideo: true}}},
		{name: "small PES with PTS on each", clip: "bars.h264", dev: device{mux: ps.Muxer{MaxPayload: 1000, PTSOnEveryPES: true}}},
		{name: "small PES with PTS on the first", clip: "mandelbrot.h264", dev: device{mux: ps.Muxer{MaxPayload: 700}}},
		{name: "joined mid-stream", clip: sim.DefaultClip, skip: 7},
		{name: "jumbo datagrams", clip: sim.DefaultClip, dev: device{mtu: 9000}},
		{name: "tiny packets", clip: "testsrc.h265", dev: device{mtu: 100}},
		{name: "h265 declared h264", clip: "testsrc.h265", declare: media.CodecH264},
		{name: "h264 declared h265", clip: "street.h264", declare: media.CodecH265},
	}
	for _, tt := range tests {
		for _, tcp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tcp=%v", tt.name, tcp), func(t *testing.T) {
				cl := loadClip(t, tt.clip, 0)
				c := &collector{}
				s := newTestSession(t, Config{}, tcp, c, t0)
				d := tt.dev
				frames := slices.Clone(cl.frames)
				for i := range frames {
					if tt.declare != media.CodecUnknown {
						frames[i].Codec = tt.declare
					}
				}
				if err := play(s, schedule(&d, frames, t0)[tt.skip:]); err != nil {
					t.Fatal(err)
				}
				us := c.units()
				k0 := clipIndex(cl, us[0].Payload)
				if k0 < 0 || !us[0].Key {
					t.Fatalf("first unit is not a keyframe of the clip")
				}
				for i, u := range us {
					if !slices.EqualFunc(u.Payload, cl.Units[k0+i].NALUs, bytes.Equal) {
						t.Fatalf("unit %d is not frame %d", i, k0+i)
					}
				}
				if want := len(cl.frames) - 1 - k0; len(us) != want {
					t.Fatalf("%d units from frame %d, want %d", len(us), k0, want)
				}
				checkTrack(t, c.tracks[0], cl)
			})
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registered twice")
	}
	cl := loadClip(t, sim.DefaultClip, 0)
	c := &collector{}
	s := newTestSession(t, Config{Metrics: m, SSRC: testSSRC, CheckSSRC: true}, false, c, t0)
	pkts := schedule(&device{ssrc: testSSRC}, cl.frames, t0)
	pkts = append(pkts, schedule(&device{ssrc: 3}, cl.frames[:2], t0)...)
	if err := play(s, pkts); err != nil {
		t.Fatal(err)
	}
	s.flushMetrics()
	st := s.cnt.snapshot()
	for _, tt := range []struct {
		c    prometheus.Collector
		want uint64
	}{
		{m.packets, st.Packets}, {m.bytes, st.Bytes}, {m.frames, st.Frames}, {m.wrongSSRC, st.WrongSSRC},
	} {
		if got := metricValue(tt.c); got != float64(tt.want) || got == 0 {
			t.Errorf("metric %v, want %d", got, tt.want)
		}
	}
	m.sessionStarted(UDP)
	m.sessionEnded(UDP)
	m.failed(ReasonNoPackets)
	if n := metricValue(m.sessions.WithLabelValues("udp")); n != 1 {
		t.Errorf("sessions %v", n)
	}
	if n := metricValue(m.failures.WithLabelValues("no_packets")); n != 1 {
		t.Errorf("failures %v", n)
	}
	var nilMetrics *Metrics // counts nothing, without panicking
	nilMetrics.sessionStarted(UDP)
	nilMetrics.add(&st, &Stats{})
}

// metricValue returns the value of a collector of one counter or gauge.
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestAudioWait checks that the wait for audio never outlasts the wait for
// a keyframe, even with a short ReadTimeout.
func TestAudioWait(t *testing.T) {
	cl := loadClip(t, sim.DefaultClip, 0)
	c := &collector{}
	s := newTestSession(t, Config{ReadTimeout: 400 * time.Millisecond}, true, c, t0)
	d := &device{mux: ps.Muxer{OmitPSM: true}} // no map: audio might come
	if err := play(s, schedule(d, cl.frames, t0)); err != nil {
		t.Fatal(err)
	}
	if len(c.tracks) != 1 {
		t.Fatalf("%d tracks", len(c.tracks))
	}
	checkVideo(t, c.units(), cl, len(cl.frames)-1)
}

package ps

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/sim"
)

// clipFrames returns the access units of an embedded clip as Annex-B frames
// at 15 fps, starting at PTS start.
func clipFrames(t testing.TB, name string, start int64) []Frame {
	t.Helper()
	clip, err := sim.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	codec := media.CodecH264
	if clip.Codec == sim.CodecH265 {
		codec = media.CodecH265
	}
	var out []Frame
	for i, au := range clip.Units {
		var data []byte
		for _, n := range au.NALUs {
			data = append(data, 0, 0, 0, 1)
			data = append(data, n...)
		}
		pts := start + int64(i)*6000
		out = append(out, Frame{Stream: 0xE0, Codec: codec, PTS: pts, DTS: pts, HasPTS: true, Key: au.IDR, Data: data})
	}
	return out
}

// audioFrames returns n G.711 or AAC (ADTS) frames, 20 ms or 1024 samples
// at 16 kHz apart, from PTS start.
func audioFrames(codec media.Codec, n int, start int64, rng *rand.Rand) []Frame {
	var out []Frame
	for i := range n {
		var data []byte
		step := int64(1800)
		switch codec {
		case media.CodecAAC:
			step = 1024 * 90000 / 16000
			size := 7 + 50 + rng.IntN(200)
			data = []byte{0xFF, 0xF1, 0x60, 0x40, byte(size >> 3), byte(size<<5) | 0x1F, 0xFC}
			for len(data) < size {
				data = append(data, byte(rng.Uint32()))
			}
		default:
			data = make([]byte, 160)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
		}
		pts := start + int64(i)*step
		out = append(out, Frame{Stream: 0xC0, Codec: codec, PTS: pts, DTS: pts, HasPTS: true, Data: data})
	}
	return out
}

// interleave merges frames by PTS, video first on ties.
func interleave(video, audio []Frame) []Frame {
	out := append(slices.Clone(video), audio...)
	slices.SortStableFunc(out, func(a, b Frame) int {
		switch {
		case a.PTS < b.PTS:
			return -1
		case a.PTS > b.PTS:
			return 1
		}
		return 0
	})
	return out
}

// feed writes stream to d in random pieces of 1 to 1500 bytes, as RTP
// payloads would come, and returns the first error.
func feed(d *Demuxer, stream []byte, rng *rand.Rand) error {
	var first error
	for len(stream) > 0 {
		n := min(len(stream), 1+rng.IntN(1500))
		if err := d.Write(stream[:n]); err != nil && first == nil {
			first = err
		}
		stream = stream[n:]
	}
	d.Flush()
	return first
}

func byStream(frames []Frame) map[byte][]Frame {
	m := make(map[byte][]Frame)
	for _, f := range frames {
		m[f.Stream] = append(m[f.Stream], f)
	}
	return m
}

func compareFrames(t *testing.T, got, want []Frame) {
	t.Helper()
	g, w := byStream(got), byStream(want)
	for id, wf := range w {
		gf := g[id]
		if len(gf) != len(wf) {
			t.Fatalf("stream %#x: got %d frames, want %d", id, len(gf), len(wf))
		}
		for i := range wf {
			a, b := gf[i], wf[i]
			if a.Codec != b.Codec || a.PTS != b.PTS || a.HasPTS != b.HasPTS || a.Key != b.Key {
				t.Fatalf("stream %#x frame %d: got %v pts %d key %v, want %v pts %d key %v",
					id, i, a.Codec, a.PTS, a.Key, b.Codec, b.PTS, b.Key)
			}
			if !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("stream %#x frame %d: data differs (%d vs %d bytes)", id, i, len(a.Data), len(b.Data))
			}
		}
	}
	if len(g) != len(w) {
		t.Fatalf("got streams %v, want %v", len(g), len(w))
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		clip    string
		audio   media.Codec
		mux     Muxer
		garbage bool
	}{
		{name: "h264 g711a", clip: sim.DefaultClip, audio: media.CodecPCMA},
		{name: "h264 aac", clip: sim.DefaultClip, audio: media.CodecAAC},
		{name: "h264 g711u unbounded video", clip: sim.DefaultClip, audio: media.CodecPCMU, mux: Muxer{UnboundedVideo: true}},
		{name: "no system header", clip: "street.h264", audio: media.CodecPCMA, mux: Muxer{OmitSystemHeader: true}},
		{name: "no system header no psm", clip: sim.DefaultClip, audio: media.CodecPCMA, mux: Muxer{OmitSystemHeader: true, OmitPSM: true}},
		{name: "no psm aac", clip: sim.DefaultClip, audio: media.CodecAAC, mux: Muxer{OmitPSM: true, UnboundedVideo: true}},
		{name: "small PES", clip: "mandelbrot.h264", audio: media.CodecPCMA, mux: Muxer{MaxPayload: 1000}},
		{name: "small PES with PTS on each", clip: sim.DefaultClip, audio: media.CodecPCMA, mux: Muxer{MaxPayload: 999, PTSOnEveryPES: true}},
		{name: "garbage between packs", clip: sim.DefaultClip, audio: media.CodecPCMA, mux: Muxer{MaxPayload: 1400}, garbage: true},
		{name: "h265", clip: "testsrc.h265", audio: media.CodecAAC},
		{name: "h265 unbounded without psm", clip: "testsrc.h265", audio: media.CodecPCMA, mux: Muxer{UnboundedVideo: true, OmitPSM: true, OmitSystemHeader: true}},
		{name: "pts wraps", clip: sim.DefaultClip, audio: media.CodecPCMA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tt.name))))
			start := int64(123456)
			if tt.name == "pts wraps" {
				start = 1<<33 - 6000*10
			}
			video := clipFrames(t, tt.clip, start)
			want := interleave(video, audioFrames(tt.audio, 200, start, rng))
			m := tt.mux
			m.AddStream(0xE0, video[0].Codec) // a device's map lists all its streams
			m.AddStream(0xC0, tt.audio)
			var stream []byte
			var garbage uint64
			for i := range want {
				f := want[i]
				if tt.garbage && i%7 == 3 {
					g := []byte{0, 0, 1, 0xE0, 0, 9, 0xFF} // bad PES header
					for n := rng.IntN(300); n > 0; n-- {
						g = append(g, 1+byte(rng.IntN(255))) // no zero: no start code
					}
					stream = append(stream, g...)
					garbage += uint64(len(g))
				}
				stream = m.Mux(stream, &f)
			}
			var got []Frame
			d := NewDemuxer(func(f Frame) { got = append(got, f) })
			err := feed(d, stream, rng)
			if tt.garbage != (err != nil) {
				t.Fatalf("error %v", err)
			}
			if err != nil && !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v, want ErrBadHeader", err)
			}
			for i := range want {
				want[i].PTS &= 1<<33 - 1 // as muxed; the demuxer unwraps
				if want[i].PTS < start&(1<<33-1) {
					want[i].PTS += 1 << 33
				}
			}
			compareFrames(t, got, want)
			s := d.Stats()
			if s.Skipped != garbage || s.Frames != uint64(len(want)) || s.TooLarge+s.Truncated+s.Unsupported != 0 {
				t.Fatalf("stats %+v, want %d skipped", s, garbage)
			}
			if tt.garbage && s.Resyncs == 0 {
				t.Fatalf("no resync counted: %+v", s)
			}
		})
	}
}

func TestKeyAndCodec(t *testing.T) {
	for _, name := range sim.Clips() {
		t.Run(name, func(t *testing.T) {
			frames := clipFrames(t, name, 0)
			var m Muxer
			m.OmitPSM = true
			var stream []byte
			for i := range frames {
				stream = m.Mux(stream, &frames[i])
			}
			var keys int
			var codec media.Codec
			d := NewDemuxer(func(f Frame) {
				if f.Key {
					keys++
				}
				codec = f.Codec
			})
			if err := feed(d, stream, rand.New(rand.NewPCG(2, 3))); err != nil {
				t.Fatal(err)
			}
			var want int
			for _, f := range frames {
				if f.Key {
					want++
				}
			}
			if keys != want || codec != frames[0].Codec {
				t.Fatalf("got %d keys codec %v, want %d %v", keys, codec, want, frames[0].Codec)
			}
		})
	}
}

func TestFrameTooLarge(t *testing.T) {
	frames := clipFrames(t, sim.DefaultClip, 0)
	var m Muxer
	var stream []byte
	for i := range frames {
		stream = m.Mux(stream, &frames[i])
	}
	limit := 0
	for _, f := range frames {
		if !f.Key {
			limit = max(limit, len(f.Data))
		}
	}
	var got []Frame
	d := NewDemuxer(func(f Frame) { got = append(got, f) })
	d.MaxFrameSize = limit
	err := feed(d, stream, rand.New(rand.NewPCG(4, 5)))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("error %v, want ErrFrameTooLarge", err)
	}
	var want []Frame
	for _, f := range frames {
		if len(f.Data) <= limit {
			want = append(want, f)
		}
	}
	compareFrames(t, got, want)
	if s := d.Stats(); s.TooLarge != uint64(len(frames)-len(want)) {
		t.Fatalf("stats %+v, want %d too large", s, len(frames)-len(want))
	}
}

func TestTruncatedPES(t *testing.T) {
	frames := clipFrames(t, sim.DefaultClip, 0)[:10]
	var m Muxer
	var stream []byte
	cut := 0
	for i := range frames {
		stream = m.Mux(stream, &frames[i])
		if i == 4 {
			cut = len(stream) - 100 // lose 50 bytes at the end of frame 4
		}
	}
	stream = append(stream[:cut:cut], stream[cut+50:]...)
	var got []Frame
	d := NewDemuxer(func(f Frame) { got = append(got, f) })
	err := feed(d, stream, rand.New(rand.NewPCG(6, 7)))
	if !errors.Is(err, ErrTruncatedPES) {
		t.Fatalf("error %v, want ErrTruncatedPES", err)
	}
	if len(got) != len(frames) {
		t.Fatalf("got %d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		if i != 4 && !bytes.Equal(got[i].Data, frames[i].Data) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if len(got[4].Data) != len(frames[4].Data)-50 {
		t.Fatalf("frame 4: %d bytes, want %d", len(got[4].Data), len(frames[4].Data)-50)
	}
}

func TestUnsupportedCodec(t *testing.T) {
	frames := clipFrames(t, sim.DefaultClip, 0)[:5]
	var m Muxer
	var stream []byte
	for i := range frames {
		stream = m.Mux(stream, &frames[i])
	}
	// Rewrite the stream type in the map to SVAC.
	i := bytes.Index(stream, []byte{0, 0, 1, idPSM})
	j := bytes.Index(stream[i:], []byte{StreamTypeH264, 0xE0})
	stream[i+j] = StreamTypeSVAC
	var got []Frame
	d := NewDemuxer(func(f Frame) { got = append(got, f) })
	if err := feed(d, stream, rand.New(rand.NewPCG(8, 9))); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 || d.Stats().Unsupported != 5 {
		t.Fatalf("got %d frames, stats %+v", len(got), d.Stats())
	}
	if s := d.Streams(); len(s) != 1 || s[0].Type != StreamTypeSVAC || s[0].Codec != media.CodecUnknown {
		t.Fatalf("streams %+v", s)
	}
}

// FuzzDemux checks that no input panics the demuxer or makes it hold more
// than its bounds.
func FuzzDemux(f *testing.F) {
	frames := clipFrames(f, sim.DefaultClip, 0)[:3]
	audio := audioFrames(media.CodecAAC, 3, 0, rand.New(rand.NewPCG(1, 1)))
	for _, m := range []Muxer{{}, {UnboundedVideo: true, OmitPSM: true}, {MaxPayload: 300}} {
		var stream []byte
		for _, fr := range interleave(frames, audio) {
			fr.Data = fr.Data[:min(len(fr.Data), 400)] // small seeds minimise fast
			stream = m.Mux(stream, &fr)
		}
		f.Add(stream, uint16(1400))
	}
	f.Add([]byte{0, 0, 1, 0xBA, 0x44}, uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		const limit = 1 << 16
		d := NewDemuxer(func(f Frame) {
			if len(f.Data) == 0 || len(f.Data) > limit {
				t.Fatalf("frame of %d bytes", len(f.Data))
			}
		})
		d.MaxFrameSize = limit
		n := max(int(chunk), 1)
		for len(data) > 0 {
			k := min(n, len(data))
			_ = d.Write(data[:k])
			data = data[k:]
			if len(d.buf) > 6+0xFFFF+writeChunk || d.pending > 2*limit {
				t.Fatalf("holding %d buffered and %d pending bytes", len(d.buf), d.pending)
			}
		}
		d.Flush()
		if d.pending != 0 {
			t.Fatalf("%d bytes pending after Flush", d.pending)
		}
	})
}

func BenchmarkDemux(b *testing.B) {
	frames := interleave(clipFrames(b, sim.DefaultClip, 0), audioFrames(media.CodecPCMA, 200, 0, rand.New(rand.NewPCG(1, 1))))
	var m Muxer
	var stream []byte
	for i := range frames {
		stream = m.Mux(stream, &frames[i])
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	d := NewDemuxer(func(Frame) {})
	for b.Loop() {
		for p := stream; len(p) > 0; {
			n := min(len(p), 1400)
			_ = d.Write(p[:n])
			p = p[n:]
		}
	}
}

// TestJoinMidStream starts reading at arbitrary offsets, as after a lost
// start of session: every frame whose pack starts after the offset must come
// out intact, after at most one partial frame per stream.
func TestJoinMidStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	video := clipFrames(t, sim.DefaultClip, 0)
	frames := interleave(video, audioFrames(media.CodecPCMA, 200, 0, rng))
	var m Muxer
	m.AddStream(0xE0, media.CodecH264)
	m.AddStream(0xC0, media.CodecPCMA)
	var stream []byte
	starts := make([]int, len(frames))
	for i := range frames {
		starts[i] = len(stream)
		stream = m.Mux(stream, &frames[i])
	}
	for range 20 {
		cut := rng.IntN(len(stream) / 2)
		var want []Frame
		for i, s := range starts {
			if s >= cut {
				want = append(want, frames[i])
			}
		}
		var got []Frame
		d := NewDemuxer(func(f Frame) { got = append(got, f) })
		_ = feed(d, stream[cut:], rng)
		g, w := byStream(got), byStream(want)
		for id := range w {
			if extra := len(g[id]) - len(w[id]); extra < 0 || extra > 1 {
				t.Fatalf("cut %d stream %#x: got %d frames, want %d", cut, id, len(g[id]), len(w[id]))
			}
			g[id] = g[id][len(g[id])-len(w[id]):]
		}
		var tail []Frame
		for _, fs := range g {
			tail = append(tail, fs...)
		}
		compareFrames(t, tail, want)
	}
}

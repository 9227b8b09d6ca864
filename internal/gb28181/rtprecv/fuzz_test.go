package rtprecv

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/sim"
)

// FuzzPackets feeds arbitrary packets to the packet path of a receiver, over
// UDP (with reordering) and TCP: data is a sequence of packets, each
// preceded by its 2-byte length as in RFC 4571. Nothing may panic, the
// memory held stays bounded, and the units written are well formed.
func FuzzPackets(f *testing.F) {
	cl := loadClip(f, sim.DefaultClip, 0)
	aac, _ := aacFrames(f, 0)
	video := cl.frames[:4]
	for i := range video {
		video[i].Data = video[i].Data[:min(len(video[i].Data), 300)] // small seeds minimise fast
	}
	for _, d := range []*device{
		{mtu: 200},
		{mtu: 150, noPTS: true, mux: ps.Muxer{OmitPSM: true, UnboundedVideo: true}},
		{mtu: 250, ssrc: 5, mux: ps.Muxer{OmitSystemHeader: true, MaxPayload: 100}},
	} {
		frames := interleave(video, aac[:4])
		if d.noPTS {
			frames = interleave(video, g711Frames(media.CodecPCMA, 4, 0))
		}
		seed := framed(allPackets(d, frames))
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Add(framed([][]byte{{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 1, 0xBA}}), false)
	f.Add([]byte{0, 3, 1, 2, 3}, true)

	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		c := &collector{}
		s := newTestSession(t, Config{ReorderWindow: 16, ReorderDelay: 20 * time.Millisecond}, tcp, c, t0)
		now := t0
		for len(data) >= 2 {
			n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			pkt := data[2 : 2+n]
			data = data[2+n:]
			now = now.Add(time.Millisecond)
			err := s.handle(pkt, now)
			if err == nil {
				err = s.maybeTick(now)
			}
			if err != nil {
				if !isSourceError(err) {
					t.Fatalf("error without a reason: %v", err)
				}
				break
			}
			if len(s.out.pending) > maxPendingFrames+64 || len(s.freeBufs) > s.cfg.ReorderWindow+16 || len(s.freePkts) > s.cfg.ReorderWindow+16 {
				t.Fatalf("holding %d pending frames, %d buffers, %d packets", len(s.out.pending), len(s.freeBufs), len(s.freePkts))
			}
		}
		last := map[int]int64{}
		for i, u := range c.units() {
			if len(u.Payload) == 0 || u.PTS < 0 {
				t.Fatalf("unit %d: %d NAL units, PTS %d", i, len(u.Payload), u.PTS)
			}
			for _, p := range u.Payload {
				if len(p) == 0 {
					t.Fatalf("unit %d: empty payload", i)
				}
			}
			if u.Track == 1 {
				if p, ok := last[1]; ok && u.PTS < p {
					t.Fatalf("audio unit %d: PTS %d after %d", i, u.PTS, p)
				}
				last[1] = u.PTS
			}
		}
	})
}

// BenchmarkReceiveUDP measures the packet path of a UDP session in memory:
// RTP parsing, the SSRC check, the reorder buffer, the PS demuxer, and the
// units written to a stream, for the H.264 clip with G.711 audio in
// 1400-byte payloads.
func BenchmarkReceiveUDP(b *testing.B) {
	cl := loadClip(b, sim.DefaultClip, 0)
	frames := interleave(cl.frames, g711Frames(media.CodecPCMA, 200, 0))
	d := &device{ssrc: testSSRC}
	d.mux.AddStream(0xE0, media.CodecH264)
	d.mux.AddStream(0xC0, media.CodecPCMA)
	pkts := allPackets(d, frames)
	var size int64
	ts := make([]uint32, len(pkts))
	for i, p := range pkts {
		size += int64(len(p))
		ts[i] = binary.BigEndian.Uint32(p[4:])
	}
	loop := uint32(len(cl.frames)) * uint32(cl.step)

	c := &collector{}
	s := newTestSession(b, Config{SSRC: testSSRC, CheckSSRC: true}, false, c, t0)
	b.SetBytes(size)
	b.ReportAllocs()
	now := t0
	seq := uint16(0)
	k := uint32(0)
	for b.Loop() {
		for i, p := range pkts { // the next pass of the clip: later sequence numbers and timestamps
			binary.BigEndian.PutUint16(p[2:], seq)
			binary.BigEndian.PutUint32(p[4:], ts[i]+k*loop)
			seq++
			now = now.Add(100 * time.Microsecond)
			if err := s.handle(p, now); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.maybeTick(now); err != nil {
			b.Fatal(err)
		}
		k++
		c.units() // drain the reader
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
	if st := s.cnt.snapshot(); st.Lost != 0 || st.Frames < uint64(b.N*(len(frames)-2)) {
		b.Fatalf("stats %+v after %d passes", st, b.N)
	}
}

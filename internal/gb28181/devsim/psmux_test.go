package devsim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/gb28181/ps"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/sim"
)

func TestCRC32MPEG(t *testing.T) {
	if got := crc32MPEG([]byte("123456789")); got != 0x0376E6E7 {
		t.Errorf("CRC-32/MPEG-2 check value %08X, want 0376E6E7", got)
	}
}

// TestPackHeader checks the pack header against the bit layout of
// ISO/IEC 13818-1 Table 2-33, read back independently.
func TestPackHeader(t *testing.T) {
	if got := hex.EncodeToString(appendPackHeader(nil, 0)); got != "000001ba440004000401013883f8" {
		t.Errorf("pack header of SCR 0: %s", got)
	}
	for _, scr := range []int64{1, 6000, 0x123456789, 1<<33 - 1, 1 << 33} {
		b := appendPackHeader(nil, scr)
		if len(b) != 14 || b[4]&0xC4 != 0x44 || b[6]&0x04 == 0 || b[8]&0x04 == 0 || b[9]&0x01 == 0 || b[12]&0x03 != 0x03 {
			t.Fatalf("SCR %d: markers wrong in % x", scr, b)
		}
		got := int64(b[4]>>3&7)<<30 | int64(b[4]&3)<<28 | int64(b[5])<<20 | int64(b[6]>>3)<<15 |
			int64(b[6]&3)<<13 | int64(b[7])<<5 | int64(b[8]>>3)
		if got != scr&(1<<33-1) {
			t.Errorf("SCR %#x read back as %#x", scr, got)
		}
	}
}

// TestPSM: the map names the stream and its CRC checks (the CRC of a
// message followed by its CRC is 0).
func TestPSM(t *testing.T) {
	for _, typ := range []byte{streamTypeH264, streamTypeH265} {
		m := psMuxer{streamType: typ}
		b := m.appendPSM(nil)
		if len(b) != 6+int(binary.BigEndian.Uint16(b[4:])) || crc32MPEG(b) != 0 {
			t.Errorf("PSM % x: length or CRC wrong", b)
		}
		if b[12] != typ || b[13] != 0xE0 {
			t.Errorf("PSM % x: stream", b)
		}
	}
}

// TestMuxDemuxClips muxes every embedded clip and demuxes it with the
// platform's demuxer, fed in odd chunks, with PTS that wrap past 2^33.
func TestMuxDemuxClips(t *testing.T) {
	for _, name := range sim.Clips() {
		t.Run(name, func(t *testing.T) {
			clip, err := loadClip(name)
			if err != nil {
				t.Fatal(err)
			}
			want := media.CodecH264
			if clip.codec == sim.CodecH265 {
				want = media.CodecH265
			}
			m := psMuxer{streamType: clip.streamType}
			base := int64(1<<33 - 20*6000)
			var stream []byte
			keys := 0
			for i, f := range clip.frames {
				stream = m.appendFrame(stream, f.data, f.key, base+int64(i)*6000)
				if f.key {
					keys++
				}
			}
			var got []ps.Frame
			dm := ps.NewDemuxer(func(f ps.Frame) { got = append(got, f) })
			for len(stream) > 0 {
				n := min(len(stream), 977)
				if err := dm.Write(stream[:n]); err != nil {
					t.Fatal(err)
				}
				stream = stream[n:]
			}
			dm.Flush()
			if len(got) != len(clip.frames) {
				t.Fatalf("%d frames, want %d", len(got), len(clip.frames))
			}
			for i, f := range got {
				cf := clip.frames[i]
				if f.Codec != want || f.Key != cf.key || !bytes.Equal(f.Data, cf.data) || f.PTS != base+int64(i)*6000 || f.DTS != f.PTS {
					t.Fatalf("frame %d: codec %v key %v PTS %d DTS %d, %d bytes; want key %v PTS %d, %d bytes",
						i, f.Codec, f.Key, f.PTS, f.DTS, len(f.Data), cf.key, base+int64(i)*6000, len(cf.data))
				}
			}
			st := dm.Stats()
			if st.Packs != uint64(len(got)) || st.PSMs != uint64(keys) || st.SystemHeaders != uint64(keys) || st.Skipped != 0 || st.Resyncs != 0 {
				t.Errorf("demuxer stats %+v", st)
			}
		})
	}
}

// TestMuxLargeFrame: a frame above 64 KB is split into PES packets, which
// the platform joins again.
func TestMuxLargeFrame(t *testing.T) {
	frame := []byte{0, 0, 0, 1, 0x65}
	r := rand.New(rand.NewPCG(1, 2))
	for len(frame) < 200_000 {
		frame = append(frame, byte(1+r.IntN(255))) // no start codes inside
	}
	for _, limit := range []int{0, 1000} {
		m := psMuxer{streamType: streamTypeH264, maxPayload: limit}
		b := m.appendFrame(nil, frame, true, 90000)
		b = m.appendFrame(b, frame[:100], false, 96000)
		var got []ps.Frame
		dm := ps.NewDemuxer(func(f ps.Frame) { got = append(got, f) })
		dm.Write(b)
		dm.Flush()
		size := limit
		if size == 0 {
			size = maxPESPayload
		}
		wantPES := (len(frame)+size-1)/size + 1
		if len(got) != 2 || !bytes.Equal(got[0].Data, frame) || got[0].PTS != 90000 || !got[0].Key || dm.Stats().PES != uint64(wantPES) {
			t.Errorf("limit %d: %d frames, %d PES (want %d)", limit, len(got), dm.Stats().PES, wantPES)
		}
	}
}

// TestRTPPacketizer: packets of at most 1,400 bytes of payload, numbered,
// the marker on the last, framed for TCP with RFC 4571 lengths.
func TestRTPPacketizer(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 3000)
	for _, framed := range []bool{false, true} {
		p := rtpPacketizer{pt: 96, ssrc: 123456789, seq: 65534}
		b, ends := p.appendPackets(nil, nil, payload, 4242, framed)
		if len(ends) != 3 || ends[2] != len(b) {
			t.Fatalf("framed %v: %d packets", framed, len(ends))
		}
		start, total := 0, 0
		for i, end := range ends {
			pkt := b[start:end]
			if framed {
				if int(binary.BigEndian.Uint16(pkt)) != len(pkt)-2 {
					t.Errorf("packet %d: RFC 4571 length %d for %d bytes", i, binary.BigEndian.Uint16(pkt), len(pkt)-2)
				}
				pkt = pkt[2:]
			}
			var rp rtp.Packet
			if err := rp.Unmarshal(pkt); err != nil {
				t.Fatal(err)
			}
			if rp.Version != 2 || rp.PayloadType != 96 || rp.SSRC != 123456789 || rp.Timestamp != 4242 ||
				rp.SequenceNumber != uint16(65534+i) || rp.Marker != (i == 2) || len(rp.Payload) > 1400 {
				t.Errorf("packet %d: %+v", i, rp.Header)
			}
			total += len(rp.Payload)
			start = end
		}
		if total != len(payload) || p.seq != 1 {
			t.Errorf("%d payload bytes, next seq %d", total, p.seq)
		}
	}
}

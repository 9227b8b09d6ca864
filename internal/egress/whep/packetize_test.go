package whep

import (
	"bytes"
	"slices"
	"testing"

	"github.com/pion/rtp"

	"github.com/xueliang/xueliang/internal/media"
)

// recorder is an rtpWriter keeping copies of the packets, as pion does.
type recorder struct {
	pkts     []rtp.Packet
	payloads [][]byte // the payload slices as given, to check for copies
}

func (r *recorder) WriteRTP(p *rtp.Packet) error {
	c := *p
	c.Payload = bytes.Clone(p.Payload)
	r.pkts = append(r.pkts, c)
	r.payloads = append(r.payloads, p.Payload)
	return nil
}

func nalu(typ byte, size int) []byte {
	b := make([]byte, size)
	b[0] = typ
	for i := 1; i < size; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func TestH264Packetizer(t *testing.T) {
	sps, pps := []byte{0x67, 0x64, 0x00, 0x1f, 0xac}, []byte{0x68, 0xee, 0x3c, 0x80}
	aud := []byte{0x09, 0xf0}
	sei := nalu(0x06, 40)
	idr := nalu(0x65, 3000) // three FU-A fragments
	p := &h264Packetizer{sps: sps, pps: pps}
	rec := &recorder{}
	pw := &packetWriter{w: rec, seq: 65534}

	nalus := p.nalus(nil, [][]byte{aud, sei, idr}, true)
	if !slices.EqualFunc(nalus, [][]byte{sps, pps, sei, idr}, bytes.Equal) {
		t.Fatalf("nalus: %d units, want SPS, PPS, SEI, IDR without the AUD", len(nalus))
	}
	if err := p.send(pw, nalus, 1234); err != nil {
		t.Fatal(err)
	}
	if len(rec.pkts) != 6 {
		t.Fatalf("%d packets, want 3 single NAL units and 3 FU-A", len(rec.pkts))
	}
	// Single NAL unit packets are the shared buffers themselves.
	if &rec.payloads[2][0] != &sei[0] {
		t.Error("the SEI was copied")
	}
	asm := newFrameAssembler(false)
	var got [][]byte
	for i, pkt := range rec.pkts {
		if pkt.Timestamp != 1234 || pkt.SequenceNumber != uint16(65534+i) || pkt.Marker != (i == 5) {
			t.Errorf("packet %d: ts %d seq %d marker %v", i, pkt.Timestamp, pkt.SequenceNumber, pkt.Marker)
		}
		if len(pkt.Payload) > maxPayload {
			t.Errorf("packet %d: %d bytes", i, len(pkt.Payload))
		}
		nalus, err := asm.push(&pkt)
		if err != nil {
			t.Fatal(err)
		}
		if nalus != nil {
			got = nalus
		}
	}
	if !slices.EqualFunc(got, [][]byte{sps, pps, sei, idr}, bytes.Equal) {
		t.Errorf("depacketized %d NAL units, not the ones sent", len(got))
	}
}

func TestH264ParameterSetsInBand(t *testing.T) {
	// A source without out-of-band parameter sets: the in-band ones of the
	// first keyframe are repeated before the later keyframes that lack them.
	p := &h264Packetizer{}
	sps, pps, idr, slice := []byte{0x67, 0x42}, []byte{0x68, 0xce}, []byte{0x65, 1}, []byte{0x41, 2}
	if got := p.nalus(nil, [][]byte{sps, pps, idr}, true); len(got) != 3 {
		t.Fatalf("first keyframe: %d units", len(got))
	}
	if got := p.nalus(nil, [][]byte{slice}, false); len(got) != 1 {
		t.Fatalf("P frame: %d units, want no parameter sets", len(got))
	}
	sps2 := []byte{0x67, 0x4d}
	p.nalus(nil, [][]byte{sps2, slice}, false) // the camera changed its SPS
	got := p.nalus(nil, [][]byte{idr}, true)
	if !slices.EqualFunc(got, [][]byte{sps2, pps, idr}, bytes.Equal) {
		t.Errorf("second keyframe: %x, want the latest SPS, the PPS and the IDR", got)
	}
}

func TestH265Packetizer(t *testing.T) {
	vps, sps, pps := []byte{0x40, 0x01, 0x0c}, []byte{0x42, 0x01, 0x01, 0x01}, []byte{0x44, 0x01, 0xc1}
	aud := []byte{0x46, 0x01, 0x50}
	idr := nalu(0x26, 4000) // IDR_W_RADL (19) with the second header byte set below
	idr[1] = 0x01
	p := &h265Packetizer{vps: vps, sps: sps, pps: pps}
	rec := &recorder{}
	pw := &packetWriter{w: rec}
	nalus := p.nalus(nil, [][]byte{aud, idr}, true)
	if len(nalus) != 4 {
		t.Fatalf("%d units, want VPS, SPS, PPS, IDR", len(nalus))
	}
	if err := p.send(pw, nalus, 99); err != nil {
		t.Fatal(err)
	}
	asm := newFrameAssembler(true)
	var got [][]byte
	for i, pkt := range rec.pkts {
		if len(pkt.Payload) > maxPayload || pkt.Marker != (i == len(rec.pkts)-1) {
			t.Errorf("packet %d: %d bytes, marker %v", i, len(pkt.Payload), pkt.Marker)
		}
		nalus, err := asm.push(&pkt)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if nalus != nil {
			got = nalus
		}
	}
	if !slices.EqualFunc(got, [][]byte{vps, sps, pps, idr}, bytes.Equal) {
		t.Errorf("depacketized %d NAL units, not the ones sent", len(got))
	}
}

func TestG711Packets(t *testing.T) {
	rec := &recorder{}
	pw := &packetWriter{w: rec}
	buf := bytes.Repeat([]byte{0xd5}, 400)
	if err := sendG711(pw, [][]byte{buf}, 1000); err != nil {
		t.Fatal(err)
	}
	if err := sendG711(pw, [][]byte{buf[:160]}, 1400); err != nil {
		t.Fatal(err)
	}
	type pkt struct {
		size   int
		ts     uint32
		marker bool
	}
	var got []pkt
	for _, p := range rec.pkts {
		got = append(got, pkt{len(p.Payload), p.Timestamp, p.Marker})
	}
	// 20 ms packets from each buffer; the marker on the first packet only.
	want := []pkt{{160, 1000, true}, {160, 1160, false}, {80, 1320, false}, {160, 1400, false}}
	if !slices.Equal(got, want) {
		t.Errorf("packets %v, want %v", got, want)
	}
}

// TestBacklogTimestamps checks that the cached GOP is sent 1 ms apart and
// that live frames keep their spacing from the last cached one.
func TestBacklogTimestamps(t *testing.T) {
	track := &media.Track{Codec: media.CodecH264, ClockRate: 90000, SPS: []byte{0x67}, PPS: []byte{0x68}}
	stream := media.NewStream([]*media.Track{track, pcma})
	rec := &recorder{}
	ss := &session{
		srv:     &Server{metrics: newMetrics()},
		stream:  stream,
		plan:    &plan{video: 0, audio: -1},
		video:   &h264Packetizer{sps: track.SPS, pps: track.PPS},
		videoPW: packetWriter{w: rec},
		backlog: 4,
	}
	units := []*media.Unit{
		{Track: 0, PTS: 0, Key: true, Payload: [][]byte{{0x65}}},
		{Track: 1, PTS: 100, Payload: [][]byte{{0xd5}}}, // cached audio: skipped
		{Track: 0, PTS: 3600, Payload: [][]byte{{0x41}}},
		{Track: 0, PTS: 7200, Payload: [][]byte{{0x41}}},
		{Track: 0, PTS: 10800, Payload: [][]byte{{0x41}}}, // live
		{Track: 0, PTS: 14400, Payload: [][]byte{{0x41}}},
	}
	for _, u := range units {
		if err := ss.writeUnit(u); err != nil {
			t.Fatal(err)
		}
	}
	var ts []uint32
	for _, p := range rec.pkts {
		if p.Marker {
			ts = append(ts, p.Timestamp-rec.pkts[0].Timestamp)
		}
	}
	if want := []uint32{0, 90, 180, 180 + 3600, 180 + 7200}; !slices.Equal(ts, want) {
		t.Errorf("frame timestamps %v, want %v", ts, want)
	}
}

func TestWaitsForKeyframe(t *testing.T) {
	track := &media.Track{Codec: media.CodecH264, ClockRate: 90000}
	rec := &recorder{}
	ss := &session{
		srv:     &Server{metrics: newMetrics()},
		stream:  media.NewStream([]*media.Track{track}),
		plan:    &plan{video: 0, audio: -1},
		video:   &h264Packetizer{},
		videoPW: packetWriter{w: rec},
	}
	_ = ss.writeUnit(&media.Unit{Track: 0, PTS: 0, Payload: [][]byte{{0x41}}})
	if len(rec.pkts) != 0 {
		t.Fatal("sent a P frame before any keyframe")
	}
	_ = ss.writeUnit(&media.Unit{Track: 0, PTS: 3600, Key: true, Payload: [][]byte{{0x65}}})
	_ = ss.writeUnit(&media.Unit{Track: 0, PTS: 7200, Payload: [][]byte{{0x41}}})
	if len(rec.pkts) != 2 {
		t.Fatalf("%d packets, want the keyframe and the P frame", len(rec.pkts))
	}
}

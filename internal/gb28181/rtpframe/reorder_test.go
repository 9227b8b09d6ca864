package rtpframe

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func pkt(ssrc uint32, seq uint16) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: ssrc, SequenceNumber: seq}}
}

func seqs(ps []*rtp.Packet) []uint16 {
	out := make([]uint16, len(ps))
	for i, p := range ps {
		out[i] = p.SequenceNumber
	}
	return out
}

func TestReorder(t *testing.T) {
	type in struct {
		ssrc uint32
		seq  uint16
		ms   int // arrival, milliseconds
	}
	tests := []struct {
		name   string
		window int
		input  []in
		flush  int // Flush at this time (ms) after the input, if > 0
		want   []uint16
		stats  ReorderStats
	}{
		{
			name:  "in order",
			input: []in{{1, 10, 0}, {1, 11, 0}, {1, 12, 0}},
			want:  []uint16{10, 11, 12},
			stats: ReorderStats{Received: 3, Emitted: 3},
		},
		{
			name:  "swapped",
			input: []in{{1, 10, 0}, {1, 12, 1}, {1, 11, 2}, {1, 13, 3}},
			want:  []uint16{10, 11, 12, 13},
			stats: ReorderStats{Received: 4, Emitted: 4, Reordered: 1},
		},
		{
			name:  "wrap-around",
			input: []in{{1, 65534, 0}, {1, 0, 1}, {1, 65535, 2}, {1, 1, 3}},
			want:  []uint16{65534, 65535, 0, 1},
			stats: ReorderStats{Received: 4, Emitted: 4, Reordered: 1},
		},
		{
			name:  "duplicates",
			input: []in{{1, 10, 0}, {1, 10, 1}, {1, 12, 2}, {1, 12, 3}, {1, 11, 4}},
			want:  []uint16{10, 11, 12},
			stats: ReorderStats{Received: 5, Emitted: 3, Duplicates: 2, Reordered: 1},
		},
		{
			name:  "loss given up after max delay",
			input: []in{{1, 10, 0}, {1, 12, 10}, {1, 13, 20}, {1, 14, 215}, {1, 11, 216}},
			want:  []uint16{10, 12, 13, 14},
			stats: ReorderStats{Received: 5, Emitted: 4, Lost: 1, Late: 1},
		},
		{
			name:  "loss given up by flush timer",
			input: []in{{1, 10, 0}, {1, 12, 10}},
			flush: 300,
			want:  []uint16{10, 12},
			stats: ReorderStats{Received: 2, Emitted: 2, Lost: 1},
		},
		{
			name:   "loss given up when window full",
			window: 4,
			input:  []in{{1, 10, 0}, {1, 12, 0}, {1, 13, 0}, {1, 14, 0}, {1, 15, 0}},
			want:   []uint16{10, 12, 13, 14, 15},
			stats:  ReorderStats{Received: 5, Emitted: 5, Lost: 1},
		},
		{
			name:  "ssrc change flushes",
			input: []in{{1, 10, 0}, {1, 12, 1}, {2, 500, 2}, {2, 501, 3}},
			want:  []uint16{10, 12, 500, 501},
			stats: ReorderStats{Received: 4, Emitted: 4, Resets: 1},
		},
		{
			name:  "sequence jump confirmed",
			input: []in{{1, 10, 0}, {1, 40000, 1}, {1, 40001, 2}, {1, 40002, 3}},
			want:  []uint16{10, 40001, 40002},
			stats: ReorderStats{Received: 4, Emitted: 3, Late: 1, Resets: 1},
		},
		{
			name:  "stray far packet ignored",
			input: []in{{1, 10, 0}, {1, 40000, 1}, {1, 11, 2}},
			want:  []uint16{10, 11},
			stats: ReorderStats{Received: 3, Emitted: 2, Late: 1},
		},
	}
	t0 := time.Unix(1000, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReorder(tt.window, 0)
			var got []uint16
			for _, p := range tt.input {
				got = append(got, seqs(first(r.Push(pkt(p.ssrc, p.seq), t0.Add(time.Duration(p.ms)*time.Millisecond))))...)
			}
			if tt.flush > 0 {
				got = append(got, seqs(r.Flush(t0.Add(time.Duration(tt.flush)*time.Millisecond)))...)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
			if s := r.Stats(); s != tt.stats {
				t.Fatalf("stats %+v, want %+v", s, tt.stats)
			}
		})
	}
}

func TestReorderWindowPowerOfTwo(t *testing.T) {
	if w := NewReorder(100, 0).window; w != 128 {
		t.Fatalf("window %d, want 128", w)
	}
}

// TestReorderShuffled checks that packets displaced by less than the window
// come out complete and in order across the wrap-around.
func TestReorderShuffled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	order := make([]uint16, n)
	for i := range order {
		order[i] = uint16(65000 + i) // wraps after 535 packets
	}
	key := make(map[uint16]int, n)
	for i, s := range order { // displace each packet by less than 20 places
		key[s] = i + rng.IntN(20)
	}
	key[order[0]] = -1 // the first packet received starts the sequence
	slices.SortStableFunc(order, func(a, b uint16) int { return key[a] - key[b] })
	r := NewReorder(64, time.Second)
	now := time.Unix(0, 0)
	var got []uint16
	for _, s := range order {
		got = append(got, seqs(first(r.Push(pkt(7, s), now)))...)
		now = now.Add(time.Millisecond)
	}
	got = append(got, seqs(r.Flush(now.Add(time.Hour)))...)
	if len(got) != n {
		t.Fatalf("got %d packets, want %d (stats %+v)", len(got), n, r.Stats())
	}
	for i, s := range got {
		if s != uint16(65000+i) {
			t.Fatalf("packet %d: seq %d, want %d", i, s, uint16(65000+i))
		}
	}
	if s := r.Stats(); s.Lost+s.Late+s.Duplicates+s.Resets != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// first drops Push's second result.
func first(ps []*rtp.Packet, _ bool) []*rtp.Packet { return ps }

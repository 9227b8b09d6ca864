package rtpframe

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReaderRoundTrip(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := 1; i < 300; i += 7 {
		p := bytes.Repeat([]byte{byte(i)}, i)
		want = append(want, p)
		var err error
		if stream, err = Append(stream, p); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, MaxPacketSize)
	want = append(want, big)
	stream, _ = Append(stream, big)

	// One byte at a time, as a slow TCP peer would deliver it.
	r := NewReader(iotest.OneByteReader(bytes.NewReader(stream)))
	for i, w := range want {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, w) {
			t.Fatalf("packet %d: got %d bytes, want %d", i, len(got), len(w))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("at end: got %v, want io.EOF", err)
	}
	if r.Packets() != uint64(len(want)) || r.Bytes() != uint64(len(stream)) {
		t.Fatalf("counters: %d packets %d bytes, want %d %d", r.Packets(), r.Bytes(), len(want), len(stream))
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty stream", nil, io.EOF},
		{"zero length", []byte{0, 0, 1, 2}, ErrZeroLength},
		{"closed inside length", []byte{0}, ErrTruncated},
		{"closed inside packet", []byte{0, 10, 1, 2, 3}, ErrTruncated},
		{"closed after length", []byte{0, 10}, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.input))
			_, err := r.Next()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.want == ErrTruncated && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%v does not wrap io.ErrUnexpectedEOF", err)
			}
			if _, err2 := r.Next(); err2 != err {
				t.Fatalf("error not sticky: %v then %v", err, err2)
			}
		})
	}
	readErr := errors.New("boom")
	r := NewReader(iotest.ErrReader(readErr))
	if _, err := r.Next(); !errors.Is(err, readErr) {
		t.Fatalf("got %v, want %v", err, readErr)
	}
}

func TestAppendRefuses(t *testing.T) {
	dst := []byte{9}
	if got, err := Append(dst, nil); !errors.Is(err, ErrEmpty) || len(got) != 1 {
		t.Fatalf("empty: %v %v", got, err)
	}
	if got, err := Append(dst, make([]byte, MaxPacketSize+1)); !errors.Is(err, ErrTooLarge) || len(got) != 1 {
		t.Fatalf("too large: %d %v", len(got), err)
	}
}

func FuzzReader(f *testing.F) {
	seed, _ := Append(nil, []byte{0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	seed, _ = Append(seed, []byte{1, 2, 3})
	f.Add(seed)
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		var consumed int
		for {
			p, err := r.Next()
			if err != nil {
				if consumed > len(data) {
					t.Fatalf("consumed %d of %d bytes", consumed, len(data))
				}
				return
			}
			if len(p) == 0 {
				t.Fatal("empty packet returned")
			}
			consumed += len(p) + 2
		}
	})
}

package recfile

import (
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// MaxFragmentSize is the largest fragment (moof and mdat) that ReadPart
// reads into memory: a second of video at 500 Mbit/s.
const MaxFragmentSize = 64 << 20

// Sample is one sample of a fragment as its moof describes it.
type Sample struct {
	Duration uint32 // in the timescale of the track
	Size     uint32
	Sync     bool
	Offset   int64 // of its data in the file
}

// TrackSamples are the samples of one track in a fragment.
type TrackSamples struct {
	ID       int
	BaseTime uint64
	Samples  []Sample
}

// ReadSamples reads the moof of fr, a fragment that Scan found in r, and
// returns the samples of each of its tracks, in moof order.
func ReadSamples(r io.ReaderAt, fr Fragment) ([]TrackSamples, error) {
	if fr.MoofSize <= 0 || fr.MoofSize > MaxMoofSize {
		return nil, fmt.Errorf("recfile: fragment at offset %d: invalid moof size %d", fr.Offset, fr.MoofSize)
	}
	moof := make([]byte, fr.MoofSize)
	if err := readFull(r, moof, fr.Offset); err != nil {
		return nil, err
	}
	mi, err := parseMoof(moof, dataBounds{moofOff: fr.Offset}, true)
	if err != nil {
		return nil, formatErr(fr.Offset, "%v", err)
	}
	out := make([]TrackSamples, len(mi.trafs))
	for i, t := range mi.trafs {
		for j := range t.list {
			t.list[j].Offset += fr.Offset
		}
		out[i] = TrackSamples{ID: int(t.id), BaseTime: t.base, Samples: t.list}
	}
	return out, nil
}

// ReadPart reads fr, a fragment that Scan found in r, whole, and parses it
// with mediacommon: the payloads of the samples point into one buffer of
// fr.Size bytes, at most MaxFragmentSize.
func ReadPart(r io.ReaderAt, fr Fragment) (*fmp4.Part, error) {
	if fr.Size <= 0 || fr.Size > MaxFragmentSize {
		return nil, fmt.Errorf("recfile: fragment at offset %d: size %d out of bounds", fr.Offset, fr.Size)
	}
	b := make([]byte, fr.Size)
	if err := readFull(r, b, fr.Offset); err != nil {
		return nil, err
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		return nil, formatErr(fr.Offset, "fragment: %v", err)
	}
	if len(parts) != 1 {
		return nil, formatErr(fr.Offset, "fragment holds %d parts", len(parts))
	}
	return parts[0], nil
}

// readFull reads len(b) bytes at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("recfile: read at offset %d: %w", off, err)
}

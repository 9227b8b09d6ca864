package playback

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

// entryTarget is the length after which a playlist entry ends at the next
// keyframe fragment: entries of a few GOPs keep requests few and seeking
// quick.
const entryTarget = 4 * time.Second

// entry is one media segment of the playlist: fragments that follow each
// other in one file.
type entry struct {
	f        *file
	from, to int64 // byte range [from, to) of the file
	dur      time.Duration
	key      bool // starts with a keyframe fragment
}

// entries groups the fragments of a period into playlist entries.
func (per *period) entries() []entry {
	var out []entry
	for _, g := range per.frags {
		n := len(out)
		if n == 0 || out[n-1].f != g.f || out[n-1].to != g.fr.Offset || (g.fr.Key && out[n-1].dur >= entryTarget) {
			out = append(out, entry{f: g.f, from: g.fr.Offset, key: g.fr.Key})
			n++
		}
		e := &out[n-1]
		e.to = g.fr.Offset + g.fr.Size
		e.dur += g.fr.Duration
	}
	return out
}

// seconds formats d in seconds with microseconds, as EXTINF and
// TIME-OFFSET take it.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
}

// WritePlaylist writes the plan as an HLS VOD playlist (RFC 8216, version
// 7) to w. segURL returns the URI of the file of a segment (without
// double quotes, which the playlist cannot carry); the playlist
// addresses the init segment and the fragments of each file by byte range
// (§4.3.2.2, §4.3.2.5). Each period after the first begins with
// EXT-X-DISCONTINUITY (§4.3.2.3) and every period with an EXT-X-MAP and
// the EXT-X-PROGRAM-DATE-TIME of its first fragment (§4.3.2.6).
// EXT-X-START (§4.3.5.2) is the pre-roll; see the package documentation.
func (p *Plan) WritePlaylist(w io.Writer, segURL func(model.Segment) string) error {
	var all [][]entry
	var maxDur time.Duration
	independent := true
	for _, per := range p.periods {
		es := per.entries()
		for _, e := range es {
			maxDur = max(maxDur, e.dur)
			independent = independent && e.key
		}
		all = append(all, es)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(bw, "#EXT-X-TARGETDURATION:%d\n", int64(math.Ceil(maxDur.Seconds())))
	fmt.Fprintf(bw, "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n")
	if independent {
		fmt.Fprintf(bw, "#EXT-X-INDEPENDENT-SEGMENTS\n")
	}
	fmt.Fprintf(bw, "#EXT-X-START:TIME-OFFSET=%s,PRECISE=YES\n", seconds(p.Preroll))
	for i, per := range p.periods {
		if i > 0 {
			fmt.Fprintf(bw, "#EXT-X-DISCONTINUITY\n")
		}
		f := per.frags[0].f
		fmt.Fprintf(bw, "#EXT-X-MAP:URI=\"%s\",BYTERANGE=\"%d@0\"\n", segURL(f.seg), f.scan.InitSize)
		fmt.Fprintf(bw, "#EXT-X-PROGRAM-DATE-TIME:%s\n", per.wall.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		for _, e := range all[i] {
			fmt.Fprintf(bw, "#EXTINF:%s,\n#EXT-X-BYTERANGE:%d@%d\n%s\n", seconds(e.dur), e.to-e.from, e.from, segURL(e.f.seg))
		}
	}
	fmt.Fprintf(bw, "#EXT-X-ENDLIST\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("playback: write playlist: %w", err)
	}
	return nil
}

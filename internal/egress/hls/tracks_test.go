package hls

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/xueliang/xueliang/internal/media"
)

func TestPlanTracks(t *testing.T) {
	v := loadClip(t, "clip.h264", media.CodecH264)
	aac := loadAAC(t)
	h264 := v.track(false)
	aacTrack := &media.Track{Codec: media.CodecAAC, ClockRate: aac.rate, Config: aac.config}
	for _, tc := range []struct {
		name   string
		in     []*media.Track
		out    []int // stream track indexes carried, in muxer order
		err    error
		wantOK bool // ready without seeing a unit
	}{
		{"video only", []*media.Track{h264}, []int{0}, nil, true},
		{"in-band parameter sets", []*media.Track{v.track(true)}, []int{0}, nil, false},
		{"audio before video", []*media.Track{aacTrack, h264}, []int{1, 0}, nil, true},
		{"g711 left out", []*media.Track{h264, {Codec: media.CodecPCMA, ClockRate: 8000}, {Codec: media.CodecPCMU, ClockRate: 8000}}, []int{0}, nil, true},
		{"second video left out", []*media.Track{h264, h264}, []int{0}, nil, true},
		{"bad aac config left out", []*media.Track{h264, {Codec: media.CodecAAC, ClockRate: 48000, Config: []byte{0}}}, []int{0}, nil, true},
		{"opus", []*media.Track{h264, {Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}}, []int{0, 1}, nil, true},
		{"audio only", []*media.Track{aacTrack}, []int{0}, nil, true},
		{"nothing playable", []*media.Track{{Codec: media.CodecPCMA, ClockRate: 8000}}, nil, errNoPlayableTrack, false},
		{"no clock rate", []*media.Track{{Codec: media.CodecH264}}, nil, errNoPlayableTrack, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := planTracks(tc.in, slog.New(slog.DiscardHandler))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			var got []int
			for _, o := range ts.out {
				got = append(got, o.in)
			}
			if !slices.Equal(got, tc.out) {
				t.Errorf("tracks %v, want %v", got, tc.out)
			}
			if ts.ready() != tc.wantOK {
				t.Errorf("ready = %v, want %v", ts.ready(), tc.wantOK)
			}
		})
	}
}

func TestInBandParameterSets(t *testing.T) {
	v := loadClip(t, "clip.h264", media.CodecH264)
	ts, err := planTracks([]*media.Track{v.track(true)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts.learn(&media.Unit{Track: 0, Key: false, Payload: v.frames[1].nalus})
	if ts.ready() {
		t.Fatal("ready after a non-keyframe")
	}
	ts.learn(&media.Unit{Track: 0, Key: true, Payload: v.frames[0].nalus})
	if !ts.ready() {
		t.Fatal("not ready after a keyframe with SPS and PPS")
	}
	tracks, err := ts.build()
	if err != nil {
		t.Fatal(err)
	}
	c := tracks[0].Codec.(*codecs.H264)
	if !bytes.Equal(c.SPS, v.sps) || !bytes.Equal(c.PPS, v.pps) {
		t.Error("parameter sets not taken from the keyframe")
	}
}

func TestAccessUnitLeavesTheUnitAlone(t *testing.T) {
	sps, pps := []byte{0x67, 1, 2}, []byte{0x68, 3}
	idr, slice := []byte{0x65, 9, 9}, []byte{0x41, 8}
	ot := &outTrack{codec: media.CodecH264, sps: sps, pps: pps}
	for _, tc := range []struct {
		name string
		u    *media.Unit
		want [][]byte
		same bool // the unit's own slice is returned
	}{
		{"keyframe without parameter sets", &media.Unit{Key: true, Payload: [][]byte{idr}}, [][]byte{sps, pps, idr}, false},
		{"keyframe with parameter sets", &media.Unit{Key: true, Payload: [][]byte{sps, pps, idr}}, [][]byte{sps, pps, idr}, true},
		{"keyframe with the SPS only", &media.Unit{Key: true, Payload: [][]byte{sps, idr}}, [][]byte{sps, pps, idr}, false},
		{"empty NAL units dropped", &media.Unit{Payload: [][]byte{{}, slice, nil}}, [][]byte{slice}, false},
		{"plain frame", &media.Unit{Payload: [][]byte{slice}}, [][]byte{slice}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := slices.Clone(tc.u.Payload)
			got := ot.accessUnit(tc.u)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %x, want %x", got, tc.want)
			}
			if fmt.Sprint(tc.u.Payload) != fmt.Sprint(orig) {
				t.Errorf("unit payload changed to %x", tc.u.Payload)
			}
			if same := len(got) > 0 && len(tc.u.Payload) > 0 && &got[0] == &tc.u.Payload[0]; same != tc.same {
				t.Errorf("returned the unit's slice: %v, want %v", same, tc.same)
			}
		})
	}
}

func TestRescale(t *testing.T) {
	for _, tc := range []struct {
		v        int64
		from, to int
		want     int64
	}{
		{90000, 90000, 90000, 90000},
		{90000, 90000, 48000, 48000},
		{1024, 44100, 90000, 2089},
		{-3000, 90000, 48000, -1600},
		{90000 * 86400 * 365 * 100, 90000, 48000, 48000 * 86400 * 365 * 100}, // 100 years, no overflow
		{5, 0, 90000, 5},
	} {
		if got := rescale(tc.v, tc.from, tc.to); got != tc.want {
			t.Errorf("rescale(%d, %d, %d) = %d, want %d", tc.v, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestFileName(t *testing.T) {
	for path, want := range map[string]string{
		"/live/1/hls/index.m3u8":                   "index.m3u8",
		"/live/1/hls/abc_video1_part3.mp4":         "abc_video1_part3.mp4",
		"/api/live/12/hls/video1_stream.m3u8":      "video1_stream.m3u8",
		"/live/1/hls/":                             "",
		"/live/1/hls/a/b.mp4":                      "",
		"/live/1/hls/..":                           "",
		"/live/1/index.m3u8":                       "",
		"/live/1/hls/hls/x.mp4":                    "x.mp4",
		`/live/1/hls/a\b`:                          "",
		"/live/1/hls/abcdef012345_video1_seg7.mp4": "abcdef012345_video1_seg7.mp4",
	} {
		if got := fileName(path); got != want {
			t.Errorf("fileName(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestPreloadHint(t *testing.T) {
	pl := []byte("#EXTM3U\n#EXT-X-PART:DURATION=0.2,URI=\"0a1b2c3d4e5f_video1_part40.mp4?token=x\"\n" +
		"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"0a1b2c3d4e5f_video1_part41.mp4?token=x\"\n")
	prefix, n, ok := preloadHint(pl, "video1")
	if !ok || prefix != "0a1b2c3d4e5f" || n != 41 {
		t.Errorf("preloadHint = %q %d %v", prefix, n, ok)
	}
	for _, bad := range []string{
		"#EXTM3U\n",
		"#EXT-X-PRELOAD-HINT:TYPE=PART\n",
		"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x_audio2_part4.mp4\"\n",
		"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x_video1_part04.mp4\"\n",
		"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x_video1_partx.mp4\"\n",
	} {
		if _, _, ok := preloadHint([]byte(bad), "video1"); ok {
			t.Errorf("preloadHint(%q) ok", bad)
		}
	}

	p := &prog{prefix: "0a1b2c3d4e5f", next: map[string]uint64{"video1": 41, "audio2": 41}}
	for name, want := range map[string]string{
		"0a1b2c3d4e5f_video1_part41.mp4":  "video1 41 true",
		"0a1b2c3d4e5f_audio2_part3.mp4":   "audio2 3 true",
		"ffffffffffff_video1_part41.mp4":  " 0 false", // an older muxer
		"0a1b2c3d4e5f_video1_part041.mp4": "video1 0 false",
		"0a1b2c3d4e5f_video9_part1.mp4":   " 0 false",
	} {
		sid, n, ok := p.parsePart(name)
		if got := fmt.Sprint(sid, " ", n, " ", ok); got != want {
			t.Errorf("parsePart(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestUnavailableReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("streams: channel 1: %w: %w", media.ErrUnavailable,
			media.Fail(media.ReasonAuthFailed, errors.New("401 Unauthorized"))),
			"source unavailable: auth_failed: 401 Unauthorized"},
		{fmt.Errorf("streams: channel 1: %w: camera unreachable", media.ErrUnavailable),
			"source unavailable: camera unreachable"},
		{errors.Join(media.ErrUnavailable, errors.New("a"), errors.New("b")),
			"source unavailable; a; b"},
		{errors.New("something else"), "something else"},
	} {
		if got := unavailableReason(tc.err); got != tc.want {
			t.Errorf("unavailableReason(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

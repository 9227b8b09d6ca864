package whep

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xueliang/xueliang/internal/media"
)

func readOffer(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "offers", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Tracks of the negotiation table.
var (
	h264High = &media.Track{Codec: media.CodecH264, ClockRate: 90000, SPS: []byte{0x67, 0x64, 0x00, 0x28}, PPS: []byte{0x68}}
	h264Base = &media.Track{Codec: media.CodecH264, ClockRate: 90000, SPS: []byte{0x67, 0x42, 0xc0, 0x1f}, PPS: []byte{0x68}}
	h264NoPS = &media.Track{Codec: media.CodecH264, ClockRate: 90000}
	h265Main = &media.Track{Codec: media.CodecH265, ClockRate: 90000, SPS: []byte{0x42, 0x01, 0x01, 0x01}}
	pcma     = &media.Track{Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1}
	pcmu     = &media.Track{Codec: media.CodecPCMU, ClockRate: 8000, Channels: 1}
	pcma16k  = &media.Track{Codec: media.CodecPCMA, ClockRate: 16000, Channels: 1}
	aac      = &media.Track{Codec: media.CodecAAC, ClockRate: 44100, Channels: 2}
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name   string
		offer  string // file in testdata/offers, or SDP text
		tracks []*media.Track
		err    error  // wrapped by the error, if any
		video  string // "PT fmtp" chosen, "" for none
		audio  string // "PT mime" chosen, "" for none
	}{
		{name: "chrome high camera gets high", offer: "chrome.sdp", tracks: []*media.Track{h264High, pcma},
			video: "119 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", audio: "8 audio/PCMA"},
		{name: "chrome baseline camera gets first baseline", offer: "chrome.sdp", tracks: []*media.Track{h264Base, pcmu},
			video: "103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", audio: "0 audio/PCMU"},
		{name: "chrome no sps takes the first offered", offer: "chrome.sdp", tracks: []*media.Track{h264NoPS},
			video: "103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},
		{name: "chrome h265", offer: "chrome.sdp", tracks: []*media.Track{h265Main, pcma},
			video: "49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST", audio: "8 audio/PCMA"},
		{name: "chrome aac skipped", offer: "chrome.sdp", tracks: []*media.Track{h264High, aac},
			video: "119 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"},
		{name: "chrome 16 kHz g711 skipped", offer: "chrome.sdp", tracks: []*media.Track{h264High, pcma16k},
			video: "119 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"},
		{name: "firefox high camera gets baseline", offer: "firefox.sdp", tracks: []*media.Track{h264High, pcmu},
			video: "126 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", audio: "0 audio/PCMU"},
		{name: "firefox h265 refused", offer: "firefox.sdp", tracks: []*media.Track{h265Main}, err: errH265Refuse},
		{name: "safari high constrained is not ours", offer: "safari.sdp", tracks: []*media.Track{h264High},
			video: "98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{name: "safari h265", offer: "safari.sdp", tracks: []*media.Track{h265Main},
			video: "100 level-id=90;profile-id=1;tier-flag=0;tx-mode=SRST"},
		{name: "opus only audio", offer: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
			"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", tracks: []*media.Track{pcma}, err: errNoCodec},
		{name: "audio only channel", offer: "chrome.sdp", tracks: []*media.Track{pcma}, audio: "8 audio/PCMA"},
		{name: "aac only channel", offer: "chrome.sdp", tracks: []*media.Track{aac}, err: errNoCodec},
		{name: "no tracks", offer: "chrome.sdp", err: errNoCodec},
		{name: "static payload types without rtpmap", offer: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
			"m=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\n", tracks: []*media.Track{pcma}, audio: "8 audio/PCMA"},
		{name: "sendonly video is not for us", offer: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rtpmap:96 H264/90000\r\n" +
			"a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n", tracks: []*media.Track{h264High}, err: errBadOffer},
		{name: "rejected section", offer: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
			"m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n", tracks: []*media.Track{h264High}, err: errBadOffer},
		{name: "packetization mode 0 only", offer: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n" +
			"a=fmtp:96 packetization-mode=0;profile-level-id=42e01f\r\n", tracks: []*media.Track{h264High}, err: errNoCodec},
		{name: "no media", offer: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", err: errBadOffer},
		{name: "garbage", offer: "hello\r\n", err: errBadOffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.offer
			if strings.HasSuffix(text, ".sdp") {
				text = readOffer(t, text)
			}
			o, err := parseOffer([]byte(text))
			var p *plan
			if err == nil {
				p, err = negotiate(o, tt.tracks)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.HasPrefix(err.Error(), "whep: ") {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			video, audio := "", ""
			if p.video >= 0 {
				video = strconv.Itoa(int(p.videoCodec.PayloadType)) + " " + p.videoCodec.SDPFmtpLine
			}
			if p.audio >= 0 {
				audio = strconv.Itoa(int(p.audioCodec.PayloadType)) + " " + p.audioCodec.MimeType
			}
			if video != tt.video || audio != tt.audio {
				t.Errorf("video %q audio %q; want %q %q (skipped %q)", video, audio, tt.video, tt.audio, p.skipped)
			}
		})
	}
}

// TestBrowserOffers POSTs the browser-shaped offers to a real server: pion
// must accept them and answer with the codec negotiate picked.
func TestBrowserOffers(t *testing.T) {
	c := loadClip(t, "clip.h264", media.CodecH264)
	stream := media.NewStream([]*media.Track{c.track, pcma})
	e := newEnv(t, stream, nil)
	for _, tt := range []struct{ file, want string }{
		{"chrome.sdp", "m=video 9 UDP/TLS/RTP/SAVPF 119\r\n"},
		{"firefox.sdp", "m=video 9 UDP/TLS/RTP/SAVPF 126\r\n"},
		{"safari.sdp", "m=video 9 UDP/TLS/RTP/SAVPF 98\r\n"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			resp, err := e.http.Client().Post(e.url("7"), "application/sdp", strings.NewReader(readOffer(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("%d %s", resp.StatusCode, answer)
			}
			for _, h := range []string{"Location", "ETag"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.Contains(string(answer), tt.want) || !strings.Contains(string(answer), "a=candidate:") ||
				!strings.Contains(string(answer), "a=sendonly") {
				t.Errorf("answer lacks %q, a candidate or sendonly:\n%s", tt.want, answer)
			}
			req, _ := http.NewRequest("DELETE", e.http.URL+resp.Header.Get("Location"), nil)
			dresp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			dresp.Body.Close()
			if dresp.StatusCode != 200 {
				t.Errorf("DELETE: %d", dresp.StatusCode)
			}
		})
	}
	if e.srv.Sessions() != 0 || e.acquired.Load() != e.released.Load() {
		t.Errorf("%d sessions, %d acquired, %d released", e.srv.Sessions(), e.acquired.Load(), e.released.Load())
	}
}

// FuzzOffer feeds the offer parser and the negotiation with arbitrary
// bytes; they must never panic, and errors must be the package's.
func FuzzOffer(f *testing.F) {
	for _, name := range []string{"chrome.sdp", "firefox.sdp", "safari.sdp"} {
		f.Add([]byte(readOffer(f, name)))
	}
	f.Add([]byte(minimalOffer))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 8\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 RTP/AVP 96 96 300 x\r\n" +
		"a=rtpmap:96\r\na=rtpmap:96 H264\r\na=fmtp:96 ;;=;profile-level-id=zz\r\na=fmtp:x y\r\na=rtpmap:97 H265/90000/2/9\r\n"))
	f.Add([]byte("hello"))
	f.Add([]byte{})
	trackSets := [][]*media.Track{
		{h264High, pcma}, {h264NoPS, aac}, {h265Main, pcmu}, {pcma16k}, {nil, {Codec: media.CodecH265}}, nil,
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err != nil {
			if !errors.Is(err, errBadOffer) {
				t.Fatalf("error %v does not wrap errBadOffer", err)
			}
			return
		}
		for _, tracks := range trackSets {
			p, err := negotiate(o, tracks)
			if err != nil {
				if !errors.Is(err, errNoCodec) && !errors.Is(err, errH265Refuse) {
					t.Fatalf("error %v", err)
				}
				continue
			}
			if p.video < 0 && p.audio < 0 {
				t.Fatal("empty plan without error")
			}
		}
	})
}

package sdp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// Bodies shaped after GB/T 28181-2016 Annex F and public device captures.
const (
	// A platform's live offer, as in the standard's example.
	liveOffer = `v=0
o=64010000002020000001 0 0 IN IP4 172.20.16.3
s=Play
c=IN IP4 172.20.16.3
t=0 0
m=video 6000 RTP/AVP 96 98 97
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
y=0100000001
f=
`
	// A Hikvision-like answer: trailing spaces, y= with first digit 0,
	// an f= with empty audio fields.
	hikAnswer = "v=0 \r\no=34020000001320000001 0 0 IN IP4 192.168.1.64\r\ns=Play\r\nc=IN IP4 192.168.1.64\r\nt=0 0\r\nm=video 15060 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\na=filesize:0\r\ny=0200000001\r\nf=v/2/6/25/1/4096a///\r\n"
	// A TCP answer from a device that connects to the platform.
	tcpAnswer = `v=0
o=34020000001320000002 0 0 IN IP4 10.0.0.8
s=Play
c=IN IP4 10.0.0.8
t=0 0
m=video 9 TCP/RTP/AVP 98
a=setup:active
a=connection:new
a=sendonly
a=rtpmap:98 H264/90000
y=0000100001
`
	// A TCP answer from a device that listens (the platform connects).
	tcpPassiveAnswer = `v=0
o=34020000001320000003 0 0 IN IP4 10.0.0.9
s=Play
c=IN IP4 10.0.0.9
t=0 0
m=video 30000 TCP/RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=setup:passive
a=connection:new
y=0000100002
f=v/2/5/25/1/4000a/1/8/1
`
	// A playback offer with u= and a t= range.
	playbackOffer = `v=0
o=34020000002000000001 0 0 IN IP4 192.168.1.10
s=Playback
u=34020000001320000001:0
c=IN IP4 192.168.1.10
t=1700000000 1700003600
m=video 30002 RTP/AVP 96 98 97
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
y=1000000003
`
	// A download answer with a=filesize and a=downloadspeed.
	downloadAnswer = `v=0
o=34020000001320000001 0 0 IN IP4 192.168.1.64
s=Download
u=34020000001320000001:0
c=IN IP4 192.168.1.64
t=1700000000 1700003600
m=video 15062 RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=downloadspeed:4
a=filesize:104857600
y=1000000004
`
	// A voice broadcast (Talk) answer with audio.
	talkAnswer = `v=0
o=34020000001370000001 0 0 IN IP4 192.168.1.70
s=Talk
c=IN IP4 192.168.1.70
t=0 0
m=audio 8000 RTP/AVP 8
a=sendrecv
a=rtpmap:8 PCMA/8000/1
y=0100000005
f=v/////a/1/8/1
`
)

var parseCases = []struct {
	name     string
	in       string
	check    func(t *testing.T, s *Session)
	problems int
}{
	{"live offer", liveOffer, func(t *testing.T, s *Session) {
		want := &Session{
			Origin: "64010000002020000001", OriginIP: "172.20.16.3", SessionName: "Play",
			ConnectionIP: "172.20.16.3", SSRC: "0100000001",
			Media: []Media{{Kind: "video", Port: 6000, Transport: "RTP/AVP", Direction: "recvonly",
				Formats: []Format{{96, "PS", 90000, 0}, {98, "H264", 90000, 0}, {97, "MPEG4", 90000, 0}}}},
		}
		if !reflect.DeepEqual(s, want) {
			t.Errorf("got  %+v\nwant %+v", s, want)
		}
	}, 0},
	{"hikvision answer", hikAnswer, func(t *testing.T, s *Session) {
		if s.SSRC != "0200000001" || s.F != "v/2/6/25/1/4096a///" {
			t.Errorf("y=%q f=%q", s.SSRC, s.F)
		}
		if v, ok := s.Media[0].Attr("filesize"); !ok || v != "0" {
			t.Errorf("filesize %q %v", v, ok)
		}
	}, 0},
	{"tcp active answer", tcpAnswer, func(t *testing.T, s *Session) {
		m := s.Media[0]
		if !m.TCP() || m.Setup != "active" || m.Connection != "new" || m.Formats[0].Name != "H264" {
			t.Errorf("%+v", m)
		}
	}, 0},
	{"tcp passive answer", tcpPassiveAnswer, func(t *testing.T, s *Session) {
		if m := s.Media[0]; m.Setup != "passive" || m.Port != 30000 {
			t.Errorf("%+v", m)
		}
	}, 0},
	{"playback offer", playbackOffer, func(t *testing.T, s *Session) {
		if s.URI != "34020000001320000001:0" || s.Start != 1700000000 || s.Stop != 1700003600 || s.SessionName != "Playback" {
			t.Errorf("%+v", s)
		}
	}, 0},
	{"download answer", downloadAnswer, func(t *testing.T, s *Session) {
		if s.Media[0].DownloadSpeed != 4 {
			t.Errorf("downloadspeed %d", s.Media[0].DownloadSpeed)
		}
	}, 0},
	{"talk answer", talkAnswer, func(t *testing.T, s *Session) {
		if f := s.Media[0].Formats[0]; f != (Format{8, "PCMA", 8000, 1}) {
			t.Errorf("%+v", f)
		}
	}, 0},
	{"lines out of order after m", "v=0\no=x 0 0 IN IP4 1.2.3.4\ns=Play\nt=0 0\nm=video 5 RTP/AVP 96\ny=0100000001\na=rtpmap:96 PS/90000\nf=v/2/5/25/1/4000a/1/8/1\nc=IN IP4 1.2.3.4\na=recvonly\n", func(t *testing.T, s *Session) {
		m := s.Media[0]
		if m.ConnectionIP != "1.2.3.4" || m.Direction != "recvonly" || m.Formats[0].Name != "PS" || s.SSRC != "0100000001" {
			t.Errorf("%+v %+v", s, m)
		}
	}, 0},
	{"missing s and t", "v=0\no=x 0 0 IN IP4 1.2.3.4\nc=IN IP4 1.2.3.4\nm=video 5 RTP/AVP 96\n", func(t *testing.T, s *Session) {
		if s.SessionName != "" || s.Start != 0 || s.Stop != 0 {
			t.Errorf("%+v", s)
		}
	}, 2},
	{"unknown lines kept", "v=0\no=x 0 0 IN IP4 1.2.3.4\ns=Play\ni=info\nc=IN IP4 1.2.3.4\nt=0 0\na=tool:x\nm=video 5 RTP/AVP 96\nb=AS:4096\na=streamnumber:1\na=fmtp:96 foo\n", func(t *testing.T, s *Session) {
		if want := []Line{{"i", "info"}, {"a", "tool:x"}}; !reflect.DeepEqual(s.Extra, want) {
			t.Errorf("session extra %v", s.Extra)
		}
		if want := []Line{{"b", "AS:4096"}, {"a", "streamnumber:1"}, {"a", "fmtp:96 foo"}}; !reflect.DeepEqual(s.Media[0].Extra, want) {
			t.Errorf("media extra %v", s.Media[0].Extra)
		}
	}, 0},
	{"short y is a problem", "v=0\no=x 0 0 IN IP4 1.2.3.4\ns=Play\nc=IN IP4 1.2.3.4\nt=0 0\nm=video 5 RTP/AVP 96\ny=200000001\n", func(t *testing.T, s *Session) {
		if s.SSRC != "200000001" {
			t.Errorf("y=%q", s.SSRC)
		}
	}, 1},
	{"rtpmap for unlisted pt", "v=0\no=x 0 0 IN IP4 1.2.3.4\ns=Play\nc=IN IP4 1.2.3.4\nt=0 0\nm=video 5 RTP/AVP 96\na=rtpmap:98 H264/90000\n", func(t *testing.T, s *Session) {
		if len(s.Media[0].Formats) != 2 {
			t.Errorf("%+v", s.Media[0].Formats)
		}
	}, 1},
	{"no c", "v=0\no=x 0 0 IN IP4 1.2.3.4\ns=Play\nt=0 0\nm=video 5 RTP/AVP 96\n", nil, 1},
	{"o too short", "v=0\no=x\ns=Play\nc=IN IP4 1.2.3.4\nt=0 0\nm=video 5 RTP/AVP 96\n", nil, 1},
	{"static audio pt without rtpmap", "v=0\no=x 0 0 IN IP4 1.2.3.4\ns=Talk\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5 RTP/AVP 8\n", func(t *testing.T, s *Session) {
		if f := s.Media[0].Formats[0]; f.Name != "PCMA" || f.Rate != 8000 {
			t.Errorf("%+v", f)
		}
	}, 0},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, body := range []string{tc.in, crlf(tc.in)} {
				s, err := Parse([]byte(body))
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Problems) != tc.problems {
					t.Errorf("problems = %q, want %d", s.Problems, tc.problems)
				}
				if tc.check != nil {
					tc.check(t, s)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	head := "v=0\no=x 0 0 IN IP4 1.2.3.4\ns=Play\nc=IN IP4 1.2.3.4\nt=0 0\n"
	cases := []struct {
		name, in string
		want     error
		line     string // the error names this line
	}{
		{"no media", head, ErrNoMedia, ""},
		{"empty", "", ErrNoMedia, ""},
		{"not type=value", head + "m=video 5 RTP/AVP 96\nhello\n", ErrSyntax, "line 7"},
		{"bad port", head + "m=video 70000 RTP/AVP 96\n", ErrSyntax, "line 6"},
		{"port not a number", head + "m=video x RTP/AVP 96\n", ErrSyntax, "bad port"},
		{"bad pt", head + "m=video 5 RTP/AVP 96 PS\n", ErrSyntax, "payload type"},
		{"short m", head + "m=video 5\n", ErrSyntax, "line 6"},
		{"bad rtpmap", head + "m=video 5 RTP/AVP 96\na=rtpmap:96 PS\n", ErrSyntax, "rtpmap"},
		{"bad rtpmap rate", head + "m=video 5 RTP/AVP 96\na=rtpmap:96 PS/abc\n", ErrSyntax, "clock rate"},
		{"bad rtpmap pt", head + "m=video 5 RTP/AVP 96\na=rtpmap:x PS/90000\n", ErrSyntax, "rtpmap"},
		{"bad t", "v=0\nt=0\nm=video 5 RTP/AVP 96\n", ErrSyntax, "line 2"},
		{"bad t value", "v=0\nt=a b\nm=video 5 RTP/AVP 96\n", ErrSyntax, "bad time"},
		{"bad c", "v=0\nc=IN IP4\nm=video 5 RTP/AVP 96\n", ErrSyntax, "line 2"},
		{"bad downloadspeed", head + "m=video 5 RTP/AVP 96\na=downloadspeed:fast\n", ErrSyntax, "downloadspeed"},
		{"too large", head + "m=video 5 RTP/AVP 96\n" + strings.Repeat("a=x\n", MaxBodySize/4), ErrTooLarge, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v (session %+v)", err, tc.want, s)
			}
			if !strings.Contains(err.Error(), tc.line) {
				t.Errorf("err = %v, want it to name %q", err, tc.line)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			s1, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			out := Marshal(s1)
			s2, err := Parse(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if s1.SessionName == "" {
				s1.SessionName = NamePlay // Marshal writes the default
			}
			if s1.OriginIP == "" {
				s1.OriginIP = s1.ConnectionIP
			}
			s1.Problems, s2.Problems = nil, nil
			if !reflect.DeepEqual(s1, s2) {
				t.Errorf("round trip differs:\n%+v\n%+v\n%s", s1, s2, out)
			}
			if again := Marshal(s2); string(again) != string(out) {
				t.Errorf("second marshal differs:\n%s\n%s", out, again)
			}
		})
	}
}

func TestMarshalLiveOffer(t *testing.T) {
	got := string(Marshal(LiveOffer("64010000002020000001", "64010000041310000345", "172.20.16.3", 6000, false, "", "0100000001")))
	want := crlf(strings.Replace(liveOffer, "f=\n", "", 1))
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMarshalTCPOfferH265(t *testing.T) {
	s := LiveOffer("34020000002000000001", "34020000001320000001", "10.0.0.1", 30000, true, "", "0000100001").WithH265().WithH265()
	got := string(Marshal(s))
	want := crlf(`v=0
o=34020000002000000001 0 0 IN IP4 10.0.0.1
s=Play
c=IN IP4 10.0.0.1
t=0 0
m=video 30000 TCP/RTP/AVP 96 98 97 99
a=recvonly
a=rtpmap:96 PS/90000
a=rtpmap:98 H264/90000
a=rtpmap:97 MPEG4/90000
a=rtpmap:99 H265/90000
a=setup:passive
a=connection:new
y=0000100001
`)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMarshalPlaybackAndDownload(t *testing.T) {
	start := time.Unix(1700000000, 0)
	end := start.Add(time.Hour)
	got := string(Marshal(PlaybackOffer("34020000002000000001", "34020000001320000001", "192.168.1.10", 30002, false, "", "1000000003", start, end, 0)))
	if want := crlf(playbackOffer); got != want {
		t.Errorf("playback: got\n%s\nwant\n%s", got, want)
	}
	d := PlaybackOffer("34020000002000000001", "34020000001320000001", "192.168.1.10", 30002, true, "active", "1000000004", start, end, 4)
	got = string(Marshal(d))
	for _, line := range []string{"s=Download\r\n", "u=34020000001320000001:0\r\n", "t=1700000000 1700003600\r\n",
		"m=video 30002 TCP/RTP/AVP 96 98 97\r\n", "a=setup:active\r\na=connection:new\r\na=downloadspeed:4\r\ny=1000000004\r\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("download offer lacks %q:\n%s", line, got)
		}
	}
}

func TestMarshalNoInjectedLines(t *testing.T) {
	s := LiveOffer("a\r\nb=evil", "", "1.2.3.4", 5, false, "", "0100000001")
	s.F = "x\ny=1"
	out := string(Marshal(s))
	if strings.Count(out, "\n") != strings.Count(out, "\r\n") || strings.Contains(out, "\nb=") || strings.Count(out, "\ny=") != 1 {
		t.Errorf("injected lines:\n%q", out)
	}
}

func TestReadAnswer(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Answer
	}{
		{"hikvision", hikAnswer, Answer{Format: Format{96, "PS", 90000, 0}, IP: "192.168.1.64", Port: 15060, SSRC: "0200000001", SSRCValue: 200000001}},
		{"tcp active", tcpAnswer, Answer{Format: Format{98, "H264", 90000, 0}, IP: "10.0.0.8", Port: 9, TCP: true, Setup: "active", Connection: "new", SSRC: "0000100001", SSRCValue: 100001}},
		{"tcp passive", tcpPassiveAnswer, Answer{Format: Format{96, "PS", 90000, 0}, IP: "10.0.0.9", Port: 30000, TCP: true, Setup: "passive", Connection: "new", SSRC: "0000100002", SSRCValue: 100002}},
		{"download", downloadAnswer, Answer{Format: Format{96, "PS", 90000, 0}, IP: "192.168.1.64", Port: 15062, SSRC: "1000000004", SSRCValue: 1000000004, FileSize: 104857600}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadAnswer(s)
			if err != nil {
				t.Fatal(err)
			}
			if got.SSRCErr != nil {
				t.Errorf("SSRCErr = %v", got.SSRCErr)
			}
			got.SSRCErr = nil
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}

	s, _ := Parse([]byte("v=0\nm=video 5 RTP/AVP 96\ny=9999999999\n"))
	a, err := ReadAnswer(s)
	if !errors.Is(err, ErrNoAddress) {
		t.Errorf("no c=: err = %v", err)
	}
	if !errors.Is(a.SSRCErr, ErrSSRCRange) {
		t.Errorf("SSRCErr = %v", a.SSRCErr)
	}
	if _, err := ReadAnswer(&Session{}); !errors.Is(err, ErrNoMedia) {
		t.Errorf("no media: err = %v", err)
	}
}

func TestCheck(t *testing.T) {
	tcpOffer := LiveOffer("34020000002000000001", "", "10.0.0.1", 30000, true, "passive", "0000100001")
	mustParse := func(s string) *Session {
		t.Helper()
		x, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	if p := Check(tcpOffer, mustParse(tcpAnswer)); p != nil {
		t.Errorf("tcp active answer to passive offer: %q", p)
	}
	p := Check(tcpOffer, mustParse(tcpPassiveAnswer))
	if len(p) != 2 { // SSRC differs; setup passive/passive
		t.Errorf("tcp passive answer to passive offer: %q", p)
	}
	udpOffer := LiveOffer("34020000002000000001", "", "10.0.0.1", 30000, false, "", "0200000001")
	if p := Check(udpOffer, mustParse(hikAnswer)); p != nil {
		t.Errorf("hik answer: %q", p)
	}
	if p := Check(udpOffer, mustParse(tcpAnswer)); len(p) != 2 { // SSRC, transport
		t.Errorf("tcp answer to udp offer: %q", p)
	}
	if p := Check(udpOffer, mustParse("v=0\nc=IN IP4 1.2.3.4\nm=video 0 RTP/AVP 100\ny=0200000001\n")); len(p) != 2 { // port 0, pt 100
		t.Errorf("refused: %q", p)
	}
	if p := Check(udpOffer, &Session{}); len(p) != 1 {
		t.Errorf("empty: %q", p)
	}
}

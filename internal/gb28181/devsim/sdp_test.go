package devsim

import (
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/sdp"
)

const testChannel = "44182110001310000003"

// TestParseOffer reads offers written by the platform's sdp package and
// by other platforms.
func TestParseOffer(t *testing.T) {
	start := time.Unix(1741500000, 0)
	end := start.Add(time.Hour)
	for _, tc := range []struct {
		name string
		body string
		want offer
	}{
		{"live udp", string(sdp.Marshal(sdp.LiveOffer(platformID, testChannel, "10.0.0.5", 30000, false, "", "0441800007"))),
			offer{name: "Play", origin: platformID, ip: "10.0.0.5", port: 30000, ssrc: "0441800007", speed: 1}},
		{"live tcp passive", string(sdp.Marshal(sdp.LiveOffer(platformID, testChannel, "10.0.0.5", 30001, true, "passive", "0441800008"))),
			offer{name: "Play", origin: platformID, ip: "10.0.0.5", port: 30001, tcp: true, setup: "passive", ssrc: "0441800008", speed: 1}},
		{"live tcp active", string(sdp.Marshal(sdp.LiveOffer(platformID, testChannel, "10.0.0.5", 9, true, "active", "0441800009"))),
			offer{name: "Play", origin: platformID, ip: "10.0.0.5", port: 9, tcp: true, setup: "active", ssrc: "0441800009", speed: 1}},
		{"playback", string(sdp.Marshal(sdp.PlaybackOffer(platformID, testChannel, "10.0.0.5", 30002, false, "", "1441800010", start, end, 0))),
			offer{name: "Playback", origin: platformID, uri: testChannel + ":0", ip: "10.0.0.5", port: 30002, ssrc: "1441800010",
				start: start.Unix(), stop: end.Unix(), speed: 1}},
		{"download", string(sdp.Marshal(sdp.PlaybackOffer(platformID, testChannel, "10.0.0.5", 30003, true, "passive", "1441800011", start, end, 4))),
			offer{name: "Download", origin: platformID, uri: testChannel + ":0", ip: "10.0.0.5", port: 30003, tcp: true, setup: "passive",
				ssrc: "1441800011", start: start.Unix(), stop: end.Unix(), speed: 4}},
		// As wvp-GB28181-pro writes it: more payload types, LF only, a
		// media-level c=, an audio section, stream number, f=.
		{"other platform", "v=0\no=34020000002000000001 0 0 IN IP4 192.168.1.2\ns=Play\nc=IN IP4 192.168.1.2\nt=0 0\n" +
			"m=audio 8000 RTP/AVP 8\nc=IN IP4 192.168.1.99\na=rtpmap:8 PCMA/8000\n" +
			"m=video 30004 RTP/AVP/TCP 96 97 98 99\nc=IN IP4 192.168.1.3\na=recvonly\na=rtpmap:96 PS/90000\na=rtpmap:98 H264/90000\n" +
			"a=rtpmap:97 MPEG4/90000\na=rtpmap:99 H265/90000\na=setup:passive\na=connection:new\na=streamnumber:1\ny=0200000001\nf=\n",
			offer{name: "Play", origin: "34020000002000000001", ip: "192.168.1.3", port: 30004, tcp: true, setup: "passive",
				ssrc: "0200000001", speed: 1, subStream: true}},
		{"no y=", "v=0\r\no=x 0 0 IN IP4 1.2.3.4\r\ns=Play\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 ps/90000\r\n",
			offer{name: "Play", origin: "x", ip: "1.2.3.4", port: 5000, speed: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOffer([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseOfferErrors(t *testing.T) {
	good := string(sdp.Marshal(sdp.LiveOffer(platformID, testChannel, "10.0.0.5", 30000, false, "", "0441800007")))
	edit := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	for _, tc := range []struct {
		name, body string
		code       int
		reason     string
	}{
		{"not type=value", good + "garbage\r\n", 400, "type"},
		{"no v", edit("v=0\r\n", ""), 400, "v="},
		{"bad v", edit("v=0", "v=1"), 400, "v=1"},
		{"no s", edit("s=Play\r\n", ""), 400, "s="},
		{"talk", edit("s=Play", "s=Talk"), 488, "Talk"},
		{"no c", edit("c=IN IP4 10.0.0.5\r\n", ""), 400, "c="},
		{"bad c", edit("c=IN IP4 10.0.0.5", "c=IN IP4"), 400, "c="},
		{"c not ip", edit("c=IN IP4 10.0.0.5", "c=IN IP4 platform.example"), 488, "IP address"},
		{"no video", edit("m=video", "m=audio"), 488, "m=video"},
		{"port 0", edit("m=video 30000", "m=video 0"), 488, "port 0"},
		{"bad port", edit("m=video 30000", "m=video 70000"), 400, "port"},
		{"udp/tls", edit("RTP/AVP", "UDP/TLS/RTP/SAVP"), 488, "transport"},
		{"no PS", edit("a=rtpmap:96 PS/90000", "a=rtpmap:96 H264/90000"), 488, "PS/90000"},
		{"sendonly", edit("a=recvonly", "a=sendonly"), 488, "sendonly"},
		{"short y", edit("y=0441800007", "y=123"), 488, "10 decimal digits"},
		{"big y", edit("y=0441800007", "y=4294967296"), 488, "32-bit"},
		{"bad setup", edit("RTP/AVP", "TCP/RTP/AVP") + "a=setup:holdconn\r\n", 400, "setup"},
		{"playback no t", edit("s=Play", "s=Playback"), 400, "t="},
		{"playback reversed t", strings.Replace(edit("s=Play", "s=Playback"), "t=0 0", "t=200 100", 1), 400, "t="},
		{"bad t", edit("t=0 0", "t=now later"), 400, "times"},
		{"download speed", edit("s=Play", "s=Download") + "a=downloadspeed:0\r\n", 488, "downloadspeed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOffer([]byte(tc.body))
			se, ok := err.(*sdpError)
			if !ok || se.code != tc.code || !strings.Contains(se.msg, tc.reason) {
				t.Errorf("%v, want %d saying %q", err, tc.code, tc.reason)
			}
		})
	}
}

// TestAnswer writes answers and reads them with the platform's SDP
// reader and checker.
func TestAnswer(t *testing.T) {
	start := time.Unix(1741500000, 0)
	for _, tc := range []struct {
		name  string
		offer *sdp.Session
	}{
		{"live udp", sdp.LiveOffer(platformID, testChannel, "10.0.0.5", 30000, false, "", "0441800007")},
		{"live tcp passive", sdp.LiveOffer(platformID, testChannel, "10.0.0.5", 30000, true, "passive", "0441800007")},
		{"live tcp active", sdp.LiveOffer(platformID, testChannel, "10.0.0.5", 9, true, "active", "0441800007")},
		{"playback", sdp.PlaybackOffer(platformID, testChannel, "10.0.0.5", 30000, false, "", "1441800007", start, start.Add(time.Hour), 0)},
		{"download", sdp.PlaybackOffer(platformID, testChannel, "10.0.0.5", 30000, true, "active", "1441800007", start, start.Add(time.Hour), 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(sdp.Marshal(tc.offer))
			if err != nil {
				t.Fatal(err)
			}
			ss := &session{sim: &Sim{cfg: Config{MediaIP: "10.0.0.9"}}, clip: &clipData{bytesPerSecond: 1000},
				id: testChannel, offer: o, ssrcText: o.ssrc, port: 40000}
			body := ss.answer()
			a, err := sdp.Parse(body)
			if err != nil || len(a.Problems) > 0 {
				t.Fatalf("%q: %v %q", body, err, a.Problems)
			}
			if problems := sdp.Check(tc.offer, a); problems != nil {
				t.Errorf("%s\nproblems %q", body, problems)
			}
			info, err := sdp.ReadAnswer(a)
			if err != nil || info.IP != "10.0.0.9" || info.Port != 40000 || info.SSRC != o.ssrc || info.Format.Name != "PS" {
				t.Errorf("answer %+v %v", info, err)
			}
			if a.Origin != testChannel || a.SessionName != o.name || a.Start != tc.offer.Start || a.Stop != tc.offer.Stop {
				t.Errorf("answer %+v", a)
			}
			if o.name == "Download" && info.FileSize != 3600*1000 {
				t.Errorf("file size %d", info.FileSize)
			}
		})
	}
}

func TestParseMANSRTSP(t *testing.T) {
	for _, tc := range []struct {
		body string
		want rtspCmd
		err  string
	}{
		{"PLAY RTSP/1.0\r\nCSeq: 2\r\nRange: npt=30-\r\n", rtspCmd{method: "PLAY", cseq: 2, seek: true, npt: 30}, ""},
		{"PLAY RTSP/1.0\nCSeq: 3\nRange: npt=12.5-40\n", rtspCmd{method: "PLAY", cseq: 3, seek: true, npt: 12.5}, ""},
		{"PLAY RTSP/1.0\r\nCSeq: 4\r\nRange: npt=now-\r\n", rtspCmd{method: "PLAY", cseq: 4}, ""},
		{"PLAY RTSP/1.0\r\nCSeq: 5\r\nScale: 0.25\r\n", rtspCmd{method: "PLAY", cseq: 5, scale: 0.25}, ""},
		{"PAUSE RTSP/1.0\r\nCSeq: 6\r\nPauseTime: now\r\nRange: npt=3-\r\n", rtspCmd{method: "PAUSE", cseq: 6}, ""},
		{"TEARDOWN RTSP/1.0\r\ncseq: 7\r\n", rtspCmd{method: "TEARDOWN", cseq: 7}, ""},
		{"", rtspCmd{}, "empty"},
		{"PLAY RTSP/2.0\r\nCSeq: 1\r\n", rtspCmd{}, "RTSP/1.0"},
		{"RECORD RTSP/1.0\r\nCSeq: 1\r\n", rtspCmd{}, "method"},
		{"PLAY RTSP/1.0\r\n", rtspCmd{}, "CSeq"},
		{"PLAY RTSP/1.0\r\nCSeq: x\r\n", rtspCmd{}, "CSeq"},
		{"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale 2\r\n", rtspCmd{}, "colon"},
		{"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: 16\r\n", rtspCmd{}, "0.25 to 8"},
		{"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: fast\r\n", rtspCmd{}, "number"},
		{"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=-5-\r\n", rtspCmd{}, "seconds"},
		{"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: smpte=0:10:00-\r\n", rtspCmd{}, "npt"},
	} {
		got, err := parseMANSRTSP([]byte(tc.body))
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v %v, want %+v", tc.body, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error saying %q", tc.body, err, tc.err)
		}
	}
}

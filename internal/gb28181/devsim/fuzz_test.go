package devsim

import "testing"

// The simulator parses what a platform sends it (SDP offers, MANSRTSP,
// PTZCmd): network input, fuzzed like the platform's parsers.

func FuzzParseOffer(f *testing.F) {
	f.Add([]byte("v=0\r\no=44180000002000000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 30000 RTP/AVP 96 98 97\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\ny=0418000001\r\n"))
	f.Add([]byte("v=0\r\no=x 0 0 IN IP4 10.0.0.1\r\ns=Playback\r\nu=44180000001310000001:0\r\nc=IN IP4 10.0.0.1\r\nt=1741500000 1741503600\r\nm=video 9 TCP/RTP/AVP 96\r\na=setup:active\r\na=connection:new\r\na=rtpmap:96 PS/90000\r\na=downloadspeed:4\r\na=streamnumber:1\r\ny=1418000002\r\n"))
	f.Add([]byte("m=video -1 RTP/AVP\r\nc=IN IP6 ::1\r\nt=9 1\r\ny=99999999999\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err == nil && o == nil {
			t.Fatal("nil offer without an error")
		}
	})
}

func FuzzParseMANSRTSP(f *testing.F) {
	f.Add([]byte("PLAY RTSP/1.0\r\nCSeq: 2\r\nRange: npt=60-\r\n\r\n"))
	f.Add([]byte("PAUSE RTSP/1.0\r\nCSeq: 3\r\nPauseTime: now\r\n\r\n"))
	f.Add([]byte("PLAY RTSP/1.0\r\nCSeq: 4\r\nScale: 2.0\r\n\r\n"))
	f.Add([]byte("PLAY RTSP/1.0\r\nRange: npt=-5-x\r\nScale: NaN\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseMANSRTSP(b)
	})
}

func FuzzDecodePTZ(f *testing.F) {
	f.Add("A50F010A64640057")
	f.Add("A50F0100000000B5")
	f.Add("A50F01820003005A")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = decodePTZ(s)
	})
}

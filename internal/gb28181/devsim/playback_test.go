package devsim

import (
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/sdp"
	"github.com/xueliang/xueliang/internal/media"
)

// TestPlayback plays a 10 s range back: PTS from 0 at the t= start, then
// PAUSE, PLAY Range (seek), Scale 4 to the end, MediaStatus 121, BYE.
func TestPlayback(t *testing.T) {
	t.Parallel()
	p, s, pr, addr := mediaSetup(t, nil)
	ch := s.Channels(s.DeviceIDs()[0])[0]
	sk := udpSink(t)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	end := start.Add(10 * time.Second)
	y := ssrc(t, false, 12)
	offer := sdp.PlaybackOffer(platformID, ch, "127.0.0.1", sk.port, false, "", y, start, end, 0)
	c, err := pr.invite(t, addr, ch, offer)
	if err != nil {
		t.Fatal(err)
	}
	if problems := sdp.Check(offer, c.answer); problems != nil {
		t.Errorf("answer problems %q", problems)
	}
	if c.answer.SessionName != "Playback" || c.answer.Start != start.Unix() || c.answer.Stop != end.Unix() || c.info.SSRC != y {
		t.Errorf("answer %+v", c.answer)
	}
	r := newReceiver(t)
	r.until(sk, 5*time.Second, "0.6 s", func() bool { return r.span() >= 0.6 })
	if f := r.frames[0]; f.PTS != 0 || !f.Key {
		t.Errorf("first frame PTS %d key %v, want 0 (the t= start) and a keyframe", f.PTS, f.Key)
	}
	r.check(0, media.CodecH264, c.info.SSRCValue)

	c.mansrtsp(t, "PAUSE RTSP/1.0\r\nCSeq: 1\r\nPauseTime: now\r\n")
	if !quiet(sk, 200*time.Millisecond, 500*time.Millisecond) {
		t.Error("packets while paused")
	}

	c.mansrtsp(t, "PLAY RTSP/1.0\r\nCSeq: 2\r\nRange: npt=6-\r\n")
	r.dm.Reset() // a discontinuity, as a platform would treat a seek
	n := len(r.frames)
	r.until(sk, 5*time.Second, "frames after the seek", func() bool { return len(r.frames) >= n+5 })
	if f := r.frames[n]; f.PTS != 6*90000 || !f.Key {
		t.Errorf("first frame after seek: PTS %d key %v, want %d and a keyframe", f.PTS, f.Key, 6*90000)
	}
	r.check(n, media.CodecH264, c.info.SSRCValue)

	c.mansrtsp(t, "PLAY RTSP/1.0\r\nCSeq: 3\r\nScale: 4.0\r\n")
	scaled := time.Now()
	ptsAtScale := r.last().PTS
	m := nextMsg(t, p, manscdp.CmdMediaStatus, 5*time.Second)
	took := time.Since(scaled)
	ms, err := m.MediaStatus()
	if err != nil || !ms.EndOfFile() || ms.DeviceID != ch {
		t.Errorf("media status %+v %v", ms, err)
	}
	for len(sk.pkts) > 0 {
		r.packet(<-sk.pkts)
	}
	r.dm.Flush()
	played := float64(r.last().PTS-ptsAtScale) / 90000
	if last := r.last().PTS; last < 9*90000 || last >= 10*90000 {
		t.Errorf("last PTS %d, want the end of the 10 s range", last)
	}
	// About 3.3 s of media at 4x: under a second; generous bounds.
	if took > 2500*time.Millisecond || played < 3 {
		t.Errorf("%.1f s of media in %v at scale 4", played, took)
	}
	r.check(n, media.CodecH264, c.info.SSRCValue)
	c.bye(t)
	select {
	case <-pr.byes:
		t.Error("the device hung up although the platform did")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestPlaybackEndWithoutBye: after the end of the file, a device left
// waiting hangs up itself after MediaTimeout.
func TestPlaybackEndWithoutBye(t *testing.T) {
	t.Parallel()
	p, s, pr, addr := mediaSetup(t, func(c *Config) { c.MediaTimeout = 300 * time.Millisecond })
	ch := s.Channels(s.DeviceIDs()[0])[0]
	sk := udpSink(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	c, err := pr.invite(t, addr, ch, sdp.PlaybackOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, false, 13), start, start.Add(time.Second), 0))
	if err != nil {
		t.Fatal(err)
	}
	nextMsg(t, p, manscdp.CmdMediaStatus, 5*time.Second)
	select {
	case id := <-pr.byes:
		if id != string(*c.dlg.InviteRequest.CallID()) {
			t.Errorf("BYE of %s", id)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no BYE")
	}
}

// TestDownload downloads 6 s at downloadspeed 4.
func TestDownload(t *testing.T) {
	t.Parallel()
	p, s, pr, addr := mediaSetup(t, nil)
	ch := s.Channels(s.DeviceIDs()[0])[1]
	sk, _ := tcpListenSink(t)
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	offer := sdp.PlaybackOffer(platformID, ch, "127.0.0.1", sk.port, true, "passive", ssrc(t, false, 14), start, start.Add(6*time.Second), 4)
	began := time.Now()
	c, err := pr.invite(t, addr, ch, offer)
	if err != nil {
		t.Fatal(err)
	}
	if problems := sdp.Check(offer, c.answer); problems != nil {
		t.Errorf("answer problems %q", problems)
	}
	if c.answer.SessionName != "Download" || c.info.FileSize <= 0 {
		t.Errorf("answer %+v, file size %d", c.answer, c.info.FileSize)
	}
	r := newReceiver(t)
	nextMsg(t, p, manscdp.CmdMediaStatus, 5*time.Second)
	took := time.Since(began)
	r.until(sk, time.Second, "the whole file", func() bool { return len(r.frames) >= 90 })
	r.dm.Flush()
	r.check(0, media.CodecH264, c.info.SSRCValue)
	if first, last := r.frames[0].PTS, r.last().PTS; first != 0 || last != 89*6000 {
		t.Errorf("PTS %d to %d, want 0 to %d (6 s at 15 fps)", first, last, 89*6000)
	}
	if took < time.Second || took > 4*time.Second {
		t.Errorf("6 s at 4x took %v, want about 1.5 s", took)
	}
	c.bye(t)
}

// TestMANSRTSPErrors: bad INFO bodies get 400 with the reason; the
// wrong Content-Type 415.
func TestMANSRTSPErrors(t *testing.T) {
	t.Parallel()
	_, s, pr, addr := mediaSetup(t, nil)
	ch := s.Channels(s.DeviceIDs()[0])[0]
	sk := udpSink(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	c, err := pr.invite(t, addr, ch, sdp.PlaybackOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, false, 15), start, start.Add(30*time.Second), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.bye(t)
	for _, tc := range []struct {
		ctype, body string
		code        int
		reason      string
	}{
		{"Application/MANSRTSP", "PLAY RTSP/1.0\r\nRange: npt=0-\r\n", 400, "CSeq"},
		{"Application/MANSRTSP", "PLAY RTSP/1.0\r\nCSeq: 5\r\nScale: 100\r\n", 400, "Scale"},
		{"Application/MANSRTSP", "PLAY RTSP/1.0\r\nCSeq: 5\r\nScale: -1\r\n", 400, "reverse"},
		{"Application/MANSRTSP", "PLAY RTSP/1.0\r\nCSeq: 5\r\nRange: npt=40-\r\n", 400, "beyond"},
		{"Application/MANSRTSP", "PLAY RTSP/1.0\r\nCSeq: 5\r\nRange: clock=20250101T000000Z-\r\n", 400, "npt"},
		{"Application/MANSRTSP", "JUMP RTSP/1.0\r\nCSeq: 5\r\n", 400, "method"},
		{"Application/MANSRTSP", "PLAY\r\nCSeq: 5\r\n", 400, "RTSP/1.0"},
		{"text/plain", "PLAY RTSP/1.0\r\nCSeq: 5\r\n", 415, "MANSRTSP"},
		{"application/mansrtsp", "PLAY RTSP/1.0\r\nCSeq: 6\r\nScale: 0.5\r\n", 200, "OK"},
	} {
		res := c.infoReq(t, tc.ctype, tc.body)
		if res.StatusCode != tc.code || !strings.Contains(res.Reason, tc.reason) {
			t.Errorf("%q: %d %s, want %d with %q", tc.body, res.StatusCode, res.Reason, tc.code, tc.reason)
		}
	}
}

package devsim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MANSRTSP: the playback control bodies of INFO requests (GB/T
// 28181-2016 §9.8.2 and Annex B; Content-Type Application/MANSRTSP). They
// are RTSP requests (RFC 2326) without a URL:
//
//	PLAY RTSP/1.0
//	CSeq: 2
//	Range: npt=30-
//
//	PAUSE RTSP/1.0
//	CSeq: 3
//	PauseTime: now
//
//	PLAY RTSP/1.0
//	CSeq: 4
//	Scale: 2.0

// Scales a device accepts (GB/T 28181-2016 B.2 lists 0.25 to 4 forward;
// devices offer up to 8).
const (
	minScale = 0.25
	maxScale = 8
)

type rtspCmd struct {
	method string // "PLAY", "PAUSE" or "TEARDOWN"
	cseq   int
	seek   bool    // Range: npt=<sec>- names a position
	npt    float64 // seconds from the start of the playback range
	scale  float64 // 0 when the request has no Scale
}

// parseMANSRTSP reads a MANSRTSP body; its errors say what is wrong, for
// the reason phrase of a 400.
func parseMANSRTSP(body []byte) (rtspCmd, error) {
	var c rtspCmd
	lines := strings.Split(strings.ReplaceAll(string(bytes.TrimSpace(body)), "\r\n", "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return c, errors.New("empty MANSRTSP body")
	}
	f := strings.Fields(lines[0])
	if len(f) != 2 || f[1] != "RTSP/1.0" {
		return c, fmt.Errorf("first line %q: want <method> RTSP/1.0", trunc(lines[0]))
	}
	c.method = strings.ToUpper(f[0])
	switch c.method {
	case "PLAY", "PAUSE", "TEARDOWN":
	default:
		return c, fmt.Errorf("method %s: want PLAY, PAUSE or TEARDOWN", trunc(f[0]))
	}
	seenCSeq := false
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			return c, fmt.Errorf("header %q has no colon", trunc(l))
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "cseq":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return c, fmt.Errorf("CSeq %q is not a number", trunc(val))
			}
			c.cseq, seenCSeq = n, true
		case "range":
			if c.method != "PLAY" {
				continue // PAUSE may say where it paused; nothing to do
			}
			r, ok := strings.CutPrefix(val, "npt=")
			if !ok {
				return c, fmt.Errorf("Range %q: want npt=<seconds>-", trunc(val))
			}
			from, to, ok := strings.Cut(r, "-")
			if !ok {
				return c, fmt.Errorf("Range %q: want npt=<seconds>-", trunc(val))
			}
			from, to = strings.TrimSpace(from), strings.TrimSpace(to)
			if to != "" {
				if _, err := strconv.ParseFloat(to, 64); err != nil {
					return c, fmt.Errorf("Range %q: %q is not a number of seconds", trunc(val), trunc(to))
				}
			}
			if from == "now" || from == "" {
				continue
			}
			sec, err := strconv.ParseFloat(from, 64)
			if err != nil || sec < 0 || math.IsInf(sec, 0) || math.IsNaN(sec) {
				return c, fmt.Errorf("Range %q: %q is not a number of seconds", trunc(val), trunc(from))
			}
			c.seek, c.npt = true, sec
		case "scale":
			s, err := strconv.ParseFloat(val, 64)
			switch {
			case err != nil || math.IsNaN(s):
				return c, fmt.Errorf("Scale %q is not a number", trunc(val))
			case s < 0:
				return c, fmt.Errorf("Scale %s: reverse playback is not supported", trunc(val))
			case s < minScale || s > maxScale:
				return c, fmt.Errorf("Scale %s: want %g to %g", trunc(val), float64(minScale), float64(maxScale))
			}
			c.scale = s
		}
	}
	if !seenCSeq {
		return c, errors.New("no CSeq header")
	}
	return c, nil
}

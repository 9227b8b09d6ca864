package sdp

import (
	"fmt"
	"math"
	"strconv"
)

// SSRCLen is the length of a GB/T 28181 SSRC (y= line) in digits.
const SSRCLen = 10

// NewSSRC builds the 10-digit SSRC of GB/T 28181-2016 §9.2.1 note and
// Annex F (y= line): digit 1 is 0 for live media and 1 for history
// (playback, download); digits 2–6 are digits 4–8 of the platform's SIP
// domain ID (characters [3:8] of platformID, which may be the 10-digit
// domain ID or the 20-digit SIP ID); digits 7–10 are seq, 0–9999, the
// stream number within the domain. The result always fits in 32 bits
// (at most 1999999999).
func NewSSRC(live bool, platformID string, seq uint16) (string, error) {
	if (len(platformID) != 10 && len(platformID) != 20) || !allDigits(platformID) {
		return "", fmt.Errorf("sdp: new ssrc from %q: %w", platformID, ErrPlatformID)
	}
	if seq > 9999 {
		return "", fmt.Errorf("sdp: new ssrc seq %d: %w", seq, ErrSequence)
	}
	flag := "1"
	if live {
		flag = "0"
	}
	return fmt.Sprintf("%s%s%04d", flag, platformID[3:8], seq), nil
}

// ParseSSRC splits a 10-digit SSRC into its fields (see NewSSRC) and its
// value as the 32-bit RTP SSRC that the media should carry. It fails with
// ErrSSRCFormat when s is not 10 ASCII digits. When the first digit is not
// 0 or 1 (ErrSSRCFlag) or the value is above 4294967295 (ErrSSRCRange, a
// device quirk), it returns the fields it could read along with the error;
// value is then 0 for ErrSSRCRange. live is true only for a first digit 0.
func ParseSSRC(s string) (live bool, domain string, seq int, value uint32, err error) {
	if !isSSRCShape(s) {
		return false, "", 0, 0, fmt.Errorf("sdp: parse ssrc %q: %w", s, ErrSSRCFormat)
	}
	live = s[0] == '0'
	domain = s[1:6]
	seq, _ = strconv.Atoi(s[6:])
	v, _ := strconv.ParseUint(s, 10, 64)
	if v > math.MaxUint32 {
		return live, domain, seq, 0, fmt.Errorf("sdp: parse ssrc %q: %w", s, ErrSSRCRange)
	}
	value = uint32(v)
	if s[0] != '0' && s[0] != '1' {
		return live, domain, seq, value, fmt.Errorf("sdp: parse ssrc %q: %w", s, ErrSSRCFlag)
	}
	return live, domain, seq, value, nil
}

func isSSRCShape(s string) bool { return len(s) == SSRCLen && allDigits(s) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

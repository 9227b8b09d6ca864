package sdp

import (
	"errors"
	"testing"
)

func TestNewSSRC(t *testing.T) {
	cases := []struct {
		name     string
		live     bool
		platform string
		seq      uint16
		want     string
		err      error
	}{
		{"live 20-digit id", true, "34020000002000000001", 1, "0200000001", nil},
		{"history 20-digit id", false, "34020000002000000001", 1, "1200000001", nil},
		{"10-digit domain", true, "4418210000", 42, "0821000042", nil},
		{"qingyuan platform", false, "44180000002000000001", 9999, "1800009999", nil},
		{"seq zero", true, "64010000002020000001", 0, "0100000000", nil},
		{"seq too big", true, "34020000002000000001", 10000, "", ErrSequence},
		{"short id", true, "3402000", 1, "", ErrPlatformID},
		{"19 digits", true, "3402000000200000000", 1, "", ErrPlatformID},
		{"letters", true, "34020000002000000x01", 1, "", ErrPlatformID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewSSRC(tc.live, tc.platform, tc.seq)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("NewSSRC = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if err != nil {
				return
			}
			live, domain, seq, value, err := ParseSSRC(got)
			if err != nil || live != tc.live || domain != tc.platform[3:8] || seq != int(tc.seq) {
				t.Errorf("ParseSSRC(%q) = %v %q %d %d %v", got, live, domain, seq, value, err)
			}
		})
	}
}

func TestParseSSRC(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		live   bool
		domain string
		seq    int
		value  uint32
		err    error
	}{
		{"hikvision live", "0200000001", true, "20000", 1, 200000001, nil},
		{"history", "1000000003", false, "00000", 3, 1000000003, nil},
		{"all zero", "0000000000", true, "00000", 0, 0, nil},
		{"max history", "1999999999", false, "99999", 9999, 1999999999, nil},
		{"max uint32, bad flag", "4294967295", false, "29496", 7295, 4294967295, ErrSSRCFlag},
		{"above uint32", "4294967296", false, "29496", 7296, 0, ErrSSRCRange},
		{"all nines", "9999999999", false, "99999", 9999, 0, ErrSSRCRange},
		{"flag 2", "2000000001", false, "00000", 1, 2000000001, ErrSSRCFlag},
		{"nine digits", "200000001", false, "", 0, 0, ErrSSRCFormat},
		{"eleven digits", "02000000010", false, "", 0, 0, ErrSSRCFormat},
		{"hex", "0x12345678", false, "", 0, 0, ErrSSRCFormat},
		{"empty", "", false, "", 0, 0, ErrSSRCFormat},
		{"sign", "+200000001", false, "", 0, 0, ErrSSRCFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live, domain, seq, value, err := ParseSSRC(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if live != tc.live || domain != tc.domain || seq != tc.seq || value != tc.value {
				t.Errorf("got %v %q %d %d, want %v %q %d %d", live, domain, seq, value, tc.live, tc.domain, tc.seq, tc.value)
			}
		})
	}
}

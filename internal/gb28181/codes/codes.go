// Package codes parses and checks the 20-digit device and channel codes of
// GB/T 28181-2016 Annex D ("编码规则A"), which GB/T 28181-2022 keeps:
//
//	digits  1–8   centre code (中心编码): 1–2 province, 3–4 city,
//	              5–6 county/district (GB/T 2260), 7–8 grassroots unit
//	digits  9–10  industry code (行业编码)
//	digits 11–13  type code (类型编码), Table D.1
//	digit  14     network identifier (网络标识)
//	digits 15–20  serial number (序号)
//
// Parse checks only the structure (20 ASCII digits), so that callers can
// read the fields of a code that is not compliant; Validate lists every
// problem, with what to fix, for onboarding and coding-compliance checks.
// The package does no I/O and is safe for concurrent use.
package codes

import (
	"errors"
	"fmt"
	"strconv"
)

// Len is the length of a code in digits.
const Len = 20

// Errors returned by Parse, wrapped with the details.
var (
	// ErrLength means the code is not 20 characters long.
	ErrLength = errors.New("code must be 20 digits")
	// ErrNotDigit means the code contains a character other than 0–9.
	ErrNotDigit = errors.New("code must contain only digits 0-9")
)

// Code is a parsed 20-digit code. The string fields hold the digits as
// written, so that leading zeros survive.
type Code struct {
	Raw      string // the 20 digits
	Province string // digits 1–2
	City     string // digits 3–4
	County   string // digits 5–6
	Unit     string // digits 7–8, grassroots unit (基层接入单位)
	Industry string // digits 9–10
	Type     int    // digits 11–13
	Network  int    // digit 14
	Serial   string // digits 15–20
}

// Parse splits s into its fields. It fails only when s is not 20 ASCII
// digits; the error wraps ErrLength or ErrNotDigit. Use Validate to check
// the fields' values.
func Parse(s string) (Code, error) {
	if len(s) != Len {
		return Code{}, fmt.Errorf("codes: parse %s: %w, got %d characters", quote(s), ErrLength, len(s))
	}
	for i := 0; i < Len; i++ {
		if s[i] < '0' || s[i] > '9' {
			return Code{}, fmt.Errorf("codes: parse %s: %w, position %d is %q", quote(s), ErrNotDigit, i+1, s[i])
		}
	}
	t, _ := strconv.Atoi(s[10:13])
	return Code{
		Raw:      s,
		Province: s[0:2],
		City:     s[2:4],
		County:   s[4:6],
		Unit:     s[6:8],
		Industry: s[8:10],
		Type:     t,
		Network:  int(s[13] - '0'),
		Serial:   s[14:20],
	}, nil
}

// String returns the code's 20 digits.
func (c Code) String() string { return c.Raw }

// Centre returns the 8-digit centre code (中心编码), digits 1–8.
func (c Code) Centre() string { return c.Province + c.City + c.County + c.Unit }

// Division returns the longest meaningful GB/T 2260 prefix of the centre
// code: 6 digits when the county is not "00", 4 when only the city is set,
// else the 2-digit province.
func (c Code) Division() string {
	switch {
	case c.County != "00":
		return c.Province + c.City + c.County
	case c.City != "00":
		return c.Province + c.City
	default:
		return c.Province
	}
}

// Kind classifies the code by its type code.
func (c Code) Kind() Kind { return kindOf(c.Type) }

// TypeInfo returns the name of the type code; ok is false for extension
// and unassigned type codes.
func (c Code) TypeInfo() (ti TypeInfo, ok bool) { return LookupType(c.Type) }

// NetworkInfo returns the name of the network identifier.
func (c Code) NetworkInfo() NetworkInfo { return networks[c.Network] }

// IsChannel reports whether the code names a front-end peripheral
// (types 131–199: cameras, alarm inputs and outputs, audio), which is what
// devices report as channels in their Catalog.
func (c Code) IsChannel() bool { return c.Kind() == KindChannel }

// IsDevice reports whether the code names a front-end main device
// (types 111–130: DVR, NVR, encoder, ...).
func (c Code) IsDevice() bool { return c.Kind() == KindDevice }

// IsPlatform reports whether the code names a platform server (types
// 200–299 other than 215 and 216), e.g. a lower or upper platform's SIP
// server (200).
func (c Code) IsPlatform() bool { return c.Kind() == KindPlatform }

// IsGroup reports whether the code names a business group (215) or a
// virtual organisation (216), the nodes of a Catalog's organisation tree.
func (c Code) IsGroup() bool {
	k := c.Kind()
	return k == KindBusinessGroup || k == KindVirtualOrganization
}

// Kind is the class of a type code.
type Kind uint8

// Kinds, from the ranges of GB/T 28181-2016 Table D.1.
const (
	KindUnknown             Kind = iota // 000–110: not assigned
	KindDevice                          // 111–130 front-end main device
	KindChannel                         // 131–199 front-end peripheral
	KindPlatform                        // 200–299 platform device, except 215, 216
	KindBusinessGroup                   // 215
	KindVirtualOrganization             // 216
	KindCentralUser                     // 300–399
	KindTerminalUser                    // 400–499
	KindExternalServer                  // 500–599 platform-attached server
	KindExtension                       // 600–999
)

var kindNames = [...]string{
	KindUnknown:             "unknown",
	KindDevice:              "device",
	KindChannel:             "channel",
	KindPlatform:            "platform",
	KindBusinessGroup:       "business group",
	KindVirtualOrganization: "virtual organisation",
	KindCentralUser:         "central user",
	KindTerminalUser:        "terminal user",
	KindExternalServer:      "external server",
	KindExtension:           "extension",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// quote quotes s for an error message, shortening long input.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

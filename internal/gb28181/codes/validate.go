package codes

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ProblemCode identifies a kind of problem; it is stable, for machines.
type ProblemCode string

// Problem codes reported by Validate.
const (
	ProblemLength        ProblemCode = "length"         // not 20 characters
	ProblemNotDigit      ProblemCode = "not_digit"      // a character other than 0–9
	ProblemProvince      ProblemCode = "province"       // digits 1–2 not a GB/T 2260 province
	ProblemDivision      ProblemCode = "division"       // division prefix unknown to the caller
	ProblemCentre        ProblemCode = "centre"         // centre code levels inconsistent
	ProblemType          ProblemCode = "type"           // type code not assigned by Table D.1
	ProblemTypeExtension ProblemCode = "type_extension" // type code in an extension range
	ProblemNetwork       ProblemCode = "network"        // network identifier 9 (reserved)
	ProblemSerial        ProblemCode = "serial"         // channel serial number 000000
)

// Severity says whether a problem breaks the standard or only deserves a
// look.
type Severity uint8

// Severities.
const (
	SeverityError   Severity = iota // the code does not follow the standard
	SeverityWarning                 // allowed, but unusual or not verifiable
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Problem is one thing wrong with a code.
type Problem struct {
	Code     ProblemCode
	Severity Severity
	// Pos is the 1-based position of the first character concerned, or 0
	// when the problem concerns the whole code.
	Pos int
	// Message says what is wrong and what to fix, in English.
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s %s: %s", p.Severity, p.Code, p.Message)
}

// maxNotDigit bounds the not_digit problems reported for one string.
const maxNotDigit = 5

// Validate returns every problem of s, field by field; none means
// the code is compliant. known, if not nil, is asked whether the division
// prefix (Code.Division) exists, e.g. in the platform's division table.
//
// When s is not 20 digits Validate reports only the structural problems
// (length and characters), since the fields cannot be located reliably.
func Validate(s string, known func(division string) bool) []Problem {
	var ps []Problem
	n := utf8.RuneCountInString(s)
	if n != Len {
		ps = append(ps, Problem{
			Code: ProblemLength,
			Message: fmt.Sprintf("must be 20 digits, got %d; a code is centre(8) + industry(2) + type(3) + network(1) + serial(6)",
				n),
		})
	}
	pos, bad := 0, 0
	for i, r := range s {
		pos++
		if r >= '0' && r <= '9' {
			continue
		}
		bad++
		if bad > maxNotDigit {
			continue
		}
		what := fmt.Sprintf("%q", r)
		if r == utf8.RuneError && len(s[i:]) > 0 {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				what = fmt.Sprintf("the invalid byte %#02x", s[i])
			}
		}
		hint := "use only the ASCII digits 0-9"
		if r >= '０' && r <= '９' {
			hint = "replace the full-width digit with an ASCII digit"
		} else if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u3000' {
			hint = "remove the white space"
		}
		ps = append(ps, Problem{
			Code:    ProblemNotDigit,
			Pos:     pos,
			Message: fmt.Sprintf("position %d is %s, not a digit; %s", pos, what, hint),
		})
	}
	if bad > maxNotDigit {
		ps = append(ps, Problem{
			Code:    ProblemNotDigit,
			Message: fmt.Sprintf("%d more characters are not digits", bad-maxNotDigit),
		})
	}
	if len(ps) > 0 {
		return ps
	}

	c, err := Parse(s)
	if err != nil { // unreachable: s is 20 ASCII digits
		return []Problem{{Code: ProblemNotDigit, Message: err.Error()}}
	}

	provinceOK := true
	if _, ok := provinces[c.Province]; !ok {
		provinceOK = false
		ps = append(ps, Problem{
			Code: ProblemProvince,
			Pos:  1,
			Message: fmt.Sprintf("digits 1-2 %q are not a GB/T 2260 province-level code; use one of %s",
				c.Province, strings.Join(provinceList(), ",")),
		})
	}
	// GB/T 2260 has no county below city "00", and a grassroots unit
	// belongs to a county-level centre. Annex D does not forbid a unit
	// directly under a city-level centre in so many words, so the second
	// check is a warning.
	if c.City == "00" && c.County != "00" {
		ps = append(ps, Problem{
			Code: ProblemCentre,
			Pos:  3,
			Message: fmt.Sprintf("city digits 3-4 are 00 but county digits 5-6 are %q; set digits 3-4 to the city's code, or 5-6 to 00",
				c.County),
		})
	}
	if c.County == "00" && c.Unit != "00" {
		ps = append(ps, Problem{
			Code:     ProblemCentre,
			Severity: SeverityWarning,
			Pos:      7,
			Message: fmt.Sprintf("county digits 5-6 are 00 but grassroots unit digits 7-8 are %q; set digits 5-6 to the county/district's GB/T 2260 code, or 7-8 to 00",
				c.Unit),
		})
	}
	if known != nil && provinceOK && !known(c.Division()) {
		ps = append(ps, Problem{
			Code: ProblemDivision,
			Pos:  1,
			Message: fmt.Sprintf("division %q (digits 1-%d) is not a known GB/T 2260 division; check the centre code against the division table",
				c.Division(), len(c.Division())),
		})
	}

	switch _, named := types[c.Type]; {
	case c.Kind() == KindUnknown:
		ps = append(ps, Problem{
			Code: ProblemType,
			Pos:  11,
			Message: fmt.Sprintf("type code %03d (digits 11-13) is not assigned by GB/T 28181 Table D.1; use e.g. 132 for an IP camera, 118 for an NVR, 200 for a platform",
				c.Type),
		})
	case !named:
		ps = append(ps, Problem{
			Code:     ProblemTypeExtension,
			Severity: SeverityWarning,
			Pos:      11,
			Message: fmt.Sprintf("type code %03d (digits 11-13) is in the %s extension range, not a type named by the standard; other platforms may not recognise it",
				c.Type, c.Kind()),
		})
	}

	if c.Network == 9 {
		ps = append(ps, Problem{
			Code:    ProblemNetwork,
			Pos:     14,
			Message: "network identifier 9 (digit 14) is reserved; use 0-4 for the video private network, 5 public security, 6 government, 7 Internet, 8 social resources",
		})
	}

	if c.IsChannel() && c.Serial == "000000" {
		ps = append(ps, Problem{
			Code:    ProblemSerial,
			Pos:     15,
			Message: "serial number (digits 15-20) of a channel is 000000; give each channel a distinct non-zero serial",
		})
	}
	return ps
}

func provinceList() []string {
	return []string{"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
		"41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82"}
}

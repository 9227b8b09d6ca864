package codes

import (
	"errors"
	"slices"
	"testing"
)

// Codes of the demo city, Qingyuan (441800); 441821 is 佛冈县.
var parseCases = []struct {
	name      string
	in        string
	kind      Kind
	division  string
	typeName  string
	isChannel bool
}{
	{"ipc", "44182100001320000001", KindChannel, "441821", "IP camera", true},
	{"camera", "44182100001310000001", KindChannel, "441821", "camera", true},
	{"nvr", "44182100001180000001", KindDevice, "441821", "NVR", false},
	{"platform city", "44180000002000000001", KindPlatform, "4418", "central signalling control server", false},
	{"platform province", "44000000002000000001", KindPlatform, "44", "central signalling control server", false},
	{"business group", "44182100002150000001", KindBusinessGroup, "441821", "business group", false},
	{"virtual organisation", "44182101002160000001", KindVirtualOrganization, "441821", "virtual organisation", false},
	{"central user", "44180000003000000001", KindCentralUser, "4418", "central user", false},
	{"terminal user", "44180000004000000001", KindTerminalUser, "4418", "terminal user", false},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if c.Raw != tc.in || c.String() != tc.in {
				t.Errorf("Raw = %q", c.Raw)
			}
			if got := c.Province + c.City + c.County + c.Unit + c.Industry; got != tc.in[:10] {
				t.Errorf("centre+industry = %q", got)
			}
			if c.Centre() != tc.in[:8] {
				t.Errorf("Centre() = %q", c.Centre())
			}
			if c.Kind() != tc.kind {
				t.Errorf("Kind() = %v, want %v", c.Kind(), tc.kind)
			}
			if c.Division() != tc.division {
				t.Errorf("Division() = %q, want %q", c.Division(), tc.division)
			}
			if ti, ok := c.TypeInfo(); !ok || ti.Name != tc.typeName {
				t.Errorf("TypeInfo() = %v %v, want %q", ti, ok, tc.typeName)
			}
			if c.IsChannel() != tc.isChannel {
				t.Errorf("IsChannel() = %v", c.IsChannel())
			}
			if ps := Validate(tc.in, nil); len(ps) != 0 {
				t.Errorf("Validate() = %v, want none", ps)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	c, err := Parse("34020000001320000001")
	if err != nil {
		t.Fatal(err)
	}
	want := Code{Raw: "34020000001320000001", Province: "34", City: "02", County: "00", Unit: "00",
		Industry: "00", Type: 132, Network: 0, Serial: "000001"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if c.NetworkInfo().Chinese != "监控报警专网" {
		t.Errorf("NetworkInfo() = %v", c.NetworkInfo())
	}
	if !c.IsChannel() || c.IsDevice() || c.IsPlatform() || c.IsGroup() {
		t.Errorf("predicates wrong for %v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrLength},
		{"19", "4418210000132000001", ErrLength},
		{"21", "441821000013200000011", ErrLength},
		{"letter", "4418210000132000000A", ErrNotDigit},
		{"space", " 441821000013200000A", ErrNotDigit},
		{"full-width", "441821000013200000１", ErrLength}, // 3 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	known := func(d string) bool { return slices.Contains([]string{"44", "4418", "441821"}, d) }
	type want struct {
		code ProblemCode
		sev  Severity
		pos  int
		msg  string
	}
	for _, tc := range []struct {
		name  string
		in    string
		known func(string) bool
		want  []want
	}{
		{"ok with table", "44182100001320000001", known, nil},
		{"length 19", "4418210000132000001", nil,
			[]want{{ProblemLength, SeverityError, 0, "must be 20 digits, got 19; a code is centre(8) + industry(2) + type(3) + network(1) + serial(6)"}}},
		{"letter", "4418210000132000000A", nil,
			[]want{{ProblemNotDigit, SeverityError, 20, "position 20 is 'A', not a digit; use only the ASCII digits 0-9"}}},
		{"length and letter", "44182100001320000O1", nil,
			[]want{{ProblemLength, SeverityError, 0, ""}, {ProblemNotDigit, SeverityError, 18, ""}}},
		{"full-width digit", "4418210000132000000１", nil,
			[]want{{ProblemNotDigit, SeverityError, 20, "position 20 is '１', not a digit; replace the full-width digit with an ASCII digit"}}},
		{"trailing space", "4418210000132000001 ", nil,
			[]want{{ProblemNotDigit, SeverityError, 20, "position 20 is ' ', not a digit; remove the white space"}}},
		{"invalid utf-8", "441821000013200000\xff1", nil,
			[]want{{ProblemNotDigit, SeverityError, 19, "position 19 is the invalid byte 0xff, not a digit; use only the ASCII digits 0-9"}}},
		{"many letters", "abcdefghijklmnopqrst", nil,
			[]want{{ProblemNotDigit, 0, 1, ""}, {ProblemNotDigit, 0, 2, ""}, {ProblemNotDigit, 0, 3, ""},
				{ProblemNotDigit, 0, 4, ""}, {ProblemNotDigit, 0, 5, ""}, {ProblemNotDigit, 0, 0, "15 more characters are not digits"}}},
		{"province", "99182100001320000001", nil,
			[]want{{ProblemProvince, SeverityError, 1, `digits 1-2 "99" are not a GB/T 2260 province-level code; use one of 11,12,13,14,15,21,22,23,31,32,33,34,35,36,37,41,42,43,44,45,46,50,51,52,53,54,61,62,63,64,65,71,81,82`}}},
		{"unknown division", "44182200001320000001", known,
			[]want{{ProblemDivision, SeverityError, 1, `division "441822" (digits 1-6) is not a known GB/T 2260 division; check the centre code against the division table`}}},
		{"division not asked for bad province", "99182100001320000001", known,
			[]want{{ProblemProvince, SeverityError, 1, ""}}},
		{"county without city", "44002100001320000001", nil,
			[]want{{ProblemCentre, SeverityError, 3, `city digits 3-4 are 00 but county digits 5-6 are "21"; set digits 3-4 to the city's code, or 5-6 to 00`}}},
		{"unit without county", "44180001001320000001", nil,
			[]want{{ProblemCentre, SeverityWarning, 7, `county digits 5-6 are 00 but grassroots unit digits 7-8 are "01"; set digits 5-6 to the county/district's GB/T 2260 code, or 7-8 to 00`}}},
		{"unknown type", "44182100000990000001", nil,
			[]want{{ProblemType, SeverityError, 11, "type code 099 (digits 11-13) is not assigned by GB/T 28181 Table D.1; use e.g. 132 for an IP camera, 118 for an NVR, 200 for a platform"}}},
		{"extension type", "44182100001400000001", nil,
			[]want{{ProblemTypeExtension, SeverityWarning, 11, "type code 140 (digits 11-13) is in the channel extension range, not a type named by the standard; other platforms may not recognise it"}}},
		{"reserved network", "44182100001329000001", nil,
			[]want{{ProblemNetwork, SeverityError, 14, ""}}},
		{"zero serial channel", "44182100001320000000", nil,
			[]want{{ProblemSerial, SeverityError, 15, "serial number (digits 15-20) of a channel is 000000; give each channel a distinct non-zero serial"}}},
		{"zero serial device ok", "44182100001180000000", nil, nil},
		{"everything", "00002101000999000000", known,
			[]want{{ProblemProvince, 0, 1, ""}, {ProblemCentre, 0, 3, ""}, {ProblemType, 0, 11, ""}, {ProblemNetwork, 0, 14, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Validate(tc.in, tc.known)
			if len(got) != len(tc.want) {
				t.Fatalf("Validate(%q) = %v, want %d problems", tc.in, got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Code != w.code || g.Severity != w.sev || g.Pos != w.pos || (w.msg != "" && g.Message != w.msg) {
					t.Errorf("problem %d = %+v, want %+v", i, g, w)
				}
			}
			if _, err := Parse(tc.in); (err != nil) != (len(got) > 0 && (got[0].Code == ProblemLength || got[0].Code == ProblemNotDigit)) {
				t.Errorf("Parse error %v disagrees with Validate %v", err, got)
			}
		})
	}
}

func TestTables(t *testing.T) {
	if len(provinces) != 34 || len(provinceList()) != 34 {
		t.Fatalf("%d provinces, %d listed", len(provinces), len(provinceList()))
	}
	for _, p := range provinceList() {
		if _, ok := ProvinceName(p); !ok {
			t.Errorf("province %s listed but not named", p)
		}
	}
	for code := range types {
		if k := kindOf(code); k == KindUnknown {
			t.Errorf("named type %d has no class", code)
		}
	}
	for i := 0; i < 1000; i++ {
		if k := kindOf(i); (k == KindUnknown) != (i < 111) {
			t.Errorf("kindOf(%d) = %v", i, k)
		}
	}
	if KindVirtualOrganization.String() != "virtual organisation" || Kind(200).String() != "Kind(200)" {
		t.Error("Kind.String")
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	for _, s := range []string{"", "4418210000132000001", "4418210000132000000A", "4418210000132000000１", "00002101000999000000", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		ps := Validate(s, func(string) bool { return false })
		if err != nil {
			if len(ps) == 0 || (ps[0].Code != ProblemLength && ps[0].Code != ProblemNotDigit) {
				t.Fatalf("Parse failed (%v) but Validate = %v", err, ps)
			}
			return
		}
		if c.Raw != s {
			t.Fatalf("Raw = %q, want %q", c.Raw, s)
		}
		if got := c.Centre() + c.Industry + pad3(c.Type) + string(rune('0'+c.Network)) + c.Serial; got != s {
			t.Fatalf("fields join to %q, want %q", got, s)
		}
		for _, p := range ps {
			if p.Code == ProblemLength || p.Code == ProblemNotDigit || p.Message == "" {
				t.Fatalf("unexpected problem for parsed code: %v", p)
			}
		}
		_ = c.Division()
		_ = c.Kind().String()
		_ = c.NetworkInfo()
	})
}

func pad3(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

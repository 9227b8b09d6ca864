package model

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDivisionLevelText(t *testing.T) {
	for l := DivisionLevelProvince; l <= DivisionLevelVillage; l++ {
		got, err := ParseDivisionLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseDivisionLevel(%q) = %v, %v; want %v", l.String(), got, err, l)
		}
	}
	if got, err := ParseDivisionLevel(" Town "); err != nil || got != DivisionLevelTown {
		t.Errorf("ParseDivisionLevel(\" Town \") = %v, %v", got, err)
	}
	if _, err := ParseDivisionLevel("hamlet"); err == nil {
		t.Error("ParseDivisionLevel(hamlet): want error")
	}
	if s := DivisionLevel(9).String(); s != "DivisionLevel(9)" {
		t.Errorf("DivisionLevel(9).String() = %q", s)
	}
	if DivisionLevel(0).Valid() || DivisionLevel(6).Valid() {
		t.Error("0 and 6 must not be valid levels")
	}
}

func TestDivisionJSON(t *testing.T) {
	d := Division{Code: "441821", Name: "佛冈县", Level: DivisionLevelCounty, ParentCode: "441800"}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"code":"441821","name":"佛冈县","level":"county","parent_code":"441800"}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}
	var back Division
	if err := json.Unmarshal(b, &back); err != nil || back != d {
		t.Errorf("Unmarshal = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"level":"hamlet"}`), &back); err == nil {
		t.Error("Unmarshal of an unknown level: want error")
	}
	if _, err := json.Marshal(Division{Level: 42}); err == nil {
		t.Error("Marshal of an invalid level: want error")
	}
	b, err = json.Marshal(Division{})
	if err != nil || !strings.Contains(string(b), `"level":""`) {
		t.Errorf("Marshal of the zero Division = %s, %v", b, err)
	}
}

func TestDivisionValidate(t *testing.T) {
	tests := []struct {
		name string
		d    Division
		want []string // expected error messages, in order; nil for valid
	}{
		{"province 6", Division{Code: "440000", Name: "广东省", Level: DivisionLevelProvince}, nil},
		{"province 2", Division{Code: "44", Name: "广东省", Level: DivisionLevelProvince}, nil},
		{"city 6", Division{Code: "441800", Name: "清远市", Level: DivisionLevelCity, ParentCode: "440000"}, nil},
		{"city 4", Division{Code: "4418", Name: "清远市", Level: DivisionLevelCity, ParentCode: "44"}, nil},
		{"county", Division{Code: "441821", Name: "佛冈县", Level: DivisionLevelCounty, ParentCode: "441800"}, nil},
		{"town", Division{Code: "441821101", Name: "汤塘镇", Level: DivisionLevelTown, ParentCode: "441821"}, nil},
		{"village", Division{Code: "441882106201", Name: "元璧村", Level: DivisionLevelVillage, ParentCode: "441882106"}, nil},
		{"empty", Division{}, []string{"code: is required", "level: must be one of province, city, county, town, village", "name: is required"}},
		{"code length", Division{Code: "4418211", Name: "x", Level: DivisionLevelCounty},
			[]string{"code: must be 2, 4, 6, 9 or 12 digits, got 7"}},
		{"code letters", Division{Code: "44182A", Name: "x", Level: DivisionLevelCounty},
			[]string{"code: must contain digits only"}},
		{"level mismatch 9", Division{Code: "441821101", Name: "x", Level: DivisionLevelCounty},
			[]string{"level: county does not match the 9-digit code 441821101 (want town)"}},
		{"level mismatch 6", Division{Code: "441800", Name: "x", Level: DivisionLevelCounty},
			[]string{"level: county does not match the 6-digit code 441800 (want city)"}},
		{"blank name", Division{Code: "441821", Name: "  ", Level: DivisionLevelCounty}, []string{"name: is required"}},
		{"long name", Division{Code: "441821", Name: strings.Repeat("县", MaxNameLen+1), Level: DivisionLevelCounty},
			[]string{"name: must be at most 128 characters, got 129"}},
		{"own parent", Division{Code: "441821", Name: "x", Level: DivisionLevelCounty, ParentCode: "441821"},
			[]string{"parent_code: must differ from code"}},
		{"bad parent", Division{Code: "441821", Name: "x", Level: DivisionLevelCounty, ParentCode: "4418x"},
			[]string{"parent_code: must contain digits only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldErrors(t, tt.d.Validate(), tt.want)
		})
	}
}

// checkFieldErrors compares the messages of err's field errors with want.
func checkFieldErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Validate() = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate() = nil, want %q", want)
	}
	var got []string
	for _, fe := range FieldErrors(err) {
		got = append(got, fe.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Validate() field errors = %q\nwant %q", got, want)
	}
	if len(want) == 1 && err.Error() != want[0] {
		t.Errorf("Validate().Error() = %q, want %q", err.Error(), want[0])
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("errors.As(*FieldError) failed on %v", err)
	}
}

func div(code, parent string, level DivisionLevel) Division {
	return Division{Code: code, Name: code, Level: level, ParentCode: parent}
}

// treeShape renders trees as "code(child,child)" for comparison.
func treeShape(nodes []*DivisionNode) string {
	var b strings.Builder
	for i, n := range nodes {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(n.Code)
		if len(n.Children) > 0 {
			b.WriteString("(" + treeShape(n.Children) + ")")
		}
	}
	return b.String()
}

func TestBuildDivisionTree(t *testing.T) {
	qingyuan := []Division{
		div("441882106201", "441882106", DivisionLevelVillage),
		div("441882", "441800", DivisionLevelCounty),
		div("441821101", "441821", DivisionLevelTown),
		div("441800", "", DivisionLevelCity),
		div("441882106", "441882", DivisionLevelTown),
		div("441821", "441800", DivisionLevelCounty),
		div("441802", "441800", DivisionLevelCounty),
	}
	tests := []struct {
		name string
		in   []Division
		want string
	}{
		{"empty", nil, ""},
		{"qingyuan", qingyuan, "441800(441802,441821(441821101),441882(441882106(441882106201)))"},
		{"subset roots at missing parents", qingyuan[:3], "441821101,441882,441882106201"},
		{"own parent is a root", []Division{div("441821", "441821", DivisionLevelCounty)}, "441821"},
		{"duplicate: last wins", []Division{
			div("441800", "", DivisionLevelCity),
			div("441821", "", DivisionLevelCounty),
			div("441821", "441800", DivisionLevelCounty),
		}, "441800(441821)"},
		{"cycle is cut at smallest code", []Division{
			div("441800", "441821", DivisionLevelCity),
			div("441821", "441800", DivisionLevelCounty),
			div("441821101", "441821", DivisionLevelTown),
		}, "441800(441821(441821101))"},
		{"cycle beside a tree", []Division{
			div("440000", "", DivisionLevelProvince),
			div("441800", "440000", DivisionLevelCity),
			div("441882", "441882106", DivisionLevelCounty),
			div("441882106", "441882", DivisionLevelTown),
		}, "440000(441800),441882(441882106)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := BuildDivisionTree(tt.in)
			if got := treeShape(roots); got != tt.want {
				t.Errorf("BuildDivisionTree = %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestFillChannelCounts(t *testing.T) {
	roots := BuildDivisionTree([]Division{
		div("441800", "", DivisionLevelCity),
		div("441821", "441800", DivisionLevelCounty),
		div("441821101", "441821", DivisionLevelTown),
		div("441882", "441800", DivisionLevelCounty),
		div("999999", "", DivisionLevelCounty),
	})
	total := FillChannelCounts(roots, map[string]int{"441800": 1, "441821": 2, "441821101": 3, "441882": 4, "000000": 100})
	if total != 10 {
		t.Errorf("total = %d, want 10", total)
	}
	city := roots[0]
	if city.ChannelCount != 10 || city.Children[0].ChannelCount != 5 ||
		city.Children[0].Children[0].ChannelCount != 3 || city.Children[1].ChannelCount != 4 || roots[1].ChannelCount != 0 {
		t.Errorf("counts wrong: %s", mustJSON(t, roots))
	}
	b := mustJSON(t, city.Children[0].Children[0])
	if b != `{"code":"441821101","name":"441821101","level":"town","parent_code":"441821","channel_count":3}` {
		t.Errorf("leaf JSON = %s", b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

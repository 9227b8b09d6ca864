package model

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// DivisionLevel is the administrative level of a Division. Levels are ordered
// from the top: a parent's level is always less than its children's.
//
// The zero value is not a level; it prints as "" in JSON and text.
type DivisionLevel int

// The GB/T 2260 levels, from the top of the tree.
const (
	DivisionLevelProvince DivisionLevel = iota + 1 // 省
	DivisionLevelCity                              // 市 (prefecture level)
	DivisionLevelCounty                            // 县/区/县级市
	DivisionLevelTown                              // 乡/镇/街道
	DivisionLevelVillage                           // 村/社区
)

var divisionLevelNames = [...]string{
	DivisionLevelProvince: "province",
	DivisionLevelCity:     "city",
	DivisionLevelCounty:   "county",
	DivisionLevelTown:     "town",
	DivisionLevelVillage:  "village",
}

// Valid reports whether l is one of the defined levels.
func (l DivisionLevel) Valid() bool {
	return l >= DivisionLevelProvince && l <= DivisionLevelVillage
}

// String returns the lowercase English name of the level ("county"), or
// "DivisionLevel(n)" for an undefined value.
func (l DivisionLevel) String() string {
	if l.Valid() {
		return divisionLevelNames[l]
	}
	return fmt.Sprintf("DivisionLevel(%d)", int(l))
}

// ParseDivisionLevel parses the name printed by String, ignoring case and
// surrounding space.
func ParseDivisionLevel(s string) (DivisionLevel, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for l := DivisionLevelProvince; l <= DivisionLevelVillage; l++ {
		if divisionLevelNames[l] == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("model: unknown division level %q", s)
}

// MarshalText encodes a level as its name, so that JSON carries a string.
// The zero value encodes as "".
func (l DivisionLevel) MarshalText() ([]byte, error) {
	if l == 0 {
		return []byte{}, nil
	}
	if !l.Valid() {
		return nil, fmt.Errorf("model: invalid division level %d", int(l))
	}
	return []byte(divisionLevelNames[l]), nil
}

// UnmarshalText decodes a name accepted by ParseDivisionLevel; "" decodes to
// the zero value.
func (l *DivisionLevel) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*l = 0
		return nil
	}
	v, err := ParseDivisionLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Division is one node of the administrative tree (GB/T 2260 and its
// extensions to towns and villages).
//
// Code forms accepted: 2 digits (province), 4 (city), 6 (province "440000",
// city "441800" or county "441821"), 9 (town "441821101") and 12 (village
// "441821101201"). The tree is defined by ParentCode, not by code prefixes,
// so codes from any local scheme work as long as the parent links are right.
type Division struct {
	Code       string        `json:"code"`
	Name       string        `json:"name"`
	Level      DivisionLevel `json:"level"`
	ParentCode string        `json:"parent_code"` // "" for a root
}

// MaxNameLen is the longest Name, in characters, that Validate accepts for
// divisions, devices and channels.
const MaxNameLen = 128

// Validate checks the fields of d on their own: the code's shape, that the
// level matches the code's form, the name, and that the division is not its
// own parent. Whether the parent exists is for the store to check.
func (d Division) Validate() error {
	var errs fieldErrors
	if msg := checkDivisionCode(d.Code); msg != "" {
		errs.add("code", msg)
	} else if d.Level.Valid() {
		if want := levelsForCode(d.Code); !containsLevel(want, d.Level) {
			errs.add("level", fmt.Sprintf("%s does not match the %d-digit code %s (want %s)",
				d.Level, len(d.Code), d.Code, joinLevels(want)))
		}
	}
	if !d.Level.Valid() {
		errs.add("level", "must be one of province, city, county, town, village")
	}
	checkName(&errs, d.Name)
	if d.ParentCode != "" {
		if msg := checkDivisionCode(d.ParentCode); msg != "" {
			errs.add("parent_code", msg)
		} else if d.ParentCode == d.Code {
			errs.add("parent_code", "must differ from code")
		}
	}
	return errs.err()
}

// ValidateDivisionCode checks the shape of a division code: ASCII digits, in
// one of the accepted lengths (2, 4, 6, 9, 12). The error does not name a
// field; Validate methods prefix it with theirs.
func ValidateDivisionCode(code string) error {
	if msg := checkDivisionCode(code); msg != "" {
		return fmt.Errorf("model: division code %s", msg)
	}
	return nil
}

func checkDivisionCode(code string) string {
	switch {
	case code == "":
		return "is required"
	case !isDigits(code):
		return "must contain digits only"
	}
	switch len(code) {
	case 2, 4, 6, 9, 12:
		return ""
	}
	return fmt.Sprintf("must be 2, 4, 6, 9 or 12 digits, got %d", len(code))
}

// levelsForCode returns the levels a well-formed code may have.
func levelsForCode(code string) []DivisionLevel {
	switch len(code) {
	case 2:
		return []DivisionLevel{DivisionLevelProvince}
	case 4:
		return []DivisionLevel{DivisionLevelCity}
	case 6:
		switch {
		case strings.HasSuffix(code, "0000"):
			return []DivisionLevel{DivisionLevelProvince}
		case strings.HasSuffix(code, "00"):
			return []DivisionLevel{DivisionLevelCity}
		default:
			return []DivisionLevel{DivisionLevelCounty}
		}
	case 9:
		return []DivisionLevel{DivisionLevelTown}
	case 12:
		return []DivisionLevel{DivisionLevelVillage}
	}
	return nil
}

func containsLevel(ls []DivisionLevel, l DivisionLevel) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

func joinLevels(ls []DivisionLevel) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, " or ")
}

// checkName checks a display name shared by divisions, devices and channels.
func checkName(errs *fieldErrors, name string) {
	switch {
	case strings.TrimSpace(name) == "":
		errs.add("name", "is required")
	case !utf8.ValidString(name):
		errs.add("name", "must be valid UTF-8")
	case utf8.RuneCountInString(name) > MaxNameLen:
		errs.add("name", fmt.Sprintf("must be at most %d characters, got %d", MaxNameLen, utf8.RuneCountInString(name)))
	}
}

// DivisionNode is a Division with its children, for tree views.
type DivisionNode struct {
	Division
	Children []*DivisionNode `json:"children,omitempty"`
	// ChannelCount is the number of channels in this division and all its
	// descendants. BuildDivisionTree leaves it zero; FillChannelCounts sets it.
	ChannelCount int `json:"channel_count"`
}

// BuildDivisionTree links divisions into trees by ParentCode and returns the
// roots. Roots and every Children slice are sorted by code.
//
// A division is a root when its ParentCode is empty, equal to its own code,
// or names a division that is not in the input; so a jurisdiction's subset of
// the tree (a county and what lies below) builds with the county as root.
// When a code appears more than once, the last entry wins. Parent links that
// form a cycle are cut: the smallest code of the cycle becomes a root. Every
// input code therefore appears exactly once in the result.
func BuildDivisionTree(divs []Division) []*DivisionNode {
	nodes := make(map[string]*DivisionNode, len(divs))
	for _, d := range divs {
		nodes[d.Code] = &DivisionNode{Division: d}
	}
	codes := make([]string, 0, len(nodes))
	for code := range nodes {
		codes = append(codes, code)
	}
	sort.Strings(codes)

	var roots []*DivisionNode
	for _, code := range codes {
		n := nodes[code]
		parent, ok := nodes[n.ParentCode]
		if !ok || n.ParentCode == n.Code {
			roots = append(roots, n)
			continue
		}
		parent.Children = append(parent.Children, n)
	}

	// Nodes not reachable from a root sit on (or below) a parent cycle.
	seen := make(map[*DivisionNode]bool, len(nodes))
	var mark func(*DivisionNode)
	mark = func(n *DivisionNode) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, c := range n.Children {
			mark(c)
		}
	}
	for _, r := range roots {
		mark(r)
	}
	if len(seen) < len(nodes) {
		for _, code := range codes {
			n := nodes[code]
			if seen[n] {
				continue
			}
			// n is the smallest unreached code; cut it from its parent.
			p := nodes[n.ParentCode]
			for i, c := range p.Children {
				if c == n {
					p.Children = append(p.Children[:i:i], p.Children[i+1:]...)
					break
				}
			}
			roots = append(roots, n)
			mark(n)
		}
		sort.Slice(roots, func(i, j int) bool { return roots[i].Code < roots[j].Code })
	}
	return roots
}

// FillChannelCounts sets ChannelCount on every node of the trees to the sum
// of direct[code] over the node and its descendants, and returns the total
// over all roots. direct maps a division code to the number of channels
// placed directly in it, as store.CountChannelsByDivision returns.
func FillChannelCounts(roots []*DivisionNode, direct map[string]int) int {
	var fill func(n *DivisionNode) int
	fill = func(n *DivisionNode) int {
		sum := direct[n.Code]
		for _, c := range n.Children {
			sum += fill(c)
		}
		n.ChannelCount = sum
		return sum
	}
	total := 0
	for _, r := range roots {
		total += fill(r)
	}
	return total
}

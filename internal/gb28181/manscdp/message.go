package manscdp

import (
	"fmt"
	"strconv"
	"strings"
)

// Root elements (GB/T 28181-2016 §A.2.1).
const (
	RootQuery    = "Query"
	RootControl  = "Control"
	RootNotify   = "Notify"
	RootResponse = "Response"
)

// CmdType values this package knows. Parse rewrites a CmdType that matches
// one of them in another case to this spelling; others are kept as sent.
const (
	CmdKeepalive      = "Keepalive"
	CmdCatalog        = "Catalog"
	CmdDeviceInfo     = "DeviceInfo"
	CmdDeviceStatus   = "DeviceStatus"
	CmdRecordInfo     = "RecordInfo"
	CmdAlarm          = "Alarm"
	CmdPresetQuery    = "PresetQuery"
	CmdMediaStatus    = "MediaStatus"
	CmdDeviceControl  = "DeviceControl"
	CmdConfigDownload = "ConfigDownload"
	CmdDeviceConfig   = "DeviceConfig"
	CmdMobilePosition = "MobilePosition"
	CmdBroadcast      = "Broadcast"
)

var knownCmdTypes = []string{
	CmdKeepalive, CmdCatalog, CmdDeviceInfo, CmdDeviceStatus, CmdRecordInfo,
	CmdAlarm, CmdPresetQuery, CmdMediaStatus, CmdDeviceControl,
	CmdConfigDownload, CmdDeviceConfig, CmdMobilePosition, CmdBroadcast,
}

// Message is a parsed MANSCDP body. The typed decoders (Keepalive, Catalog,
// ...) read the fields of one CmdType from it. A Message is immutable after
// Parse and may be read from several goroutines.
type Message struct {
	Root     string // "Query", "Control", "Notify" or "Response", canonical case
	CmdType  string // canonical case for known values, else as sent
	SN       int    // 0 when absent
	DeviceID string // "" when absent
	// Raw is the body as received (not transcoded). It aliases the slice
	// given to Parse.
	Raw []byte
	// Charset is the charset the body was decoded from (CharsetUTF8 or
	// CharsetGB18030); DeclaredCharset is what its XML declaration named,
	// upper-cased, or "".
	Charset         string
	DeclaredCharset string

	root *node
}

// Parse decodes a MANSCDP body.
//
// The charset is decided as described at toUTF8: valid UTF-8 is UTF-8, other
// bytes are GB18030, whatever the declaration says. Before decoding, '&' that
// starts no reference is escaped. Only the first element is read; trailing
// bytes are ignored. The root must be Query, Control, Notify or Response in
// any case, and must have a CmdType; SN must be an integer when present.
func Parse(body []byte) (*Message, error) {
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(body))
	}
	utf, cs := toUTF8(body)
	root, err := parseTree(repairAmpersands(utf))
	if err != nil {
		return nil, err
	}
	m := &Message{Raw: body, Charset: cs, DeclaredCharset: declaredCharset(body), root: root}
	for _, r := range []string{RootQuery, RootControl, RootNotify, RootResponse} {
		if strings.EqualFold(root.name, r) {
			m.Root = r
		}
	}
	if m.Root == "" {
		return nil, fmt.Errorf("%w: <%s>", ErrUnknownRoot, root.name)
	}
	r := &reader{n: root, path: m.Root}
	m.CmdType = r.str("CmdType")
	if m.CmdType == "" {
		return nil, fieldErr(m.Root+"/CmdType", "", ErrMissing)
	}
	for _, k := range knownCmdTypes {
		if strings.EqualFold(m.CmdType, k) {
			m.CmdType = k
		}
	}
	if s := r.str("SN"); s != "" {
		sn, err := strconv.Atoi(s)
		if err != nil {
			return nil, fieldErr(m.Root+"/SN", s, ErrInvalid)
		}
		m.SN = sn
	}
	m.DeviceID = r.str("DeviceID")
	return m, nil
}

// Text returns the trimmed text of the element at path below the root
// (names separated by '/', any case), and whether it exists. It reads
// elements no typed decoder covers, e.g. m.Text("Info/ControlPriority").
func (m *Message) Text(path string) (string, bool) {
	n := m.root
	for _, p := range strings.Split(path, "/") {
		n = n.child(p)
		if n == nil {
			return "", false
		}
	}
	return n.text, true
}

func (m *Message) String() string {
	return fmt.Sprintf("%s %s SN=%d DeviceID=%s", m.Root, m.CmdType, m.SN, m.DeviceID)
}

// expect checks root and CmdType before a typed decoder runs and returns a
// reader at the root. An empty root accepts any.
func (m *Message) expect(cmd string, roots ...string) (*reader, error) {
	if m.CmdType != cmd {
		return nil, fmt.Errorf("%w: want %s, message is %s", ErrWrongCmdType, cmd, m.CmdType)
	}
	ok := len(roots) == 0
	for _, r := range roots {
		ok = ok || r == m.Root
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s %s cannot be decoded as %s %s", ErrWrongCmdType, m.Root, m.CmdType, strings.Join(roots, "/"), cmd)
	}
	return &reader{n: m.root, path: m.Root}, nil
}

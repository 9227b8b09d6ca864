package manscdp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, body []byte) *Message {
	t.Helper()
	m, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, body)
	}
	return m
}

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file     string
		root     string
		cmd      string
		sn       int
		deviceID string
		charset  string
		check    func(t *testing.T, m *Message)
	}{
		{"keepalive.xml", RootNotify, CmdKeepalive, 43, "44182100001180000001", CharsetUTF8, func(t *testing.T, m *Message) {
			k, err := m.Keepalive()
			if err != nil || !k.OK() || len(k.Info) != 0 {
				t.Errorf("Keepalive = %+v, %v", k, err)
			}
		}},
		{"catalog_nvr_1.xml", RootResponse, CmdCatalog, 1025, "44182100001180000001", CharsetGB18030, func(t *testing.T, m *Message) {
			c, err := m.Catalog()
			if err != nil {
				t.Fatal(err)
			}
			if c.SumNum != 4 || c.Num != 2 || len(c.Items) != 2 {
				t.Fatalf("Catalog = %+v", c)
			}
			want := CatalogItem{
				DeviceID: "44182100001310000001", Name: "汤塘镇政府门口", Manufacturer: "Hikvision",
				Model: "IP Camera", Owner: "Owner", CivilCode: "441821", Address: "佛冈县汤塘镇政府",
				ParentID: "44182100001180000001", RegisterWay: 1, IPAddress: "192.168.1.64", Port: 8000,
				Status: "ON", Longitude: 113.5301, Latitude: 23.7487, PTZType: 1,
			}
			if c.Items[0] != want {
				t.Errorf("Items[0] =\n%+v\nwant\n%+v", c.Items[0], want)
			}
			if !c.Items[0].Online() || c.Items[1].Name != "汤塘镇中心小学" || c.Items[1].PTZType != 3 {
				t.Errorf("Items[1] = %+v", c.Items[1])
			}
		}},
		{"catalog_nvr_2.xml", RootResponse, CmdCatalog, 1025, "44182100001180000001", CharsetGB18030, func(t *testing.T, m *Message) {
			c, err := m.Catalog()
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Items) != 2 || c.Items[0].Name != "汤塘镇A&B商店" || c.Items[0].Online() || c.Items[1].Name != "汤塘温泉路口" {
				t.Errorf("Catalog = %+v", c)
			}
		}},
		{"catalog_notify_del.xml", RootNotify, CmdCatalog, 90213, "44182100001180000001", CharsetUTF8, func(t *testing.T, m *Message) {
			c, err := m.Catalog()
			if err != nil || len(c.Items) != 1 || c.Items[0].Event != EventDel || c.Items[0].DeviceID != "44182100001310000004" {
				t.Errorf("Catalog = %+v, %v", c, err)
			}
		}},
		{"devicestatus.xml", RootResponse, CmdDeviceStatus, 248, "44182100001320000003", CharsetUTF8, func(t *testing.T, m *Message) {
			s, err := m.DeviceStatus()
			if err != nil {
				t.Fatal(err)
			}
			want := time.Date(2026, 11, 29, 10, 12, 13, 250e6, time.Local)
			if s.Online != Online || s.Status != StatusOK || s.Encode != StatusOn || s.Record != StatusOff ||
				s.DeviceTime != "2026-11-29T10:12:13.250" || !s.Time.Equal(want) {
				t.Errorf("DeviceStatus = %+v", s)
			}
		}},
		{"deviceinfo.xml", RootResponse, CmdDeviceInfo, 7, "44182100001180000001", CharsetUTF8, func(t *testing.T, m *Message) {
			d, err := m.DeviceInfo()
			if err != nil || d.DeviceName != "汤塘镇NVR" || d.Channel != 8 || d.Firmware != "V4.30.005" || d.Result != StatusOK {
				t.Errorf("DeviceInfo = %+v, %v", d, err)
			}
			if m.DeclaredCharset != "GB2312" {
				t.Errorf("DeclaredCharset = %q", m.DeclaredCharset)
			}
		}},
		{"recordinfo.xml", RootResponse, CmdRecordInfo, 17430, "44182100001310000002", CharsetUTF8, func(t *testing.T, m *Message) {
			r, err := m.RecordInfo()
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != "汤塘镇政府门口" || r.SumNum != 3 || r.Num != 3 || len(r.Items) != 3 {
				t.Fatalf("RecordInfo = %+v", r)
			}
			it := r.Items[0]
			if it.Type != RecordTime || it.FileSize != 536870912 || it.FilePath == "" ||
				!it.Start.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.Local)) || it.End.Sub(it.Start) != 30*time.Minute {
				t.Errorf("Items[0] = %+v", it)
			}
			if r.Items[1].RecorderID != "44182100001180000001" || r.Items[1].Type != RecordAlarm {
				t.Errorf("Items[1] = %+v", r.Items[1])
			}
			if it := r.Items[2]; it.FileSize != 1024 || it.Start.IsZero() || it.StartTime != "2026-11-28 01:00:00" {
				t.Errorf("Items[2] = %+v", it)
			}
		}},
		{"alarm_notify.xml", RootNotify, CmdAlarm, 1, "44182100001320000003", CharsetUTF8, func(t *testing.T, m *Message) {
			a, err := m.Alarm()
			if err != nil {
				t.Fatal(err)
			}
			if a.AlarmPriority != 1 || a.AlarmMethod != 5 || a.AlarmType != 2 || a.AlarmDescription != "汤塘镇村尾烟火检测" ||
				a.Longitude != 113.296 || a.Latitude != 23.677 || a.Time.Hour() != 16 {
				t.Errorf("Alarm = %+v", a)
			}
		}},
		{"mediastatus_121.xml", RootNotify, CmdMediaStatus, 8, "44182100001310000002", CharsetUTF8, func(t *testing.T, m *Message) {
			s, err := m.MediaStatus()
			if err != nil || !s.EndOfFile() {
				t.Errorf("MediaStatus = %+v, %v", s, err)
			}
		}},
		{"presetquery_quirks.xml", RootResponse, CmdPresetQuery, 12, "44182100001320000003", CharsetUTF8, func(t *testing.T, m *Message) {
			p, err := m.PresetList()
			if err != nil {
				t.Fatal(err)
			}
			want := []Preset{{"1", "门口&大路"}, {"002", "Gate & road"}}
			if p.Num != 2 || len(p.Items) != 2 || p.Items[0] != want[0] || p.Items[1] != want[1] {
				t.Errorf("PresetList = %+v", p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readTestdata(t, tt.file)
			m := mustParse(t, body)
			if m.Root != tt.root || m.CmdType != tt.cmd || m.SN != tt.sn || m.DeviceID != tt.deviceID || m.Charset != tt.charset {
				t.Errorf("got %s charset %s, want %s %s SN=%d DeviceID=%s charset %s", m, m.Charset, tt.root, tt.cmd, tt.sn, tt.deviceID, tt.charset)
			}
			if !bytes.Equal(m.Raw, body) {
				t.Error("Raw is not the body")
			}
			tt.check(t, m)
		})
	}
}

func gb(t testing.TB, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The same name must come out right whatever the body declares and however
// it is really encoded.
func TestParseCharsets(t *testing.T) {
	const name = "汤塘镇政府门口"
	body := func(decl string) string {
		return decl + "<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><SumNum>1</SumNum>" +
			"<DeviceList Num=\"1\"><Item><DeviceID>2</DeviceID><Name>" + name + "</Name></Item></DeviceList></Response>"
	}
	tests := []struct {
		name    string
		body    []byte
		charset string
	}{
		{"utf8 declared utf8", []byte(body(`<?xml version="1.0" encoding="UTF-8"?>`)), CharsetUTF8},
		{"gb2312 declared gb2312", gb(t, body(`<?xml version="1.0" encoding="GB2312"?>`)), CharsetGB18030},
		{"gbk declared gbk lower case", gb(t, body(`<?xml version='1.0' encoding='gbk' ?>`)), CharsetGB18030},
		{"utf8 declared gb2312", []byte(body(`<?xml version="1.0" encoding="GB2312"?>`)), CharsetUTF8},
		{"gb2312 declared utf8", gb(t, body(`<?xml version="1.0" encoding="UTF-8"?>`)), CharsetGB18030},
		{"gb2312 no declaration", gb(t, body("")), CharsetGB18030},
		{"utf8 no declaration with BOM", []byte("\uFEFF" + body("")), CharsetUTF8},
		{"gb2312 declared iso-8859-1", gb(t, body(`<?xml version="1.0" encoding="ISO-8859-1"?>`)), CharsetGB18030},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.body)
			c, err := m.Catalog()
			if err != nil {
				t.Fatal(err)
			}
			if c.Items[0].Name != name || m.Charset != tt.charset {
				t.Errorf("Name = %q (charset %s), want %q (%s)", c.Items[0].Name, m.Charset, name, tt.charset)
			}
		})
	}
}

func TestParseQuirks(t *testing.T) {
	tests := []struct {
		name string
		body string
		text string // Text("Name") expected
	}{
		{"lower-case root and tags", `<response><cmdtype>catalog</cmdtype><sn>3</sn><deviceid>1</deviceid><name>x</name></response>`, "x"},
		{"mixed case", `<RESPONSE><CMDTYPE>Catalog</CMDTYPE><Sn>3</Sn><DeviceId>1</DeviceId><Name>x</Name></RESPONSE>`, "x"},
		{"spaces around numbers", "<Response><CmdType> Catalog </CmdType><SN>\r\n 3 \t</SN><DeviceID> 1 </DeviceID><Name>x</Name></Response>", "x"},
		{"unescaped ampersand", `<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>1</DeviceID><Name>A & B&C &#38; &amp;</Name></Response>`, "A & B&C & &"},
		{"ampersand before semicolon far away", `<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>1</DeviceID><Name>a&b c;</Name></Response>`, "a&b c;"},
		{"html entity", `<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>1</DeviceID><Name>a&nbsp;b</Name></Response>`, "a\u00a0b"},
		{"cdata kept", `<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>1</DeviceID><Name><![CDATA[a&amp;b]]></Name></Response>`, "a&amp;b"},
		{"trailing garbage", "<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>1</DeviceID><Name>x</Name></Response>\x00\x00</Response><junk", "x"},
		{"unknown elements", `<Response><CmdType>Catalog</CmdType><Vendor><Deep a="1">y</Deep></Vendor><SN>3</SN><DeviceID>1</DeviceID><Name>x</Name></Response>`, "x"},
		{"comment and whitespace before root", "\r\n <?xml version=\"1.0\"?>\n<!-- hi -->\n<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>1</DeviceID><Name>x</Name></Response>", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, []byte(tt.body))
			if m.Root != RootResponse || m.CmdType != CmdCatalog || m.SN != 3 || m.DeviceID != "1" {
				t.Errorf("got %s", m)
			}
			if got, _ := m.Text("Name"); got != tt.text {
				t.Errorf("Name = %q, want %q", got, tt.text)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	item := func(s string) string {
		return `<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><SumNum>2</SumNum><DeviceList Num="2">` +
			`<Item><DeviceID>2</DeviceID></Item><Item>` + s + `</Item></DeviceList></Response>`
	}
	tests := []struct {
		name  string
		body  []byte
		want  error
		where string // substring of the message
	}{
		{"empty", nil, ErrEmpty, ""},
		{"only declaration", []byte(`<?xml version="1.0"?>`), ErrEmpty, ""},
		{"too large", bytes.Repeat([]byte(" "), MaxBodySize+1), ErrTooLarge, ""},
		{"unknown root", []byte(`<Request><CmdType>Catalog</CmdType></Request>`), ErrUnknownRoot, "<Request>"},
		{"no CmdType", []byte(`<Query><SN>1</SN></Query>`), ErrMissing, "Query/CmdType"},
		{"bad SN", []byte(`<Query><CmdType>Catalog</CmdType><SN>1a</SN></Query>`), ErrInvalid, `Query/SN: "1a"`},
		{"truncated", []byte("<Query>\n<CmdType>Catalog</CmdType>\n<SN>1"), ErrSyntax, "line 3"},
		{"mismatched tags", []byte("<Query>\n<CmdType>Catalog</cmdtype>\n</Query>"), ErrSyntax, "line 2"},
		{"too deep", []byte(strings.Repeat("<a>", 100)), ErrTooDeep, ""},
		{"too many elements", []byte("<Query>\n" + strings.Repeat("<a/>", maxElements)), ErrTooManyElements, "line 2"},
		{"bad port", []byte(item(`<DeviceID>3</DeviceID><Port>80a</Port>`)), ErrInvalid, `Response/DeviceList/Item[2]/Port: "80a"`},
		{"bad ptz type", []byte(item(`<DeviceID>3</DeviceID><Info><PTZType>x</PTZType></Info>`)), ErrInvalid, `Item[2]/Info/PTZType`},
		{"item without DeviceID", []byte(item(`<Name>x</Name>`)), ErrMissing, `Item[2]/DeviceID`},
		{"absurd SumNum", []byte(`<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><SumNum>99999999999</SumNum></Response>`), ErrSumNumTooLarge, "Response/SumNum"},
		{"absurd Num", []byte(`<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><DeviceList Num="2000000"/></Response>`), ErrSumNumTooLarge, "Response/DeviceList@Num"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.body)
			if err == nil {
				_, err = m.Catalog()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.where) || !strings.HasPrefix(err.Error(), "manscdp: ") {
				t.Errorf("err = %q, want it to mention %q", err, tt.where)
			}
		})
	}
}

func TestWrongCmdType(t *testing.T) {
	m := mustParse(t, readTestdata(t, "keepalive.xml"))
	if _, err := m.Catalog(); !errors.Is(err, ErrWrongCmdType) {
		t.Errorf("Catalog on keepalive: %v", err)
	}
	m = mustParse(t, []byte(`<Query><CmdType>Keepalive</CmdType></Query>`))
	if _, err := m.Keepalive(); !errors.Is(err, ErrWrongCmdType) {
		t.Errorf("Keepalive on a Query: %v", err)
	}
}

func TestKeepaliveInfo(t *testing.T) {
	m := mustParse(t, []byte(`<Notify><CmdType>Keepalive</CmdType><SN>5</SN><DeviceID>1</DeviceID><Status>error</Status>`+
		`<Info><DeviceID>2</DeviceID><DeviceID>3</DeviceID></Info></Notify>`))
	k, err := m.Keepalive()
	if err != nil || k.OK() || k.Status != StatusError || len(k.Info) != 2 || k.Info[1] != "3" {
		t.Errorf("Keepalive = %+v, %v", k, err)
	}
}

func TestParseTime(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-29T10:12:13", time.Date(2026, 11, 29, 10, 12, 13, 0, loc)},
		{"2026-11-29T10:12:13.5", time.Date(2026, 11, 29, 10, 12, 13, 5e8, loc)},
		{"2026-11-29T10:12:13.123456", time.Date(2026, 11, 29, 10, 12, 13, 123456e3, loc)},
		{" 2026-11-29 10:12:13 ", time.Date(2026, 11, 29, 10, 12, 13, 0, loc)},
		{"2026-11-29T02:12:13Z", time.Date(2026, 11, 29, 10, 12, 13, 0, loc)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, loc)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseTime("yesterday", loc); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseTime(yesterday): %v", err)
	}
	m := mustParse(t, []byte(`<Response><CmdType>DeviceStatus</CmdType><DeviceTime>soon</DeviceTime></Response>`))
	if s, err := m.DeviceStatus(); err != nil || s.DeviceTime != "soon" || !s.Time.IsZero() {
		t.Errorf("DeviceStatus = %+v, %v", s, err)
	}
}

// Vendors write the list attribute as num and list tags in other cases.
func TestParseListCase(t *testing.T) {
	m := mustParse(t, []byte(`<Response><CmdType>RecordInfo</CmdType><SN>1</SN><DeviceID>1</DeviceID><sumnum>1</sumnum>`+
		`<recordlist num=" 1 "><item><deviceid>1</deviceid><starttime>2026-11-28T00:00:00</starttime></item></recordlist></Response>`))
	r, err := m.RecordInfo()
	if err != nil || r.SumNum != 1 || r.Num != 1 || len(r.Items) != 1 || r.Items[0].Start.IsZero() {
		t.Errorf("RecordInfo = %+v, %v", r, err)
	}
}

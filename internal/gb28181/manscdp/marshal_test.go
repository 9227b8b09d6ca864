package manscdp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMarshal(t *testing.T) {
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.Local)
	tests := []struct {
		name string
		v    any
		want []string // lines that must appear, in order
	}{
		{"catalog", CatalogQuery(1, "44182100001180000001"), []string{"<Query>", "<CmdType>Catalog</CmdType>", "<SN>1</SN>", "<DeviceID>44182100001180000001</DeviceID>", "</Query>"}},
		{"deviceinfo", DeviceInfoQuery(2, "1"), []string{"<CmdType>DeviceInfo</CmdType>"}},
		{"devicestatus", DeviceStatusQuery(3, "1"), []string{"<CmdType>DeviceStatus</CmdType>"}},
		{"presetquery", PresetQuery(4, "1"), []string{"<CmdType>PresetQuery</CmdType>"}},
		{"configdownload", ConfigDownloadQuery(5, "1"), []string{"<CmdType>ConfigDownload</CmdType>", "<ConfigType>BasicParam</ConfigType>"}},
		{"recordinfo", RecordInfoQuery(6, "1", start, start.Add(time.Hour), RecordAll, ""), []string{
			"<CmdType>RecordInfo</CmdType>", "<StartTime>2026-11-28T00:00:00</StartTime>", "<EndTime>2026-11-28T01:00:00</EndTime>",
			"<Secrecy>0</Secrecy>", "<Type>all</Type>"}},
		{"ptz", PTZControl(7, "1", "A50F0108001F00DC", 5), []string{"<Control>", "<CmdType>DeviceControl</CmdType>", "<PTZCmd>A50F0108001F00DC</PTZCmd>", "<Info>", "<ControlPriority>5</ControlPriority>"}},
		{"teleboot", TeleBootControl(8, "1"), []string{"<TeleBoot>Boot</TeleBoot>"}},
		{"record", RecordControl(9, "1", true), []string{"<RecordCmd>Record</RecordCmd>"}},
		{"stoprecord", RecordControl(9, "1", false), []string{"<RecordCmd>StopRecord</RecordCmd>"}},
		{"setguard", GuardControl(10, "1", true), []string{"<GuardCmd>SetGuard</GuardCmd>"}},
		{"resetguard", GuardControl(10, "1", false), []string{"<GuardCmd>ResetGuard</GuardCmd>"}},
		{"iframe", KeyFrameControl(11, "1"), []string{"<IFameCmd>Send</IFameCmd>"}},
		{"alarm response", NotifyResponse(&Message{CmdType: CmdAlarm, SN: 12, DeviceID: "1"}), []string{"<Response>", "<CmdType>Alarm</CmdType>", "<SN>12</SN>", "<Result>OK</Result>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(tt.v, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte(`<?xml version="1.0" encoding="GB2312"?>`+"\r\n")) {
				t.Errorf("no GB2312 declaration:\n%s", b)
			}
			s := string(b)
			for _, w := range tt.want {
				i := strings.Index(s, w)
				if i < 0 {
					t.Fatalf("missing %s in\n%s", w, b)
				}
				s = s[i+len(w):]
			}
			if strings.Contains(string(b), "PTZCmd") != (tt.name == "ptz") {
				t.Errorf("unexpected elements:\n%s", b)
			}
			// What we send must parse as what we meant.
			m := mustParse(t, b)
			if m.SN == 0 || m.DeviceID == "" {
				t.Errorf("round trip: %s", m)
			}
		})
	}
}

func TestMarshalCharsets(t *testing.T) {
	r := &Response{CmdType: CmdCatalog, SN: 1, DeviceID: "1", Result: "汤塘镇政府门口 & <x>"}
	for _, cs := range []string{"GB2312", "gbk", "GB18030", "UTF-8", "utf8"} {
		b, err := Marshal(r, cs)
		if err != nil {
			t.Fatal(err)
		}
		m := mustParse(t, b)
		wantCS := CharsetGB18030
		if strings.HasPrefix(strings.ToUpper(cs), "UTF") {
			wantCS = CharsetUTF8
		}
		if got, _ := m.Text("Result"); got != r.Result || m.Charset != wantCS {
			t.Errorf("%s: Result = %q charset %s", cs, got, m.Charset)
		}
		if want := gb(t, "汤塘镇政府门口"); wantCS == CharsetGB18030 && !bytes.Contains(b, want) {
			t.Errorf("%s: name not in GB2312 bytes:\n% x", cs, b)
		}
	}
	if _, err := Marshal(r, "Big5"); !errors.Is(err, ErrUnsupportedCharset) {
		t.Errorf("Big5: %v", err)
	}
	if _, err := Marshal(make(chan int), "UTF-8"); err == nil {
		t.Error("chan marshalled")
	}
}

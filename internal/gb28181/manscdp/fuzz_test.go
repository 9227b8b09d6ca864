package manscdp

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bodies to Parse, every typed decoder and the
// Assembler. They must not panic, and what Parse accepts must re-encode.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<Response><CmdType>Catalog</CmdType><SumNum>99999999</SumNum></Response>`))
	f.Add([]byte(`<Query><CmdType>x</CmdType><SN>1</SN><Name>a&b&#12;&#x;&;</Name></Query>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body)
		if err != nil {
			return
		}
		m.Keepalive()
		m.Catalog()
		m.DeviceInfo()
		m.DeviceStatus()
		m.RecordInfo()
		m.Alarm()
		m.PresetList()
		m.MediaStatus()
		m.Text("DeviceList/Item/Name")
		a := NewAssembler(AssemblerOptions{})
		if c, done, err := a.Add(m); err == nil && !done {
			if c, ok := a.Finish(m.CmdType, m.DeviceID, m.SN); !ok || c.Complete {
				t.Errorf("Finish = %+v, %v", c, ok)
			}
		} else if done && (!c.Complete || c.Missing != 0) {
			t.Errorf("done but %+v", c)
		}
		if _, err := Marshal(NotifyResponse(m), "GB2312"); err != nil {
			t.Errorf("Marshal: %v", err)
		}
	})
}

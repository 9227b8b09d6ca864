package manscdp

import (
	"bytes"
	"strings"
	"testing"
)

func BenchmarkParseCatalogGB2312(b *testing.B) {
	body := readTestdata(b, "catalog_nvr_1.xml")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		m, err := Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Catalog(); err != nil {
			b.Fatal(err)
		}
	}
}

// Worst cases within MaxBodySize must stay cheap.
func BenchmarkParseHostile(b *testing.B) {
	items := "<Response><CmdType>Catalog</CmdType><SumNum>1</SumNum><DeviceList>" +
		strings.Repeat("<Item><DeviceID>1</DeviceID></Item>", (MaxBodySize-200)/35) + "</DeviceList></Response>"
	cases := map[string][]byte{
		"ampersands":  append([]byte("<Query><CmdType>"), bytes.Repeat([]byte("&"), MaxBodySize-100)...),
		"empty elems": []byte("<Query>" + strings.Repeat("<a/>", (MaxBodySize-20)/4) + "</Query>"),
		"items":       []byte(items),
		"gb bytes":    append([]byte("<Query>"), bytes.Repeat([]byte{0xb5, 0xd8}, (MaxBodySize-20)/2)...),
	}
	for name, body := range cases {
		if len(body) > MaxBodySize {
			b.Fatalf("%s: %d bytes", name, len(body))
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m, err := Parse(body); err == nil {
					m.Catalog()
				}
			}
		})
	}
}

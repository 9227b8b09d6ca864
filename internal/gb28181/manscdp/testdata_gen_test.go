package manscdp

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// The GB2312 testdata files cannot be written comfortably in an editor, so
// they are generated from the UTF-8 text below:
//
//	go test ./internal/gb28181/manscdp/ -run TestGB2312Testdata -gen
//
// Without -gen the test checks that the files on disk are exactly that text
// in GB2312 (EUC-CN) bytes and are not valid UTF-8.
var genTestdata = flag.Bool("gen", false, "rewrite the GB2312 testdata files")

func catalogItemXML(id, name, addr, status, ptz string) string {
	return "<Item>\r\n<DeviceID>" + id + "</DeviceID>\r\n<Name>" + name + "</Name>\r\n" +
		"<Manufacturer>Hikvision</Manufacturer>\r\n<Model>IP Camera</Model>\r\n<Owner>Owner</Owner>\r\n" +
		"<CivilCode>441821</CivilCode>\r\n<Address>" + addr + "</Address>\r\n<Parental>0</Parental>\r\n" +
		"<ParentID>44182100001180000001</ParentID>\r\n<SafetyWay>0</SafetyWay>\r\n<RegisterWay>1</RegisterWay>\r\n" +
		"<Secrecy>0</Secrecy>\r\n<IPAddress>192.168.1.64</IPAddress>\r\n<Port>8000</Port>\r\n<Status>" + status + "</Status>\r\n" +
		"<Longitude>113.5301</Longitude>\r\n<Latitude>23.7487</Latitude>\r\n" +
		"<Info>\r\n<PTZType>" + ptz + "</PTZType>\r\n</Info>\r\n</Item>\r\n"
}

func catalogNVRXML(items ...string) string {
	return `<?xml version="1.0" encoding="GB2312"?>` + "\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>1025</SN>\r\n" +
		"<DeviceID>44182100001180000001</DeviceID>\r\n<SumNum>4</SumNum>\r\n" +
		"<DeviceList Num=\"" + string(rune('0'+len(items))) + "\">\r\n" + strings.Join(items, "") + "</DeviceList>\r\n</Response>\r\n"
}

var gb2312Testdata = map[string]string{
	"catalog_nvr_1.xml": catalogNVRXML(
		catalogItemXML("44182100001310000001", "汤塘镇政府门口", "佛冈县汤塘镇政府", "ON", "1"),
		catalogItemXML("44182100001310000002", "汤塘镇中心小学", "佛冈县汤塘镇", "ON", "3"),
	),
	// The second message names a shop with an unescaped '&', as devices do.
	"catalog_nvr_2.xml": catalogNVRXML(
		catalogItemXML("44182100001310000003", "汤塘镇A&B商店", "佛冈县汤塘镇温泉路", "OFF", "3"),
		catalogItemXML("44182100001310000004", "汤塘温泉路口", "佛冈县汤塘镇温泉路", "ON", "1"),
	),
}

func TestGB2312Testdata(t *testing.T) {
	for name, text := range gb2312Testdata {
		want, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", name)
		if *genTestdata {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run with -gen", path)
		}
		if utf8.Valid(got) {
			t.Errorf("%s is valid UTF-8; want GB2312 bytes", path)
		}
	}
}

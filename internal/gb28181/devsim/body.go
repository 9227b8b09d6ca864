package devsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// The MANSCDP bodies a device sends (GB/T 28181-2016 Annex A.2) are built
// here with encoding/xml, and not with internal/gb28181/manscdp: the
// simulator checks the platform, and a bug shared by both sides would
// hide. manscdp only parses what the platform sends to the devices.

// Root elements and CmdType values of GB/T 28181-2016 §A.2.1, as the
// devices write them.
const (
	cmdKeepalive      = "Keepalive"
	cmdCatalog        = "Catalog"
	cmdDeviceInfo     = "DeviceInfo"
	cmdDeviceStatus   = "DeviceStatus"
	cmdRecordInfo     = "RecordInfo"
	cmdAlarm          = "Alarm"
	cmdPresetQuery    = "PresetQuery"
	cmdConfigDownload = "ConfigDownload"
	cmdDeviceControl  = "DeviceControl"
	cmdDeviceConfig   = "DeviceConfig"
	cmdMediaStatus    = "MediaStatus"
)

// timeLayout is the date-time of MANSCDP bodies (GB/T 28181-2016 A.2.1,
// dateTime without zone: local time of the device).
const timeLayout = "2006-01-02T15:04:05"

// contentTypeMANSCDP is the Content-Type of MANSCDP bodies (GB/T
// 28181-2016 §8.2, spelled as devices do).
const contentTypeMANSCDP = "Application/MANSCDP+xml"

// marshalBody encodes v as a MANSCDP body: an XML declaration, then the
// element. By default the body is UTF-8 and says so; with gb2312 it is
// encoded GB2312 and declares encoding="GB2312", as many devices do. The
// GBK encoder writes GB2312 characters with their GB2312 (EUC-CN) bytes;
// characters outside GBK become XML character references.
func marshalBody(v any, gb2312 bool) ([]byte, error) {
	body, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("devsim: marshal %T: %w", v, err)
	}
	charset := "UTF-8"
	if gb2312 {
		charset = "GB2312"
	}
	var b bytes.Buffer
	b.Grow(len(body) + 48)
	b.WriteString(`<?xml version="1.0" encoding="` + charset + `"?>` + "\r\n")
	b.Write(body)
	b.WriteString("\r\n")
	if !gb2312 {
		return b.Bytes(), nil
	}
	return encodeGBK(b.Bytes()), nil
}

// encodeGBK encodes UTF-8 XML as GBK, writing the characters GBK lacks as
// character references (they only occur in text and attribute values).
func encodeGBK(b []byte) []byte {
	enc := simplifiedchinese.GBK.NewEncoder()
	if out, err := enc.Bytes(b); err == nil {
		return out
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		if r < utf8.RuneSelf {
			out.WriteByte(byte(r))
			continue
		}
		e, err := enc.String(string(r))
		if err != nil {
			fmt.Fprintf(&out, "&#x%X;", r)
			continue
		}
		out.WriteString(e)
	}
	return out.Bytes()
}

// formatTime writes t in the device's zone, without zone, as MANSCDP does.
func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format(timeLayout)
}

// parseTime reads a MANSCDP date-time in the device's zone. Devices and
// platforms also write a space instead of 'T', and sometimes a zone or
// fractional seconds.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{timeLayout, "2006-01-02 15:04:05", time.RFC3339, "2006-01-02T15:04:05.000"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not YYYY-MM-DDThh:mm:ss", s)
}

// resultBody is a Response with a Result (device control and
// configuration answers, GB/T 28181-2016 A.2.6.2, and subscription
// answers).
type resultBody struct {
	XMLName  xml.Name `xml:"Response"`
	CmdType  string
	SN       int
	DeviceID string
	Result   string
}

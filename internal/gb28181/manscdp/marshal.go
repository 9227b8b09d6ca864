package manscdp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Marshal encodes v (a *Query, *Control, *Response or any value encoding/xml
// accepts) as a MANSCDP body: an XML declaration naming charset, then the
// indented element, encoded in charset.
//
// charset is "GB2312" (also the default for ""), "GBK", "GB18030" or
// "UTF-8", in any case. The three Chinese charsets are all written with the
// GB18030 encoder: text within GB2312 comes out as GB2312, rarer characters
// as their GBK or GB18030 codes, which GB2312-only devices show as garbage
// but can still parse. The declaration names the charset given.
func Marshal(v any, charset string) ([]byte, error) {
	cs := strings.ToUpper(strings.TrimSpace(charset))
	if cs == "" {
		cs = "GB2312"
	}
	if cs == "UTF8" {
		cs = CharsetUTF8
	}
	if cs != CharsetUTF8 && !isGBName(cs) || cs == "HZ-GB-2312" {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedCharset, charset)
	}
	body, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manscdp: marshal %T: %w", v, err)
	}
	var b bytes.Buffer
	b.Grow(len(body) + 64)
	b.WriteString(`<?xml version="1.0" encoding="` + cs + `"?>` + "\r\n")
	b.Write(body)
	b.WriteString("\r\n")
	if cs == CharsetUTF8 {
		return b.Bytes(), nil
	}
	out, err := simplifiedchinese.GB18030.NewEncoder().Bytes(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("manscdp: encode %s: %w", cs, err)
	}
	return out, nil
}

// Query is an outgoing Query (GB/T 28181-2016 §A.2.4). Build it with the
// XxxQuery functions; optional elements are omitted when empty.
type Query struct {
	XMLName    xml.Name `xml:"Query"`
	CmdType    string   `xml:"CmdType"`
	SN         int      `xml:"SN"`
	DeviceID   string   `xml:"DeviceID"`
	StartTime  string   `xml:"StartTime,omitempty"`
	EndTime    string   `xml:"EndTime,omitempty"`
	FilePath   string   `xml:"FilePath,omitempty"`
	Secrecy    *int     `xml:"Secrecy,omitempty"`
	Type       string   `xml:"Type,omitempty"`
	ConfigType string   `xml:"ConfigType,omitempty"`
}

// CatalogQuery asks a device or platform for its catalog (§A.2.4).
func CatalogQuery(sn int, deviceID string) *Query {
	return &Query{CmdType: CmdCatalog, SN: sn, DeviceID: deviceID}
}

// DeviceInfoQuery asks for device information (§A.2.4).
func DeviceInfoQuery(sn int, deviceID string) *Query {
	return &Query{CmdType: CmdDeviceInfo, SN: sn, DeviceID: deviceID}
}

// DeviceStatusQuery asks for device status (§A.2.4).
func DeviceStatusQuery(sn int, deviceID string) *Query {
	return &Query{CmdType: CmdDeviceStatus, SN: sn, DeviceID: deviceID}
}

// PresetQuery asks a PTZ camera for its presets (GB/T 28181-2016 §A.2.4).
func PresetQuery(sn int, deviceID string) *Query {
	return &Query{CmdType: CmdPresetQuery, SN: sn, DeviceID: deviceID}
}

// ConfigDownloadQuery asks for the device's basic parameters (ConfigType
// BasicParam, §A.2.4).
func ConfigDownloadQuery(sn int, deviceID string) *Query {
	return &Query{CmdType: CmdConfigDownload, SN: sn, DeviceID: deviceID, ConfigType: "BasicParam"}
}

// RecordInfoQuery asks a channel for its recordings between start and end
// (§A.2.4). Times are written in their own location, without a zone, as
// the standard wants local time: pass times in the device's zone. recType is
// "time", "alarm", "manual" or "all" ("" omits it; many devices then answer
// only "time"). filePath is optional. Secrecy 0 is always sent because some
// devices refuse a query without it.
func RecordInfoQuery(sn int, deviceID string, start, end time.Time, recType, filePath string) *Query {
	zero := 0
	return &Query{
		CmdType: CmdRecordInfo, SN: sn, DeviceID: deviceID,
		StartTime: FormatTime(start), EndTime: FormatTime(end),
		FilePath: filePath, Secrecy: &zero, Type: recType,
	}
}

// Control is an outgoing DeviceControl (GB/T 28181-2016 §A.2.3). Exactly one
// command element is normally set; build it with the XxxControl functions.
type Control struct {
	XMLName   xml.Name     `xml:"Control"`
	CmdType   string       `xml:"CmdType"`
	SN        int          `xml:"SN"`
	DeviceID  string       `xml:"DeviceID"`
	PTZCmd    string       `xml:"PTZCmd,omitempty"`
	TeleBoot  string       `xml:"TeleBoot,omitempty"`
	RecordCmd string       `xml:"RecordCmd,omitempty"`
	GuardCmd  string       `xml:"GuardCmd,omitempty"`
	IFameCmd  string       `xml:"IFameCmd,omitempty"` // sic: the standard spells it IFameCmd
	Info      *ControlInfo `xml:"Info,omitempty"`
}

// ControlInfo is the Info element of a PTZ control.
type ControlInfo struct {
	ControlPriority int `xml:"ControlPriority"`
}

// PTZControl sends ptzCmd, the 8-byte PTZ instruction as 16 hex digits
// (§A.3), unchecked. priority (1 highest .. 5) adds Info/ControlPriority
// when above 0.
func PTZControl(sn int, deviceID, ptzCmd string, priority int) *Control {
	c := &Control{CmdType: CmdDeviceControl, SN: sn, DeviceID: deviceID, PTZCmd: ptzCmd}
	if priority > 0 {
		c.Info = &ControlInfo{ControlPriority: priority}
	}
	return c
}

// TeleBootControl reboots the device (TeleBoot Boot).
func TeleBootControl(sn int, deviceID string) *Control {
	return &Control{CmdType: CmdDeviceControl, SN: sn, DeviceID: deviceID, TeleBoot: "Boot"}
}

// RecordControl starts (Record) or stops (StopRecord) manual recording.
func RecordControl(sn int, deviceID string, start bool) *Control {
	cmd := "StopRecord"
	if start {
		cmd = "Record"
	}
	return &Control{CmdType: CmdDeviceControl, SN: sn, DeviceID: deviceID, RecordCmd: cmd}
}

// GuardControl arms (SetGuard) or disarms (ResetGuard) the device.
func GuardControl(sn int, deviceID string, arm bool) *Control {
	cmd := "ResetGuard"
	if arm {
		cmd = "SetGuard"
	}
	return &Control{CmdType: CmdDeviceControl, SN: sn, DeviceID: deviceID, GuardCmd: cmd}
}

// KeyFrameControl asks the device for an I-frame (IFameCmd Send).
func KeyFrameControl(sn int, deviceID string) *Control {
	return &Control{CmdType: CmdDeviceControl, SN: sn, DeviceID: deviceID, IFameCmd: "Send"}
}

// Response is an outgoing Response with a Result.
type Response struct {
	XMLName  xml.Name `xml:"Response"`
	CmdType  string   `xml:"CmdType"`
	SN       int      `xml:"SN"`
	DeviceID string   `xml:"DeviceID"`
	Result   string   `xml:"Result"`
}

// NotifyResponse answers a device's Notify with Result OK, echoing its
// CmdType, SN and DeviceID. GB/T 28181-2016 asks for one after an Alarm
// and a Catalog notify (§A.2.6, both editions); a Keepalive or MediaStatus
// needs only the SIP 200 OK, but answering one with this body is harmless.
func NotifyResponse(m *Message) *Response {
	return &Response{CmdType: m.CmdType, SN: m.SN, DeviceID: m.DeviceID, Result: StatusOK}
}

package manscdp

import (
	"strconv"
	"time"
)

// Values of Status, Result, Online and similar elements (GB/T 28181-2016 §A.2 schema).
const (
	StatusOK    = "OK"
	StatusError = "ERROR"
	StatusOn    = "ON"
	StatusOff   = "OFF"
	Online      = "ONLINE"
	Offline     = "OFFLINE"
)

// Catalog notify events (Item/Event of a Notify Catalog).
const (
	EventOn     = "ON"
	EventOff    = "OFF"
	EventVLost  = "VLOST"
	EventDefect = "DEFECT"
	EventAdd    = "ADD"
	EventDel    = "DEL"
	EventUpdate = "UPDATE"
)

// Record types for RecordInfo queries and items (GB/T 28181-2016 §A.2.4).
const (
	RecordTime   = "time"
	RecordAlarm  = "alarm"
	RecordManual = "manual"
	RecordAll    = "all"
)

// NotifyTypeEndOfFile is the MediaStatus NotifyType a device sends when a
// playback or download reaches the end of the file (GB/T 28181-2016 §9.8, playback).
const NotifyTypeEndOfFile = 121

// Keepalive is a Notify Keepalive (GB/T 28181-2016 A.2.5.2).
type Keepalive struct {
	DeviceID string
	Status   string   // "OK" or "ERROR"
	Info     []string // DeviceIDs of faulty devices listed under Info
}

// OK reports whether the device says it works (Status OK, any case).
func (k *Keepalive) OK() bool { return equalFold(k.Status, StatusOK) }

// Keepalive decodes a Notify Keepalive.
func (m *Message) Keepalive() (*Keepalive, error) {
	r, err := m.expect(CmdKeepalive, RootNotify)
	if err != nil {
		return nil, err
	}
	k := &Keepalive{DeviceID: m.DeviceID, Status: upper(r.str("Status"))}
	for _, c := range r.n.child("Info").children("DeviceID") {
		if c.text != "" {
			k.Info = append(k.Info, c.text)
		}
	}
	return k, nil
}

// Catalog is a Response Catalog or a Notify Catalog (GB/T 28181-2016 §A.2.6
// , catalog notification, where each Item carries an Event). One
// message holds part of the list; see Assembler.
type Catalog struct {
	DeviceID string
	SumNum   int // total items across all messages of this SN
	Num      int // DeviceList@Num, items claimed in this message
	Items    []CatalogItem
}

// CatalogItem is one DeviceList/Item.
type CatalogItem struct {
	DeviceID        string
	Event           string // notify only: ON, OFF, VLOST, DEFECT, ADD, DEL, UPDATE
	Name            string
	Manufacturer    string
	Model           string
	Owner           string
	CivilCode       string
	Block           string
	Address         string
	Parental        int
	ParentID        string
	BusinessGroupID string
	SafetyWay       int
	RegisterWay     int
	CertNum         string
	Secrecy         int
	IPAddress       string
	Port            int
	Status          string // "ON" or "OFF" (devices also send ONLINE/OFFLINE, OK)
	Longitude       float64
	Latitude        float64
	PTZType         int // Info/PTZType: 1 dome, 2 half-dome, 3 fixed, 4 remote-controlled fixed
}

// Online reports whether Status says the channel is on. Devices write ON,
// ONLINE or OK for on.
func (it *CatalogItem) Online() bool {
	switch upper(it.Status) {
	case StatusOn, Online, StatusOK:
		return true
	}
	return false
}

// Catalog decodes a Response or Notify Catalog.
func (m *Message) Catalog() (*Catalog, error) {
	r, err := m.expect(CmdCatalog, RootResponse, RootNotify)
	if err != nil {
		return nil, err
	}
	c := &Catalog{DeviceID: m.DeviceID, SumNum: r.count("SumNum", false)}
	list := r.sub("DeviceList")
	c.Num = list.count("Num", true)
	for i, n := range list.n.children("Item") {
		ir := &reader{n: n, path: list.path + "/Item[" + strconv.Itoa(i+1) + "]"}
		it := CatalogItem{
			DeviceID:        ir.str("DeviceID"),
			Event:           upper(ir.str("Event")),
			Name:            ir.str("Name"),
			Manufacturer:    ir.str("Manufacturer"),
			Model:           ir.str("Model"),
			Owner:           ir.str("Owner"),
			CivilCode:       ir.str("CivilCode"),
			Block:           ir.str("Block"),
			Address:         ir.str("Address"),
			Parental:        ir.int("Parental"),
			ParentID:        ir.str("ParentID"),
			BusinessGroupID: ir.str("BusinessGroupID"),
			SafetyWay:       ir.int("SafetyWay"),
			RegisterWay:     ir.int("RegisterWay"),
			CertNum:         ir.str("CertNum"),
			Secrecy:         ir.int("Secrecy"),
			IPAddress:       ir.str("IPAddress"),
			Port:            ir.int("Port"),
			Status:          upper(ir.str("Status")),
			Longitude:       ir.float("Longitude"),
			Latitude:        ir.float("Latitude"),
		}
		info := ir.sub("Info")
		it.PTZType = info.int("PTZType")
		if info.err != nil {
			ir.fail(info.err)
		}
		if it.DeviceID == "" {
			ir.fail(fieldErr(ir.path+"/DeviceID", "", ErrMissing))
		}
		if ir.err != nil {
			return nil, ir.err
		}
		c.Items = append(c.Items, it)
	}
	if r.err != nil {
		return nil, r.err
	}
	if list.err != nil {
		return nil, list.err
	}
	return c, nil
}

// DeviceInfo is a Response DeviceInfo (GB/T 28181-2016 §A.2.6).
type DeviceInfo struct {
	DeviceID     string
	Result       string
	DeviceName   string
	Manufacturer string
	Model        string
	Firmware     string
	Channel      int
}

// DeviceInfo decodes a Response DeviceInfo.
func (m *Message) DeviceInfo() (*DeviceInfo, error) {
	r, err := m.expect(CmdDeviceInfo, RootResponse)
	if err != nil {
		return nil, err
	}
	d := &DeviceInfo{
		DeviceID:     m.DeviceID,
		Result:       upper(r.str("Result")),
		DeviceName:   r.str("DeviceName"),
		Manufacturer: r.str("Manufacturer"),
		Model:        r.str("Model"),
		Firmware:     r.str("Firmware"),
		Channel:      r.int("Channel"),
	}
	if err := r.errOr(); err != nil {
		return nil, err
	}
	return d, nil
}

// DeviceStatus is a Response DeviceStatus (GB/T 28181-2016 §A.2.6).
type DeviceStatus struct {
	DeviceID string
	Result   string
	Online   string // "ONLINE" or "OFFLINE"
	Status   string // "OK" or "ERROR"
	Encode   string // "ON" or "OFF"
	Record   string // "ON" or "OFF"
	// DeviceTime is the device clock as written; Time is it parsed in
	// time.Local, zero when absent or unparsable. Use ParseTime for another
	// zone.
	DeviceTime string
	Time       time.Time
}

// DeviceStatus decodes a Response DeviceStatus.
func (m *Message) DeviceStatus() (*DeviceStatus, error) {
	r, err := m.expect(CmdDeviceStatus, RootResponse)
	if err != nil {
		return nil, err
	}
	s := &DeviceStatus{
		DeviceID:   m.DeviceID,
		Result:     upper(r.str("Result")),
		Online:     upper(r.str("Online")),
		Status:     upper(r.str("Status")),
		Encode:     upper(r.str("Encode")),
		Record:     upper(r.str("Record")),
		DeviceTime: r.str("DeviceTime"),
	}
	s.Time = optTime(s.DeviceTime)
	return s, nil
}

// RecordInfo is a Response RecordInfo (GB/T 28181-2016 §A.2.6). One
// message holds part of the list; see Assembler.
type RecordInfo struct {
	DeviceID string
	Name     string
	SumNum   int
	Num      int // RecordList@Num
	Items    []RecordItem
}

// RecordItem is one RecordList/Item. StartTime and EndTime are kept as
// written; Start and End are them parsed in time.Local (zero if unparsable).
type RecordItem struct {
	DeviceID   string
	Name       string
	FilePath   string
	Address    string
	StartTime  string
	EndTime    string
	Start      time.Time
	End        time.Time
	Secrecy    int
	Type       string // time, alarm, manual
	RecorderID string
	FileSize   int64
}

// RecordInfo decodes a Response RecordInfo.
func (m *Message) RecordInfo() (*RecordInfo, error) {
	r, err := m.expect(CmdRecordInfo, RootResponse)
	if err != nil {
		return nil, err
	}
	ri := &RecordInfo{DeviceID: m.DeviceID, Name: r.str("Name"), SumNum: r.count("SumNum", false)}
	list := r.sub("RecordList")
	ri.Num = list.count("Num", true)
	for i, n := range list.n.children("Item") {
		ir := &reader{n: n, path: list.path + "/Item[" + strconv.Itoa(i+1) + "]"}
		it := RecordItem{
			DeviceID:   ir.str("DeviceID"),
			Name:       ir.str("Name"),
			FilePath:   ir.str("FilePath"),
			Address:    ir.str("Address"),
			StartTime:  ir.str("StartTime"),
			EndTime:    ir.str("EndTime"),
			Secrecy:    ir.int("Secrecy"),
			Type:       ir.str("Type"),
			RecorderID: ir.str("RecorderID"),
			FileSize:   ir.int64("FileSize"),
		}
		it.Start, it.End = optTime(it.StartTime), optTime(it.EndTime)
		if ir.err != nil {
			return nil, ir.err
		}
		ri.Items = append(ri.Items, it)
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := list.errOr(); err != nil {
		return nil, err
	}
	return ri, nil
}

// Alarm is a Notify Alarm (GB/T 28181-2016 A.2.5.3).
type Alarm struct {
	DeviceID         string
	AlarmPriority    int // 1 highest .. 4
	AlarmMethod      int // 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 fault, 7 other
	AlarmTime        string
	Time             time.Time // AlarmTime parsed in time.Local, zero if unparsable
	AlarmDescription string
	Longitude        float64
	Latitude         float64
	AlarmType        int // Info/AlarmType, meaning depends on AlarmMethod
}

// Alarm decodes a Notify Alarm.
func (m *Message) Alarm() (*Alarm, error) {
	r, err := m.expect(CmdAlarm, RootNotify)
	if err != nil {
		return nil, err
	}
	a := &Alarm{
		DeviceID:         m.DeviceID,
		AlarmPriority:    r.int("AlarmPriority"),
		AlarmMethod:      r.int("AlarmMethod"),
		AlarmTime:        r.str("AlarmTime"),
		AlarmDescription: r.str("AlarmDescription"),
		Longitude:        r.float("Longitude"),
		Latitude:         r.float("Latitude"),
	}
	a.Time = optTime(a.AlarmTime)
	info := r.sub("Info")
	a.AlarmType = info.int("AlarmType")
	if r.err != nil {
		return nil, r.err
	}
	if err := info.errOr(); err != nil {
		return nil, err
	}
	return a, nil
}

// PresetList is a Response PresetQuery (GB/T 28181-2016 §A.2.6).
type PresetList struct {
	DeviceID string
	Num      int // PresetList@Num
	Items    []Preset
}

// Preset is one PresetList/Item. PresetID is kept as text: devices write
// "1" and "001".
type Preset struct {
	PresetID   string
	PresetName string
}

// PresetList decodes a Response PresetQuery.
func (m *Message) PresetList() (*PresetList, error) {
	r, err := m.expect(CmdPresetQuery, RootResponse)
	if err != nil {
		return nil, err
	}
	list := r.sub("PresetList")
	p := &PresetList{DeviceID: m.DeviceID, Num: list.count("Num", true)}
	for _, n := range list.n.children("Item") {
		ir := &reader{n: n}
		p.Items = append(p.Items, Preset{PresetID: ir.str("PresetID"), PresetName: ir.str("PresetName")})
	}
	if err := list.errOr(); err != nil {
		return nil, err
	}
	return p, nil
}

// MediaStatus is a Notify MediaStatus (GB/T 28181-2016 A.2.5.4).
type MediaStatus struct {
	DeviceID   string
	NotifyType int
}

// EndOfFile reports whether NotifyType is 121 (end of the file played back).
func (s *MediaStatus) EndOfFile() bool { return s.NotifyType == NotifyTypeEndOfFile }

// MediaStatus decodes a Notify MediaStatus.
func (m *Message) MediaStatus() (*MediaStatus, error) {
	r, err := m.expect(CmdMediaStatus, RootNotify)
	if err != nil {
		return nil, err
	}
	s := &MediaStatus{DeviceID: m.DeviceID, NotifyType: r.int("NotifyType")}
	if err := r.errOr(); err != nil {
		return nil, err
	}
	return s, nil
}

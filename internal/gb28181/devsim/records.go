package devsim

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// The simulated recordings of every channel, the same for all: a file
// from 5 minutes before each hour to 50 minutes past it (55 minutes; so
// nothing is recorded from :50 to :55), every fourth one (the hours whose
// Unix hour number is 2 mod 4) an alarm recording and the others
// scheduled ("time") recordings, over the last Config.RecordDays days up
// to now. Playback and download serve any range regardless: the clip
// loops.

// Record types of GB/T 28181-2016 A.2.4.5 (RecordInfo query Type).
const (
	recordTime   = "time"
	recordAlarm  = "alarm"
	recordManual = "manual"
	recordAll    = "all"
)

// recording is one simulated recording file, clipped to a query.
type recording struct {
	start, end time.Time
	typ        string
}

const (
	fileLead = 5 * time.Minute  // a file starts this long before the hour
	fileLen  = 55 * time.Minute // and lasts this long
)

// recordingsIn lists the recordings of type typ ("", "all", "time",
// "alarm"; "manual" and others find none) that overlap [from, to), clipped
// to [from, to), to now and to the oldest recording kept (now - days),
// oldest first.
func recordingsIn(from, to, now time.Time, days int, typ string) []recording {
	typ = strings.ToLower(strings.TrimSpace(typ))
	if typ != "" && typ != recordAll && typ != recordTime && typ != recordAlarm {
		return nil
	}
	oldest := now.Add(-time.Duration(days) * 24 * time.Hour)
	if from.Before(oldest) {
		from = oldest
	}
	if to.After(now) {
		to = now
	}
	if !from.Before(to) {
		return nil
	}
	var out []recording
	// The file that may hold from starts before the hour after from.
	for h := from.Truncate(time.Hour); ; h = h.Add(time.Hour) {
		start := h.Add(-fileLead)
		if !start.Before(to) {
			break
		}
		end := start.Add(fileLen)
		if !end.After(from) {
			continue
		}
		t := recordTime
		if h.Unix()/3600%4 == 2 {
			t = recordAlarm
		}
		if typ != "" && typ != recordAll && typ != t {
			continue
		}
		out = append(out, recording{start: later(start, from), end: earlier(end, to), typ: t})
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

type recordInfoResponse struct {
	XMLName    xml.Name `xml:"Response"`
	CmdType    string
	SN         int
	DeviceID   string
	Name       string
	SumNum     int
	RecordList struct {
		Num   int          `xml:"Num,attr"`
		Items []recordItem `xml:"Item"`
	}
}

type recordItem struct {
	DeviceID   string
	Name       string
	FilePath   string
	Address    string
	StartTime  string
	EndTime    string
	Secrecy    int
	Type       string
	RecorderID string
	FileSize   int64
}

// recordInfo answers a RecordInfo query (GB/T 28181-2016 A.2.4.5 and
// A.2.6.8 / GB/T 28181-2022 A.2.6.10): SumNum items over as many
// messages as RecordPageSize needs, at least one.
func (d *device) recordInfo(m *manscdp.Message) ([][]byte, error) {
	cfg := &d.sim.cfg
	loc := cfg.Location
	startText, _ := m.Text("StartTime")
	endText, _ := m.Text("EndTime")
	typ, _ := m.Text("Type")
	from, err := parseTime(startText, loc)
	if err != nil {
		return nil, fmt.Errorf("StartTime: %w", err)
	}
	to, err := parseTime(endText, loc)
	if err != nil {
		return nil, fmt.Errorf("EndTime: %w", err)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("EndTime %s before StartTime %s", endText, startText)
	}
	id := d.target(m)
	ch := d.channelIndex(id)
	var recs []recording
	if ch >= 0 {
		recs = recordingsIn(from, to, cfg.Now(), cfg.RecordDays, typ)
	}
	name := d.channelName(ch)
	bps := d.clip(ch).bytesPerSecond
	items := make([]recordItem, len(recs))
	for i, r := range recs {
		items[i] = recordItem{
			DeviceID:   id,
			Name:       name,
			FilePath:   fmt.Sprintf("/record/%s/%s.ps", id, r.start.In(loc).Format("20060102150405")),
			Address:    d.channelAddress(ch),
			StartTime:  formatTime(r.start, loc),
			EndTime:    formatTime(r.end, loc),
			Type:       r.typ,
			RecorderID: d.id,
			FileSize:   int64(r.end.Sub(r.start).Seconds() * bps),
		}
	}
	var out [][]byte
	for start := 0; start < len(items) || start == 0; start += cfg.RecordPageSize {
		end := min(start+cfg.RecordPageSize, len(items))
		r := recordInfoResponse{CmdType: cmdRecordInfo, SN: m.SN, DeviceID: id, Name: name, SumNum: len(items)}
		r.RecordList.Num = end - start
		r.RecordList.Items = items[start:end]
		b, err := d.body(&r)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

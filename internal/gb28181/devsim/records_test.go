package devsim

import (
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// recordedAt is the schedule spelled out minute by minute: recorded
// unless the minute is :50 to :54, within the last days up to now.
func recordedAt(t, now time.Time, days int) bool {
	m := t.UTC().Minute()
	return !t.Before(now.Add(-time.Duration(days)*24*time.Hour)) && t.Before(now) && (m < 50 || m >= 55)
}

func TestRecordingsIn(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 34, 56, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		from, to time.Time
		typ      string
		want     int
	}{
		{"three hours", now.Add(-3 * time.Hour), now, "", 4},
		{"in a gap", time.Date(2025, 3, 10, 9, 51, 0, 0, time.UTC), time.Date(2025, 3, 10, 9, 54, 0, 0, time.UTC), "all", 0},
		{"future", now.Add(time.Hour), now.Add(2 * time.Hour), "", 0},
		{"older than kept", now.Add(-9 * 24 * time.Hour), now.Add(-8 * 24 * time.Hour), "", 0},
		{"a day, time", now.Add(-24 * time.Hour), now, "time", 19},
		{"a day, alarm", now.Add(-24 * time.Hour), now, "alarm", 6},
		{"a day, all", now.Add(-24 * time.Hour), now, "all", 25},
		{"manual", now.Add(-24 * time.Hour), now, "manual", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := recordingsIn(tc.from, tc.to, now, 7, tc.typ)
			if len(recs) != tc.want {
				t.Errorf("%d recordings, want %d: %v", len(recs), tc.want, recs)
			}
			for i, r := range recs {
				if !r.start.Before(r.end) || r.end.Sub(r.start) > time.Hour || r.start.Before(tc.from) || r.end.After(tc.to) {
					t.Errorf("recording %d: %v to %v", i, r.start, r.end)
				}
				if i > 0 && r.start.Before(recs[i-1].end) {
					t.Errorf("recording %d overlaps the one before", i)
				}
				if tc.typ != "" && tc.typ != "all" && r.typ != tc.typ {
					t.Errorf("recording %d of type %s", i, r.typ)
				}
				for m := r.start; m.Before(r.end); m = m.Add(time.Minute) {
					if !recordedAt(m, now, 7) {
						t.Fatalf("recording %d covers %v, in a gap", i, m)
					}
				}
			}
		})
	}
}

// TestRecordInfo queries a channel's recordings as the platform does and
// checks them against the schedule, minute by minute, and the split into
// messages.
func TestRecordInfo(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 34, 56, 0, time.UTC)
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) {
		c.Devices, c.ChannelsPerDevice = 1, 3
		c.RecordPageSize = 3
		c.Location = time.UTC
		c.Now = func() time.Time { return now }
	})
	waitOnline(t, p, s, 5*time.Second)
	dev := s.DeviceIDs()[0]
	ch := s.Channels(dev)[2]
	pr := newPeer(t)
	addr := deviceAddr(t, p, dev)
	from, to := now.Add(-7*time.Hour-20*time.Minute), now.Add(time.Hour)

	collect := func(sn int, typ string, from, to time.Time) (*manscdp.Collection, []*manscdp.Message) {
		t.Helper()
		pr.send(t, addr, dev, manscdp.RecordInfoQuery(sn, ch, from, to, typ, ""))
		asm := manscdp.NewAssembler(manscdp.AssemblerOptions{})
		var msgs []*manscdp.Message
		for {
			m := nextMsg(t, p, manscdp.CmdRecordInfo, 5*time.Second)
			msgs = append(msgs, m)
			col, done, err := asm.Add(m)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				return col, msgs
			}
		}
	}
	col, msgs := collect(100, "all", from, to)
	if col.SumNum != 8 || len(col.Records) != 8 || len(msgs) != 3 {
		t.Fatalf("%d records of SumNum %d in %d messages, want 8 in 3", len(col.Records), col.SumNum, len(msgs))
	}
	for _, m := range msgs {
		ri, err := m.RecordInfo()
		if err != nil || ri.DeviceID != ch || ri.SumNum != 8 || ri.Num != len(ri.Items) || ri.Num > 3 || m.SN != 100 {
			t.Errorf("message %+v %v", ri, err)
		}
		if m.DeclaredCharset != "UTF-8" {
			t.Errorf("charset %q", m.DeclaredCharset)
		}
	}
	covered := map[time.Time]bool{}
	for _, it := range col.Records {
		start, err1 := manscdp.ParseTime(it.StartTime, time.UTC)
		end, err2 := manscdp.ParseTime(it.EndTime, time.UTC)
		if err1 != nil || err2 != nil || it.DeviceID != ch || end.Sub(start) > time.Hour || !start.Before(end) || it.FileSize <= 0 || it.RecorderID != dev {
			t.Errorf("item %+v", it)
		}
		for m := start; m.Before(end); m = m.Add(time.Minute) {
			covered[m.Truncate(time.Minute)] = true
		}
	}
	for m := from.Truncate(time.Minute).Add(time.Minute); m.Before(to); m = m.Add(time.Minute) {
		if want := recordedAt(m, now, 7); covered[m] != want {
			t.Errorf("%v: recorded %v, schedule says %v", m, covered[m], want)
		}
	}

	timeCol, _ := collect(101, "time", from, to)
	alarmCol, _ := collect(102, "alarm", from, to)
	if len(timeCol.Records)+len(alarmCol.Records) != 8 || len(alarmCol.Records) == 0 {
		t.Errorf("%d time and %d alarm records, want 8 together", len(timeCol.Records), len(alarmCol.Records))
	}
	for _, it := range alarmCol.Records {
		if it.Type != "alarm" {
			t.Errorf("alarm query returned %+v", it)
		}
	}
	for _, it := range timeCol.Records {
		if it.Type != "time" {
			t.Errorf("time query returned %+v", it)
		}
	}
	old, msgs := collect(103, "", now.Add(-10*24*time.Hour), now.Add(-9*24*time.Hour))
	if old.SumNum != 0 || len(msgs) != 1 {
		t.Errorf("before the kept days: %+v in %d messages", old, len(msgs))
	}
	if code, reason := pr.sendCode(t, addr, dev, []byte(`<?xml version="1.0"?><Query><CmdType>RecordInfo</CmdType><SN>9</SN><DeviceID>`+ch+`</DeviceID><StartTime>yesterday</StartTime><EndTime>2025-03-10T00:00:00</EndTime></Query>`)); code != 400 {
		t.Errorf("bad StartTime: %d %s", code, reason)
	}
}

package model

import (
	"errors"
	"testing"
	"time"
)

func TestRecordPlanActive(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	p := RecordPlan{Mode: RecordSchedule, Schedule: []WeeklyRange{
		{Weekday: time.Monday, From: 8 * 60, To: 18 * 60},
		{Weekday: time.Saturday, From: 0, To: 1440},
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 11, 30, 8, 0, 0, 0, loc), true},       // Monday 08:00
		{time.Date(2026, 11, 30, 17, 59, 0, 0, loc), true},     // Monday 17:59
		{time.Date(2026, 11, 30, 18, 0, 0, 0, loc), false},     // Monday 18:00: ranges end before To
		{time.Date(2026, 11, 30, 7, 59, 0, 0, loc), false},     // Monday 07:59
		{time.Date(2026, 12, 1, 12, 0, 0, 0, loc), false},      // Tuesday
		{time.Date(2026, 12, 5, 23, 59, 0, 0, loc), true},      // Saturday, all day
		{time.Date(2026, 11, 30, 0, 30, 0, 0, time.UTC), true}, // 08:30 Monday in CST...
	} {
		at := c.at
		if at.Location() == time.UTC {
			at = at.In(loc) // ...read in the schedule's zone
		}
		if got := p.Active(at); got != c.want {
			t.Errorf("Active(%v) = %v, want %v", at, got, c.want)
		}
	}
	if !(&RecordPlan{Mode: RecordContinuous}).Active(time.Now()) || (&RecordPlan{Mode: RecordOff}).Active(time.Now()) {
		t.Error("continuous must always record and off never")
	}
}

func TestRecordPlanValidate(t *testing.T) {
	for _, c := range []struct {
		p     RecordPlan
		field string
	}{
		{RecordPlan{Mode: "always"}, "mode"},
		{RecordPlan{Mode: RecordSchedule}, "schedule"},
		{RecordPlan{Mode: RecordSchedule, Schedule: []WeeklyRange{{Weekday: 7, From: 0, To: 60}}}, "schedule[0].weekday"},
		{RecordPlan{Mode: RecordSchedule, Schedule: []WeeklyRange{{Weekday: 1, From: 600, To: 600}}}, "schedule[0]"},
		{RecordPlan{Mode: RecordSchedule, Schedule: []WeeklyRange{{Weekday: 1, From: 0, To: 1441}}}, "schedule[0]"},
		{RecordPlan{Mode: RecordContinuous, RetentionDays: -1}, "retention_days"},
	} {
		var fe *FieldError
		if err := c.p.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", c.p, err, c.field)
		}
	}
	if s := (WeeklyRange{Weekday: time.Monday, From: 480, To: 1080}).String(); s != "mon 08:00-18:00" {
		t.Errorf("String() = %q", s)
	}
}

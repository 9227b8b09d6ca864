package model

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Segment is one recorded file of a channel: a self-contained fragmented
// MP4 (an init segment, then moof+mdat fragments of at most a second each).
// Within one recording run the segments of a channel follow each other
// without gaps; a new run (after the source reconnected or the recorder
// restarted) starts a new timeline.
type Segment struct {
	ID        int64
	ChannelID int64
	Start     time.Time // wall-clock time of the first sample
	End       time.Time // Start plus the media duration of the file
	Bytes     int64
	Key       string // blob key, e.g. "12/2026-11-29/20261129T101500.000Z.mp4"
	Location  Location
	SHA256    string // hex; empty while the segment is being written
	Codec     string // RFC 6381 codecs of the tracks, "avc1.64001f,mp4a.40.2"
	Run       int64  // recording run: segments of one run are contiguous
	// Open reports a segment that is still being written (known only to
	// the recorder, never stored): Bytes and End grow part by part.
	Open bool
}

// Duration returns End - Start.
func (s Segment) Duration() time.Duration { return s.End.Sub(s.Start) }

// Location says which blob store holds a segment.
type Location string

// Locations of segments.
const (
	// LocationDisk is the local recordings folder (also the spool of
	// segments waiting to be uploaded to S3).
	LocationDisk Location = "disk"
	// LocationS3 is the S3-compatible object store.
	LocationS3 Location = "s3"
)

// RecordMode says when a channel is recorded.
type RecordMode string

// Recording modes.
const (
	RecordOff        RecordMode = "off"
	RecordContinuous RecordMode = "continuous"
	RecordSchedule   RecordMode = "schedule"
)

// RecordPlan is the recording plan of a channel.
type RecordPlan struct {
	ChannelID int64
	Mode      RecordMode
	// Schedule holds the weekly time ranges of RecordSchedule, in the
	// platform's local time zone.
	Schedule []WeeklyRange
	// RetentionDays is how long segments are kept; 0 means the default.
	RetentionDays int
	UpdatedAt     time.Time
}

// WeeklyRange is a time range on one weekday: [From, To) as minutes after
// midnight, 0 <= From < To <= 1440.
type WeeklyRange struct {
	Weekday time.Weekday `json:"weekday"`
	From    int          `json:"from"`
	To      int          `json:"to"`
}

// String renders r as "mon 08:00-18:00".
func (r WeeklyRange) String() string {
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d", strings.ToLower(r.Weekday.String()[:3]),
		r.From/60, r.From%60, r.To/60, r.To%60)
}

// Validate checks p and names the field at fault.
func (p *RecordPlan) Validate() error {
	switch p.Mode {
	case RecordOff, RecordContinuous:
	case RecordSchedule:
		if len(p.Schedule) == 0 {
			return &FieldError{Field: "schedule", Message: "a schedule plan needs at least one time range"}
		}
	default:
		return &FieldError{Field: "mode", Message: fmt.Sprintf("must be off, continuous or schedule, got %q", p.Mode)}
	}
	for i, r := range p.Schedule {
		f := "schedule[" + strconv.Itoa(i) + "]"
		if r.Weekday < time.Sunday || r.Weekday > time.Saturday {
			return &FieldError{Field: f + ".weekday", Message: "must be 0 (Sunday) to 6 (Saturday)"}
		}
		if r.From < 0 || r.To > 1440 || r.From >= r.To {
			return &FieldError{Field: f, Message: "needs 0 <= from < to <= 1440 (minutes after midnight)"}
		}
	}
	if p.RetentionDays < 0 || p.RetentionDays > 3650 {
		return &FieldError{Field: "retention_days", Message: "must be between 0 (the default) and 3650"}
	}
	return nil
}

// Active reports whether the plan records at t (read in t's location).
func (p *RecordPlan) Active(t time.Time) bool {
	switch p.Mode {
	case RecordContinuous:
		return true
	case RecordSchedule:
		m := t.Hour()*60 + t.Minute()
		for _, r := range p.Schedule {
			if r.Weekday == t.Weekday() && m >= r.From && m < r.To {
				return true
			}
		}
	}
	return false
}

// ExportState is the state of an evidence export.
type ExportState string

// States of an export.
const (
	ExportQueued   ExportState = "queued"
	ExportRunning  ExportState = "running"
	ExportDone     ExportState = "done"
	ExportFailed   ExportState = "failed"
	ExportReleased ExportState = "released" // files deleted, segments unlocked
)

// Export is an evidence export: the recordings of one or more channels over
// a range, written as one MP4 per channel plus a manifest, with the
// segments it used locked against retention until it is released.
type Export struct {
	ID          int64
	RequestedBy string
	RequestedAt time.Time
	Start, End  time.Time
	ChannelIDs  []int64
	State       ExportState
	Progress    float64 // 0..1
	Error       string
	Bytes       int64
	FinishedAt  time.Time
	ReleasedAt  time.Time
}

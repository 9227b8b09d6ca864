package record

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// keyTime is the layout of the start time in a segment key: UTC, with
// milliseconds, and sortable as text.
const keyTime = "20060102T150405.000Z"

// SegmentKey returns the blob key of a segment: one folder per channel and
// UTC day, the file named by its start time and recording run, e.g.
// "12/2026-11-29/20261129T101500.000Z-1764411300000.mp4". The start-up
// scan reads everything the index needs back from the key and the file.
func SegmentKey(channelID int64, start time.Time, run int64) string {
	u := start.UTC()
	return strconv.FormatInt(channelID, 10) + "/" + u.Format(time.DateOnly) + "/" +
		u.Format(keyTime) + "-" + strconv.FormatInt(run, 10) + ".mp4"
}

// ParseSegmentKey is the inverse of SegmentKey.
func ParseSegmentKey(key string) (channelID int64, start time.Time, run int64, err error) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 || !strings.HasSuffix(parts[2], ".mp4") {
		return 0, time.Time{}, 0, fmt.Errorf("record: %q is not a segment key (want CHANNEL/DAY/START-RUN.mp4)", key)
	}
	channelID, err = strconv.ParseInt(parts[0], 10, 64)
	if err != nil || channelID <= 0 {
		return 0, time.Time{}, 0, fmt.Errorf("record: segment key %q: bad channel %q", key, parts[0])
	}
	name := strings.TrimSuffix(parts[2], ".mp4")
	ts, runStr, ok := strings.Cut(name, "-")
	if !ok {
		return 0, time.Time{}, 0, fmt.Errorf("record: segment key %q: no run in the file name", key)
	}
	start, err = time.Parse(keyTime, ts)
	if err != nil {
		return 0, time.Time{}, 0, fmt.Errorf("record: segment key %q: bad start time: %w", key, err)
	}
	run, err = strconv.ParseInt(runStr, 10, 64)
	if err != nil {
		return 0, time.Time{}, 0, fmt.Errorf("record: segment key %q: bad run %q", key, runStr)
	}
	if start.Format(time.DateOnly) != parts[1] {
		return 0, time.Time{}, 0, fmt.Errorf("record: segment key %q: start is not in the day folder", key)
	}
	// One key per segment: no leading zeros, no other spellings of the time.
	if SegmentKey(channelID, start, run) != key {
		return 0, time.Time{}, 0, fmt.Errorf("record: segment key %q is not written as the recorder writes it", key)
	}
	return channelID, start, run, nil
}

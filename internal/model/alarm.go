package model

import "time"

// Alarm is an alarm raised by a device (GB/T 28181 Alarm notify) or, later,
// by video analytics. The model is deliberately general: Source says where
// it came from, Type is the source's own type code or name.
type Alarm struct {
	ID          int64  `json:"id"`
	Source      string `json:"source"` // "gb28181", ...
	DeviceCode  string `json:"device_code"`
	ChannelCode string `json:"channel_code"`
	// ChannelID is the platform's channel, 0 when the code is not a known
	// channel (an alarm input, or the device itself).
	ChannelID int64 `json:"channel_id"`
	// Priority: 1 (highest, 一级警情) to 4; 0 unknown.
	Priority int `json:"priority"`
	// Method: GB/T 28181 alarm method: 1 phone, 2 device, 3 SMS, 4 GPS,
	// 5 video, 6 device fault, 7 other.
	Method      int       `json:"method"`
	Type        string    `json:"type"`
	Description string    `json:"description"`
	Lat         float64   `json:"lat"`
	Lng         float64   `json:"lng"`
	OccurredAt  time.Time `json:"occurred_at"` // the device's time of the alarm
	ReceivedAt  time.Time `json:"received_at"`
	State       string    `json:"state"` // "new"; the alarm workflow adds more
}

// AlarmMethodName names a GB/T 28181 alarm method in English.
func AlarmMethodName(m int) string {
	switch m {
	case 1:
		return "phone"
	case 2:
		return "device"
	case 3:
		return "sms"
	case 4:
		return "gps"
	case 5:
		return "video"
	case 6:
		return "device_fault"
	case 7:
		return "other"
	}
	return "unknown"
}

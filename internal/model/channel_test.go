package model

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func validChannel() Channel {
	return Channel{
		Code:         "44182110001320000001",
		Name:         "汤塘镇政府门口",
		DeviceID:     7,
		DivisionCode: "441821101",
		SourceURL:    "rtsp://admin:Secret123@192.168.1.64:554/Streaming/Channels/101",
		Transport:    TransportTCP,
		Lat:          23.87, Lng: 113.53,
		Heading: 90, FOV: 60, Range: 50,
		Status: ChannelStatusOnline,
	}
}

func TestChannelValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Channel)
		want   []string
	}{
		{"valid", func(c *Channel) {}, nil},
		{"empty status and transport mean defaults", func(c *Channel) { c.Status, c.Transport = "", "" }, nil},
		{"no source URL (GB/T 28181)", func(c *Channel) { c.SourceURL = "" }, nil},
		{"no device", func(c *Channel) { c.DeviceID = 0 }, nil},
		{"rtsps", func(c *Channel) { c.SourceURL = "rtsps://cam.example:322/live" }, nil},
		{"encoded password", func(c *Channel) { c.SourceURL = "rtsp://admin:a%23b%3Fc@10.0.0.1/x" }, nil},
		{"password with @", func(c *Channel) { c.SourceURL = "rtsp://admin:Abc@123@10.0.0.1/x" }, nil},
		{"edges", func(c *Channel) { c.Lat, c.Lng, c.Heading, c.FOV, c.Range = -90, 180, 0, 360, 0 }, nil},
		{"code short", func(c *Channel) { c.Code = "4418211000132000000" }, []string{"code: must be 20 digits, got 19"}},
		{"code letter", func(c *Channel) { c.Code = "4418211000132000000A" },
			[]string{"code: must be 20 digits, got a non-digit character"}},
		{"no name", func(c *Channel) { c.Name = "" }, []string{"name: is required"}},
		{"negative device", func(c *Channel) { c.DeviceID = -1 }, []string{"device_id: must be 0 (none) or a device ID, got -1"}},
		{"no division", func(c *Channel) { c.DivisionCode = "" }, []string{"division: is required"}},
		{"http URL", func(c *Channel) { c.SourceURL = "http://admin:pw@cam/x" }, []string{"source_url: scheme must be rtsp or rtsps"}},
		{"no host", func(c *Channel) { c.SourceURL = "rtsp:///x" }, []string{"source_url: host is required"}},
		{"unparsable", func(c *Channel) { c.SourceURL = "rtsp://admin:pw@[::1/x" }, []string{"source_url: not a valid URL"}},
		{"bare # in password", func(c *Channel) { c.SourceURL = "rtsp://admin:12#34@10.0.0.1/x" },
			[]string{"source_url: is ambiguous: percent-encode '#', '?', '/' and '@' in user and password"}},
		{"transport", func(c *Channel) { c.Transport = "http" }, []string{`transport: must be auto, tcp, udp or tcp-active, got "http"`}},
		{"lat", func(c *Channel) { c.Lat = 90.5 }, []string{"lat: must be in [-90,90], got 90.5"}},
		{"lng", func(c *Channel) { c.Lng = -181 }, []string{"lng: must be in [-180,180], got -181"}},
		{"lat NaN", func(c *Channel) { c.Lat = math.NaN() }, []string{"lat: must be in [-90,90], got NaN"}},
		{"heading 360", func(c *Channel) { c.Heading = 360 }, []string{"heading: must be in [0,360), got 360"}},
		{"heading negative", func(c *Channel) { c.Heading = -1 }, []string{"heading: must be in [0,360), got -1"}},
		{"fov 0 is unknown", func(c *Channel) { c.FOV = 0 }, nil},
		{"fov negative", func(c *Channel) { c.FOV = -1 }, []string{"fov: must be in (0,360], got -1"}},
		{"fov 361", func(c *Channel) { c.FOV = 361 }, []string{"fov: must be in (0,360], got 361"}},
		{"range negative", func(c *Channel) { c.Range = -5 }, []string{"range: must be a finite number >= 0, got -5"}},
		{"range Inf", func(c *Channel) { c.Range = math.Inf(1) }, []string{"range: must be a finite number >= 0, got +Inf"}},
		{"status", func(c *Channel) { c.Status = "dead" },
			[]string{`status: must be offline, connecting, online, idle or error, got "dead"`}},
		{"reason", func(c *Channel) { c.Reason = "Bad Thing" },
			[]string{`reason: must be a lowercase code like "unreachable", got "Bad Thing"`}},
		{"last error", func(c *Channel) { c.LastError = strings.Repeat("x", MaxLastErrorLen+1) },
			[]string{"last_error: must be at most 1024 bytes, got 1025"}},
		{"several", func(c *Channel) { c.Code, c.Heading, c.FOV = "1", 400, -1 },
			[]string{"code: must be 20 digits, got 1", "heading: must be in [0,360), got 400", "fov: must be in (0,360], got -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validChannel()
			tt.modify(&c)
			err := c.Validate()
			checkFieldErrors(t, err, tt.want)
			if err != nil && strings.Contains(err.Error(), "Secret123") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestValidReason(t *testing.T) {
	for _, r := range []string{"", ReasonUnreachable, ReasonAuthFailed, ReasonNoVideo, ReasonCodecUnsupported,
		ReasonTimeout, ReasonSourceClosed, "wrong_ssrc", "tcp_setup2"} {
		if !ValidReason(r) {
			t.Errorf("ValidReason(%q) = false", r)
		}
	}
	for _, r := range []string{"Timeout", "_x", "1x", "no video", "no-video", strings.Repeat("a", MaxReasonLen+1)} {
		if ValidReason(r) {
			t.Errorf("ValidReason(%q) = true", r)
		}
	}
}

func TestRedactedSourceURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"no credentials", "rtsp://10.0.0.1:554/live", "rtsp://10.0.0.1:554/live"},
		{"user only", "rtsp://admin@10.0.0.1/live", "rtsp://admin@10.0.0.1/live"},
		{"password", "rtsp://admin:Secret123@10.0.0.1:554/h264", "rtsp://admin:xxxxx@10.0.0.1:554/h264"},
		{"password with @", "rtsp://admin:Abc@123@10.0.0.1/h264", "rtsp://admin:xxxxx@10.0.0.1/h264"},
		{"bare # in password", "rtsp://admin:12#34@10.0.0.1/x", "rtsp://xxxxx@10.0.0.1/x"},
		{"bare / in password", "rtsp://admin:1/2@10.0.0.1/x", "rtsp://xxxxx@10.0.0.1/x"},
		{"unparsable", "rtsp://admin:pw@[::1/x", "rtsp://xxxxx@[::1/x"},
		{"no scheme", "admin:pw@[::1", "xxxxx@[::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Channel{SourceURL: tt.in}
			if got := c.RedactedSourceURL(); got != tt.want {
				t.Errorf("RedactedSourceURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestChannelStatusParse(t *testing.T) {
	for _, s := range []ChannelStatus{ChannelStatusOffline, ChannelStatusConnecting, ChannelStatusOnline,
		ChannelStatusIdle, ChannelStatusError} {
		got, err := ParseChannelStatus(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseChannelStatus(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseChannelStatus("up"); err == nil {
		t.Error("ParseChannelStatus(up): want error")
	}
}

func TestChannelJSON(t *testing.T) {
	at := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	c := validChannel()
	c.ID, c.StatusChangedAt, c.CreatedAt, c.UpdatedAt = 3, at, at, at
	c.Reason = ReasonTimeout
	var m map[string]any
	if err := json.Unmarshal([]byte(mustJSON(t, c)), &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"id", "code", "name", "device_id", "division", "source_url", "transport", "lat", "lng",
		"heading", "fov", "range", "status", "last_error", "reason", "status_changed_at", "created_at", "updated_at"}
	if len(m) != len(want) {
		t.Errorf("JSON has %d keys, want %d: %v", len(m), len(want), m)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if m["division"] != "441821101" || m["status"] != "online" || m["status_changed_at"] != "2024-05-01T08:00:00Z" {
		t.Errorf("JSON values: %v", m)
	}
}

package model

import (
	"fmt"
	"strings"
	"time"
)

// DeviceKind says how the platform talks to a device.
type DeviceKind string

// The device kinds.
const (
	// DeviceKindRTSP is a camera or encoder whose channels are pulled over RTSP.
	DeviceKindRTSP DeviceKind = "rtsp"
	// DeviceKindGB28181 is a GB/T 28181 camera or NVR that registers over SIP.
	DeviceKindGB28181 DeviceKind = "gb28181"
	// DeviceKindPlatform is a lower platform joined over GB/T 28181 cascade.
	DeviceKindPlatform DeviceKind = "platform"
)

// Valid reports whether k is one of the defined kinds.
func (k DeviceKind) Valid() bool {
	switch k {
	case DeviceKindRTSP, DeviceKindGB28181, DeviceKindPlatform:
		return true
	}
	return false
}

// String returns the kind as stored and sent in JSON.
func (k DeviceKind) String() string { return string(k) }

// ParseDeviceKind parses a kind, ignoring case and surrounding space.
func ParseDeviceKind(s string) (DeviceKind, error) {
	k := DeviceKind(strings.ToLower(strings.TrimSpace(s)))
	if !k.Valid() {
		return "", fmt.Errorf("model: unknown device kind %q", s)
	}
	return k, nil
}

// Device is a physical or logical source of channels: an RTSP camera, a
// GB/T 28181 device or NVR, or a lower platform.
type Device struct {
	ID int64 `json:"id"`
	// Code is the 20-digit GB/T 28181 code. It is required for gb28181 and
	// platform devices and optional ("") for RTSP devices; non-empty codes
	// are unique.
	Code string     `json:"code"`
	Name string     `json:"name"`
	Kind DeviceKind `json:"kind"`
	// DivisionCode places the device in the tree; "" when not yet known
	// (a GB/T 28181 device that registered itself).
	DivisionCode string `json:"division"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	// Status is free-form and owned by whatever manages the device (for a
	// GB/T 28181 device, the registrar: "online", "offline"); "" is unknown.
	Status string `json:"status"`

	// The registrar's view of a GB/T 28181 device, written by the platform
	// (not by configuration edits); zero for other kinds.
	Transport    string    `json:"transport,omitempty"`     // UDP or TCP
	RemoteAddr   string    `json:"remote_addr,omitempty"`   // where its SIP requests come from
	StatusReason string    `json:"status_reason,omitempty"` // why it is offline, in words
	Firmware     string    `json:"firmware,omitempty"`
	LastSeen     time.Time `json:"last_seen"`     // last REGISTER or keepalive
	RegisteredAt time.Time `json:"registered_at"` // last successful REGISTER
	// ClockOffsetMS is the device's clock minus the platform's, in
	// milliseconds, from its DeviceStatus DeviceTime, measured at
	// ClockCheckedAt; nil if never measured.
	ClockOffsetMS  *int64    `json:"clock_offset_ms,omitempty"`
	ClockCheckedAt time.Time `json:"clock_checked_at"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxDeviceFieldLen is the longest Manufacturer, Model and Status, in bytes.
const MaxDeviceFieldLen = 128

// Validate checks the fields a caller sets. It ignores ID and the timestamps.
func (d Device) Validate() error {
	var errs fieldErrors
	if !d.Kind.Valid() {
		errs.add("kind", fmt.Sprintf("must be rtsp, gb28181 or platform, got %q", string(d.Kind)))
	}
	switch {
	case d.Code != "":
		if msg := checkCode20(d.Code); msg != "" {
			errs.add("code", msg)
		}
	case d.Kind == DeviceKindGB28181 || d.Kind == DeviceKindPlatform:
		errs.add("code", fmt.Sprintf("is required for %s devices", d.Kind))
	}
	checkName(&errs, d.Name)
	if d.DivisionCode != "" {
		if msg := checkDivisionCode(d.DivisionCode); msg != "" {
			errs.add("division", msg)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"manufacturer", d.Manufacturer}, {"model", d.Model}, {"status", d.Status},
	} {
		if len(f.v) > MaxDeviceFieldLen {
			errs.add(f.name, fmt.Sprintf("must be at most %d bytes, got %d", MaxDeviceFieldLen, len(f.v)))
		}
	}
	return errs.err()
}

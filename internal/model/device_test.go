package model

import (
	"strings"
	"testing"
)

func TestDeviceValidate(t *testing.T) {
	tests := []struct {
		name string
		d    Device
		want []string
	}{
		{"rtsp without code", Device{Name: "门口枪机", Kind: DeviceKindRTSP}, nil},
		{"rtsp with code and division", Device{Name: "x", Kind: DeviceKindRTSP, Code: "44182110001320000001", DivisionCode: "441821101"}, nil},
		{"nvr", Device{Name: "汤塘镇NVR", Kind: DeviceKindGB28181, Code: "44182110001180000001",
			Manufacturer: "Hikvision", Model: "DS-7816N", Status: "online"}, nil},
		{"platform", Device{Name: "公安平台", Kind: DeviceKindPlatform, Code: "44180000002000000001"}, nil},
		{"nvr without code", Device{Name: "x", Kind: DeviceKindGB28181}, []string{"code: is required for gb28181 devices"}},
		{"platform without code", Device{Name: "x", Kind: DeviceKindPlatform}, []string{"code: is required for platform devices"}},
		{"short code", Device{Name: "x", Kind: DeviceKindRTSP, Code: "123"}, []string{"code: must be 20 digits, got 3"}},
		{"bad kind", Device{Name: "x", Kind: "onvif"}, []string{`kind: must be rtsp, gb28181 or platform, got "onvif"`}},
		{"no name", Device{Kind: DeviceKindRTSP}, []string{"name: is required"}},
		{"bad division", Device{Name: "x", Kind: DeviceKindRTSP, DivisionCode: "44182"},
			[]string{"division: must be 2, 4, 6, 9 or 12 digits, got 5"}},
		{"long model", Device{Name: "x", Kind: DeviceKindRTSP, Model: strings.Repeat("m", MaxDeviceFieldLen+1)},
			[]string{"model: must be at most 128 bytes, got 129"}},
		{"empty", Device{}, []string{`kind: must be rtsp, gb28181 or platform, got ""`, "name: is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldErrors(t, tt.d.Validate(), tt.want)
		})
	}
}

func TestParseDeviceKind(t *testing.T) {
	for in, want := range map[string]DeviceKind{"rtsp": DeviceKindRTSP, " GB28181 ": DeviceKindGB28181, "Platform": DeviceKindPlatform} {
		if got, err := ParseDeviceKind(in); err != nil || got != want {
			t.Errorf("ParseDeviceKind(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDeviceKind("onvif"); err == nil {
		t.Error("ParseDeviceKind(onvif): want error")
	}
}

func TestValidateDivisionCode(t *testing.T) {
	for _, ok := range []string{"44", "4418", "441821", "441821101", "441821101201"} {
		if err := ValidateDivisionCode(ok); err != nil {
			t.Errorf("ValidateDivisionCode(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "4", "44182", "4418211011", "44182a"} {
		if err := ValidateDivisionCode(bad); err == nil {
			t.Errorf("ValidateDivisionCode(%q) = nil", bad)
		}
	}
}

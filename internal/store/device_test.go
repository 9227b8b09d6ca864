package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

func TestDeviceCRUD(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	clock := setClock(s, time.Date(2024, 5, 1, 8, 0, 0, 123456789, time.UTC))

	d := &model.Device{
		Code: "44182110001180000001", Name: "汤塘镇NVR", Kind: model.DeviceKindGB28181,
		DivisionCode: "441821101", Manufacturer: "Hikvision", Model: "DS-7816N-K2", Status: "online",
	}
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	wantTime := time.Date(2024, 5, 1, 8, 0, 0, 123000000, time.UTC)
	if d.ID == 0 || !d.CreatedAt.Equal(wantTime) || d.UpdatedAt != d.CreatedAt {
		t.Errorf("after create: ID %d, times %v %v", d.ID, d.CreatedAt, d.UpdatedAt)
	}
	got, err := s.GetDevice(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("GetDevice = %+v, %v\nwant %+v", got, err, d)
	}

	// An RTSP camera with neither code nor division.
	cam := &model.Device{Name: "门口枪机", Kind: model.DeviceKindRTSP}
	if err := s.CreateDevice(ctx, cam); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetDevice(ctx, cam.ID)
	if err != nil || !reflect.DeepEqual(got, cam) {
		t.Fatalf("GetDevice = %+v, %v\nwant %+v", got, err, cam)
	}

	clock.t = clock.t.Add(time.Hour)
	d.Name, d.Status, d.DivisionCode = "汤塘镇NVR-2", "offline", "441821"
	if err := s.UpdateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !d.CreatedAt.Equal(wantTime) || !d.UpdatedAt.Equal(wantTime.Add(time.Hour)) {
		t.Errorf("after update: times %v %v", d.CreatedAt, d.UpdatedAt)
	}
	got, err = s.GetDevice(ctx, d.ID)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("GetDevice after update = %+v, %v\nwant %+v", got, err, d)
	}

	if err := s.DeleteDevice(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDevice(ctx, d.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetDevice after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx, d.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteDevice = %v, want ErrNotFound", err)
	}
	d2 := *d
	if err := s.UpdateDevice(ctx, &d2); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateDevice of a deleted device = %v, want ErrNotFound", err)
	}

	// Ids are not reused.
	again := &model.Device{Name: "x", Kind: model.DeviceKindRTSP}
	if err := s.CreateDevice(ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.ID <= cam.ID {
		t.Errorf("new device got ID %d, not above %d", again.ID, cam.ID)
	}
}

func TestDeviceErrors(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	nvr := &model.Device{Code: "44182110001180000001", Name: "NVR", Kind: model.DeviceKindGB28181, DivisionCode: "441821"}
	if err := s.CreateDevice(ctx, nvr); err != nil {
		t.Fatal(err)
	}
	// Two devices without a code do not conflict.
	for i := 0; i < 2; i++ {
		if err := s.CreateDevice(ctx, &model.Device{Name: "cam", Kind: model.DeviceKindRTSP}); err != nil {
			t.Fatalf("codeless device #%d: %v", i+1, err)
		}
	}

	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"duplicate code", func() error {
			return s.CreateDevice(ctx, &model.Device{Code: nvr.Code, Name: "dup", Kind: model.DeviceKindGB28181})
		}, ErrConflict},
		{"unknown division", func() error {
			return s.CreateDevice(ctx, &model.Device{Name: "x", Kind: model.DeviceKindRTSP, DivisionCode: "441899"})
		}, ErrUnknownDivision},
		{"update to unknown division", func() error {
			d := *nvr
			d.DivisionCode = "441899101"
			return s.UpdateDevice(ctx, &d)
		}, ErrUnknownDivision},
		{"update to taken code", func() error {
			d := &model.Device{Code: "44182110001180000002", Name: "other", Kind: model.DeviceKindGB28181}
			if err := s.CreateDevice(ctx, d); err != nil {
				return err
			}
			d.Code = nvr.Code
			return s.UpdateDevice(ctx, d)
		}, ErrConflict},
		{"get missing", func() error { _, err := s.GetDevice(ctx, 9999); return err }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}

	err := s.CreateDevice(ctx, &model.Device{Name: "x", Kind: "onvif"})
	var fe *model.FieldError
	if !errors.As(err, &fe) || fe.Field != "kind" {
		t.Errorf("invalid device: error %v, want a FieldError on kind", err)
	}
}

func TestListDevices(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	mk := func(name string, kind model.DeviceKind, code, div string) int64 {
		d := &model.Device{Name: name, Kind: kind, Code: code, DivisionCode: div}
		if err := s.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	a := mk("a", model.DeviceKindGB28181, "44182110101180000001", "441821101")
	b := mk("b", model.DeviceKindRTSP, "", "441821101201")
	c := mk("c", model.DeviceKindRTSP, "", "441882106201")
	p := mk("p", model.DeviceKindPlatform, "44180000002000000001", "441800")
	n := mk("n", model.DeviceKindRTSP, "", "")

	tests := []struct {
		name string
		f    DeviceFilter
		want []int64
	}{
		{"all", DeviceFilter{}, []int64{a, b, c, p, n}},
		{"city subtree", DeviceFilter{DivisionCode: "441800"}, []int64{a, b, c, p}},
		{"county subtree", DeviceFilter{DivisionCode: "441821"}, []int64{a, b}},
		{"village", DeviceFilter{DivisionCode: "441882106201"}, []int64{c}},
		{"unknown division", DeviceFilter{DivisionCode: "441899"}, nil},
		{"kind", DeviceFilter{Kind: model.DeviceKindRTSP}, []int64{b, c, n}},
		{"kind in subtree", DeviceFilter{Kind: model.DeviceKindRTSP, DivisionCode: "441821"}, []int64{b}},
		{"limit", DeviceFilter{Limit: 2}, []int64{a, b}},
		{"limit offset", DeviceFilter{Limit: 2, Offset: 2}, []int64{c, p}},
		{"offset only", DeviceFilter{Offset: 3}, []int64{p, n}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devs, err := s.ListDevices(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, d := range devs {
				ids = append(ids, d.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("ListDevices(%+v) = %v, want %v", tt.f, ids, tt.want)
			}
		})
	}
}

package store

import (
	"context"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

func TestSaveDeviceStates(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	const nvr = "44182110001180000001"
	ids, err := s.SaveDeviceStates(ctx, []DeviceState{
		{Code: nvr, DivisionCode: "441821", Online: true, Reason: "registered", Transport: "UDP", RemoteAddr: "10.0.0.5:5060", At: at, Registered: true},
		{Code: "44182110002000000001", Kind: model.DeviceKindPlatform, Online: true, Reason: "registered", At: at, Registered: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.GetDeviceByCode(ctx, nvr)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != ids[nvr] || d.Kind != model.DeviceKindGB28181 || d.Status != "online" || d.DivisionCode != "441821" ||
		d.Transport != "UDP" || d.RemoteAddr != "10.0.0.5:5060" || !d.LastSeen.Equal(at) || !d.RegisteredAt.Equal(at) || d.Name != nvr {
		t.Errorf("device after registration: %+v", d)
	}
	if p, _ := s.GetDeviceByCode(ctx, "44182110002000000001"); p.Kind != model.DeviceKindPlatform || p.DivisionCode != "" {
		t.Errorf("lower platform: %+v", p)
	}

	// Its catalog, then it goes offline: idle channels follow it.
	res, err := s.SyncCatalog(ctx, d.ID, []CatalogChannel{
		{Code: "44182110001310000001", Name: "大门", DivisionCode: "441821101", Status: "ON", PTZType: 1, ParentCode: nvr},
		{Code: "44182110001310000002", Name: "后门", DivisionCode: "441821101", Status: "OFF"},
	}, nil, true)
	if err != nil || res.Added != 2 {
		t.Fatalf("SyncCatalog = %+v, %v", res, err)
	}
	chs, err := s.ListChannels(ctx, ChannelFilter{DeviceID: d.ID})
	if err != nil || len(chs) != 2 {
		t.Fatalf("channels = %v, %v", chs, err)
	}
	if c := chs[0]; c.Status != model.ChannelStatusIdle || c.PTZType != 1 || c.ParentCode != nvr || c.CatalogStatus != "ON" || c.DivisionCode != "441821101" {
		t.Errorf("channel 1: %+v", c)
	}
	if c := chs[1]; c.Status != model.ChannelStatusOffline || c.Reason != "catalog_off" {
		t.Errorf("channel 2: %+v", c)
	}
	if _, err := s.SaveDeviceStates(ctx, []DeviceState{{Code: nvr, Reason: "3 keepalives missed (60s interval)", At: at.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	d, _ = s.GetDeviceByCode(ctx, nvr)
	if d.Status != "offline" || d.StatusReason != "3 keepalives missed (60s interval)" || !d.LastSeen.Equal(at) || d.Transport != "UDP" {
		t.Errorf("device after going offline: %+v", d)
	}
	chs, _ = s.ListChannels(ctx, ChannelFilter{DeviceID: d.ID})
	if c := chs[0]; c.Status != model.ChannelStatusOffline || c.Reason != ReasonDeviceOffline {
		t.Errorf("channel 1 after its device went offline: %+v", c)
	}
	// Back online: the channel the device had on is idle again, the one it
	// had off stays off.
	if _, err := s.SaveDeviceStates(ctx, []DeviceState{{Code: nvr, Online: true, Reason: "registered", Registered: true, At: at.Add(2 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	chs, _ = s.ListChannels(ctx, ChannelFilter{DeviceID: d.ID})
	if chs[0].Status != model.ChannelStatusIdle || chs[1].Status != model.ChannelStatusOffline {
		t.Errorf("channels after the device came back: %+v / %+v", chs[0], chs[1])
	}

	// Keepalives move last_seen in one batch, never backwards.
	if err := s.TouchDevices(ctx, map[string]time.Time{nvr: at.Add(3 * time.Hour), "unknown": at}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchDevices(ctx, map[string]time.Time{nvr: at}); err != nil {
		t.Fatal(err)
	}
	d, _ = s.GetDeviceByCode(ctx, nvr)
	if !d.LastSeen.Equal(at.Add(3 * time.Hour)) {
		t.Errorf("last seen = %v", d.LastSeen)
	}

	if err := s.SetDeviceInfo(ctx, nvr, "汤塘镇NVR", "Hikvision", "DS-7808N", "V4.1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceClock(ctx, nvr, -3*time.Second, at); err != nil {
		t.Fatal(err)
	}
	d, _ = s.GetDeviceByCode(ctx, nvr)
	if d.Name != "汤塘镇NVR" || d.Manufacturer != "Hikvision" || d.Firmware != "V4.1" || d.ClockOffsetMS == nil || *d.ClockOffsetMS != -3000 {
		t.Errorf("device info: %+v", d)
	}
}

func TestSyncCatalog(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	ids, err := s.SaveDeviceStates(ctx, []DeviceState{{Code: "44182110001180000002", Online: true, Registered: true}})
	if err != nil {
		t.Fatal(err)
	}
	dev := ids["44182110001180000002"]
	// An RTSP channel with a code that a device's catalog also lists.
	rtspCh := &model.Channel{Code: "44182110001310000009", Name: "RTSP", DivisionCode: "441821", SourceURL: "rtsp://10.0.0.9/a"}
	if err := s.CreateChannel(ctx, rtspCh); err != nil {
		t.Fatal(err)
	}
	groups := []CatalogGroup{
		{Code: "44182110002150000001", Name: "治安监控", Kind: "business_group"},
		{Code: "44182110002160000001", Name: "汤塘片区", Kind: "virtual_organization", ParentCode: "44182110002150000001", DivisionCode: "441821101"},
	}
	first := []CatalogChannel{
		{Code: "44182110001310000003", Name: "一", DivisionCode: "441821", ParentCode: "44182110002160000001", Lat: 23.1, Lng: 113.2},
		{Code: "44182110001310000004", Name: "二", DivisionCode: "441821"},
		{Code: "44182110001310000009", Name: "冲突", DivisionCode: "441821"},
	}
	res, err := s.SyncCatalog(ctx, dev, first, groups, true)
	if err != nil || res.Added != 2 || res.Foreign != 1 {
		t.Fatalf("first sync = %+v, %v", res, err)
	}
	gs, err := s.ListCatalogGroups(ctx)
	if err != nil || len(gs) != 2 || gs[1].ParentCode != "44182110002150000001" || gs[1].DeviceID != dev {
		t.Fatalf("groups = %+v, %v", gs, err)
	}
	// A channel an operator moved and surveyed keeps division and position.
	c3, _ := s.GetChannelByCode(ctx, "44182110001310000003")
	c3.DivisionCode, c3.Lat, c3.Lng = "441821101", 23.5, 113.5
	if err := s.UpdateChannel(ctx, c3); err != nil {
		t.Fatal(err)
	}
	second := []CatalogChannel{
		{Code: "44182110001310000003", Name: "一号", DivisionCode: "441821", Lat: 1, Lng: 2, Status: "VLOST"},
	}
	res, err = s.SyncCatalog(ctx, dev, second, nil, true)
	if err != nil || res.Updated != 1 || res.Removed != 1 {
		t.Fatalf("second sync = %+v, %v", res, err)
	}
	c3, _ = s.GetChannelByCode(ctx, "44182110001310000003")
	if c3.Name != "一号" || c3.DivisionCode != "441821101" || c3.Lat != 23.5 || c3.Status != model.ChannelStatusOffline || c3.Reason != "video_lost" {
		t.Errorf("updated channel: %+v", c3)
	}
	c4, _ := s.GetChannelByCode(ctx, "44182110001310000004")
	if c4.CatalogStatus != "DEL" || c4.Reason != "removed_from_catalog" {
		t.Errorf("removed channel: %+v", c4)
	}
	if got, _ := s.GetChannel(ctx, rtspCh.ID); got.DeviceID != 0 || got.Name != "RTSP" {
		t.Errorf("the RTSP channel was taken over: %+v", got)
	}
	// Events.
	if err := s.SetCatalogStatus(ctx, dev, "44182110001310000003", "ON", time.Now()); err != nil {
		t.Fatal(err)
	}
	c3, _ = s.GetChannelByCode(ctx, "44182110001310000003")
	if c3.Status != model.ChannelStatusIdle || c3.CatalogStatus != "ON" {
		t.Errorf("after ON: %+v", c3)
	}
	if err := s.SetCatalogStatus(ctx, dev, "44182110001319999999", "OFF", time.Now()); err == nil {
		t.Error("catalog event for an unknown channel: no error")
	}
	// A new channel in an unknown division fails and writes nothing.
	if _, err := s.SyncCatalog(ctx, dev, []CatalogChannel{
		{Code: "44182110001310000005", Name: "五", DivisionCode: "441821"},
		{Code: "44182110001310000006", Name: "六", DivisionCode: "999999"},
	}, nil, false); err == nil {
		t.Fatal("unknown division: no error")
	}
	if _, err := s.GetChannelByCode(ctx, "44182110001310000005"); err == nil {
		t.Error("a failed catalog sync wrote part of it")
	}
}

func TestAlarms(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	ch := &model.Channel{Code: "44182110001310000011", Name: "c", DivisionCode: "441821"}
	if err := s.CreateChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	for i := range 5 {
		a := &model.Alarm{Source: "gb28181", DeviceCode: "44182110001180000001", ChannelCode: ch.Code,
			Priority: 1, Method: 5, Type: "video:2", Description: "区域入侵", OccurredAt: at.Add(time.Duration(i) * time.Minute),
			ReceivedAt: at.Add(time.Duration(i) * time.Minute)}
		if i == 4 {
			a.ChannelCode = "44182110001340000001" // an alarm input, not a channel
		}
		if err := s.InsertAlarm(ctx, a); err != nil {
			t.Fatal(err)
		}
		if (i < 4 && a.ChannelID != ch.ID) || (i == 4 && a.ChannelID != 0) || a.State != "new" {
			t.Errorf("alarm %d: %+v", i, a)
		}
	}
	all, err := s.ListAlarms(ctx, AlarmFilter{})
	if err != nil || len(all) != 5 || all[0].ID < all[4].ID || all[0].Description != "区域入侵" {
		t.Fatalf("all alarms: %+v, %v", all, err)
	}
	got, _ := s.ListAlarms(ctx, AlarmFilter{ChannelID: ch.ID, Since: at.Add(time.Minute), Limit: 2})
	if len(got) != 2 || !got[0].ReceivedAt.Equal(at.Add(3*time.Minute)) {
		t.Errorf("filtered: %+v", got)
	}
	older, _ := s.ListAlarms(ctx, AlarmFilter{BeforeID: all[1].ID})
	if len(older) != 3 {
		t.Errorf("before id %d: %d alarms", all[1].ID, len(older))
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xueliang/xueliang/internal/model"
)

// chanCode returns a well-formed 20-digit channel code with serial n.
func chanCode(n int) string { return fmt.Sprintf("441800000013100%05d", n) }

// createChannels creates one channel per division code given, named
// "ch<serial>", and returns them.
func createChannels(t *testing.T, s *Store, divisions ...string) []model.Channel {
	t.Helper()
	var out []model.Channel
	for _, div := range divisions {
		c := &model.Channel{
			Code: chanCode(nextSerial()), DivisionCode: div, FOV: 90,
			SourceURL: "rtsp://admin:pw@10.0.0.1/live",
		}
		c.Name = "ch" + c.Code[15:]
		if err := s.CreateChannel(context.Background(), c); err != nil {
			t.Fatalf("CreateChannel in %s: %v", div, err)
		}
		out = append(out, *c)
	}
	return out
}

var serial struct {
	sync.Mutex
	n int
}

func nextSerial() int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return serial.n
}

func TestChannelCRUD(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	clock := setClock(s, t0)

	dev := &model.Device{Code: "44182110101180000001", Name: "NVR", Kind: model.DeviceKindGB28181, DivisionCode: "441821101"}
	if err := s.CreateDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	c := &model.Channel{
		Code: "44182110101310000001", Name: "汤塘镇政府门口", DeviceID: dev.ID, DivisionCode: "441821101",
		SourceURL: "rtsp://admin:Secret@192.168.1.64:554/Streaming/Channels/101",
		Lat:       23.87123, Lng: 113.53456, Heading: 271.5, FOV: 62.5, Range: 80,
	}
	if err := s.CreateChannel(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c.ID == 0 || c.Transport != model.TransportAuto || c.Status != model.ChannelStatusOffline ||
		!c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0) || !c.StatusChangedAt.Equal(t0) {
		t.Errorf("after create: %+v", c)
	}
	got, err := s.GetChannel(ctx, c.ID)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("GetChannel = %+v, %v\nwant %+v", got, err, c)
	}
	got, err = s.GetChannelByCode(ctx, c.Code)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("GetChannelByCode = %+v, %v\nwant %+v", got, err, c)
	}

	// UpdateChannel changes configuration but not status, even when the
	// caller's copy has a stale status.
	t1 := t0.Add(time.Minute)
	if err := s.SetChannelStatus(ctx, c.ID, model.ChannelStatusOnline, "", "", t1); err != nil {
		t.Fatal(err)
	}
	clock.t = t0.Add(time.Hour)
	c.Name, c.Transport, c.DeviceID, c.DivisionCode, c.Heading = "汤塘镇政府", model.TransportTCP, 0, "441821", 0
	c.Status, c.Reason = model.ChannelStatusError, model.ReasonAuthFailed
	if err := s.UpdateChannel(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c.Status != model.ChannelStatusOnline || c.Reason != "" || !c.StatusChangedAt.Equal(t1) ||
		!c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after update: %+v", c)
	}
	got, err = s.GetChannel(ctx, c.ID)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("GetChannel after update = %+v, %v\nwant %+v", got, err, c)
	}

	if err := s.DeleteChannel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"GetChannel":       func() error { _, err := s.GetChannel(ctx, c.ID); return err }(),
		"GetChannelByCode": func() error { _, err := s.GetChannelByCode(ctx, c.Code); return err }(),
		"DeleteChannel":    s.DeleteChannel(ctx, c.ID),
		"UpdateChannel":    s.UpdateChannel(ctx, c),
		"SetChannelStatus": s.SetChannelStatus(ctx, c.ID, model.ChannelStatusOnline, "", "", time.Time{}),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after delete = %v, want ErrNotFound", name, err)
		}
	}
}

func TestChannelErrors(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	existing := createChannels(t, s, "441821")[0]
	other := createChannels(t, s, "441821")[0]
	valid := func() *model.Channel {
		return &model.Channel{Code: chanCode(90000 + nextSerial()), Name: "x", DivisionCode: "441821", FOV: 90}
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"duplicate code", func() error {
			c := valid()
			c.Code = existing.Code
			return s.CreateChannel(ctx, c)
		}, ErrConflict},
		{"update to taken code", func() error {
			c := other
			c.Code = existing.Code
			return s.UpdateChannel(ctx, &c)
		}, ErrConflict},
		{"unknown division", func() error {
			c := valid()
			c.DivisionCode = "441899"
			return s.CreateChannel(ctx, c)
		}, ErrUnknownDivision},
		{"update to unknown division", func() error {
			c := other
			c.DivisionCode = "441899101"
			return s.UpdateChannel(ctx, &c)
		}, ErrUnknownDivision},
		{"unknown device", func() error {
			c := valid()
			c.DeviceID = 4242
			return s.CreateChannel(ctx, c)
		}, ErrUnknownDevice},
		{"get missing", func() error { _, err := s.GetChannel(ctx, 4242); return err }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("error %q lacks the store: prefix", err)
			}
		})
	}

	c := valid()
	c.Heading = 360
	err := s.CreateChannel(ctx, c)
	var fe *model.FieldError
	if !errors.As(err, &fe) || fe.Field != "heading" || len(model.FieldErrors(err)) != 1 {
		t.Errorf("invalid channel: %v, want one FieldError, on heading", err)
	}
	if got, _ := s.ListChannels(ctx, ChannelFilter{}); len(got) != 2 {
		t.Errorf("%d channels after failed creates, want 2", len(got))
	}
}

func TestDeleteDeviceKeepsChannels(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	dev := &model.Device{Code: "44182110101180000001", Name: "NVR", Kind: model.DeviceKindGB28181}
	if err := s.CreateDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	c := createChannels(t, s, "441821101")[0]
	c.DeviceID = dev.ID
	if err := s.UpdateChannel(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListChannels(ctx, ChannelFilter{DeviceID: dev.ID}); len(got) != 1 {
		t.Fatalf("ListChannels(device) = %d channels, want 1", len(got))
	}
	if err := s.DeleteDevice(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetChannel(ctx, c.ID)
	if err != nil || got.DeviceID != 0 {
		t.Errorf("channel after its device was deleted: %+v, %v; want DeviceID 0", got, err)
	}
}

func TestListChannelsSubtree(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	// One channel in every division of the mini city.
	byDiv := map[string]int64{}
	for _, c := range createChannels(t, s,
		"441800", "441802", "441821", "441821101", "441821101201", "441882", "441882106", "441882106201") {
		byDiv[c.DivisionCode] = c.ID
	}
	ids := func(divs ...string) []int64 {
		var out []int64
		for _, d := range divs {
			out = append(out, byDiv[d])
		}
		return out
	}
	tests := []struct {
		name     string
		division string
		want     []int64
	}{
		{"city: everything", "441800", ids("441800", "441802", "441821", "441821101", "441821101201", "441882", "441882106", "441882106201")},
		{"佛冈县", "441821", ids("441821", "441821101", "441821101201")},
		{"汤塘镇", "441821101", ids("441821101", "441821101201")},
		{"连州市", "441882", ids("441882", "441882106", "441882106201")},
		{"龙坪镇", "441882106", ids("441882106", "441882106201")},
		{"元璧村", "441882106201", ids("441882106201")},
		{"清城区", "441802", ids("441802")},
		{"unknown", "441899", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListChannels(ctx, ChannelFilter{DivisionCode: tt.division})
			if err != nil {
				t.Fatal(err)
			}
			if gotIDs := channelIDs(got); !reflect.DeepEqual(gotIDs, tt.want) {
				t.Errorf("ListChannels(%s) = %v, want %v", tt.division, gotIDs, tt.want)
			}
		})
	}

	counts, err := s.CountChannelsByDivision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 8 || counts["441882106201"] != 1 {
		t.Errorf("CountChannelsByDivision = %v", counts)
	}
}

func channelIDs(cs []model.Channel) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestListChannelsFilters(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	dev := &model.Device{Name: "cam", Kind: model.DeviceKindRTSP}
	if err := s.CreateDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	mk := func(name, div string, devID int64) model.Channel {
		c := &model.Channel{Code: chanCode(nextSerial()), Name: name, DivisionCode: div, DeviceID: devID, FOV: 90}
		if err := s.CreateChannel(ctx, c); err != nil {
			t.Fatal(err)
		}
		return *c
	}
	gate := mk("元璧村口 Gate", "441882106201", dev.ID)
	school := mk("龙坪镇中心小学", "441882106", 0)
	pct := mk("100% coverage_test", "441821", dev.ID)
	if err := s.SetChannelStatus(ctx, school.ID, model.ChannelStatusOnline, "", "", time.Time{}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    ChannelFilter
		want []int64
	}{
		{"all", ChannelFilter{}, []int64{gate.ID, school.ID, pct.ID}},
		{"status", ChannelFilter{Status: model.ChannelStatusOnline}, []int64{school.ID}},
		{"status offline in 连州", ChannelFilter{Status: model.ChannelStatusOffline, DivisionCode: "441882"}, []int64{gate.ID}},
		{"device", ChannelFilter{DeviceID: dev.ID}, []int64{gate.ID, pct.ID}},
		{"query name", ChannelFilter{Query: "龙坪"}, []int64{school.ID}},
		{"query ASCII case", ChannelFilter{Query: "gATE"}, []int64{gate.ID}},
		{"query code", ChannelFilter{Query: school.Code[12:]}, []int64{school.ID}},
		{"query % is literal", ChannelFilter{Query: "0%"}, []int64{pct.ID}},
		{"query _ is literal", ChannelFilter{Query: "e_t"}, []int64{pct.ID}},
		{"query no match", ChannelFilter{Query: "_%x"}, nil},
		{"limit", ChannelFilter{Limit: 1}, []int64{gate.ID}},
		{"limit offset", ChannelFilter{Limit: 1, Offset: 1}, []int64{school.ID}},
		{"offset only", ChannelFilter{Offset: 1}, []int64{school.ID, pct.ID}},
		{"everything combined", ChannelFilter{DivisionCode: "441800", DeviceID: dev.ID, Query: "gate",
			Status: model.ChannelStatusOffline, Limit: 5}, []int64{gate.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListChannels(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if ids := channelIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("ListChannels(%+v) = %v, want %v", tt.f, ids, tt.want)
			}
		})
	}
}

func TestSetChannelStatus(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	setClock(s, t0)
	c := createChannels(t, s, "441821101")[0]
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

	type state struct {
		status  model.ChannelStatus
		reason  string
		lastErr string
		changed time.Time
	}
	steps := []struct {
		name    string
		status  model.ChannelStatus
		reason  string
		lastErr string
		at      time.Time
		want    state
	}{
		{"online", model.ChannelStatusOnline, "", "", at(1),
			state{model.ChannelStatusOnline, "", "", at(1)}},
		{"same again keeps the time", model.ChannelStatusOnline, "", "", at(2),
			state{model.ChannelStatusOnline, "", "", at(1)}},
		{"offline with reason", model.ChannelStatusOffline, model.ReasonUnreachable, "dial tcp 10.0.0.1:554: connection refused", at(3),
			state{model.ChannelStatusOffline, model.ReasonUnreachable, "dial tcp 10.0.0.1:554: connection refused", at(3)}},
		{"new reason, same status", model.ChannelStatusOffline, model.ReasonAuthFailed, "401 Unauthorized", at(4),
			state{model.ChannelStatusOffline, model.ReasonAuthFailed, "401 Unauthorized", at(3)}},
		{"stale report is ignored", model.ChannelStatusOnline, "", "", at(2),
			state{model.ChannelStatusOffline, model.ReasonAuthFailed, "401 Unauthorized", at(3)}},
		{"idle", model.ChannelStatusIdle, model.ReasonSourceClosed, "", at(5),
			state{model.ChannelStatusIdle, model.ReasonSourceClosed, "", at(5)}},
		{"zero time means now", model.ChannelStatusConnecting, "", "", time.Time{},
			state{model.ChannelStatusConnecting, "", "", at(6)}},
	}
	for _, st := range steps {
		if st.at.IsZero() {
			setClock(s, at(6))
		}
		if err := s.SetChannelStatus(ctx, c.ID, st.status, st.reason, st.lastErr, st.at); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.GetChannel(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g := (state{got.Status, got.Reason, got.LastError, got.StatusChangedAt}); g != st.want {
			t.Errorf("%s: got %+v\nwant %+v", st.name, g, st.want)
		}
		if !got.UpdatedAt.Equal(t0) {
			t.Errorf("%s: UpdatedAt moved to %v", st.name, got.UpdatedAt)
		}
	}

	var fe *model.FieldError
	if err := s.SetChannelStatus(ctx, c.ID, "dead", "", "", time.Time{}); !errors.As(err, &fe) || fe.Field != "status" {
		t.Errorf("invalid status: %v", err)
	}
	if err := s.SetChannelStatus(ctx, c.ID, model.ChannelStatusError, "Bad", "", time.Time{}); !errors.As(err, &fe) || fe.Field != "reason" {
		t.Errorf("invalid reason: %v", err)
	}

	long := strings.Repeat("错", model.MaxLastErrorLen) // 3 bytes each
	if err := s.SetChannelStatus(ctx, c.ID, model.ChannelStatusError, model.ReasonNoVideo, long, at(10)); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetChannel(ctx, c.ID)
	if len(got.LastError) > model.MaxLastErrorLen || len(got.LastError) < model.MaxLastErrorLen-3 || !utf8.ValidString(got.LastError) {
		t.Errorf("long last error stored as %d bytes, valid UTF-8 %v", len(got.LastError), utf8.ValidString(got.LastError))
	}
}

// TestConcurrentWrites hammers the store from many goroutines; with -race
// it also checks the Store for data races. No write may fail with
// SQLITE_BUSY or anything else.
func TestConcurrentWrites(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	chans := createChannels(t, s, "441821101", "441821101201", "441882106", "441882106201", "441802")
	statuses := []model.ChannelStatus{model.ChannelStatusConnecting, model.ChannelStatusOnline,
		model.ChannelStatusIdle, model.ChannelStatusOffline, model.ChannelStatusError}

	const writers, rounds = 20, 20
	errc := make(chan error, 100)
	report := func(err error) {
		select {
		case errc <- err:
		default: // enough to fail the test
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				c := chans[(g+i)%len(chans)]
				st := statuses[(g*7+i)%len(statuses)]
				if err := s.SetChannelStatus(ctx, c.ID, st, model.ReasonTimeout, fmt.Sprintf("g%d i%d", g, i), time.Time{}); err != nil {
					report(err)
				}
				if i%10 == 0 {
					nc := &model.Channel{Code: chanCode(50000 + g*100 + i), Name: "c", DivisionCode: "441821", FOV: 90}
					if err := s.CreateChannel(ctx, nc); err != nil {
						report(err)
					}
				}
			}
		}(g)
	}
	// Transactions share the single writer with the statements above.
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if err := s.UpsertDivisions(ctx, qingyuan); err != nil {
					report(err)
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 4; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.ListChannels(ctx, ChannelFilter{DivisionCode: "441800"}); err != nil {
					report(err)
				}
				if _, err := s.CountChannelsByDivision(ctx); err != nil {
					report(err)
				}
				time.Sleep(time.Millisecond) // leave the CPUs to the writers
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}

	all, err := s.ListChannels(ctx, ChannelFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(chans) + writers*rounds/10; len(all) != want {
		t.Errorf("%d channels, want %d", len(all), want)
	}
	for _, c := range all[:len(chans)] {
		if !c.Status.Valid() || c.Reason != model.ReasonTimeout {
			t.Errorf("channel %d ended as %q/%q", c.ID, c.Status, c.Reason)
		}
	}
}

package manscdp

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func catalogMsg(t testing.TB, root string, sn, sumNum int, ids ...string) *Message {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "<%s><CmdType>Catalog</CmdType><SN>%d</SN><DeviceID>44182100001180000001</DeviceID><SumNum>%d</SumNum><DeviceList Num=\"%d\">", root, sn, sumNum, len(ids))
	for _, id := range ids {
		fmt.Fprintf(&b, "<Item><DeviceID>%s</DeviceID><Name>cam %s</Name></Item>", id, id)
	}
	fmt.Fprintf(&b, "</DeviceList></%s>", root)
	return mustParse(t, []byte(b.String()))
}

func recordMsg(t testing.TB, sn, sumNum int, starts ...string) *Message {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "<Response><CmdType>RecordInfo</CmdType><SN>%d</SN><DeviceID>c1</DeviceID><SumNum>%d</SumNum><RecordList Num=\"%d\">", sn, sumNum, len(starts))
	for _, s := range starts {
		fmt.Fprintf(&b, "<Item><DeviceID>c1</DeviceID><StartTime>2026-11-28T%s:00:00</StartTime><EndTime>2026-11-28T%s:30:00</EndTime></Item>", s, s)
	}
	b.WriteString("</RecordList></Response>")
	return mustParse(t, []byte(b.String()))
}

func TestAssemblerTestdata(t *testing.T) {
	a := NewAssembler(AssemblerOptions{})
	// Out of order: the second message first.
	c, done, err := a.Add(mustParse(t, readTestdata(t, "catalog_nvr_2.xml")))
	if err != nil || done || c != nil {
		t.Fatalf("first Add = %v, %v, %v", c, done, err)
	}
	c, done, err = a.Add(mustParse(t, readTestdata(t, "catalog_nvr_1.xml")))
	if err != nil || !done {
		t.Fatalf("second Add = %v, %v", done, err)
	}
	if !c.Complete || c.Missing != 0 || c.SumNum != 4 || len(c.Catalog) != 4 || c.Messages != 2 || c.SN != 1025 {
		t.Errorf("Collection = %+v", c)
	}
	if a.Pending() != 0 {
		t.Errorf("Pending = %d", a.Pending())
	}
}

func TestAssembler(t *testing.T) {
	type step struct {
		msg      func(t testing.TB) *Message
		wantDone bool
	}
	tests := []struct {
		name    string
		steps   []step
		finish  bool // call Finish after the steps
		want    Collection
		wantIDs string
	}{
		{
			name: "single message",
			steps: []step{
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 2, "a", "b") }, true},
			},
			want: Collection{SumNum: 2, Complete: true, Messages: 1}, wantIDs: "a,b",
		},
		{
			name: "empty catalog",
			steps: []step{
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 0) }, true},
			},
			want: Collection{Complete: true, Messages: 1},
		},
		{
			name: "duplicates across messages replace, not count",
			steps: []step{
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 3, "a", "b") }, false},
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 3, "b", "a") }, false},
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 3, "c") }, true},
			},
			want: Collection{SumNum: 3, Complete: true, Messages: 3, Duplicates: 2}, wantIDs: "a,b,c",
		},
		{
			name: "last message never sent",
			steps: []step{
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 5, "a", "b") }, false},
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 5, "e") }, false},
			},
			finish: true,
			want:   Collection{SumNum: 5, Missing: 2, Messages: 2}, wantIDs: "a,b,e",
		},
		{
			name: "other SN is another collection",
			steps: []step{
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 1, 2, "a") }, false},
				{func(t testing.TB) *Message { return catalogMsg(t, "Response", 2, 2, "b") }, false},
			},
			finish: true,
			want:   Collection{SumNum: 2, Missing: 1, Messages: 1}, wantIDs: "a",
		},
		{
			name: "notify catalog",
			steps: []step{
				{func(t testing.TB) *Message { return catalogMsg(t, "Notify", 1, 1, "a") }, true},
			},
			want: Collection{SumNum: 1, Complete: true, Messages: 1}, wantIDs: "a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAssembler(AssemblerOptions{})
			var got *Collection
			for i, s := range tt.steps {
				c, done, err := a.Add(s.msg(t))
				if err != nil || done != s.wantDone {
					t.Fatalf("step %d: done %v err %v", i, done, err)
				}
				if done {
					got = c
				}
			}
			if tt.finish {
				var ok bool
				got, ok = a.Finish(CmdCatalog, "44182100001180000001", 1)
				if !ok {
					t.Fatal("Finish found nothing")
				}
			}
			var ids []string
			for _, it := range got.Catalog {
				ids = append(ids, it.DeviceID)
			}
			if strings.Join(ids, ",") != tt.wantIDs || got.SumNum != tt.want.SumNum || got.Complete != tt.want.Complete ||
				got.Missing != tt.want.Missing || got.Messages != tt.want.Messages || got.Duplicates != tt.want.Duplicates {
				t.Errorf("got %+v ids %v, want %+v ids %s", *got, ids, tt.want, tt.wantIDs)
			}
		})
	}
}

func TestAssemblerRecords(t *testing.T) {
	a := NewAssembler(AssemblerOptions{})
	if _, done, _ := a.Add(recordMsg(t, 9, 3, "00", "01")); done {
		t.Fatal("done early")
	}
	if _, done, _ := a.Add(recordMsg(t, 9, 3, "01")); done {
		t.Fatal("duplicate completed it")
	}
	c, done, err := a.Add(recordMsg(t, 9, 3, "02"))
	if err != nil || !done || !c.Complete || len(c.Records) != 3 || c.Duplicates != 1 || c.CmdType != CmdRecordInfo {
		t.Fatalf("Collection = %+v, %v, %v", c, done, err)
	}
	if _, ok := a.Finish(CmdRecordInfo, "c1", 9); ok {
		t.Error("Finish after completion found a collection")
	}
}

func TestAssemblerExpire(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	a := NewAssembler(AssemblerOptions{Now: func() time.Time { return now }})
	a.Add(catalogMsg(t, "Response", 1, 3, "a"))
	now = now.Add(20 * time.Second)
	a.Add(catalogMsg(t, "Response", 2, 3, "a"))
	now = now.Add(15 * time.Second)
	got := a.Expire(30 * time.Second)
	if len(got) != 1 || got[0].SN != 1 || got[0].Complete || got[0].Missing != 2 {
		t.Fatalf("Expire = %+v", got)
	}
	if a.Pending() != 1 {
		t.Errorf("Pending = %d", a.Pending())
	}
}

func TestAssemblerErrors(t *testing.T) {
	a := NewAssembler(AssemblerOptions{MaxPending: 1})
	if _, _, err := a.Add(mustParse(t, readTestdata(t, "keepalive.xml"))); !errors.Is(err, ErrWrongCmdType) {
		t.Errorf("keepalive: %v", err)
	}
	a.Add(catalogMsg(t, "Response", 1, 3, "a"))
	if _, _, err := a.Add(catalogMsg(t, "Response", 2, 3, "a")); !errors.Is(err, ErrTooManyPending) {
		t.Errorf("second pending: %v", err)
	}
	// A message for an existing collection is still accepted.
	if _, _, err := a.Add(catalogMsg(t, "Response", 1, 3, "b")); err != nil {
		t.Errorf("existing collection: %v", err)
	}
}

func TestAssemblerConcurrent(t *testing.T) {
	const devices, items = 8, 50
	a := NewAssembler(AssemblerOptions{})
	msgs := make([][]*Message, devices)
	for d := range devices {
		for i := range items {
			m := catalogMsg(t, "Response", 7, items, fmt.Sprint(i))
			m.DeviceID = fmt.Sprint("dev", d) // distinct collections
			msgs[d] = append(msgs[d], m)
		}
	}
	var wg sync.WaitGroup
	results := make(chan *Collection, devices)
	for d := range devices {
		for _, half := range [][]*Message{msgs[d][:items/2], msgs[d][items/2:]} {
			wg.Go(func() {
				for _, m := range half {
					c, done, err := a.Add(m)
					if err != nil {
						t.Error(err)
					}
					if done {
						results <- c
					}
				}
				a.Pending()
				a.Expire(time.Hour)
			})
		}
	}
	wg.Wait()
	close(results)
	n := 0
	for c := range results {
		n++
		if !c.Complete || len(c.Catalog) != items {
			t.Errorf("%s: %d items", c.DeviceID, len(c.Catalog))
		}
	}
	if n != devices || a.Pending() != 0 {
		t.Errorf("%d complete, %d pending", n, a.Pending())
	}
}

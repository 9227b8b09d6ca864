package store

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/xueliang/xueliang/internal/model"
)

func TestUpsertDivisions(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()

	got, err := s.ListDivisions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]model.Division(nil), qingyuan...)
	sort.Slice(want, func(i, j int) bool { return want[i].Code < want[j].Code })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListDivisions =\n%v\nwant\n%v", got, want)
	}

	d, err := s.GetDivision(ctx, "441882106")
	if err != nil || *d != (model.Division{Code: "441882106", Name: "龙坪镇", Level: model.DivisionLevelTown, ParentCode: "441882"}) {
		t.Errorf("GetDivision = %+v, %v", d, err)
	}
	if _, err := s.GetDivision(ctx, "441899"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetDivision(unknown) = %v, want ErrNotFound", err)
	}

	// Upserting again renames and re-parents; the rest is unchanged.
	err = s.UpsertDivisions(ctx, []model.Division{
		{Code: "440000", Name: "广东省", Level: model.DivisionLevelProvince},
		{Code: "441800", Name: "清远", Level: model.DivisionLevelCity, ParentCode: "440000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err = s.GetDivision(ctx, "441800")
	if err != nil || d.Name != "清远" || d.ParentCode != "440000" {
		t.Errorf("after re-upsert: %+v, %v", d, err)
	}
	if got, _ := s.ListDivisions(ctx); len(got) != len(qingyuan)+1 {
		t.Errorf("%d divisions after re-upsert, want %d", len(got), len(qingyuan)+1)
	}

	if err := s.UpsertDivisions(ctx, nil); err != nil {
		t.Errorf("UpsertDivisions(nil) = %v", err)
	}
}

func TestUpsertDivisionsErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		divs      []model.Division
		sentinel  error  // errors.Is target, or nil
		fieldName string // FieldError.Field expected, or ""
	}{
		{"unknown parent", []model.Division{
			{Code: "441823", Name: "阳山县", Level: model.DivisionLevelCounty, ParentCode: "441800"},
			{Code: "441823100", Name: "阳城镇", Level: model.DivisionLevelTown, ParentCode: "441823"},
			{Code: "441999100", Name: "无名镇", Level: model.DivisionLevelTown, ParentCode: "441999"},
		}, ErrUnknownDivision, ""},
		{"invalid", []model.Division{
			{Code: "441823", Name: "阳山县", Level: model.DivisionLevelCounty, ParentCode: "441800"},
			{Code: "4418231", Name: "x", Level: model.DivisionLevelTown, ParentCode: "441823"},
		}, nil, "code"},
		{"parent level in batch", []model.Division{
			{Code: "441823100", Name: "阳城镇", Level: model.DivisionLevelTown, ParentCode: "441800"},
			{Code: "441823", Name: "阳山县", Level: model.DivisionLevelCounty, ParentCode: "441823100"},
		}, nil, "parent_code"},
		{"parent level in database", []model.Division{
			{Code: "441823", Name: "阳山县", Level: model.DivisionLevelCounty, ParentCode: "441800"},
			{Code: "441882106202", Name: "x", Level: model.DivisionLevelVillage, ParentCode: "441882106201"},
		}, nil, "parent_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openQingyuan(t)
			err := s.UpsertDivisions(ctx, tt.divs)
			if err == nil {
				t.Fatal("UpsertDivisions succeeded")
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v is not %v", err, tt.sentinel)
			}
			if tt.fieldName != "" {
				var fe *model.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.fieldName {
					t.Errorf("error %v: want a FieldError on %q", err, tt.fieldName)
				}
			}
			// All or nothing: the valid county in the batch was not written.
			if _, err := s.GetDivision(ctx, "441823"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a failed batch left 441823 behind: %v", err)
			}
		})
	}
}

func TestDivisionTreeFromStore(t *testing.T) {
	s := openQingyuan(t)
	ctx := context.Background()
	divs, err := s.ListDivisions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	createChannels(t, s, "441800", "441821101201", "441821101201", "441882106201")
	counts, err := s.CountChannelsByDivision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roots := model.BuildDivisionTree(divs)
	if len(roots) != 1 || roots[0].Code != "441800" || len(roots[0].Children) != 3 {
		t.Fatalf("tree roots: %+v", roots)
	}
	if total := model.FillChannelCounts(roots, counts); total != 4 {
		t.Errorf("total = %d, want 4", total)
	}
	fogang := roots[0].Children[1]
	if fogang.Code != "441821" || fogang.ChannelCount != 2 {
		t.Errorf("佛冈县 node = %s with %d channels, want 441821 with 2", fogang.Code, fogang.ChannelCount)
	}
}

package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestControlAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "cam/001", Label: "Gate", Audio: AudioG711A}, Camera{Path: "cam/002"})
	base := "http://" + s.ControlAddr()

	post := func(path, body string) int {
		t.Helper()
		res, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/cameras/cam/001/fault", `{"fault":"stall"}`, http.StatusNoContent},
		{"/cameras/cam/002/fault", `{"fault":"refuse-auth"}`, http.StatusNoContent},
		{"/cameras/cam/002/fault", `{"fault":"none"}`, http.StatusNoContent},
		{"/cameras/cam/002/fault", `{"fault":"explode"}`, http.StatusBadRequest},
		{"/cameras/cam/002/fault", `{`, http.StatusBadRequest},
		{"/cameras/cam/003/fault", `{"fault":"drop"}`, http.StatusNotFound},
		{"/cameras/cam/002", `{"fault":"drop"}`, http.StatusNotFound},
	} {
		if got := post(tc.path, tc.body); got != tc.want {
			t.Errorf("POST %s %s: %d, want %d", tc.path, tc.body, got, tc.want)
		}
	}

	res, err := http.Get(base + "/cameras")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"path": "cam/001", "label": "Gate", "clip": DefaultClip, "audio": "g711a", "fault": "stall",
			"activeSessions": 0.0, "totalSessions": 0.0, "readers": 0.0},
		{"path": "cam/002", "clip": DefaultClip, "audio": "none", "fault": "none",
			"activeSessions": 0.0, "totalSessions": 0.0, "readers": 0.0},
	}
	if len(got) != len(want) {
		t.Fatalf("GET /cameras = %v", got)
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("camera %d: %s = %v, want %v", i, k, got[i][k], v)
			}
		}
	}
}

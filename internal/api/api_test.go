package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
	"github.com/xueliang/xueliang/internal/streams"
	"github.com/xueliang/xueliang/internal/token"
)

type fakeStreams struct{}

func (fakeStreams) Paths() []streams.PathInfo  { return nil }
func (fakeStreams) Stream(int64) *media.Stream { return nil }

func newTestServer(t testing.TB) (*httptest.Server, *store.Store) {
	t.Helper()
	st, err := store.Open(t.Context(), store.Config{DSN: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.UpsertDivisions(t.Context(), []model.Division{
		{Code: "441800", Name: "清远市", Level: model.DivisionLevelCity},
		{Code: "441821", Name: "佛冈县", Level: model.DivisionLevelCounty, ParentCode: "441800"},
		{Code: "441882", Name: "连州市", Level: model.DivisionLevelCounty, ParentCode: "441800"},
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := token.NewSigner(token.NewKey())
	s, err := New(Config{Store: st, Streams: fakeStreams{}, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, st
}

func do(t *testing.T, ts *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

const goodChannel = `{"code":"44182100001320000001","name":"汤塘镇村口","division":"441821","source_url":"rtsp://admin:secret@10.0.0.5:554/ch1","lat":23.78,"lng":113.42,"heading":90,"fov":60,"range":80}`

func TestChannelCRUD(t *testing.T) {
	ts, _ := newTestServer(t)
	st, ch := do(t, ts, "POST", "/api/v1/channels", goodChannel)
	if st != 201 {
		t.Fatalf("create: %d %v", st, ch)
	}
	if ch["source_url"] != "rtsp://admin:xxxxx@10.0.0.5:554/ch1" || ch["status"] != "idle" {
		t.Fatalf("create returned %v", ch)
	}
	id := int(ch["id"].(float64))
	st, ch = do(t, ts, "PATCH", "/api/v1/channels/"+itoa(id), `{"name":"汤塘镇村口东","source_url":"rtsp://admin:xxxxx@10.0.0.5:554/ch1"}`)
	if st != 200 || ch["name"] != "汤塘镇村口东" {
		t.Fatalf("patch: %d %v", st, ch)
	}
	st, list := do(t, ts, "GET", "/api/v1/channels?division=441800&q=村口", "")
	if st != 200 || len(list["channels"].([]any)) != 1 {
		t.Fatalf("list: %d %v", st, list)
	}
	st, list = do(t, ts, "GET", "/api/v1/channels?division=441882", "")
	if st != 200 || len(list["channels"].([]any)) != 0 {
		t.Fatalf("list other county: %d %v", st, list)
	}
	st, tree := do(t, ts, "GET", "/api/v1/divisions", "")
	if st != 200 || tree["channel_count"].(float64) != 1 {
		t.Fatalf("divisions: %d %v", st, tree)
	}
	st, live := do(t, ts, "POST", "/api/v1/channels/"+itoa(id)+"/live", "")
	if st != 200 || !strings.Contains(live["hls"].(string), "/live/"+itoa(id)+"/hls/index.m3u8?token=") {
		t.Fatalf("live: %d %v", st, live)
	}
	if st, _ := do(t, ts, "DELETE", "/api/v1/channels/"+itoa(id), ""); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st, _ := do(t, ts, "GET", "/api/v1/channels/"+itoa(id), ""); st != 404 {
		t.Fatalf("get deleted: %d", st)
	}
}

func TestPasswordKeptWhenRedactedURLSentBack(t *testing.T) {
	ts, store := newTestServer(t)
	_, ch := do(t, ts, "POST", "/api/v1/channels", goodChannel)
	id := int64(ch["id"].(float64))
	do(t, ts, "PATCH", "/api/v1/channels/"+itoa(int(id)), `{"source_url":"rtsp://admin:xxxxx@10.0.0.5:554/ch1"}`)
	c, err := store.GetChannel(t.Context(), id)
	if err != nil || c.SourceURL != "rtsp://admin:secret@10.0.0.5:554/ch1" {
		t.Fatalf("stored URL %q, %v", c.SourceURL, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestClientMistakesAre4xx(t *testing.T) {
	ts, _ := newTestServer(t)
	if st, _ := do(t, ts, "POST", "/api/v1/channels", goodChannel); st != 201 {
		t.Fatal(st)
	}
	repl := func(old, new string) string { return strings.Replace(goodChannel, old, new, 1) }
	other := repl(`44182100001320000001`, `44182100001320000002`)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"duplicate code", "POST", "/api/v1/channels", goodChannel, 409, "conflict", ""},
		{"invalid rtsp url", "POST", "/api/v1/channels", repl(`rtsp://admin:secret@10.0.0.5:554/ch1`, `http://10.0.0.5/ch1`), 400, "invalid", "source_url"},
		{"url without host", "POST", "/api/v1/channels", repl(`rtsp://admin:secret@10.0.0.5:554/ch1`, `rtsp://`), 400, "invalid", "source_url"},
		{"unknown division", "POST", "/api/v1/channels", strings.Replace(other, `"441821"`, `"441899"`, 1), 400, "unknown_division", ""},
		{"short code", "POST", "/api/v1/channels", repl(`44182100001320000001`, `4418210000132000001`), 400, "invalid", "code"},
		{"bad heading", "POST", "/api/v1/channels", repl(`"heading":90`, `"heading":400`), 400, "invalid", "heading"},
		{"malformed json", "POST", "/api/v1/channels", `{"code":`, 400, "invalid_json", ""},
		{"unknown field", "POST", "/api/v1/channels", `{"cod":"1"}`, 400, "invalid_json", ""},
		{"wrong type", "POST", "/api/v1/channels", `{"lat":"north"}`, 400, "invalid_json", ""},
		{"two values", "POST", "/api/v1/channels", goodChannel + goodChannel, 400, "invalid_json", ""},
		{"bad id", "GET", "/api/v1/channels/abc", "", 400, "invalid_id", ""},
		{"negative id", "GET", "/api/v1/channels/-3", "", 400, "invalid_id", ""},
		{"missing channel", "GET", "/api/v1/channels/999", "", 404, "not_found", ""},
		{"live of missing channel", "POST", "/api/v1/channels/999/live", "", 404, "not_found", ""},
		{"bad limit", "GET", "/api/v1/channels?limit=0", "", 400, "invalid_query", ""},
		{"bad status", "GET", "/api/v1/channels?status=sleepy", "", 400, "invalid_query", ""},
		{"bad kind", "GET", "/api/v1/devices?kind=toaster", "", 400, "invalid_query", ""},
		{"unknown route", "GET", "/api/v1/nothing", "", 404, "not_found", ""},
		{"device unknown division", "POST", "/api/v1/devices", `{"name":"NVR","kind":"gb28181","code":"44182100001180000001","division":"999999"}`, 400, "unknown_division", ""},
		{"device bad kind", "POST", "/api/v1/devices", `{"name":"NVR","kind":"toaster","division":"441821"}`, 400, "invalid", "kind"},
		{"channel unknown device", "POST", "/api/v1/channels", strings.Replace(other, `"name"`, `"device_id":42,"name"`, 1), 400, "unknown_device", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := do(t, ts, tc.method, tc.path, tc.body)
			if st != tc.status {
				t.Fatalf("status %d (%v), want %d", st, out, tc.status)
			}
			e, _ := out["error"].(map[string]any)
			if e == nil || e["code"] != tc.code || e["message"] == "" {
				t.Fatalf("error body %v, want code %q", out, tc.code)
			}
			if strings.Contains(e["message"].(string), "secret") {
				t.Fatalf("error leaks the password: %v", e["message"])
			}
			if tc.field != "" && !strings.Contains(e["message"].(string), tc.field+":") {
				t.Fatalf("message %q does not name field %s", e["message"], tc.field)
			}
		})
	}
}

func TestDeviceCRUD(t *testing.T) {
	ts, _ := newTestServer(t)
	st, d := do(t, ts, "POST", "/api/v1/devices", `{"name":"汤塘镇NVR","kind":"gb28181","code":"44182100001180000001","division":"441821","manufacturer":"Hikvision"}`)
	if st != 201 {
		t.Fatalf("create device: %d %v", st, d)
	}
	id := itoa(int(d["id"].(float64)))
	if st, d = do(t, ts, "PATCH", "/api/v1/devices/"+id, `{"model":"DS-7608"}`); st != 200 || d["model"] != "DS-7608" {
		t.Fatalf("patch device: %d %v", st, d)
	}
	if st, l := do(t, ts, "GET", "/api/v1/devices?division=441800", ""); st != 200 || len(l["devices"].([]any)) != 1 {
		t.Fatalf("list devices: %d %v", st, l)
	}
	if st, _ := do(t, ts, "DELETE", "/api/v1/devices/"+id, ""); st != 204 {
		t.Fatalf("delete device: %d", st)
	}
}

// TestOpenAPIMatchesRoutes keeps openapi.yaml and the route table in step:
// a route without documentation, or documentation without a route, fails.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "post", "put", "patch", "delete":
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	served := map[string]bool{}
	for _, r := range routes {
		served[r.method+" "+r.pattern] = true
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("openapi.yaml out of step with routes:\n  undocumented: %v\n  documented but not served: %v", missing, extra)
	}
}

func TestLiveTokenExpiry(t *testing.T) {
	ts, _ := newTestServer(t)
	_, ch := do(t, ts, "POST", "/api/v1/channels", goodChannel)
	_, live := do(t, ts, "POST", "/api/v1/channels/"+itoa(int(ch["id"].(float64)))+"/live", "")
	exp, err := time.Parse(time.RFC3339, live["expires"].(string))
	if err != nil || time.Until(exp) < 4*time.Minute || time.Until(exp) > 6*time.Minute {
		t.Fatalf("expires %v (%v), want about 5 minutes from now", live["expires"], err)
	}
}

// FuzzChannelInput sends arbitrary bodies to the channel endpoints: a
// client mistake must never be answered with a 5xx.
func FuzzChannelInput(f *testing.F) {
	for _, seed := range []string{
		goodChannel, `{}`, `[]`, `null`, `{"code":null}`, `{"lat":1e400}`, `{"heading":-0}`,
		`{"source_url":"rtsp://[::1"}`, `{"division":"` + strings.Repeat("4", 300) + `"}`,
		`{"name":"` + strings.Repeat("名", 200) + `"}`, `{"device_id":-1}`, `{"transport":"sctp"}`,
		strings.Replace(goodChannel, "rtsp://", "rtsp://u:p@", 1), "\xff\xfe",
	} {
		f.Add(seed)
	}
	ts, _ := newTestServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, target := range []struct{ method, path string }{{"POST", "/api/v1/channels"}, {"PATCH", "/api/v1/channels/1"}} {
			req, _ := http.NewRequest(target.method, ts.URL+target.path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode >= 500 {
				t.Fatalf("%s %s with %q: status %d", target.method, target.path, body, res.StatusCode)
			}
		}
	})
}

func TestOnlySourceChangesReconnect(t *testing.T) {
	ts, st := newTestServer(t)
	var changed []int64
	signer, _ := token.NewSigner(token.NewKey())
	s, err := New(Config{Store: st, Streams: fakeStreams{}, Signer: signer, OnChannelChanged: func(id int64) { changed = append(changed, id) }})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	_, ch := do(t, ts, "POST", "/api/v1/channels", goodChannel)
	id := itoa(int(ch["id"].(float64)))
	for _, tc := range []struct {
		body      string
		reconnect bool
	}{
		{`{"name":"改名","heading":180,"lat":23.79}`, false},
		{`{"source_url":"rtsp://admin:xxxxx@10.0.0.5:554/ch1"}`, false}, // the redacted URL sent back
		{`{"transport":"udp"}`, true},
		{`{"source_url":"rtsp://admin:new@10.0.0.5:554/ch1"}`, true},
	} {
		changed = nil
		if st, out := do(t, ts, "PATCH", "/api/v1/channels/"+id, tc.body); st != 200 {
			t.Fatalf("%s: %d %v", tc.body, st, out)
		}
		if got := len(changed) == 1; got != tc.reconnect {
			t.Errorf("%s: reconnect %v, want %v", tc.body, got, tc.reconnect)
		}
	}
	if st, _ := do(t, ts, "DELETE", "/api/v1/channels/"+id, ""); st != 204 || len(changed) != 2 {
		t.Errorf("delete: status %d, changed %v", st, changed)
	}
}

func TestKeepPassword(t *testing.T) {
	const stored = "rtsp://admin:secret@10.0.0.5:554/ch1"
	for _, tc := range []struct{ name, next, want string }{
		{"redacted sent back", "rtsp://admin:xxxxx@10.0.0.5:554/ch1", stored},
		{"new password", "rtsp://admin:other@10.0.0.5:554/ch1", "rtsp://admin:other@10.0.0.5:554/ch1"},
		{"password cleared", "rtsp://admin:@10.0.0.5:554/ch1", "rtsp://admin:@10.0.0.5:554/ch1"},
		{"other host", "rtsp://admin:xxxxx@10.0.0.6:554/ch1", "rtsp://admin:xxxxx@10.0.0.6:554/ch1"},
		{"other scheme", "rtsps://admin:xxxxx@10.0.0.5:554/ch1", "rtsps://admin:xxxxx@10.0.0.5:554/ch1"},
		{"other user", "rtsp://root:xxxxx@10.0.0.5:554/ch1", "rtsp://root:xxxxx@10.0.0.5:554/ch1"},
	} {
		if got := keepPassword(tc.next, stored); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCatalogGroupsAndGBDisabled(t *testing.T) {
	ts, st := newTestServer(t)
	ids, err := st.SaveDeviceStates(t.Context(), []store.DeviceState{{Code: "44182110001180000001", Online: true, Registered: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SyncCatalog(t.Context(), ids["44182110001180000001"], nil, []store.CatalogGroup{
		{Code: "44182110002150000001", Name: "治安监控", Kind: "business_group"},
		{Code: "44182110002160000001", Name: "汤塘片区", Kind: "virtual_organization", ParentCode: "44182110002150000001", DivisionCode: "441821"},
	}, false); err != nil {
		t.Fatal(err)
	}
	code, out := do(t, ts, "GET", "/api/v1/catalog-groups", "")
	gs, _ := out["groups"].([]any)
	if code != 200 || len(gs) != 2 || gs[1].(map[string]any)["parent_code"] != "44182110002150000001" {
		t.Fatalf("catalog groups: %d %v", code, out)
	}
	// Without the GB/T 28181 side, its endpoints say so.
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/v1/channels/1/ptz", `{"pan":1}`},
		{"GET", "/api/v1/channels/1/presets", ""},
		{"POST", "/api/v1/devices/1/control", `{"command":"reboot"}`},
		{"GET", "/api/v1/alarms", ""},
	} {
		code, out := do(t, ts, r.method, r.path, r.body)
		e, _ := out["error"].(map[string]any)
		if code != 501 || e["code"] != "gb28181_disabled" {
			t.Errorf("%s %s: %d %v", r.method, r.path, code, out)
		}
	}
}

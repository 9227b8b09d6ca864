package devsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/ptz"
)

func TestHandler(t *testing.T) {
	p := startPlatform(t, 200*time.Millisecond)
	s := startSim(t, p, func(c *Config) { c.Devices, c.ChannelsPerDevice = 2, 2 })
	waitOnline(t, p, s, 5*time.Second)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	dev := s.DeviceIDs()[1]
	ch := s.Channels(dev)[0]

	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if ct := res.Header.Get("Content-Type"); ct != "application/json" && res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		return res.StatusCode, b
	}
	wantError := func(code int, b []byte, want int, text string) {
		t.Helper()
		var e struct{ Error string }
		if code != want || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, text) {
			t.Errorf("%d %s, want %d with an error saying %q", code, b, want, text)
		}
	}

	code, b := do("GET", "/devices", "")
	var devs []DeviceState
	if err := json.Unmarshal(b, &devs); err != nil || code != 200 || len(devs) != 2 {
		t.Fatalf("%d %s %v", code, b, err)
	}
	if d := devs[1]; d.ID != dev || d.Type != "NVR" || !d.Online || len(d.Channels) != 2 || d.Channels[0] != ch || d.Fault != (Fault{}) {
		t.Errorf("device %+v", d)
	}

	code, b = do("POST", "/devices/"+dev+"/fault", `{"fault":{"gb2312":true,"wrong_ssrc":true}}`)
	var st DeviceState
	if err := json.Unmarshal(b, &st); err != nil || code != 200 || st.Fault != (Fault{GB2312: true, WrongSSRC: true}) {
		t.Errorf("fault: %d %s", code, b)
	}
	if f, _ := s.Faults(dev); f != (Fault{GB2312: true, WrongSSRC: true}) {
		t.Errorf("faults %+v", f)
	}
	code, b = do("POST", "/devices/"+ch+"/fault", `{"fault":{}}`)
	wantError(code, b, 404, "no such device")
	code, b = do("POST", "/devices/"+dev+"/fault", `{"fault":{"nonsense":true}}`)
	wantError(code, b, 400, "nonsense")
	code, b = do("POST", "/devices/"+dev+"/fault", `{}`)
	wantError(code, b, 400, "fault")

	code, b = do("POST", "/channels/"+ch+"/alarm", `{"priority":1,"method":5,"type":2,"description":"越界"}`)
	if code != 200 {
		t.Errorf("alarm: %d %s", code, b)
	}
	if a, err := nextMsg(t, p, manscdp.CmdAlarm, 5*time.Second).Alarm(); err != nil || a.DeviceID != ch || a.AlarmDescription != "越界" {
		t.Errorf("alarm %+v %v", a, err)
	}
	code, b = do("POST", "/channels/"+ch+"/alarm", `{"priority":9,"method":5}`)
	wantError(code, b, 400, "priority")
	code, b = do("POST", "/channels/nope/alarm", `{"priority":1,"method":5}`)
	wantError(code, b, 404, "no such channel")
	code, b = do("POST", "/channels/"+ch+"/alarm", `{"priority":`)
	wantError(code, b, 400, "JSON")

	code, b = do("POST", "/devices/"+dev+"/catalog-event", `{"event":"OFF","channels":["`+ch+`"]}`)
	if code != 200 {
		t.Errorf("catalog event: %d %s", code, b)
	}
	if cat, err := nextMsg(t, p, manscdp.CmdCatalog, 5*time.Second).Catalog(); err != nil || len(cat.Items) != 1 || cat.Items[0].Event != "OFF" {
		t.Errorf("catalog event %+v %v", cat, err)
	}
	code, b = do("POST", "/devices/"+dev+"/catalog-event", `{"event":"EXPLODE"}`)
	wantError(code, b, 400, "event")

	cmd, _ := ptz.Encode(ptz.Command{Op: ptz.OpPTZ, Pan: -1, PanSpeed: 30})
	newPeer(t).send(t, deviceAddr(t, p, dev), dev, manscdp.PTZControl(1, ch, cmd, 0))
	code, b = do("GET", "/channels/"+ch+"/controls", "")
	var cs []Control
	if err := json.Unmarshal(b, &cs); err != nil || code != 200 || len(cs) != 1 || cs[0].Cmd != "ptz" || cs[0].Pan != -1 || cs[0].PanSpeed != 30 {
		t.Errorf("controls: %d %s", code, b)
	}
	if code, b = do("GET", "/channels/"+s.Channels(dev)[1]+"/controls", ""); code != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("no controls: %d %s", code, b)
	}
	code, b = do("GET", "/channels/nope/controls", "")
	wantError(code, b, 404, "no such channel")
	if code, _ = do("DELETE", "/devices", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /devices: %d", code)
	}
}

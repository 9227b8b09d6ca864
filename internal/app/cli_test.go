package app

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("log:\n  level: loud\nlive:\n  token_ttl: 48h\n"), 0o600)
	badGB := filepath.Join(dir, "badgb.yaml")
	os.WriteFile(badGB, []byte("gb28181:\n  enabled: true\n  id: \"123\"\n  password: x\n"), 0o600)
	for _, tc := range []struct {
		name        string
		args        []string
		code        int
		out, errOut string
	}{
		{"version", []string{"version"}, 0, "xueliang ", ""},
		{"help", []string{"help"}, 0, "xueliang serve", ""},
		{"no command", nil, 2, "", "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"config prints settings", []string{"config"}, 0, "webrtc_udp_addr:", ""},
		{"invalid config names the fields", []string{"serve", "--config", bad}, 1, "", "log.level: must be debug, info, warn or error"},
		{"invalid config names every field", []string{"config", "--config", bad}, 1, "", "live.token_ttl"},
		{"missing config file", []string{"serve", "--config", filepath.Join(dir, "none.yaml")}, 1, "", "no such file"},
		{"bad flag", []string{"serve", "--htpp", "x"}, 1, "", "flag provided but not defined"},
		{"sim needs a camera", []string{"sim", "--cameras", "0"}, 1, "", "--cameras must be at least 1"},
		{"sim gb needs a password", []string{"sim", "gb"}, 1, "", "--password is required"},
		{"sim gb checks its division", []string{"sim", "gb", "--password", "x", "--division", "44"}, 1, "", "DivisionCode \"44\" is not 8 digits"},
		{"gb28181 config is checked", []string{"serve", "--config", badGB}, 1, "", "gb28181.id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.errOut) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d with %q / %q", code, out.String(), errOut.String(), tc.code, tc.out, tc.errOut)
			}
		})
	}
}

func TestDemoConfigKeepsWebRTCOnLoopback(t *testing.T) {
	for _, tc := range []struct{ http, udp string }{
		{"127.0.0.1:8080", "127.0.0.1:8189"},
		{"localhost:8080", "127.0.0.1:8189"},
		{"0.0.0.0:8080", ":8189"},
		{"192.168.1.10:8080", ":8189"},
	} {
		c := DemoConfig(tc.http, t.TempDir())
		if c.Live.WebRTCUDPAddr != tc.udp {
			t.Errorf("demo on %s: WebRTC UDP %s, want %s", tc.http, c.Live.WebRTCUDPAddr, tc.udp)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("demo on %s: %v", tc.http, err)
		}
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), store.Config{DSN: filepath.Join(dir, "xueliang.db")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st.AppendAudit(t.Context(), &model.AuditEntry{Actor: "officer", Action: "live.start", Channels: []int64{int64(i + 1)}, Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	var out, errOut bytes.Buffer
	if code := Main([]string{"audit", "verify", "--data", dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "intact: 3 entries") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	// Edit an entry by hand, as someone covering their tracks would.
	db, err := sql.Open("sqlite", filepath.Join(dir, "xueliang.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET channels = '99' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out.Reset()
	if code := Main([]string{"audit", "verify", "--data", dir}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "BROKEN at entry 2") {
		t.Fatalf("after tampering: exit %d: %s", code, out.String())
	}
}

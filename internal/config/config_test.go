package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.yaml")
	os.WriteFile(file, []byte("http:\n  addr: 0.0.0.0:9000\nstreams:\n  idle_timeout: 3s\nlog:\n  level: debug\n"), 0o600)
	c, err := Load(file, []string{"XUELIANG_HTTP_ADDR=127.0.0.1:9100", "XUELIANG_LIVE_WEBRTC_HOSTS=10.0.0.1, 10.0.0.2", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:9100" {
		t.Errorf("env did not override file: %s", c.HTTP.Addr)
	}
	if c.Streams.IdleTimeout.D() != 3*time.Second || c.Log.Level != "debug" {
		t.Errorf("file values lost: %+v", c)
	}
	if c.Live.TokenTTL.D() != 5*time.Minute {
		t.Errorf("default lost: %s", c.Live.TokenTTL)
	}
	if len(c.Live.WebRTCHosts) != 2 || c.Live.WebRTCHosts[1] != "10.0.0.2" {
		t.Errorf("list from env: %v", c.Live.WebRTCHosts)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	for _, tc := range []struct {
		name    string
		file    string
		env     []string
		wantErr string
	}{
		{"unknown key", "htpp:\n  addr: x\n", nil, "field htpp not found"},
		{"bad duration", "streams:\n  idle_timeout: ten\n", nil, "invalid duration"},
		{"bad env int", "", []string{"XUELIANG_LIVE_HLS_SEGMENT_COUNT=many"}, "live.hls_segment_count"},
		{"missing file", "-", nil, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "missing.yaml")
			if tc.file != "-" {
				p = write(tc.file)
			}
			_, err := Load(p, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestUnknownEnvIsReported(t *testing.T) {
	c, err := Load("", []string{"XUELIANG_HTTP_ADR=x", "XUELIANG_HTTP_ADDR=127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.UnknownEnv) != 1 || c.UnknownEnv[0] != "XUELIANG_HTTP_ADR" || c.HTTP.Addr != "127.0.0.1:1" {
		t.Fatalf("UnknownEnv %v, addr %s", c.UnknownEnv, c.HTTP.Addr)
	}
}

func TestValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"addr", func(c *Config) { c.HTTP.Addr = "8080" }, "http.addr"},
		{"level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"driver", func(c *Config) { c.Store.Driver = "mysql" }, "store.driver"},
		{"ttl", func(c *Config) { c.Live.TokenTTL = Duration(48 * time.Hour) }, "live.token_ttl"},
		{"backoff", func(c *Config) { c.Streams.BackoffMax = 1 }, "streams.backoff_max"},
		{"public url", func(c *Config) { c.HTTP.PublicURL = "video.example" }, "http.public_url"},
		{"hls segments", func(c *Config) { c.Live.HLSSegmentCount = 3 }, "live.hls_segment_count"},
		{"hosts", func(c *Config) { c.Live.WebRTCHosts = []string{"nat"} }, "live.webrtc_hosts"},
		{"part", func(c *Config) { c.Live.HLSPartDuration = Duration(time.Millisecond) }, "live.hls_part_duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("err = %v, want it to name %s", err, tc.field)
			}
		})
	}
}

func TestLoadOverKeepsBase(t *testing.T) {
	base := Default()
	base.Streams.ProbeInterval = Duration(30 * time.Second)
	c, err := LoadOver(base, "", []string{"XUELIANG_LOG_LEVEL=debug"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Streams.ProbeInterval.D() != 30*time.Second || c.Log.Level != "debug" {
		t.Fatalf("probe %s, level %s", c.Streams.ProbeInterval, c.Log.Level)
	}
}

// Package config holds the one typed configuration of Xueliang.
//
// Values come from, in increasing precedence: the defaults of Default, a YAML
// file, and XUELIANG_* environment variables named after the YAML path
// (http.addr -> XUELIANG_HTTP_ADDR). Load refuses unknown YAML keys and
// Validate names the field at fault, so a wrong setting stops the start with
// a message instead of being ignored.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "10s", "5m" in YAML and env.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use a value like 10s or 5m)", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is the whole configuration.
type Config struct {
	// DataDir holds the database, the signing key and (later) recordings.
	DataDir string  `yaml:"data_dir"`
	Log     Log     `yaml:"log"`
	HTTP    HTTP    `yaml:"http"`
	Store   Store   `yaml:"store"`
	Streams Streams `yaml:"streams"`
	Live    Live    `yaml:"live"`
	Record  Record  `yaml:"record"`
	GB      GB      `yaml:"gb28181"`

	// UnknownEnv lists XUELIANG_* variables that name no setting, most
	// likely typos; the caller logs them (other tools of the project, such
	// as the benchmarks, use the prefix too, so they are not an error).
	UnknownEnv []string `yaml:"-"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// HTTP configures the API, console and media HTTP server.
type HTTP struct {
	Addr string `yaml:"addr"`
	// PublicURL is the base of URLs handed to clients (e.g.
	// https://video.example.gov.cn). Empty: derived from each request.
	PublicURL string `yaml:"public_url"`
	// Pprof serves Go's profiler at /debug/pprof/ (for operators chasing a
	// CPU or memory problem; off by default).
	Pprof bool `yaml:"pprof"`
}

// Store configures the database.
type Store struct {
	Driver string `yaml:"driver"` // sqlite (PostgreSQL comes later)
	// DSN of the database; for sqlite a file path, default DataDir/xueliang.db.
	DSN string `yaml:"dsn"`
}

// Streams configures the stream hub.
type Streams struct {
	IdleTimeout Duration `yaml:"idle_timeout"`
	BackoffMin  Duration `yaml:"backoff_min"`
	BackoffMax  Duration `yaml:"backoff_max"`
	ReadTimeout Duration `yaml:"read_timeout"` // no media for this long fails a source
	// ProbeInterval is how often channels that nobody watches are checked
	// so that their status stays true; 0 disables probing.
	ProbeInterval Duration `yaml:"probe_interval"`
}

// Live configures live-view egress.
type Live struct {
	// TokenTTL is the lifetime of signed live URLs.
	TokenTTL Duration `yaml:"token_ttl"`
	// WebRTCUDPAddr is the one UDP address of all WebRTC sessions.
	WebRTCUDPAddr string `yaml:"webrtc_udp_addr"`
	// WebRTCHosts are extra IPs announced as ICE candidates (NAT 1:1).
	WebRTCHosts     []string `yaml:"webrtc_hosts"`
	HLSSegmentCount int      `yaml:"hls_segment_count"`
	HLSPartDuration Duration `yaml:"hls_part_duration"`
	// HLSIdleTimeout closes a channel's HLS muxer when nobody requested it
	// for this long.
	HLSIdleTimeout Duration `yaml:"hls_idle_timeout"`
}

// Record configures recording, the blob store of recordings, retention
// and evidence exports.
type Record struct {
	// Dir is the local recordings folder (and, with S3, the spool of
	// segments waiting for upload). Default DataDir/recordings.
	Dir string `yaml:"dir"`
	// SegmentDuration is the length of one segment file.
	SegmentDuration Duration `yaml:"segment_duration"`
	// PartDuration is the longest fragment: what a crash may lose.
	PartDuration Duration `yaml:"part_duration"`
	// Retention is how long segments are kept unless a channel's plan
	// says otherwise (in days): 720h is 30 days.
	Retention Duration `yaml:"retention"`
	// RetentionInterval is how often retention and the disk guard run.
	RetentionInterval Duration `yaml:"retention_interval"`
	// MinFreeMB is the disk guard: when the recordings folder's file
	// system has less free space, the oldest unlocked segments are deleted
	// and a warning is raised. 0 disables the guard.
	MinFreeMB int `yaml:"min_free_mb"`
	// MaxMB caps the bytes of segments on the local disk (a quota for a
	// shared disk); the oldest unlocked segments go first. 0: no cap.
	MaxMB int `yaml:"max_mb"`
	// Timezone of weekly recording schedules ("Local", "Asia/Shanghai").
	Timezone string `yaml:"timezone"`
	// Store is where finished segments live: disk or s3.
	Store string `yaml:"store"`
	S3    S3     `yaml:"s3"`
}

// GB configures GB/T 28181 device access: the SIP server that devices
// register with, and the media sessions they send video over.
type GB struct {
	// Enabled starts the SIP server.
	Enabled bool `yaml:"enabled"`
	// SIPAddr is where the SIP server listens, on UDP and TCP.
	SIPAddr string `yaml:"sip_addr"`
	// SIPHost is the address devices reach the platform at (Via, Contact,
	// and the c= line of SDP offers); default the listening IP, or the
	// machine's first non-loopback IPv4 address.
	SIPHost string `yaml:"sip_host"`
	// ID is the platform's 20-digit SIP ID (type code 200); Domain its SIP
	// domain (default the first 10 digits of ID), which is the digest realm.
	ID     string `yaml:"id"`
	Domain string `yaml:"domain"`
	// Password is the registration password of devices; DevicePasswords
	// lists per-device ones as "deviceID:password".
	Password        string   `yaml:"password"`
	DevicePasswords []string `yaml:"device_passwords"`
	// AllowUnknown admits devices that are not in the database with
	// Password; otherwise only devices added beforehand may register.
	AllowUnknown bool `yaml:"allow_unknown"`
	// KeepaliveInterval is the devices' keepalive period: three missed
	// make a device offline.
	KeepaliveInterval Duration `yaml:"keepalive_interval"`
	// MediaIP is the IP put in SDP offers for devices to send media to;
	// default this machine's IP on the route to the device. MediaBind is
	// the IP RTP sockets bind to.
	MediaIP   string `yaml:"media_ip"`
	MediaBind string `yaml:"media_bind"`
	// RTPPortMin and RTPPortMax bound the ports of media sessions (one
	// port per session; firewalls open this range).
	RTPPortMin int `yaml:"rtp_port_min"`
	RTPPortMax int `yaml:"rtp_port_max"`
	// Transport is how devices send live media unless a channel says
	// otherwise: udp, tcp-passive (the device connects to the platform) or
	// tcp-active (the platform connects to the device).
	Transport string `yaml:"transport"`
	// InviteTimeout bounds the wait for a device's answer; MediaTimeout
	// the wait for the first media after it.
	InviteTimeout Duration `yaml:"invite_timeout"`
	MediaTimeout  Duration `yaml:"media_timeout"`
	// IgnoreSSRC takes media of any SSRC (the first that arrives) instead
	// of only the y= of the SDP: for devices that ignore it.
	IgnoreSSRC bool `yaml:"ignore_ssrc"`
	// Timezone is that of devices' clocks ("Local", "Asia/Shanghai"):
	// MANSCDP times (DeviceTime, alarms, record lists) carry no zone.
	Timezone string `yaml:"timezone"`
}

// S3 configures S3-compatible object storage.
type S3 struct {
	Endpoint  string `yaml:"endpoint"` // host:port
	Secure    bool   `yaml:"secure"`   // HTTPS
	Region    string `yaml:"region"`
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
}

// Default returns the embedded defaults: one machine, SQLite, local disk.
func Default() Config {
	return Config{
		DataDir: "./xueliang-data",
		Log:     Log{Level: "info", Format: "text"},
		HTTP:    HTTP{Addr: "127.0.0.1:8080"},
		Store:   Store{Driver: "sqlite"},
		Streams: Streams{
			IdleTimeout:   Duration(10 * time.Second),
			BackoffMin:    Duration(500 * time.Millisecond),
			BackoffMax:    Duration(30 * time.Second),
			ReadTimeout:   Duration(10 * time.Second),
			ProbeInterval: Duration(time.Minute),
		},
		Live: Live{
			TokenTTL:        Duration(5 * time.Minute),
			WebRTCUDPAddr:   ":8189",
			HLSSegmentCount: 4,
			HLSPartDuration: Duration(500 * time.Millisecond),
			HLSIdleTimeout:  Duration(15 * time.Second),
		},
		Record: Record{
			SegmentDuration:   Duration(time.Minute),
			PartDuration:      Duration(time.Second),
			Retention:         Duration(30 * 24 * time.Hour),
			RetentionInterval: Duration(time.Minute),
			MinFreeMB:         2048,
			Timezone:          "Local",
			Store:             "disk",
		},
		GB: GB{
			SIPAddr:           "0.0.0.0:5060",
			ID:                "44180000002000000001",
			KeepaliveInterval: Duration(60 * time.Second),
			MediaBind:         "0.0.0.0",
			RTPPortMin:        30000,
			RTPPortMax:        30999,
			Transport:         "udp",
			InviteTimeout:     Duration(10 * time.Second),
			MediaTimeout:      Duration(5 * time.Second),
			Timezone:          "Local",
		},
	}
}

// Load returns the defaults overlaid with the YAML file at path (if path is
// not empty) and then with the environment (environ is os.Environ() in
// production). It does not validate; call Validate.
func Load(path string, environ []string) (Config, error) {
	return LoadOver(Default(), path, environ)
}

// LoadOver is Load with base in place of the defaults, for commands that
// have defaults of their own (xueliang demo).
func LoadOver(base Config, path string, environ []string) (Config, error) {
	cfg := base
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
			return cfg, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// EnvPrefix starts every environment variable read by Load.
const EnvPrefix = "XUELIANG_"

// applyEnv sets fields from XUELIANG_* variables named after YAML paths.
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	known := map[string]bool{}
	err := walk(reflect.ValueOf(cfg).Elem(), "", func(path string, f reflect.Value) error {
		name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
		known[name] = true
		v, ok := env[name]
		if !ok {
			return nil
		}
		if err := setField(f, v); err != nil {
			return fmt.Errorf("config: %s (from %s): %w", path, name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k := range env {
		if !known[k] {
			cfg.UnknownEnv = append(cfg.UnknownEnv, k)
		}
	}
	slices.Sort(cfg.UnknownEnv)
	return nil
}

// walk calls fn for every leaf field of v with its dotted YAML path.
func walk(v reflect.Value, prefix string, fn func(path string, f reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			if err := walk(f, path, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(path, f); err != nil {
			return err
		}
	}
	return nil
}

func setField(f reflect.Value, s string) error {
	if d, ok := f.Addr().Interface().(*Duration); ok {
		return d.UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		f.SetInt(int64(n))
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		f.SetBool(b)
	case reflect.Slice:
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}

// Validate checks every field and returns an error naming the first field
// at fault, or all of them joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	if err := validHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%v", err)
	}
	if c.HTTP.PublicURL != "" {
		u, err := url.Parse(c.HTTP.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("http.public_url", "must be an absolute http(s) URL, got %q", c.HTTP.PublicURL)
		}
	}
	if c.Store.Driver != "sqlite" {
		bad("store.driver", "must be sqlite (PostgreSQL support is planned), got %q", c.Store.Driver)
	}
	positive := func(field string, d Duration) {
		if d <= 0 {
			bad(field, "must be positive, got %s", d)
		}
	}
	positive("streams.idle_timeout", c.Streams.IdleTimeout)
	positive("streams.backoff_min", c.Streams.BackoffMin)
	positive("streams.read_timeout", c.Streams.ReadTimeout)
	if c.Streams.ProbeInterval < 0 {
		bad("streams.probe_interval", "must not be negative (0 disables probing), got %s", c.Streams.ProbeInterval)
	}
	if c.Streams.BackoffMax < c.Streams.BackoffMin {
		bad("streams.backoff_max", "must not be less than streams.backoff_min (%s), got %s", c.Streams.BackoffMin, c.Streams.BackoffMax)
	}
	positive("live.token_ttl", c.Live.TokenTTL)
	if c.Live.TokenTTL > Duration(24*time.Hour) {
		bad("live.token_ttl", "must be at most 24h (media URLs are short-lived), got %s", c.Live.TokenTTL)
	}
	if err := validHostPort(c.Live.WebRTCUDPAddr); err != nil {
		bad("live.webrtc_udp_addr", "%v", err)
	}
	for _, h := range c.Live.WebRTCHosts {
		if net.ParseIP(h) == nil {
			bad("live.webrtc_hosts", "%q is not an IP address", h)
		}
	}
	// RFC 8216bis §6.2.2: the playlist must keep at least three target
	// durations; with segments of about one target duration that takes 4.
	if c.Live.HLSSegmentCount < 4 {
		bad("live.hls_segment_count", "must be at least 4 (RFC 8216bis keeps three target durations), got %d", c.Live.HLSSegmentCount)
	}
	if c.Live.HLSPartDuration < Duration(100*time.Millisecond) || c.Live.HLSPartDuration > Duration(2*time.Second) {
		bad("live.hls_part_duration", "must be between 100ms and 2s, got %s", c.Live.HLSPartDuration)
	}
	positive("live.hls_idle_timeout", c.Live.HLSIdleTimeout)
	r := &c.Record
	if r.PartDuration < Duration(100*time.Millisecond) || r.PartDuration > Duration(time.Second) {
		bad("record.part_duration", "must be between 100ms and 1s, got %s", r.PartDuration)
	}
	if r.SegmentDuration < r.PartDuration || r.SegmentDuration > Duration(50*time.Minute) {
		bad("record.segment_duration", "must be between record.part_duration and 50m, got %s", r.SegmentDuration)
	}
	if r.Retention < Duration(time.Hour) || r.Retention > Duration(3650*24*time.Hour) {
		bad("record.retention", "must be between 1h and 87600h (ten years), got %s", r.Retention)
	}
	positive("record.retention_interval", r.RetentionInterval)
	if r.MinFreeMB < 0 {
		bad("record.min_free_mb", "must not be negative (0 disables the disk guard), got %d", r.MinFreeMB)
	}
	if r.MaxMB < 0 {
		bad("record.max_mb", "must not be negative (0: no quota), got %d", r.MaxMB)
	}
	if _, err := time.LoadLocation(r.Timezone); err != nil {
		bad("record.timezone", "unknown time zone %q (use Local or an IANA name such as Asia/Shanghai)", r.Timezone)
	}
	switch r.Store {
	case "disk":
	case "s3":
		if r.S3.Endpoint == "" {
			bad("record.s3.endpoint", "must be set when record.store is s3")
		}
		if r.S3.Bucket == "" {
			bad("record.s3.bucket", "must be set when record.store is s3")
		}
		if r.S3.AccessKey == "" || r.S3.SecretKey == "" {
			bad("record.s3.access_key", "record.s3.access_key and record.s3.secret_key must be set when record.store is s3")
		}
	default:
		bad("record.store", "must be disk or s3, got %q", r.Store)
	}
	if g := &c.GB; g.Enabled {
		if err := validHostPort(g.SIPAddr); err != nil {
			bad("gb28181.sip_addr", "%v", err)
		}
		if !digitsN(g.ID, 20) || g.ID[10:13] != "200" {
			bad("gb28181.id", "must be a 20-digit SIP ID with type code 200 (digits 11-13), for example 44180000002000000001, got %q", g.ID)
		}
		if g.Domain != "" && !digitsN(g.Domain, 10) {
			bad("gb28181.domain", "must be 10 digits (the first 10 of the SIP ID), got %q", g.Domain)
		}
		if g.Password == "" && len(g.DevicePasswords) == 0 {
			bad("gb28181.password", "must be set (devices register with it), or list gb28181.device_passwords")
		}
		for _, dp := range g.DevicePasswords {
			if id, pw, ok := strings.Cut(dp, ":"); !ok || !digitsN(id, 20) || pw == "" {
				bad("gb28181.device_passwords", "entries must be deviceID:password with a 20-digit ID, got %q", dp)
			}
		}
		for _, ip := range []struct{ field, v string }{{"gb28181.sip_host", g.SIPHost}, {"gb28181.media_ip", g.MediaIP}, {"gb28181.media_bind", g.MediaBind}} {
			if ip.v != "" && net.ParseIP(ip.v) == nil {
				bad(ip.field, "must be an IP address, got %q", ip.v)
			}
		}
		if g.KeepaliveInterval < Duration(time.Second) {
			bad("gb28181.keepalive_interval", "must be at least 1s, got %s", g.KeepaliveInterval)
		}
		if g.RTPPortMin < 1024 || g.RTPPortMax > 65535 || g.RTPPortMax-g.RTPPortMin < 1 {
			bad("gb28181.rtp_port_min", "the RTP port range must lie within 1024-65535 and hold at least 2 ports, got %d-%d", g.RTPPortMin, g.RTPPortMax)
		}
		switch g.Transport {
		case "udp", "tcp-passive", "tcp-active":
		default:
			bad("gb28181.transport", "must be udp, tcp-passive or tcp-active, got %q", g.Transport)
		}
		if _, err := time.LoadLocation(g.Timezone); err != nil {
			bad("gb28181.timezone", "unknown time zone %q (use Local or an IANA name such as Asia/Shanghai)", g.Timezone)
		}
		positive("gb28181.invite_timeout", g.InviteTimeout)
		positive("gb28181.media_timeout", g.MediaTimeout)
	}
	return errors.Join(errs...)
}

// digitsN reports whether s is n ASCII digits.
func digitsN(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", s)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
		return fmt.Errorf("bad host in %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port in %q", s)
	}
	return nil
}

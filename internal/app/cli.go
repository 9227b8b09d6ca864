package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/sim"
)

const usage = `xueliang — 雪亮 public-safety video platform

Usage:
  xueliang serve   [--config FILE] [--http ADDR] [--data DIR]   run the platform
  xueliang demo    [--http ADDR] [--data DIR] [--sip ADDR]      platform + a simulated city
  xueliang sim     [--addr ADDR] [--cameras N | --city] ...     simulated RTSP cameras
  xueliang sim gb  [--server ADDR] [--devices N --channels M]   simulated GB/T 28181 devices
  xueliang audit verify [--config FILE] [--data DIR]            check the audit trail's hash chain
  xueliang config  [--config FILE]                              print the effective configuration
  xueliang version

Settings come from defaults < the --config YAML file < XUELIANG_* environment
variables (http.addr -> XUELIANG_HTTP_ADDR) < flags.
`

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("GOGC") == "" {
		// A media server's heap is mostly short-lived frame buffers: a GC
		// at 50 % heap growth instead of 100 % keeps RSS about a fifth
		// lower for no measurable CPU (docs/BENCHMARKS.md). GOGC wins.
		debug.SetGCPercent(50)
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "sim":
		err = cmdSim(ctx, args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "xueliang", Version)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "xueliang: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "xueliang:", err)
		return 1
	}
	return 0
}

// loadConfig reads the file and environment, applies flag overrides and
// validates.
func loadConfig(file, httpAddr, dataDir string) (config.Config, error) {
	cfg, err := config.Load(file, os.Environ())
	if err != nil {
		return cfg, err
	}
	if httpAddr != "" {
		cfg.HTTP.Addr = httpAddr
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	return cfg, cfg.Validate()
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration `file`")
	httpAddr := fs.String("http", "", "HTTP listen `address` (overrides http.addr)")
	dataDir := fs.String("data", "", "data `folder` (overrides data_dir)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, *httpAddr, *dataDir)
	if err != nil {
		return err
	}
	log, err := NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	warnUnknownEnv(log, cfg)
	a, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return a.Close()
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP listen `address` of the platform")
	dataDir := fs.String("data", "./xueliang-data", "data `folder`")
	rtspAddr := fs.String("rtsp", "127.0.0.1:0", "listen `address` of the simulated cameras")
	sipAddr := fs.String("sip", DemoSIPAddr, "SIP `address` of the platform (UDP and TCP) for GB/T 28181 devices")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The demo's own defaults < XUELIANG_* environment < flags given.
	cfg, err := config.LoadOver(DemoConfig(*httpAddr, *dataDir), "", os.Environ())
	if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "http":
			cfg.HTTP.Addr = *httpAddr
		case "data":
			cfg.DataDir = *dataDir
		case "sip":
			cfg.GB.SIPAddr = *sipAddr
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	warnUnknownEnv(log, cfg)
	d, err := StartDemo(ctx, DemoOptions{Config: cfg, RTSPAddr: *rtspAddr, Logger: log})
	if err != nil {
		return err
	}
	d.PrintBanner(stdout)
	<-ctx.Done()
	log.Info("shutting down")
	return d.Close()
}

func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "gb" {
		return cmdSimGB(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8554", "RTSP listen `address`")
	n := fs.Int("cameras", 8, "number of cameras, served at rtsp://ADDR/cam/1 ... /cam/N")
	city := fs.Bool("city", false, "serve the demo city's cameras (rtsp://ADDR/cam/<code>) instead")
	clip := fs.String("clip", "", "clip `name` or file for every camera (default: rotate the embedded clips)")
	audio := fs.String("audio", "", "audio of every camera: aac, g711a, g711u or empty")
	control := fs.String("control", "", "HTTP control API `address` (GET /cameras, POST /cameras/{path}/fault)")
	noUDP := fs.Bool("tcp-only", false, "serve the TCP transport only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := NewLogger(config.Default().Log, stderr)
	if err != nil {
		return err
	}
	cfg := sim.Config{Addr: *addr, ControlAddr: *control, DisableUDP: *noUDP, Logger: log}
	if *city {
		for _, c := range DemoCameras() {
			cfg.Cameras = append(cfg.Cameras, sim.Camera{Path: "cam/" + c.Code, Clip: c.Clip, Label: c.Name, Audio: c.Audio, Username: c.Username, Password: c.Password})
		}
	} else {
		if *n < 1 {
			return fmt.Errorf("sim: --cameras must be at least 1, got %d", *n)
		}
		clips := sim.Clips()
		for i := 1; i <= *n; i++ {
			c := sim.Camera{Path: fmt.Sprintf("cam/%d", i), Label: fmt.Sprintf("camera %d", i), Clip: *clip, Audio: *audio}
			if c.Clip == "" {
				c.Clip = clips[(i-1)%len(clips)]
			}
			cfg.Cameras = append(cfg.Cameras, c)
		}
	}
	s := sim.NewServer(cfg)
	if err := s.Start(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving %d simulated cameras at rtsp://%s/%s\n", len(cfg.Cameras), s.Addr(), cfg.Cameras[0].Path)
	if *control != "" {
		fmt.Fprintf(stdout, "control API at http://%s/cameras\n", s.ControlAddr())
	}
	<-ctx.Done()
	return s.Close()
}

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, "", "")
	if err != nil {
		return err
	}
	if cfg.GB.Password != "" {
		cfg.GB.Password = "(set, not shown)"
	}
	if len(cfg.GB.DevicePasswords) > 0 {
		cfg.GB.DevicePasswords = []string{fmt.Sprintf("(%d set, not shown)", len(cfg.GB.DevicePasswords))}
	}
	if cfg.Record.S3.SecretKey != "" {
		cfg.Record.S3.SecretKey = "(set, not shown)"
	}
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	return enc.Encode(cfg)
}

// warnUnknownEnv logs the XUELIANG_* variables that name no setting.
func warnUnknownEnv(log *slog.Logger, cfg config.Config) {
	for _, k := range cfg.UnknownEnv {
		log.Warn("environment variable names no setting; typo? (xueliang config lists the settings)", "var", k)
	}
}

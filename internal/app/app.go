// Package app is the composition root of Xueliang: it builds every
// component from one config.Config, wires them together, starts them and
// stops them. It is the only package that imports all the others, and no
// package imports it.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xueliang/xueliang/internal/api"
	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/egress/llhls"
	"github.com/xueliang/xueliang/internal/egress/whep"
	"github.com/xueliang/xueliang/internal/events"
	"github.com/xueliang/xueliang/internal/ingest/rtsp"
	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/record"
	"github.com/xueliang/xueliang/internal/store"
	"github.com/xueliang/xueliang/internal/streams"
	"github.com/xueliang/xueliang/internal/token"
	"github.com/xueliang/xueliang/internal/web"
)

// Version is set at build time with -ldflags "-X ...app.Version=v1.2.3".
var Version = "dev"

// App is one running Xueliang platform (all roles in one process).
type App struct {
	cfg config.Config
	log *slog.Logger
	reg *prometheus.Registry

	store       *store.Store
	rtspMetrics *rtsp.Metrics
	signer      *token.Signer
	hub         *streams.Hub
	hls         *llhls.Server
	whep        *whep.Server
	api         *api.Server
	rec         *recordings
	exp         *record.Exporter
	events      *events.Broker
	gb          *gbSide // nil unless gb28181.enabled
	srv         *http.Server
	ln          net.Listener

	runCtx context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines started by Start
	close  sync.Once
}

// New returns an App for cfg, which must be valid. Nothing starts until Start.
func New(cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &App{cfg: cfg, log: log, reg: prometheus.NewRegistry()}, nil
}

// Start opens the store, starts the media plane and serves HTTP. On error,
// whatever was started is stopped again.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	a.runCtx, a.cancel = runCtx, cancel
	a.events = events.New()

	if err := os.MkdirAll(a.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("app: data folder: %w (set data_dir or --data to a writable folder)", err)
	}
	dsn := a.cfg.Store.DSN
	if dsn == "" {
		dsn = filepath.Join(a.cfg.DataDir, "xueliang.db")
	}
	if a.store, err = store.Open(ctx, store.Config{Driver: a.cfg.Store.Driver, DSN: dsn}); err != nil {
		return err
	}
	key, err := loadKey(filepath.Join(a.cfg.DataDir, "media.key"))
	if err != nil {
		return err
	}
	if a.signer, err = token.NewSigner(key); err != nil {
		return err
	}

	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.rtspMetrics, err = rtsp.NewMetrics(a.reg); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.hub, err = streams.New(streams.Config{
		Resolver:    streams.ResolverFunc(a.sourceFor),
		OnStatus:    a.onStatus,
		IdleTimeout: a.cfg.Streams.IdleTimeout.D(),
		BackoffMin:  a.cfg.Streams.BackoffMin.D(),
		BackoffMax:  a.cfg.Streams.BackoffMax.D(),
		Logger:      a.log,
		Registerer:  a.reg,
	})
	if err != nil {
		return err
	}
	a.hls, err = llhls.NewServer(llhls.Config{
		Hub:             a.hub,
		Authorize:       a.authorizeLive(llhls.ErrUnauthorized, llhls.ErrForbidden),
		Logger:          a.log,
		Registerer:      a.reg,
		SegmentCount:    a.cfg.Live.HLSSegmentCount,
		PartMinDuration: a.cfg.Live.HLSPartDuration.D(),
		IdleTimeout:     a.cfg.Live.HLSIdleTimeout.D(),
	})
	if err != nil {
		return err
	}
	a.whep, err = whep.NewServer(whep.Config{
		Hub:             a.hub,
		Authorize:       a.authorizeLive(whep.ErrUnauthorized, whep.ErrForbidden),
		Logger:          a.log,
		Registerer:      a.reg,
		UDPAddr:         a.cfg.Live.WebRTCUDPAddr,
		AdditionalHosts: a.cfg.Live.WebRTCHosts,
	})
	if err != nil {
		return err
	}
	if err := a.whep.Start(); err != nil {
		return err
	}
	if err := a.startRecording(ctx, runCtx); err != nil {
		return err
	}
	if err := a.startGB(ctx); err != nil {
		return err
	}
	apiCfg := api.Config{
		Store:      a.store,
		Streams:    a.hub,
		Signer:     a.signer,
		TokenTTL:   a.cfg.Live.TokenTTL.D(),
		PublicURL:  a.cfg.HTTP.PublicURL,
		Logger:     a.log,
		Version:    Version,
		Registerer: a.reg,
		Recordings: a.rec,
		Exports:    exports{exp: a.exp, st: a.store},
		Alarms:     a.store,
		Events:     a.events,
		// A changed or deleted channel reconnects (or stops) at once.
		OnChannelChanged: a.channelChanged,
	}
	if a.gb != nil {
		apiCfg.GB = a.gb
	}
	if a.api, err = api.New(apiCfg); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/api/", a.api)
	mux.Handle("/live/{id}/hls/", a.hls)
	mux.Handle("/live/{id}/whep", a.whep)
	mux.Handle("/live/{id}/whep/", a.whep)
	mux.HandleFunc("GET /playback/{id}/index.m3u8", a.servePlaylist)
	mux.HandleFunc("GET /playback/{id}/seg/{key...}", a.serveSegment)
	mux.HandleFunc("GET /playback/{id}/playback.mp4", a.serveMP4)
	mux.HandleFunc("GET /exports/{id}/files/{name}", a.serveExportFile)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("/", web.Handler())
	if a.cfg.HTTP.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}

	if a.ln, err = net.Listen("tcp", a.cfg.HTTP.Addr); err != nil {
		return fmt.Errorf("app: listen on %s: %w (is another xueliang running? pick another address with --http or http.addr)", a.cfg.HTTP.Addr, err)
	}
	a.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	if a.cfg.Streams.ProbeInterval > 0 {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.probeLoop(runCtx)
		}()
	}
	a.log.Info("xueliang started", "version", Version, "http", a.URL(), "data", a.cfg.DataDir, "webrtc_udp", a.whep.UDPAddr())
	return nil
}

// URL returns the base URL the HTTP server listens on.
func (a *App) URL() string {
	if a.ln == nil {
		return ""
	}
	addr := a.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Store returns the store of a started App.
func (a *App) Store() *store.Store { return a.store }

// Hub returns the stream hub of a started App.
func (a *App) Hub() *streams.Hub { return a.hub }

// Close stops everything Start started, in reverse order. It is safe after a
// partial Start and more than once.
func (a *App) Close() error {
	var errs []error
	a.close.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		if a.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := a.srv.Shutdown(ctx); err != nil {
				a.srv.Close()
			}
			cancel()
		} else if a.ln != nil {
			a.ln.Close()
		}
		if a.whep != nil {
			a.whep.Close()
		}
		if a.hls != nil {
			a.hls.Close()
		}
		if a.hub != nil {
			a.hub.Close() // ends GB/T 28181 media sessions with BYE
		}
		if a.gb != nil {
			a.gb.p.Close()
		}
		a.wg.Wait()
		if a.store != nil {
			errs = append(errs, a.store.Close())
		}
	})
	return errors.Join(errs...)
}

func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := a.store.Ping(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"unhealthy","error":%q}`+"\n", err.Error())
		return
	}
	fmt.Fprintf(w, `{"status":"ok","version":%q}`+"\n", Version)
}

// sourceFor resolves a channel to its media source.
func (a *App) sourceFor(ctx context.Context, id int64) (media.Source, error) {
	sub := false
	switch {
	case id >= subStreamBase && a.gb != nil:
		id, sub = id-subStreamBase, true
	case id >= devicePlaybackBase && a.gb != nil:
		return a.gb.playbackSource(id)
	case id >= devicePlaybackBase:
		return nil, fmt.Errorf("app: stream %d: %w", id, media.ErrNoChannel)
	}
	ch, err := a.store.GetChannel(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("app: channel %d: %w", id, media.ErrNoChannel)
	}
	if err != nil {
		return nil, media.Fail(media.ReasonProtocol, err)
	}
	if ch.SourceURL == "" && ch.DeviceID != 0 && a.gb != nil {
		dev, err := a.store.GetDevice(ctx, ch.DeviceID)
		if err != nil {
			return nil, media.Fail(media.ReasonProtocol, err)
		}
		if dev.Kind != model.DeviceKindRTSP {
			return a.gb.gbSource(ch, dev, sub), nil
		}
	}
	if sub {
		return nil, fmt.Errorf("app: channel %d has no sub-stream (only GB/T 28181 channels do): %w", id, media.ErrNoChannel)
	}
	if ch.SourceURL == "" {
		return nil, fmt.Errorf("app: channel %d has no source URL (and is not on a GB/T 28181 device): %w", id, media.ErrNoChannel)
	}
	transport := ch.Transport
	if transport == model.TransportTCPActive {
		transport = model.TransportTCP // a GB/T 28181 notion; RTSP interleaves over its own TCP
	}
	src, err := rtsp.NewSource(rtsp.Config{
		URL:         ch.SourceURL,
		Transport:   transport,
		ReadTimeout: a.cfg.Streams.ReadTimeout.D(),
		Logger:      a.log.With("channel", id),
		Metrics:     a.rtspMetrics,
	})
	if err != nil {
		return nil, media.Fail(media.ReasonProtocol, err)
	}
	return src, nil
}

// onStatus records what the hub learns about a channel's source. Only
// verdicts are stored (online, offline with a reason); connecting and idle
// are transient and visible through /api/v1/streams.
func (a *App) onStatus(id int64, st streams.Status) {
	if id >= devicePlaybackBase {
		return // a device-side playback, not a channel
	}
	a.events.Publish("channel", map[string]any{"id": id, "state": st.State, "reason": st.Reason, "error": st.Err})
	var status model.ChannelStatus
	switch st.State {
	case streams.StateOnline:
		status = model.ChannelStatusOnline
	case streams.StateOffline:
		status = model.ChannelStatusOffline
	default:
		return
	}
	a.setStatus(id, status, string(st.Reason), st.Err, st.At)
}

func (a *App) setStatus(id int64, status model.ChannelStatus, reason, msg string, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.store.SetChannelStatus(ctx, id, status, reason, msg, at); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.log.Warn("store channel status", "channel", id, "err", err)
	}
}

// loadKey reads the media-token signing key, creating it on first start.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < token.MinKeyLen {
			return nil, fmt.Errorf("app: %s is not a valid key (delete it to generate a new one; issued media URLs will stop working)", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("app: read key: %w", err)
	}
	key := make([]byte, token.MinKeyLen)
	rand.Read(key)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("app: write key: %w", err)
	}
	return key, nil
}

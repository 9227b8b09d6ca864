// Package api serves the HTTP API v1 of Xueliang: JSON over the standard
// library's router, documented in openapi.yaml (served at
// /api/v1/openapi.yaml; a test keeps the two in step).
//
// Every error is {"error": {"code", "message"[, "fields"]}} with a 4xx
// status for client mistakes; a 500 means a bug or a broken database and is
// logged.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
	"github.com/xueliang/xueliang/internal/streams"
	"github.com/xueliang/xueliang/internal/token"
)

//go:embed openapi.yaml
var openAPI []byte

// Store is what the API needs from the database.
type Store interface {
	ListDivisions(ctx context.Context) ([]model.Division, error)
	CountChannelsByDivision(ctx context.Context) (map[string]int, error)
	ListCatalogGroups(ctx context.Context) ([]store.CatalogGroup, error)

	CreateDevice(ctx context.Context, d *model.Device) error
	GetDevice(ctx context.Context, id int64) (*model.Device, error)
	ListDevices(ctx context.Context, f store.DeviceFilter) ([]model.Device, error)
	UpdateDevice(ctx context.Context, d *model.Device) error
	DeleteDevice(ctx context.Context, id int64) error

	CreateChannel(ctx context.Context, c *model.Channel) error
	GetChannel(ctx context.Context, id int64) (*model.Channel, error)
	ListChannels(ctx context.Context, f store.ChannelFilter) ([]model.Channel, error)
	UpdateChannel(ctx context.Context, c *model.Channel) error
	DeleteChannel(ctx context.Context, id int64) error
}

// Streams is what the API needs from the stream hub.
type Streams interface {
	Paths() []streams.PathInfo
	Stream(channelID int64) *media.Stream
}

// Action names something a caller may be allowed to do.
type Action string

// Actions checked by Authorizer.
const (
	ActionRead          Action = "read"
	ActionManageDevices Action = "manage_devices"
	ActionViewLive      Action = "view_live"
	ActionPlayback      Action = "playback"
	ActionExport        Action = "export"
	ActionPTZ           Action = "ptz"
)

// Authorizer decides whether the caller of r may do action, on channel
// channelID when it is not 0. It returns the caller's user name (carried
// into media tokens) or an error wrapping ErrUnauthenticated or
// ErrForbidden.
//
// This is the seam for users, roles and jurisdictions (a later issue). Until
// then AllowAll admits every caller.
type Authorizer interface {
	Authorize(r *http.Request, action Action, channelID int64) (user string, err error)
}

// Errors an Authorizer returns.
var (
	ErrUnauthenticated = errors.New("api: not logged in")
	ErrForbidden       = errors.New("api: not allowed")
)

// AllowAll is the Authorizer of a platform without user accounts.
type AllowAll struct{}

// Authorize admits everybody as the anonymous user.
func (AllowAll) Authorize(*http.Request, Action, int64) (string, error) { return "", nil }

// Config configures a Server. Store, Streams and Signer are required.
type Config struct {
	Store      Store
	Streams    Streams
	Authorizer Authorizer // nil means AllowAll
	Signer     *token.Signer
	TokenTTL   time.Duration
	// PublicURL is the base of media URLs; empty means the request's own
	// scheme and host.
	PublicURL string
	Logger    *slog.Logger
	Version   string
	// Registerer receives the request metrics; nil means none.
	Registerer prometheus.Registerer
	// Recordings, if set, serves recording plans, timelines and playback
	// URLs; without it those endpoints answer 501.
	Recordings Recordings
	// Exports, if set, serves evidence exports; without it they answer 501.
	Exports Exports
	// GB, if set, serves GB/T 28181 control and device-side recordings;
	// Alarms lists alarms; Events streams events. Without them those
	// endpoints answer 501.
	GB     GB
	Alarms Alarms
	Events Events
	// OnChannelChanged is called after a channel was updated or deleted,
	// so that a running source reconnects with the new settings.
	OnChannelChanged func(channelID int64)
	Now              func() time.Time // nil means time.Now
}

// Server is the API handler. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	requests *prometheus.CounterVec   // by route and status
	duration *prometheus.HistogramVec // by route
}

// route is one documented endpoint.
type route struct {
	method, pattern string
	action          Action
	handle          func(s *Server, w http.ResponseWriter, r *http.Request) error
}

// routes is the whole API. A test checks that openapi.yaml documents
// exactly these.
var routes = []route{
	{"GET", "/api/v1/openapi.yaml", ActionRead, (*Server).getOpenAPI},
	{"GET", "/api/v1/version", ActionRead, (*Server).getVersion},
	{"GET", "/api/v1/divisions", ActionRead, (*Server).listDivisions},
	{"GET", "/api/v1/catalog-groups", ActionRead, (*Server).listCatalogGroups},
	{"GET", "/api/v1/devices", ActionRead, (*Server).listDevices},
	{"POST", "/api/v1/devices", ActionManageDevices, (*Server).createDevice},
	{"GET", "/api/v1/devices/{id}", ActionRead, (*Server).getDevice},
	{"PATCH", "/api/v1/devices/{id}", ActionManageDevices, (*Server).updateDevice},
	{"DELETE", "/api/v1/devices/{id}", ActionManageDevices, (*Server).deleteDevice},
	{"GET", "/api/v1/channels", ActionRead, (*Server).listChannels},
	{"POST", "/api/v1/channels", ActionManageDevices, (*Server).createChannel},
	{"GET", "/api/v1/channels/{id}", ActionRead, (*Server).getChannel},
	{"PATCH", "/api/v1/channels/{id}", ActionManageDevices, (*Server).updateChannel},
	{"DELETE", "/api/v1/channels/{id}", ActionManageDevices, (*Server).deleteChannel},
	{"POST", "/api/v1/channels/{id}/live", ActionViewLive, (*Server).createLive},
	{"GET", "/api/v1/streams", ActionRead, (*Server).listStreams},
	{"GET", "/api/v1/channels/{id}/recording-plan", ActionRead, (*Server).getRecordPlan},
	{"PUT", "/api/v1/channels/{id}/recording-plan", ActionManageDevices, (*Server).putRecordPlan},
	{"GET", "/api/v1/channels/{id}/recordings", ActionPlayback, (*Server).getRecordings},
	{"POST", "/api/v1/channels/{id}/playback", ActionPlayback, (*Server).createPlayback},
	{"GET", "/api/v1/storage", ActionRead, (*Server).getStorage},
	{"GET", "/api/v1/exports", ActionExport, (*Server).listExports},
	{"POST", "/api/v1/exports", ActionExport, (*Server).createExport},
	// {export} is not a channel: the handlers authorize the export's
	// channels themselves.
	{"GET", "/api/v1/exports/{export}", ActionExport, (*Server).getExport},
	{"DELETE", "/api/v1/exports/{export}", ActionExport, (*Server).releaseExport},
	{"POST", "/api/v1/channels/{id}/ptz", ActionPTZ, needGB((*Server).postPTZ)},
	{"POST", "/api/v1/channels/{id}/preset", ActionPTZ, needGB((*Server).postPreset)},
	{"GET", "/api/v1/channels/{id}/presets", ActionRead, needGB((*Server).getPresets)},
	{"POST", "/api/v1/channels/{id}/control", ActionPTZ, needGB((*Server).postChannelControl)},
	{"POST", "/api/v1/devices/{id}/control", ActionManageDevices, needGB((*Server).postDeviceControl)},
	{"GET", "/api/v1/devices/{id}/config", ActionRead, needGB((*Server).getDeviceConfig)},
	{"GET", "/api/v1/channels/{id}/device-recordings", ActionPlayback, needGB((*Server).getDeviceRecordings)},
	{"POST", "/api/v1/channels/{id}/device-playback", ActionPlayback, needGB((*Server).createDevicePlayback)},
	// {stream} is not a channel: the handler authorizes its channel.
	{"POST", "/api/v1/device-playback/{stream}", ActionPlayback, needGB((*Server).controlDevicePlayback)},
	{"GET", "/api/v1/alarms", ActionRead, (*Server).listAlarms},
	{"GET", "/api/v1/events", ActionRead, (*Server).streamEvents},
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Streams == nil || cfg.Signer == nil {
		return nil, errors.New("api: config: Store, Streams and Signer are required")
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = AllowAll{}
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "api"), mux: http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "xueliang", Subsystem: "api", Name: "requests_total",
			Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "xueliang", Subsystem: "api", Name: "request_seconds",
			Help: "Time to answer API requests, by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"route"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.duration} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("api: register metrics: %w", err)
			}
		}
	}
	for _, rt := range routes {
		s.mux.HandleFunc(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such API endpoint: " + r.Method + " " + r.URL.Path + " (see /api/v1/openapi.yaml)"})
	})
	return s, nil
}

// ServeHTTP dispatches API requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) wrap(rt route) http.HandlerFunc {
	name := rt.method + " " + rt.pattern
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		w = sw
		defer func() {
			s.requests.WithLabelValues(name, strconv.Itoa(sw.status)).Inc()
			s.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}()
		id, err := pathID(r)
		if err == nil {
			_, err = s.cfg.Authorizer.Authorize(r, rt.action, id)
			if err != nil {
				err = authError(err)
			}
		}
		if err == nil {
			err = rt.handle(s, w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

// statusWriter remembers the status code of a response, for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func authError(err error) error {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: err.Error()}
	case errors.Is(err, ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: err.Error()}
	}
	return err
}

// pathID parses the {id} path value if the route has one; 0 otherwise.
func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, &Error{Status: http.StatusBadRequest, Code: "invalid_id", Message: fmt.Sprintf("id must be a positive integer, got %q", v)}
	}
	return id, nil
}

// Error is an API error with its HTTP status.
type Error struct {
	Status  int           `json:"-"`
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Fields  []*fieldError `json:"fields,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// toAPIError maps store and validation errors to API errors.
func toAPIError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	if fes := model.FieldErrors(err); len(fes) > 0 {
		e := &Error{Status: http.StatusBadRequest, Code: "invalid", Message: err.Error()}
		for _, fe := range fes {
			e.Fields = append(e.Fields, &fieldError{fe.Field, fe.Message})
		}
		if len(fes) == 1 {
			e.Message = fes[0].Error()
		}
		return e
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: trimPrefix(err)}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: trimPrefix(err)}
	case errors.Is(err, store.ErrUnknownDivision):
		return &Error{Status: http.StatusBadRequest, Code: "unknown_division", Message: trimPrefix(err) + " (GET /api/v1/divisions lists the known ones)"}
	case errors.Is(err, store.ErrUnknownDevice):
		return &Error{Status: http.StatusBadRequest, Code: "unknown_device", Message: trimPrefix(err)}
	}
	return nil
}

func trimPrefix(err error) string { return strings.TrimPrefix(err.Error(), "store: ") }

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae == nil {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the server log has the details"}
	}
	writeJSON(w, ae.Status, map[string]*Error{"error": ae})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// maxBody bounds request bodies.
const maxBody = 1 << 20

// decode reads a JSON body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send JSON with Content-Type: application/json, got " + ct}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("request body larger than %d bytes", maxBody)}
		}
		return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: "request body: " + err.Error()}
	}
	if dec.More() {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: "request body: more than one JSON value"}
	}
	return nil
}

// page reads limit and offset.
func page(r *http.Request, def, maxLimit int) (limit, offset int, err error) {
	q := r.URL.Query()
	limit, offset = def, 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, &Error{Status: http.StatusBadRequest, Code: "invalid_query", Message: fmt.Sprintf("limit must be 1..%d, got %q", maxLimit, v)}
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, &Error{Status: http.StatusBadRequest, Code: "invalid_query", Message: fmt.Sprintf("offset must be >= 0, got %q", v)}
		}
	}
	return limit, offset, nil
}

func (s *Server) getOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(openAPI)
	return err
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}

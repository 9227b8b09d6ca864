package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// startControlLocked serves the HTTP control API on Config.ControlAddr.
func (s *Server) startControlLocked() error {
	ln, err := net.Listen("tcp", s.cfg.ControlAddr)
	if err != nil {
		return fmt.Errorf("sim: listen control API: %w", err)
	}
	s.ctl = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
	s.ctlAddr = ln.Addr().String()
	s.ctlDone = make(chan struct{})
	go func() {
		defer close(s.ctlDone)
		if err := s.ctl.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control API stopped", "error", err)
		}
	}()
	return nil
}

// controlHandler returns the control API (see Config.ControlAddr).
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cameras", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	// A wildcard may not be followed by more segments, hence the suffix check.
	mux.HandleFunc("POST /cameras/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		path, ok := strings.CutSuffix(r.PathValue("rest"), "/fault")
		if !ok {
			http.NotFound(w, r)
			return
		}
		var body struct {
			Fault Fault `json:"fault"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := s.SetFault(path, body.Fault); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

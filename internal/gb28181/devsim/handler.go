package devsim

import (
	"encoding/json"
	"errors"
	"net/http"
)

// DeviceState is what the control API reports of a device.
type DeviceState struct {
	ID            string   `json:"id"`
	Type          string   `json:"type"` // "IPC" or "NVR"
	Addr          string   `json:"addr"` // its SIP socket
	Channels      []string `json:"channels"`
	Online        bool     `json:"online"`
	ActiveStreams int      `json:"active_streams"`
	Fault         Fault    `json:"fault"`
}

// Status returns the state of every device, in order.
func (s *Sim) Status() []DeviceState {
	streams := s.deviceSessions()
	out := make([]DeviceState, len(s.devices))
	for i, d := range s.devices {
		typ := "IPC"
		if len(d.channels) > 1 {
			typ = "NVR"
		}
		out[i] = DeviceState{ID: d.id, Type: typ, Addr: d.addr, Channels: append([]string(nil), d.channels...),
			Online: d.online.Load(), ActiveStreams: streams[d], Fault: d.faults()}
	}
	return out
}

// maxRequestBody bounds the JSON bodies of the control API.
const maxRequestBody = 64 << 10

// Handler returns the control API of `xueliang sim gb`, JSON over HTTP:
//
//	GET  /devices                      []DeviceState
//	POST /devices/{id}/fault           {"fault": Fault}            -> DeviceState
//	POST /devices/{id}/catalog-event   {"event": "OFF", "channels": [...]} (no channels: all)
//	POST /channels/{id}/alarm          Alarm
//	GET  /channels/{id}/controls       []Control
//
// Errors are {"error": "..."} with 400 (bad request), 404 (unknown device
// or channel), 409 (the device is offline) or 502 (the platform did not
// answer 200 OK).
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("POST /devices/{id}/fault", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Fault *Fault `json:"fault"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		if body.Fault == nil {
			writeError(w, http.StatusBadRequest, errors.New(`want {"fault": {...}}`))
			return
		}
		id := r.PathValue("id")
		if err := s.SetFault(id, *body.Fault); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		for _, st := range s.Status() {
			if st.ID == id {
				writeJSON(w, http.StatusOK, st)
			}
		}
	})
	mux.HandleFunc("POST /devices/{id}/catalog-event", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Event    string   `json:"event"`
			Channels []string `json:"channels"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		if err := s.NotifyCatalog(r.PathValue("id"), body.Event, body.Channels...); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("POST /channels/{id}/alarm", func(w http.ResponseWriter, r *http.Request) {
		var a Alarm
		if !readJSON(w, r, &a) {
			return
		}
		if err := s.RaiseAlarm(r.PathValue("id"), a); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("GET /channels/{id}/controls", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if s.byID[id] == nil {
			writeError(w, http.StatusNotFound, errors.New("devsim: no such channel: "+id))
			return
		}
		cs := s.Controls(id)
		if cs == nil {
			cs = []Control{}
		}
		writeJSON(w, http.StatusOK, cs)
	})
	return mux
}

// readJSON decodes the request body into v, or answers 400 and returns
// false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, errors.New("devsim: bad JSON body: "+err.Error()))
		return false
	}
	return true
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrUnknownChannel):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrOffline):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/xueliang/xueliang/internal/events"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// GB is what the API needs from the GB/T 28181 side of the platform:
// control of channels and devices, device-side recordings. Its errors may
// be *Error values (device offline, no answer, refused) that the API passes
// through.
type GB interface {
	// PTZ moves a channel's camera; all zero stops it.
	PTZ(ctx context.Context, channelID int64, pan, tilt, zoom int, speed uint8) error
	// Preset sets, calls or deletes a preset ("set", "call", "delete").
	Preset(ctx context.Context, channelID int64, action string, preset int) error
	// Presets lists the presets the device knows.
	Presets(ctx context.Context, channelID int64) (any, error)
	// ChannelCommand: iframe, record_start, record_stop, guard_set, guard_reset.
	ChannelCommand(ctx context.Context, channelID int64, command string) error
	// DeviceCommand: reboot, catalog (read the catalog again), status.
	DeviceCommand(ctx context.Context, deviceID int64, command string) error
	// DeviceConfig asks a device for its basic configuration.
	DeviceConfig(ctx context.Context, deviceID int64) (any, error)
	// DeviceRecordings asks the device which recordings it holds.
	DeviceRecordings(ctx context.Context, channelID int64, from, to time.Time) (any, error)
	// StartDevicePlayback opens a playback of the device's own recordings
	// and returns the stream ID that the live URLs (/live/{stream}/...)
	// serve it under.
	StartDevicePlayback(ctx context.Context, channelID int64, from, to time.Time, speed int) (streamID int64, err error)
	// ControlDevicePlayback pauses, resumes, seeks (seconds from the
	// start) or changes the speed of a device playback.
	ControlDevicePlayback(ctx context.Context, streamID int64, action string, value float64) error
	// DevicePlaybackChannel returns the channel of a device playback
	// stream, or an error wrapping store.ErrNotFound.
	DevicePlaybackChannel(streamID int64) (int64, error)
	// SubStream returns the stream ID that the live URLs serve a
	// channel's sub-stream under.
	SubStream(ctx context.Context, channelID int64) (streamID int64, err error)
}

// Alarms is what the API needs to list alarms and stream events.
type Alarms interface {
	ListAlarms(ctx context.Context, f store.AlarmFilter) ([]model.Alarm, error)
}

var errNoGB = &Error{Status: http.StatusNotImplemented, Code: "gb28181_disabled",
	Message: "GB/T 28181 is not enabled on this server (set gb28181.enabled)"}

// needGB makes a handler of the GB/T 28181 side answer errNoGB when that
// side is not configured.
func needGB(h func(*Server, http.ResponseWriter, *http.Request) error) func(*Server, http.ResponseWriter, *http.Request) error {
	return func(s *Server, w http.ResponseWriter, r *http.Request) error {
		if s.cfg.GB == nil {
			return errNoGB
		}
		return h(s, w, r)
	}
}

func (s *Server) postPTZ(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	var in struct {
		Pan   int `json:"pan"`
		Tilt  int `json:"tilt"`
		Zoom  int `json:"zoom"`
		Speed int `json:"speed"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"pan", in.Pan}, {"tilt", in.Tilt}, {"zoom", in.Zoom}} {
		if d.v < -1 || d.v > 1 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: fmt.Sprintf("%s must be -1, 0 or 1, got %d", d.name, d.v)}
		}
	}
	if in.Speed == 0 {
		in.Speed = 128
	}
	if in.Speed < 1 || in.Speed > 255 {
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: fmt.Sprintf("speed must be 1-255, got %d", in.Speed)}
	}
	if err := s.cfg.GB.PTZ(r.Context(), id, in.Pan, in.Tilt, in.Zoom, uint8(in.Speed)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) postPreset(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	var in struct {
		Action string `json:"action"`
		Preset int    `json:"preset"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := s.cfg.GB.Preset(r.Context(), id, in.Action, in.Preset); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getPresets(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	p, err := s.cfg.GB.Presets(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"presets": p})
}

func (s *Server) postChannelControl(w http.ResponseWriter, r *http.Request) error {
	return s.command(w, r, func(gb GB, id int64, cmd string) error { return gb.ChannelCommand(r.Context(), id, cmd) })
}

func (s *Server) postDeviceControl(w http.ResponseWriter, r *http.Request) error {
	return s.command(w, r, func(gb GB, id int64, cmd string) error { return gb.DeviceCommand(r.Context(), id, cmd) })
}

// command serves {"command": "..."} to a channel or device: 204 when do
// succeeds.
func (s *Server) command(w http.ResponseWriter, r *http.Request, do func(gb GB, id int64, cmd string) error) error {
	id, _ := pathID(r)
	var in struct {
		Command string `json:"command"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := do(s.cfg.GB, id, in.Command); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getDeviceConfig(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	c, err := s.cfg.GB.DeviceConfig(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) getDeviceRecordings(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	from, to, err := timeRange(r.URL.Query())
	if err != nil {
		return err
	}
	recs, err := s.cfg.GB.DeviceRecordings(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"channel_id": id, "source": "device", "start": from, "end": to, "recordings": recs})
}

// devicePlaybackJSON is the answer of POST /channels/{id}/device-playback.
type devicePlaybackJSON struct {
	Stream  int64     `json:"stream"`
	HLS     string    `json:"hls"`
	WHEP    string    `json:"whep"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Speed   int       `json:"speed"`
	Expires time.Time `json:"expires"`
}

func (s *Server) createDevicePlayback(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	var in struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
		Speed int       `json:"speed"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Speed == 0 {
		in.Speed = 1
	}
	if err := checkPlaybackRange(in.Start, in.End); err != nil {
		return err
	}
	if in.Speed < 1 || in.Speed > 8 {
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: fmt.Sprintf("speed must be 1-8 (1 plays, more downloads faster), got %d", in.Speed)}
	}
	user, err := s.cfg.Authorizer.Authorize(r, ActionPlayback, id)
	if err != nil {
		return authError(err)
	}
	sid, err := s.cfg.GB.StartDevicePlayback(r.Context(), id, in.Start, in.End, in.Speed)
	if err != nil {
		return err
	}
	exp := s.cfg.Now().Add(s.cfg.TokenTTL + in.End.Sub(in.Start)).Truncate(time.Second)
	hls, whep := s.liveURLs(r, sid, user, exp)
	return writeJSON(w, http.StatusOK, devicePlaybackJSON{
		Stream: sid, HLS: hls, WHEP: whep,
		Start: in.Start.UTC(), End: in.End.UTC(), Speed: in.Speed, Expires: exp.UTC(),
	})
}

func (s *Server) controlDevicePlayback(w http.ResponseWriter, r *http.Request) error {
	sid, err := strconv.ParseInt(r.PathValue("stream"), 10, 64)
	if err != nil || sid <= 0 {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_id", Message: fmt.Sprintf("stream must be a positive integer, got %q", r.PathValue("stream"))}
	}
	ch, err := s.cfg.GB.DevicePlaybackChannel(sid)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Authorizer.Authorize(r, ActionPlayback, ch); err != nil {
		return authError(err)
	}
	var in struct {
		Action string  `json:"action"`
		Offset float64 `json:"offset"`
		Speed  float64 `json:"speed"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	v := in.Offset
	if in.Action == "speed" {
		v = in.Speed
	}
	if err := s.cfg.GB.ControlDevicePlayback(r.Context(), sid, in.Action, v); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAlarms(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Alarms == nil {
		return errNoGB
	}
	q := r.URL.Query()
	var f store.AlarmFilter
	var err error
	if v := q.Get("channel_id"); v != "" {
		if f.ChannelID, err = strconv.ParseInt(v, 10, 64); err != nil || f.ChannelID <= 0 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: "channel_id must be a positive integer"}
		}
		if _, err := s.cfg.Authorizer.Authorize(r, ActionRead, f.ChannelID); err != nil {
			return authError(err)
		}
	}
	if v := q.Get("since"); v != "" {
		if f.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: "since must be an RFC 3339 time, e.g. 2026-11-29T08:00:00+08:00"}
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: "limit must be 1-1000"}
		}
	}
	if v := q.Get("before_id"); v != "" {
		if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil || f.BeforeID <= 0 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: "before_id must be a positive integer"}
		}
	}
	alarms, err := s.cfg.Alarms.ListAlarms(r.Context(), f)
	if err != nil {
		return err
	}
	if alarms == nil {
		alarms = []model.Alarm{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"alarms": alarms})
}

// Events is the platform's event broker, streamed by GET /api/v1/events.
type Events interface {
	Subscribe(buffer int) *events.Subscription
}

// sseHeartbeat keeps idle event streams (and proxies) alive.
const sseHeartbeat = 15 * time.Second

// streamEvents serves Server-Sent Events: alarms, device and channel state
// changes, one JSON object per event ("event: alarm\ndata: {...}").
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Events == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "no_events", Message: "this server has no event stream"}
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		if sw, ok2 := w.(*statusWriter); ok2 {
			fl, ok = sw.ResponseWriter.(http.Flusher)
		}
	}
	if !ok {
		return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "streaming not supported"}
	}
	sub := s.cfg.Events.Subscribe(256)
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n: connected\n\n")
	fl.Flush()
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
		case ev := <-sub.C():
			if n := sub.Dropped(); n > 0 {
				fmt.Fprintf(w, "event: dropped\ndata: {\"count\":%d}\n\n", n)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				s.log.Warn("event not encodable", "type", ev.Type, "err", err)
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, b); err != nil {
				return nil
			}
		}
		fl.Flush()
	}
}

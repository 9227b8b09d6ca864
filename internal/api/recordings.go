package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/record"
	"github.com/xueliang/xueliang/internal/token"
)

// Recordings is what the API needs of the recorder and the segment index.
type Recordings interface {
	// Plan returns the recording plan of a channel ({Mode: off} if none).
	Plan(ctx context.Context, channelID int64) (model.RecordPlan, error)
	// SetPlan validates, stores and applies a plan.
	SetPlan(ctx context.Context, p *model.RecordPlan) error
	// Status returns what the recorder of a channel is doing.
	Status(channelID int64) record.Status
	// Timeline returns the recorded intervals and gaps of [from, to).
	Timeline(ctx context.Context, channelID int64, from, to time.Time) (record.Timeline, error)
	// Storage reports disk and S3 usage and the disk guard's warning.
	Storage(ctx context.Context) (record.Storage, error)
}

func (s *Server) getStorage(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Recordings == nil {
		return errNoRecorder
	}
	st, err := s.cfg.Recordings.Storage(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

var errNoRecorder = &Error{Status: http.StatusNotImplemented, Code: "no_recorder", Message: "this server does not record"}

// planJSON is a recording plan on the wire.
type planJSON struct {
	ChannelID     int64               `json:"channel_id"`
	Mode          model.RecordMode    `json:"mode"`
	Schedule      []model.WeeklyRange `json:"schedule"`
	RetentionDays int                 `json:"retention_days"`
	UpdatedAt     time.Time           `json:"updated_at,omitzero"`
	// Recorder says what the recorder is doing now.
	Recorder recorderJSON `json:"recorder"`
}

type recorderJSON struct {
	State   record.State `json:"state"`
	Reason  string       `json:"reason,omitempty"`
	Error   string       `json:"error,omitempty"`
	Since   time.Time    `json:"since,omitzero"`
	Dropped uint64       `json:"dropped_units,omitempty"`
}

func (s *Server) planOut(p model.RecordPlan) planJSON {
	st := s.cfg.Recordings.Status(p.ChannelID)
	sched := p.Schedule
	if sched == nil {
		sched = []model.WeeklyRange{}
	}
	return planJSON{ChannelID: p.ChannelID, Mode: p.Mode, Schedule: sched, RetentionDays: p.RetentionDays, UpdatedAt: p.UpdatedAt,
		Recorder: recorderJSON{State: st.State, Reason: string(st.Reason), Error: st.Err, Since: st.Since, Dropped: st.Dropped}}
}

func (s *Server) getRecordPlan(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Recordings == nil {
		return errNoRecorder
	}
	id, _ := pathID(r)
	if _, err := s.cfg.Store.GetChannel(r.Context(), id); err != nil {
		return err
	}
	p, err := s.cfg.Recordings.Plan(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.planOut(p))
}

func (s *Server) putRecordPlan(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Recordings == nil {
		return errNoRecorder
	}
	id, _ := pathID(r)
	var in struct {
		Mode          model.RecordMode    `json:"mode"`
		Schedule      []model.WeeklyRange `json:"schedule"`
		RetentionDays int                 `json:"retention_days"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if _, err := s.cfg.Store.GetChannel(r.Context(), id); err != nil {
		return err
	}
	p := model.RecordPlan{ChannelID: id, Mode: in.Mode, Schedule: in.Schedule, RetentionDays: in.RetentionDays}
	if err := s.cfg.Recordings.SetPlan(r.Context(), &p); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.planOut(p))
}

// timeRange reads start and end (RFC 3339) from the query.
func timeRange(q url.Values) (from, to time.Time, err error) {
	parse := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, &Error{Status: http.StatusBadRequest, Code: "invalid_query", Message: name + " is required (RFC 3339, e.g. 2026-11-29T10:00:00+08:00)"}
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, &Error{Status: http.StatusBadRequest, Code: "invalid_query", Message: fmt.Sprintf("%s must be RFC 3339 (e.g. 2026-11-29T10:00:00+08:00), got %q", name, v)}
		}
		return t, nil
	}
	if from, err = parse("start"); err != nil {
		return
	}
	to, err = parse("end") // the range itself is checked where it is used (record.CheckRange)
	return
}

func rangeError(err error) error {
	if errors.Is(err, record.ErrBadRange) {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_range", Message: err.Error()}
	}
	return err
}

func (s *Server) getRecordings(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Recordings == nil {
		return errNoRecorder
	}
	id, _ := pathID(r)
	from, to, err := timeRange(r.URL.Query())
	if err != nil {
		return err
	}
	if _, err := s.cfg.Store.GetChannel(r.Context(), id); err != nil {
		return err
	}
	tl, err := s.cfg.Recordings.Timeline(r.Context(), id, from, to)
	if err != nil {
		return rangeError(err)
	}
	out := struct {
		ChannelID int64 `json:"channel_id"`
		record.Timeline
		// Device holds the device-side recordings (GB/T 28181 RecordInfo)
		// when asked for with device=true; DeviceError says why they are
		// missing when the device could not be asked.
		Device      any    `json:"device,omitempty"`
		DeviceError string `json:"device_error,omitempty"`
	}{ChannelID: id, Timeline: tl}
	if v := r.URL.Query().Get("device"); v == "true" || v == "1" {
		if s.cfg.GB == nil {
			out.DeviceError = errNoGB.Message
		} else if recs, err := s.cfg.GB.DeviceRecordings(r.Context(), id, from, to); err != nil {
			if ae := toAPIError(err); ae != nil {
				out.DeviceError = ae.Message
			} else {
				return err
			}
		} else {
			out.Device = map[string]any{"source": "device", "recordings": recs}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// MaxPlaybackRange is the longest range one playback URL covers: the
// planner reads every fragment header of the range before the first byte
// (one per second of video).
const MaxPlaybackRange = 24 * time.Hour

// checkPlaybackRange checks the range of a playback (of the platform's
// recordings or of a device's).
func checkPlaybackRange(start, end time.Time) error {
	if err := record.CheckRange(start, end); err != nil {
		return rangeError(err)
	}
	if d := end.Sub(start); d > MaxPlaybackRange {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_range",
			Message: fmt.Sprintf("a playback covers at most %v, got %v: play a shorter range, or export it", MaxPlaybackRange, d)}
	}
	return nil
}

// playbackJSON is the answer of POST /channels/{id}/playback.
type playbackJSON struct {
	HLS     string    `json:"hls"`
	MP4     string    `json:"mp4"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Expires time.Time `json:"expires"`
}

func (s *Server) createPlayback(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Recordings == nil {
		return errNoRecorder
	}
	id, _ := pathID(r)
	var in struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := checkPlaybackRange(in.Start, in.End); err != nil {
		return err
	}
	if _, err := s.cfg.Store.GetChannel(r.Context(), id); err != nil {
		return err
	}
	user, err := s.cfg.Authorizer.Authorize(r, ActionPlayback, id)
	if err != nil {
		return authError(err)
	}
	from, to := in.Start.UTC().Truncate(time.Millisecond), in.End.UTC().Truncate(time.Millisecond)
	// A player fetches segments as it plays: the URL must outlive the
	// range played at normal speed, plus the usual lifetime for pauses.
	exp := s.cfg.Now().Add(s.cfg.TokenTTL + to.Sub(from)).Truncate(time.Second)
	tok := s.cfg.Signer.Sign(token.Claims{Scope: token.ScopePlayback, Channel: id, User: user, Expires: exp,
		From: from.UnixMilli(), To: to.UnixMilli()})
	base := s.baseURL(r)
	q := url.Values{"start": {from.Format(time.RFC3339Nano)}, "end": {to.Format(time.RFC3339Nano)}, "token": {tok}}.Encode()
	return writeJSON(w, http.StatusOK, playbackJSON{
		HLS:     fmt.Sprintf("%s/playback/%d/index.m3u8?%s", base, id, q),
		MP4:     fmt.Sprintf("%s/playback/%d/playback.mp4?%s", base, id, q),
		Start:   from,
		End:     to,
		Expires: exp.UTC(),
	})
}

// Exports is what the API needs of the evidence exporter.
type Exports interface {
	Submit(ctx context.Context, user string, channelIDs []int64, start, end time.Time) (model.Export, error)
	Get(ctx context.Context, id int64) (model.Export, []record.ExportFile, error)
	List(ctx context.Context, limit int) ([]model.Export, error)
	Release(ctx context.Context, id int64) (model.Export, error)
}

var errNoExporter = &Error{Status: http.StatusNotImplemented, Code: "no_exporter", Message: "this server does not export"}

// exportJSON is an export on the wire.
type exportJSON struct {
	ID          int64             `json:"id"`
	RequestedBy string            `json:"requested_by"`
	RequestedAt time.Time         `json:"requested_at"`
	Start       time.Time         `json:"start"`
	End         time.Time         `json:"end"`
	ChannelIDs  []int64           `json:"channel_ids"`
	State       model.ExportState `json:"state"`
	Progress    float64           `json:"progress"`
	Error       string            `json:"error,omitempty"`
	Bytes       int64             `json:"bytes,omitempty"`
	FinishedAt  time.Time         `json:"finished_at,omitzero"`
	ReleasedAt  time.Time         `json:"released_at,omitzero"`
	Files       []exportFileJSON  `json:"files,omitempty"`
	// Expires is when the download URLs of Files stop working.
	Expires time.Time `json:"expires,omitzero"`
}

type exportFileJSON struct {
	record.ExportFile
	URL string `json:"url"`
}

func (s *Server) exportOut(r *http.Request, x model.Export, files []record.ExportFile, user string) exportJSON {
	out := exportJSON{ID: x.ID, RequestedBy: x.RequestedBy, RequestedAt: x.RequestedAt, Start: x.Start, End: x.End,
		ChannelIDs: x.ChannelIDs, State: x.State, Progress: x.Progress, Error: x.Error, Bytes: x.Bytes,
		FinishedAt: x.FinishedAt, ReleasedAt: x.ReleasedAt}
	if len(files) > 0 {
		exp := s.cfg.Now().Add(s.cfg.TokenTTL).Truncate(time.Second)
		tok := s.cfg.Signer.Sign(token.Claims{Scope: token.ScopeExport, Channel: x.ID, User: user, Expires: exp})
		base := s.baseURL(r)
		for _, f := range files {
			out.Files = append(out.Files, exportFileJSON{ExportFile: f,
				URL: fmt.Sprintf("%s/exports/%d/files/%s?token=%s", base, x.ID, url.PathEscape(f.Name), tok)})
		}
		out.Expires = exp.UTC()
	}
	return out
}

func exportError(err error) error {
	switch {
	case errors.Is(err, record.ErrExportBusy):
		return &Error{Status: http.StatusConflict, Code: "busy", Message: err.Error()}
	}
	return rangeError(err)
}

func (s *Server) createExport(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Exports == nil {
		return errNoExporter
	}
	var in struct {
		ChannelIDs []int64   `json:"channel_ids"`
		Start      time.Time `json:"start"`
		End        time.Time `json:"end"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	// Every channel must be the caller's to export; Submit checks the rest.
	var user string
	for _, id := range in.ChannelIDs {
		u, err := s.cfg.Authorizer.Authorize(r, ActionExport, id)
		if err != nil {
			return authError(err)
		}
		user = u
	}
	x, err := s.cfg.Exports.Submit(r.Context(), user, in.ChannelIDs, in.Start, in.End)
	if err != nil {
		return exportError(err)
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/exports/%d", x.ID))
	return writeJSON(w, http.StatusAccepted, s.exportOut(r, x, nil, user))
}

// exportID parses the {export} path value.
func exportID(r *http.Request) (int64, error) {
	v := r.PathValue("export")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, &Error{Status: http.StatusBadRequest, Code: "invalid_id", Message: fmt.Sprintf("export id must be a positive integer, got %q", v)}
	}
	return id, nil
}

// authorizeExport checks that the caller may export every channel of x.
func (s *Server) authorizeExport(r *http.Request, x model.Export) (string, error) {
	var user string
	for _, ch := range x.ChannelIDs {
		u, err := s.cfg.Authorizer.Authorize(r, ActionExport, ch)
		if err != nil {
			return "", authError(err)
		}
		user = u
	}
	return user, nil
}

// loadExport reads the export of the {export} path value and checks that
// the caller may export every channel of it; it returns the caller's user.
func (s *Server) loadExport(r *http.Request) (model.Export, []record.ExportFile, string, error) {
	if s.cfg.Exports == nil {
		return model.Export{}, nil, "", errNoExporter
	}
	id, err := exportID(r)
	if err != nil {
		return model.Export{}, nil, "", err
	}
	x, files, err := s.cfg.Exports.Get(r.Context(), id)
	if err != nil {
		return x, nil, "", err
	}
	user, err := s.authorizeExport(r, x)
	return x, files, user, err
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request) error {
	x, files, user, err := s.loadExport(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.exportOut(r, x, files, user))
}

func (s *Server) listExports(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Exports == nil {
		return errNoExporter
	}
	limit, _, err := page(r, 50, 1000)
	if err != nil {
		return err
	}
	xs, err := s.cfg.Exports.List(r.Context(), limit)
	if err != nil {
		return err
	}
	out := make([]exportJSON, 0, len(xs))
	for _, x := range xs {
		if _, err := s.authorizeExport(r, x); err != nil {
			continue // another jurisdiction's export
		}
		out = append(out, s.exportOut(r, x, nil, ""))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"exports": out})
}

func (s *Server) releaseExport(w http.ResponseWriter, r *http.Request) error {
	x, _, _, err := s.loadExport(r)
	if err != nil {
		return err
	}
	x, err = s.cfg.Exports.Release(r.Context(), x.ID)
	if err != nil {
		return exportError(err)
	}
	return writeJSON(w, http.StatusOK, s.exportOut(r, x, nil, ""))
}

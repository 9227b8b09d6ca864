package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	if to, err = parse("end"); err != nil {
		return
	}
	if err = record.CheckRange(from, to); err != nil {
		err = rangeError(err)
	}
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
	return writeJSON(w, http.StatusOK, struct {
		ChannelID int64 `json:"channel_id"`
		record.Timeline
	}{id, tl})
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
	if err := record.CheckRange(in.Start, in.End); err != nil {
		return rangeError(err)
	}
	if _, err := s.cfg.Store.GetChannel(r.Context(), id); err != nil {
		return err
	}
	user, err := s.cfg.Authorizer.Authorize(r, ActionPlayback, id)
	if err != nil {
		return authError(err)
	}
	from, to := in.Start.UTC().Truncate(time.Millisecond), in.End.UTC().Truncate(time.Millisecond)
	exp := s.cfg.Now().Add(s.cfg.TokenTTL).Truncate(time.Second)
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

package app

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/xueliang/xueliang/internal/blob"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/playback"
	"github.com/xueliang/xueliang/internal/record"
	"github.com/xueliang/xueliang/internal/store"
	"github.com/xueliang/xueliang/internal/token"
)

// mediaError answers a media request with a plain-text error: players show
// the status, people read the text.
func mediaError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// verifyMedia checks the token of a media request for scope and id (a
// channel, or an export) and returns its claims; on failure it has
// answered 401 (get a new URL) or 403 (a token for something else).
func (a *App) verifyMedia(w http.ResponseWriter, r *http.Request, scope token.Scope) (token.Claims, int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		mediaError(w, http.StatusNotFound, "no such channel or export")
		return token.Claims{}, 0, false
	}
	c, unauthenticated, err := a.verifyToken(r, scope, id)
	if err != nil {
		status := http.StatusForbidden
		if unauthenticated {
			status = http.StatusUnauthorized
		}
		mediaError(w, status, err.Error()+" (ask the API for a new URL)")
		return c, 0, false
	}
	return c, id, true
}

// playbackRange reads start and end from the query and checks them
// against the token's range; with neither, the token's range is used.
func playbackRange(w http.ResponseWriter, r *http.Request, c token.Claims) (time.Time, time.Time, bool) {
	q := r.URL.Query()
	from, to := time.UnixMilli(c.From).UTC(), time.UnixMilli(c.To).UTC()
	if q.Get("start") != "" || q.Get("end") != "" {
		var err1, err2 error
		from, err1 = time.Parse(time.RFC3339Nano, q.Get("start"))
		to, err2 = time.Parse(time.RFC3339Nano, q.Get("end"))
		if err1 != nil || err2 != nil {
			mediaError(w, http.StatusBadRequest, "start and end must be RFC 3339 times")
			return from, to, false
		}
	}
	if err := c.CheckRange(from, to); err != nil {
		mediaError(w, http.StatusForbidden, "this URL does not grant that range: ask the API for a playback URL of it")
		return from, to, false
	}
	return from, to, true
}

// plan builds the playback plan of a channel's range, or answers why not.
// The ETag names the bytes the plan reads: it changes when the range
// reaches into the segment being written and that segment grows, so that
// a player's If-Range request gets the whole new file, not a range of a
// layout that moved.
func (a *App) plan(w http.ResponseWriter, r *http.Request, id int64, from, to time.Time) (*playback.Plan, bool) {
	segs, err := a.rec.cat.Segments(r.Context(), id, from, to)
	if err == nil {
		var p *playback.Plan
		if p, err = playback.NewPlan(r.Context(), segs, a.rec.cat.Open, from, to); err == nil {
			h := fnv.New64a()
			for _, g := range segs {
				fmt.Fprintf(h, "%s:%d;", g.Key, g.Bytes)
			}
			w.Header().Set("ETag", fmt.Sprintf(`"%x"`, h.Sum64()))
			return p, true
		}
	}
	switch {
	case errors.Is(err, playback.ErrNoRecording):
		mediaError(w, http.StatusNotFound, "nothing is recorded in this range: GET /api/v1/channels/"+strconv.FormatInt(id, 10)+"/recordings shows what is")
	case errors.Is(err, playback.ErrInvalidRange):
		mediaError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, blob.ErrNotFound):
		mediaError(w, http.StatusNotFound, "a recording of this range is missing from storage; the server log has details")
		a.log.Error("playback: segment file missing", "channel", id, "err", err)
	default:
		mediaError(w, http.StatusServiceUnavailable, "recordings cannot be read now; try again (the server log has details)")
		a.log.Error("playback failed", "channel", id, "err", err)
	}
	return nil, false
}

// playbackRequest checks the token and range of a playback request and
// plans the range; on failure it has answered.
func (a *App) playbackRequest(w http.ResponseWriter, r *http.Request) (p *playback.Plan, id int64, from time.Time, ok bool) {
	c, id, ok := a.verifyMedia(w, r, token.ScopePlayback)
	if !ok {
		return nil, 0, from, false
	}
	from, to, ok := playbackRange(w, r, c)
	if !ok {
		return nil, 0, from, false
	}
	p, ok = a.plan(w, r, id, from, to)
	return p, id, from, ok
}

// servePlaylist serves the HLS VOD playlist of a range.
func (a *App) servePlaylist(w http.ResponseWriter, r *http.Request) {
	p, id, _, ok := a.playbackRequest(w, r)
	if !ok {
		return
	}
	tok := url.QueryEscape(mediaToken(r))
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "no-store")
	err := p.WritePlaylist(w, func(g model.Segment) string {
		return fmt.Sprintf("seg/%s?token=%s", g.Key, tok)
	})
	if err != nil {
		a.log.Warn("playback playlist", "channel", id, "err", err)
	}
}

// serveSegment serves a segment file (players ask byte ranges of it).
func (a *App) serveSegment(w http.ResponseWriter, r *http.Request) {
	c, id, ok := a.verifyMedia(w, r, token.ScopePlayback)
	if !ok {
		return
	}
	key := r.PathValue("key")
	chID, start, _, err := record.ParseSegmentKey(key)
	if err != nil || chID != id {
		mediaError(w, http.StatusNotFound, "no such segment")
		return
	}
	// The segment must overlap the range the token grants (its end is
	// checked below, against the index).
	if start.UnixMilli() >= c.To || start.UnixMilli() < c.From-store.MaxSegmentDuration.Milliseconds() {
		mediaError(w, http.StatusForbidden, "this URL does not grant that segment")
		return
	}
	segs, err := a.rec.cat.Segments(r.Context(), id, start, start.Add(time.Millisecond))
	if err != nil {
		mediaError(w, http.StatusServiceUnavailable, "recordings cannot be read now; try again")
		return
	}
	for _, g := range segs {
		if g.Key != key {
			continue
		}
		if !g.End.After(time.UnixMilli(c.From)) {
			break
		}
		obj, err := a.rec.cat.Open(r.Context(), g)
		if errors.Is(err, blob.ErrNotFound) {
			mediaError(w, http.StatusNotFound, "the segment is missing from storage")
			a.log.Error("playback: segment file missing", "key", key, "err", err)
			return
		}
		if err != nil {
			// S3 down, say: players retry a 503.
			mediaError(w, http.StatusServiceUnavailable, "recordings cannot be read now; try again")
			a.log.Warn("playback: cannot open a segment", "key", key, "err", err)
			return
		}
		defer obj.Close()
		w.Header().Set("Content-Type", "video/mp4")
		if g.Open {
			w.Header().Set("Cache-Control", "no-store")
		} else {
			w.Header().Set("Cache-Control", "private, max-age=3600")
		}
		http.ServeContent(w, r, "", time.Time{}, obj)
		return
	}
	mediaError(w, http.StatusNotFound, "no such segment (deleted by retention?)")
}

// serveMP4 streams one MP4 of a range.
func (a *App) serveMP4(w http.ResponseWriter, r *http.Request) {
	p, id, from, ok := a.playbackRequest(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Xueliang-Start", p.PresentStart.UTC().Format(time.RFC3339Nano))
	w.Header().Set("X-Xueliang-Duration", strconv.FormatFloat(p.MP4Duration.Seconds(), 'f', 3, 64))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename="channel-%d-%s.mp4"`, id, from.UTC().Format("20060102T150405Z")))
	// The layout of the MP4 is known from the plan, so Range requests are
	// answered (a <video> element seeks with them) and Content-Length is
	// sent. A read error mid-way aborts the response: a cut file must not
	// pass for a whole one.
	mr := p.MP4(r.Context())
	defer mr.Close()
	http.ServeContent(w, r, "", time.Time{}, abortOnError{mr, a, id})
}

// abortOnError makes a read error of the stitched MP4 abort the HTTP
// response instead of ending it early as if complete.
type abortOnError struct {
	*playback.MP4Reader
	a  *App
	id int64
}

func (e abortOnError) Read(b []byte) (int, error) {
	n, err := e.MP4Reader.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		e.a.log.Warn("playback mp4 cut short", "channel", e.id, "err", err)
		panic(http.ErrAbortHandler)
	}
	return n, err
}

// serveExportFile serves a file of a finished export as a download.
func (a *App) serveExportFile(w http.ResponseWriter, r *http.Request) {
	_, id, ok := a.verifyMedia(w, r, token.ScopeExport)
	if !ok {
		return
	}
	name := r.PathValue("name")
	path, err := a.exp.Path(id, name)
	if err != nil {
		mediaError(w, http.StatusNotFound, "no such file in this export (released?)")
		return
	}
	f, err := os.Open(path)
	if err != nil {
		mediaError(w, http.StatusNotFound, "no such file in this export (released?)")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		mediaError(w, http.StatusInternalServerError, "cannot read the file")
		return
	}
	switch filepath.Ext(name) {
	case ".mp4":
		w.Header().Set("Content-Type", "video/mp4")
	case ".json":
		w.Header().Set("Content-Type", "application/json")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="export-%d-%s"`, id, name))
	w.Header().Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// exports adapts the exporter to api.Exports.
type exports struct {
	exp *record.Exporter
	st  interface {
		GetExport(ctx context.Context, id int64) (model.Export, error)
		ListExports(ctx context.Context, unfinished bool, limit int) ([]model.Export, error)
	}
}

func (e exports) Submit(ctx context.Context, user string, ids []int64, start, end time.Time) (model.Export, error) {
	return e.exp.Submit(ctx, user, ids, start, end)
}

func (e exports) Get(ctx context.Context, id int64) (model.Export, []record.ExportFile, error) {
	x, err := e.st.GetExport(ctx, id)
	if err != nil {
		return x, nil, err
	}
	if p, ok := e.exp.Progress(id); ok {
		x.Progress = p
	}
	if x.State != model.ExportDone {
		return x, nil, nil
	}
	files, err := e.exp.Files(id)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return x, files, err
}

func (e exports) List(ctx context.Context, limit int) ([]model.Export, error) {
	return e.st.ListExports(ctx, false, limit)
}

func (e exports) Release(ctx context.Context, id int64) (model.Export, error) {
	return e.exp.Release(ctx, id)
}

// stitch writes the MP4 of an export's channel with the playback planner.
func (a *App) stitch(ctx context.Context, w io.Writer, segs []model.Segment, start, end time.Time) error {
	p, err := playback.NewPlan(ctx, segs, a.rec.cat.Open, start, end)
	if err != nil {
		return err
	}
	return p.WriteMP4(ctx, w)
}

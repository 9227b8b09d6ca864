package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
	"github.com/xueliang/xueliang/internal/token"
)

func (s *Server) listDivisions(w http.ResponseWriter, r *http.Request) error {
	divs, err := s.cfg.Store.ListDivisions(r.Context())
	if err != nil {
		return err
	}
	counts, err := s.cfg.Store.CountChannelsByDivision(r.Context())
	if err != nil {
		return err
	}
	tree := model.BuildDivisionTree(divs)
	total := model.FillChannelCounts(tree, counts)
	if tree == nil {
		tree = []*model.DivisionNode{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"divisions": tree, "channel_count": total})
}

// listCatalogGroups lists the business groups (215) and virtual
// organisations (216) that devices' catalogs declare; channels name theirs
// in parent_code.
func (s *Server) listCatalogGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.cfg.Store.ListCatalogGroups(r.Context())
	if err != nil {
		return err
	}
	if gs == nil {
		gs = []store.CatalogGroup{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"groups": gs})
}

// channelJSON is a channel as the API shows it: the source URL without its
// password.
type channelJSON struct {
	model.Channel
	SourceURL string `json:"source_url"`
}

func showChannel(c *model.Channel) channelJSON {
	return channelJSON{Channel: *c, SourceURL: c.RedactedSourceURL()}
}

// channelInput holds the fields a client may set; nil means "not given".
type channelInput struct {
	Code      *string  `json:"code"`
	Name      *string  `json:"name"`
	DeviceID  *int64   `json:"device_id"`
	Division  *string  `json:"division"`
	SourceURL *string  `json:"source_url"`
	Transport *string  `json:"transport"`
	Lat       *float64 `json:"lat"`
	Lng       *float64 `json:"lng"`
	Heading   *float64 `json:"heading"`
	FOV       *float64 `json:"fov"`
	Range     *float64 `json:"range"`
}

func (in *channelInput) apply(c *model.Channel) {
	set(&c.Code, in.Code)
	set(&c.Name, in.Name)
	set(&c.DeviceID, in.DeviceID)
	set(&c.DivisionCode, in.Division)
	set(&c.Transport, in.Transport)
	set(&c.Lat, in.Lat)
	set(&c.Lng, in.Lng)
	set(&c.Heading, in.Heading)
	set(&c.FOV, in.FOV)
	set(&c.Range, in.Range)
	if in.SourceURL != nil {
		c.SourceURL = keepPassword(*in.SourceURL, c.SourceURL)
	}
}

// keepPassword lets a client send back the redacted URL it was shown
// without erasing the stored password.
func keepPassword(next, prev string) string {
	nu, err1 := url.Parse(next)
	pu, err2 := url.Parse(prev)
	if err1 != nil || err2 != nil || nu.User == nil || pu.User == nil {
		return next
	}
	np, _ := nu.User.Password()
	pp, ok := pu.User.Password()
	if ok && np != "" && strings.Trim(np, "x*") == "" && nu.User.Username() == pu.User.Username() &&
		nu.Host == pu.Host && nu.Scheme == pu.Scheme {
		nu.User = url.UserPassword(nu.User.Username(), pp)
		return nu.String()
	}
	return next
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := page(r, 100, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.ChannelFilter{DivisionCode: q.Get("division"), Query: q.Get("q"), Limit: limit, Offset: offset}
	if v := q.Get("status"); v != "" {
		st, err := model.ParseChannelStatus(v)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_query", Message: "status: " + err.Error()}
		}
		f.Status = st
	}
	if v := q.Get("device_id"); v != "" {
		if f.DeviceID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_query", Message: "device_id must be an integer"}
		}
	}
	chs, err := s.cfg.Store.ListChannels(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]channelJSON, len(chs))
	for i := range chs {
		out[i] = showChannel(&chs[i])
	}
	resp := map[string]any{"channels": out}
	if len(chs) == limit {
		resp["next_offset"] = offset + limit
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request) error {
	var in channelInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	// A new channel has not been checked yet: idle until its source is
	// opened or probed.
	c := model.Channel{Status: model.ChannelStatusIdle}
	in.apply(&c)
	if err := s.cfg.Store.CreateChannel(r.Context(), &c); err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/channels/%d", c.ID))
	return writeJSON(w, http.StatusCreated, showChannel(&c))
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	c, err := s.cfg.Store.GetChannel(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, showChannel(c))
}

func (s *Server) updateChannel(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	var in channelInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := s.cfg.Store.GetChannel(r.Context(), id)
	if err != nil {
		return err
	}
	oldURL, oldTransport := c.SourceURL, c.Transport
	in.apply(c)
	if err := s.cfg.Store.UpdateChannel(r.Context(), c); err != nil {
		return err
	}
	if c.SourceURL != oldURL || c.Transport != oldTransport {
		s.channelChanged(id) // reconnect; a new name or position must not cut viewers
	}
	return writeJSON(w, http.StatusOK, showChannel(c))
}

func (s *Server) deleteChannel(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	if err := s.cfg.Store.DeleteChannel(r.Context(), id); err != nil {
		return err
	}
	s.channelChanged(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) channelChanged(id int64) {
	if s.cfg.OnChannelChanged != nil {
		s.cfg.OnChannelChanged(id)
	}
}

// deviceInput holds the fields of a device a client may set.
type deviceInput struct {
	Code         *string `json:"code"`
	Name         *string `json:"name"`
	Kind         *string `json:"kind"`
	Division     *string `json:"division"`
	Manufacturer *string `json:"manufacturer"`
	Model        *string `json:"model"`
}

func (in *deviceInput) apply(d *model.Device) {
	set(&d.Code, in.Code)
	set(&d.Name, in.Name)
	if in.Kind != nil {
		d.Kind = model.DeviceKind(*in.Kind)
	}
	set(&d.DivisionCode, in.Division)
	set(&d.Manufacturer, in.Manufacturer)
	set(&d.Model, in.Model)
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := page(r, 100, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.DeviceFilter{DivisionCode: q.Get("division"), Limit: limit, Offset: offset}
	if v := q.Get("kind"); v != "" {
		k, err := model.ParseDeviceKind(v)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_query", Message: "kind: " + err.Error()}
		}
		f.Kind = k
	}
	ds, err := s.cfg.Store.ListDevices(r.Context(), f)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []model.Device{}
	}
	resp := map[string]any{"devices": ds}
	if len(ds) == limit {
		resp["next_offset"] = offset + limit
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) createDevice(w http.ResponseWriter, r *http.Request) error {
	var in deviceInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var d model.Device
	in.apply(&d)
	if err := s.cfg.Store.CreateDevice(r.Context(), &d); err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/devices/%d", d.ID))
	return writeJSON(w, http.StatusCreated, d)
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	d, err := s.cfg.Store.GetDevice(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) updateDevice(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	var in deviceInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	d, err := s.cfg.Store.GetDevice(r.Context(), id)
	if err != nil {
		return err
	}
	in.apply(d)
	if err := s.cfg.Store.UpdateDevice(r.Context(), d); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	if err := s.cfg.Store.DeleteDevice(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// liveJSON is the answer of POST /channels/{id}/live.
type liveJSON struct {
	HLS     string    `json:"hls"`
	WHEP    string    `json:"whep"`
	Expires time.Time `json:"expires"`
	// VideoCodec is set when the source is online; H265 plays over HLS
	// only (WebRTC here carries H.264).
	VideoCodec string `json:"video_codec,omitempty"`
	Note       string `json:"note,omitempty"`
}

func (s *Server) createLive(w http.ResponseWriter, r *http.Request) error {
	id, _ := pathID(r)
	if _, err := s.cfg.Store.GetChannel(r.Context(), id); err != nil {
		return err
	}
	user, err := s.cfg.Authorizer.Authorize(r, ActionViewLive, id)
	if err != nil {
		return authError(err)
	}
	stream := id
	switch v := r.URL.Query().Get("stream"); v {
	case "", "main":
	case "sub":
		if s.cfg.GB == nil {
			return errNoGB
		}
		if stream, err = s.cfg.GB.SubStream(r.Context(), id); err != nil {
			return err
		}
	default:
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: fmt.Sprintf("stream must be main or sub, got %q", v)}
	}
	exp := s.cfg.Now().Add(s.cfg.TokenTTL).Truncate(time.Second)
	out := liveJSON{Expires: exp.UTC()}
	out.HLS, out.WHEP = s.liveURLs(r, stream, user, exp)
	if st := s.cfg.Streams.Stream(stream); st != nil {
		if v := st.VideoTrack(); v >= 0 {
			out.VideoCodec = st.Tracks()[v].Codec.String()
			if out.VideoCodec == "H265" {
				out.Note = "H.265 video: WebRTC works only if the browser offers H.265; otherwise play the hls URL where H.265 decodes"
			}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// liveURLs signs a live token for a hub stream (a channel, its
// sub-stream, or a device playback) and returns its LL-HLS and WHEP URLs.
func (s *Server) liveURLs(r *http.Request, stream int64, user string, exp time.Time) (hls, whep string) {
	tok := s.cfg.Signer.Sign(token.Claims{Scope: token.ScopeLive, Channel: stream, User: user, Expires: exp})
	base := s.baseURL(r)
	return fmt.Sprintf("%s/live/%d/hls/index.m3u8?token=%s", base, stream, tok),
		fmt.Sprintf("%s/live/%d/whep?token=%s", base, stream, tok)
}

// baseURL returns the URL prefix of media links.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// streamJSON is one path of the hub.
type streamJSON struct {
	ChannelID int64     `json:"channel_id"`
	State     string    `json:"state"`
	Users     int       `json:"users"`
	Since     time.Time `json:"since"`
	Reason    string    `json:"reason,omitempty"`
	Error     string    `json:"error,omitempty"`
	Readers   int       `json:"readers"`
	Units     uint64    `json:"units"`
	Bytes     uint64    `json:"bytes"`
	Dropped   uint64    `json:"dropped"`
}

func (s *Server) listStreams(w http.ResponseWriter, r *http.Request) error {
	paths := s.cfg.Streams.Paths()
	out := make([]streamJSON, 0, len(paths))
	for _, p := range paths {
		out = append(out, streamJSON{
			ChannelID: p.ChannelID, State: string(p.State), Users: p.Users, Since: p.Since,
			Reason: string(p.Reason), Error: p.Err, Readers: p.Stats.Readers,
			Units: p.Stats.Units, Bytes: p.Stats.Bytes, Dropped: p.Stats.Dropped,
		})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"streams": out})
}

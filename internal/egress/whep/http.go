package whep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xueliang/xueliang/internal/media"
)

// maxOfferBytes bounds the body of a POST. Browser offers are 3 to 10 KB.
const maxOfferBytes = 64 << 10

// Error codes of the JSON error bodies, also the result label of
// sessions_total.
const (
	codeBadRequest       = "bad_request"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "payload_too_large"
	codeUnsupportedType  = "unsupported_media_type"
	codeUnsupportedCodec = "unsupported_codec"
	codeH265NotOffered   = "h265_not_offered" // the player should fall back to LL-HLS
	codeUnavailable      = "unavailable"
	codeInternal         = "internal"
	codeCanceled         = "canceled" // the player went away during setup; nobody reads the answer
)

// ServeHTTP implements the WHEP endpoint (POST, OPTIONS on /live/{id}/whep)
// and the session resources (DELETE, PATCH, OPTIONS on
// /live/{id}/whep/{session}). The request must have been routed by a
// ServeMux pattern with an {id} wildcard.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// CORS (Fetch standard): players are often served from another origin.
	// Credentials are bearer tokens, never cookies, so "*" is safe.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch")

	channelID, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || channelID <= 0 {
		writeError(w, http.StatusNotFound, codeNotFound, "whep: no such channel "+strconv.Quote(r.PathValue("id")))
		return
	}
	secret, isResource, ok := resourceOf(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "whep: no such resource")
		return
	}

	if !isResource {
		switch r.Method {
		case http.MethodPost:
			s.handlePost(w, r, channelID)
		case http.MethodOptions:
			preflight(w, "OPTIONS, POST")
		default:
			h.Set("Allow", "OPTIONS, POST")
			writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "whep: method "+r.Method+" not allowed")
		}
		return
	}
	switch r.Method {
	case http.MethodDelete:
		s.handleDelete(w, r, channelID, secret)
	case http.MethodOptions:
		preflight(w, "OPTIONS, DELETE")
	default:
		// RFC 9725 §4.3.1: a session that supports neither trickle ICE nor
		// ICE restarts answers PATCH with 405.
		h.Set("Allow", "OPTIONS, DELETE")
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed,
			"whep: method "+r.Method+" not allowed; trickle ICE and ICE restarts are not supported, POST a new offer")
	}
}

// resourceOf splits a request path into the endpoint or a session resource:
// ".../whep" and ".../whep/" are the endpoint, ".../whep/{secret}" a session.
func resourceOf(path string) (secret string, isResource, ok bool) {
	i := strings.LastIndex(path, "/whep")
	if i < 0 {
		return "", false, false
	}
	rest := path[i+len("/whep"):]
	switch {
	case rest == "" || rest == "/":
		return "", false, true
	case strings.HasPrefix(rest, "/") && !strings.Contains(rest[1:], "/"):
		return rest[1:], true, true
	}
	return "", false, false
}

func preflight(w http.ResponseWriter, allow string) {
	h := w.Header()
	h.Set("Allow", allow)
	h.Set("Access-Control-Allow-Methods", allow)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// handlePost sets up a session (WHEP "Playback Session Setup", RFC 9725 §4.2).
func (s *Server) handlePost(w http.ResponseWriter, r *http.Request, channelID int64) {
	code, err := s.post(w, r, channelID)
	s.metrics.setups.WithLabelValues(code).Inc()
	if err != nil {
		status := statusOf(code)
		if code == codeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="whep"`)
		}
		switch {
		case code == codeCanceled:
			s.log.Debug("session setup canceled", "channel", channelID, "err", err)
		case status == http.StatusServiceUnavailable:
			s.log.Info("session refused", "channel", channelID, "code", code, "err", err)
		case status >= 500:
			s.log.Warn("session setup failed", "channel", channelID, "code", code, "err", err)
		default:
			s.log.Debug("session refused", "channel", channelID, "code", code, "err", err)
		}
		writeError(w, status, code, err.Error())
	}
}

func statusOf(code string) int {
	switch code {
	case codeBadRequest:
		return http.StatusBadRequest
	case codeUnauthorized:
		return http.StatusUnauthorized
	case codeForbidden:
		return http.StatusForbidden
	case codeNotFound:
		return http.StatusNotFound
	case codeTooLarge:
		return http.StatusRequestEntityTooLarge
	case codeUnsupportedType:
		return http.StatusUnsupportedMediaType
	case codeUnsupportedCodec, codeH265NotOffered:
		return http.StatusUnprocessableEntity
	case codeUnavailable, codeCanceled:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// post does the work of handlePost. It writes the 201 response itself and
// returns "created", or returns the error code and error to answer with.
func (s *Server) post(w http.ResponseWriter, r *http.Request, channelID int64) (string, error) {
	if err := s.enter(); err != nil {
		return codeUnavailable, err
	}
	defer s.wg.Done()

	if s.conf.Authorize != nil {
		if err := s.conf.Authorize(r, channelID); err != nil {
			switch {
			case errors.Is(err, ErrUnauthorized):
				return codeUnauthorized, err
			case errors.Is(err, ErrForbidden):
				return codeForbidden, err
			}
			return codeInternal, fmt.Errorf("whep: authorize: %w", err)
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/sdp" {
		return codeUnsupportedType, fmt.Errorf("whep: content type %q: the offer must be application/sdp", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return codeTooLarge, fmt.Errorf("whep: offer larger than %d bytes", maxOfferBytes)
		}
		return codeBadRequest, fmt.Errorf("whep: read offer: %w", err)
	}
	o, err := parseOffer(body)
	if err != nil {
		return codeBadRequest, err
	}

	// The request deadline covers Acquire and ICE gathering; Close cuts it short.
	ctx, cancel := context.WithTimeout(r.Context(), s.conf.AcquireTimeout)
	defer cancel()
	stopOnClose := context.AfterFunc(s.ctx, cancel)
	defer stopOnClose()

	stream, release, err := s.conf.Hub.Acquire(ctx, channelID)
	if err != nil {
		switch {
		case errors.Is(err, media.ErrNoChannel):
			return codeNotFound, fmt.Errorf("whep: channel %d: %w", channelID, err)
		case errors.Is(err, media.ErrUnavailable):
			return codeUnavailable, fmt.Errorf("whep: channel %d: %w", channelID, err)
		case r.Context().Err() != nil:
			return codeCanceled, fmt.Errorf("whep: channel %d: request canceled: %w", channelID, err)
		case s.ctx.Err() != nil:
			return codeUnavailable, ErrServerClosed
		case ctx.Err() != nil:
			return codeUnavailable, fmt.Errorf("whep: channel %d: source not ready in %s: %w", channelID, s.conf.AcquireTimeout, err)
		}
		return codeInternal, fmt.Errorf("whep: channel %d: %w", channelID, err)
	}
	releaseOnce := onceFunc(release)
	if stream == nil {
		releaseOnce()
		return codeInternal, fmt.Errorf("whep: channel %d: hub returned no stream", channelID)
	}

	p, err := negotiate(o, stream.Tracks())
	if err != nil {
		releaseOnce()
		if errors.Is(err, errH265Refuse) {
			return codeH265NotOffered, err
		}
		return codeUnsupportedCodec, err
	}

	ss := s.newSession(channelID, stream, releaseOnce, p)
	for _, skipped := range p.skipped {
		ss.log.Info("track not sent", "why", skipped)
	}
	answer, err := ss.setup(ctx, string(body))
	if err == nil {
		err = s.addSession(ss)
	}
	if err != nil {
		ss.cancel(err)
		if ss.pc != nil {
			_ = ss.pc.Close()
		}
		ss.rtcpWG.Wait()
		releaseOnce()
		switch {
		case errors.Is(err, errBadOffer):
			return codeBadRequest, err
		case errors.Is(err, ErrServerClosed), s.ctx.Err() != nil:
			return codeUnavailable, err
		case r.Context().Err() != nil:
			return codeCanceled, err
		}
		return codeInternal, err
	}
	go ss.run()

	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+ss.secret)
	h.Set("ETag", `"`+ss.etag+`"`)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	ss.log.Info("session created", "video", p.videoCodec.MimeType, "audio", p.audioCodec.MimeType)
	return "created", nil
}

func (s *Server) newSession(channelID int64, stream *media.Stream, release func(), p *plan) *session {
	ctx, cancel := context.WithCancelCause(s.ctx)
	logID := s.newLogID()
	ss := &session{
		srv:       s,
		secret:    randomHex(16),
		etag:      randomHex(8),
		logID:     logID,
		channelID: channelID,
		log:       s.log.With("session", logID, "channel", channelID),
		started:   time.Now(),
		stream:    stream,
		release:   release,
		plan:      p,
		ctx:       ctx,
		cancel:    cancel,
		connected: make(chan struct{}),
		done:      make(chan struct{}),
	}
	if p.video >= 0 {
		if stream.Tracks()[p.video].Codec == media.CodecH265 {
			t := stream.Tracks()[p.video]
			ss.video = &h265Packetizer{vps: t.VPS, sps: t.SPS, pps: t.PPS}
		} else {
			t := stream.Tracks()[p.video]
			ss.video = &h264Packetizer{sps: t.SPS, pps: t.PPS}
		}
	} else {
		ss.sending = true // audio only
	}
	return ss
}

// handleDelete ends a session (RFC 9725 §4.2) and answers once its lease is
// released.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, channelID int64, secret string) {
	ss := s.lookup(secret, channelID)
	if ss == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "whep: no such session")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ss.stop(ctx, errDeleted)
	w.WriteHeader(http.StatusOK)
}

// errorBody is the JSON error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

// randomHex returns n random bytes in hex. crypto/rand.Read never fails.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// onceFunc wraps f so that it runs at most once, whoever calls it.
func onceFunc(f func()) func() {
	if f == nil {
		return func() {}
	}
	return sync.OnceFunc(f)
}

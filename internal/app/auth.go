package app

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/xueliang/xueliang/internal/token"
)

// mediaToken returns the token of a media request: the token query
// parameter (players cannot set headers on every request) or a Bearer
// Authorization header (WHEP clients).
func mediaToken(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// errNoToken and errBadToken are mapped to each egress package's sentinels.
var errNoToken = errors.New("no media token: ask the API (POST /api/v1/channels/{id}/live, /playback or /exports) for a signed URL")

// verifyToken checks the media token of r for scope and id (a channel, or
// an export). It is the seam where users and jurisdictions plug in: the
// token already names its user.
//
// unauthenticated is true when the caller must get a (new) token: none was
// sent, or it is malformed, forged or expired (401). A valid token for
// another channel or purpose is a refusal (403).
func (a *App) verifyToken(r *http.Request, scope token.Scope, id int64) (c token.Claims, unauthenticated bool, err error) {
	tok := mediaToken(r)
	if tok == "" {
		return c, true, errNoToken
	}
	if c, err = a.signer.VerifyFor(tok, scope, id, time.Now()); err != nil {
		forbidden := errors.Is(err, token.ErrWrongChannel) || errors.Is(err, token.ErrWrongScope)
		return c, !forbidden, fmt.Errorf("media token refused: %w", err)
	}
	return c, false, nil
}

// verifyLive checks the live token of r for channel id.
func (a *App) verifyLive(r *http.Request, id int64) (unauthenticated bool, err error) {
	_, unauthenticated, err = a.verifyToken(r, token.ScopeLive, id)
	return unauthenticated, err
}

// authorizeLive returns the Authorize function of an egress server: it
// checks the live token and wraps the failure in that server's own
// sentinels for 401 and 403.
func (a *App) authorizeLive(errUnauthorized, errForbidden error) func(*http.Request, int64) error {
	return func(r *http.Request, id int64) error {
		unauthenticated, err := a.verifyLive(r, id)
		switch {
		case err == nil:
			return nil
		case unauthenticated:
			return fmt.Errorf("%w: %w", errUnauthorized, err)
		default:
			return fmt.Errorf("%w: %w", errForbidden, err)
		}
	}
}

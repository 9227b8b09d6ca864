package sim

import (
	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// handler answers gortsplib's server callbacks. Callbacks of one connection,
// or of one session, run on that connection's or session's goroutine; the
// user data of each is touched only there. handler never takes Server.mu.
type handler struct {
	s *Server
}

// refusedUser can never match a client's user name, so verifying against it
// fails while still preparing the digest nonce of the 401 challenge.
const refusedUser = "\x00"

// OnRequest ties the connection to the camera the request addresses, and
// hangs up at once if that camera is dropped (see FaultDrop).
func (h *handler) OnRequest(sc *gortsplib.ServerConn, req *base.Request) {
	if req.URL == nil {
		return
	}
	c := h.s.lookup(req.URL.Path)
	if c == nil {
		return
	}
	if prev, _ := sc.UserData().(*camera); prev != c {
		if prev != nil {
			prev.removeConn(sc)
		}
		sc.SetUserData(c)
	}
	if !c.addConn(sc) {
		c.log.Debug("dropped camera: hanging up", "remote", sc.NetConn().RemoteAddr(), "method", req.Method)
		sc.NetConn().Close()
	}
}

// OnConnClose forgets the connection.
func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	if c, _ := ctx.Conn.UserData().(*camera); c != nil {
		c.removeConn(ctx.Conn)
	}
}

// OnSessionClose forgets the session; the camera idles after its last reader.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	if c, _ := ctx.Session.UserData().(*camera); c != nil {
		c.remove(ctx.Session)
		c.log.Debug("session closed", "error", ctx.Error)
	}
}

// OnDescribe answers with the camera's SDP.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c, res, err := h.admit(ctx.Conn, ctx.Request, ctx.Path)
	if c == nil {
		return res, nil, err
	}
	st, err := c.getStream(h.s.rtsp)
	if err != nil || st == nil {
		c.log.Error("create stream", "error", err)
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, err
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnSetup attaches the session to the camera's stream.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c, res, err := h.admit(ctx.Conn, ctx.Request, ctx.Path)
	if c == nil {
		return res, nil, err
	}
	if prev, _ := ctx.Session.UserData().(*camera); prev != nil && prev != c {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil, nil
	}
	st, err := c.getStream(h.s.rtsp)
	if err != nil || st == nil || !c.attach(ctx.Session) {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, err
	}
	ctx.Session.SetUserData(c)
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnPlay makes the session a reader, starting the camera if it idled.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c, _ := ctx.Session.UserData().(*camera)
	if c == nil || !c.play(ctx.Session) {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
	}
	c.log.Debug("playing", "remote", ctx.Conn.NetConn().RemoteAddr(), "transport", ctx.Session.Transport().Protocol)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnPause stops the session reading.
func (h *handler) OnPause(ctx *gortsplib.ServerHandlerOnPauseCtx) (*base.Response, error) {
	if c, _ := ctx.Session.UserData().(*camera); c != nil {
		c.pause(ctx.Session)
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnStreamWriteError reports a reader too slow for its write queue.
func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.s.log.Debug("write to reader", "error", ctx.Error)
}

// OnPacketsLost and OnDecodeError would only concern published streams;
// handling them keeps gortsplib from printing.
func (h *handler) OnPacketsLost(*gortsplib.ServerHandlerOnPacketsLostCtx) {}

// OnDecodeError: see OnPacketsLost.
func (h *handler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.s.log.Debug("decode", "error", ctx.Error)
}

// admit finds the camera of a DESCRIBE or SETUP and checks its faults and
// credentials. A nil camera comes with the response to send.
func (h *handler) admit(sc *gortsplib.ServerConn, req *base.Request, path string) (*camera, *base.Response, error) {
	c := h.s.lookup(path)
	if c == nil {
		return nil, &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	switch Fault(c.fault.Load()) {
	case FaultDrop:
		return nil, &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
	case FaultRefuseAuth:
		sc.VerifyCredentials(req, refusedUser, "")
		return nil, &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
	}
	if c.cfg.Username != "" && !sc.VerifyCredentials(req, c.cfg.Username, c.cfg.Password) {
		return nil, &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
	}
	return c, nil, nil
}

package media

import (
	"context"
	"errors"
	"fmt"
)

// Reason says, in one machine-readable word, why a source is not delivering
// media. The console shows it in words; operators filter on it.
type Reason string

// Reasons a source fails.
const (
	ReasonNone             Reason = ""
	ReasonUnreachable      Reason = "unreachable"       // no route, connection refused, DNS failure
	ReasonAuthFailed       Reason = "auth_failed"       // credentials missing or refused
	ReasonNoVideo          Reason = "no_video"          // the source offers no video track
	ReasonCodecUnsupported Reason = "codec_unsupported" // the video codec is not H.264 or H.265
	ReasonTimeout          Reason = "timeout"           // connected, but no answer or no media in time
	ReasonClosed           Reason = "source_closed"     // the camera ended the session
	ReasonProtocol         Reason = "protocol_error"    // the camera answered something we could not use
)

// SourceError is the error a Source returns when it fails: a Reason for
// machines and the underlying error for people.
type SourceError struct {
	Reason Reason
	Err    error
}

func (e *SourceError) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *SourceError) Unwrap() error { return e.Err }

// Fail returns a *SourceError for reason wrapping err.
func Fail(reason Reason, err error) error { return &SourceError{Reason: reason, Err: err} }

// ReasonOf returns the Reason carried by err, or ReasonProtocol if err carries none.
func ReasonOf(err error) Reason {
	var se *SourceError
	if errors.As(err, &se) {
		return se.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	return ReasonProtocol
}

// Source connects to a camera (or any upstream) and delivers its media.
type Source interface {
	// Run connects, calls ready once with the tracks when they are known,
	// writes units to the Stream that ready returns, and returns when ctx is
	// done (returning nil) or when the source fails (returning an error that
	// ReasonOf can classify). Run is called again, on a new Source or the same
	// one, after a failure; it must not leave goroutines behind when it
	// returns.
	Run(ctx context.Context, ready func(tracks []*Track) *Stream) error
}

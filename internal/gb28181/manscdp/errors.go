package manscdp

import (
	"errors"
	"fmt"
)

// Limits applied to untrusted input.
const (
	// MaxBodySize is the largest body Parse accepts (1 MiB).
	MaxBodySize = 1 << 20
	// MaxSumNum is the largest SumNum or Num a Catalog or RecordInfo message
	// may claim. A city platform has tens of thousands of channels; a million
	// leaves headroom without letting a device make a collector reserve
	// unbounded memory.
	MaxSumNum = 1_000_000
	// maxDepth bounds element nesting (real bodies nest 4 levels).
	maxDepth = 32
	// maxElements bounds the elements of one body, and so the memory a
	// hostile body can cost. A 1 MiB catalog of real items has ~40,000.
	maxElements = 1 << 16
)

// Errors returned by this package. Errors that concern one element are
// returned as *FieldError wrapping one of these.
var (
	// ErrTooLarge: the body is larger than MaxBodySize.
	ErrTooLarge = errors.New("manscdp: body larger than 1 MiB")
	// ErrEmpty: the body has no root element.
	ErrEmpty = errors.New("manscdp: empty body")
	// ErrSyntax: the body is not well-formed XML even after repair.
	ErrSyntax = errors.New("manscdp: xml syntax")
	// ErrUnknownRoot: the root element is not Query, Control, Notify or Response.
	ErrUnknownRoot = errors.New("manscdp: unknown root element")
	// ErrTooDeep: elements nest deeper than any MANSCDP body does.
	ErrTooDeep = errors.New("manscdp: elements nested too deep")
	// ErrTooManyElements: the body has more elements than any real one.
	ErrTooManyElements = errors.New("manscdp: too many elements")
	// ErrMissing: a required element is absent or empty.
	ErrMissing = errors.New("manscdp: missing element")
	// ErrInvalid: an element holds a value of the wrong form.
	ErrInvalid = errors.New("manscdp: invalid value")
	// ErrSumNumTooLarge: SumNum or Num is above MaxSumNum.
	ErrSumNumTooLarge = errors.New("manscdp: SumNum too large")
	// ErrWrongCmdType: a typed decoder was called on a message of another
	// CmdType or root.
	ErrWrongCmdType = errors.New("manscdp: wrong CmdType")
	// ErrUnsupportedCharset: Marshal was asked for a charset it cannot write.
	ErrUnsupportedCharset = errors.New("manscdp: unsupported charset")
	// ErrTooManyPending: the Assembler holds its maximum of unfinished
	// collections.
	ErrTooManyPending = errors.New("manscdp: too many pending collections")
)

// FieldError reports a problem with one element, located by its path from
// the root, e.g. "Response/DeviceList/Item[3]/Port" (items count from 1).
type FieldError struct {
	Path  string
	Value string // the offending text, truncated to 64 bytes
	Err   error  // ErrMissing, ErrInvalid or ErrSumNumTooLarge, possibly wrapping a strconv error
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%v: %s", e.Err, e.Path)
	}
	return fmt.Sprintf("%v: %s: %q", e.Err, e.Path, e.Value)
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(path, value string, err error) *FieldError {
	if len(value) > 64 {
		value = value[:64]
	}
	return &FieldError{Path: path, Value: value, Err: err}
}

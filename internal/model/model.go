// Package model holds the plain data types shared by the control plane:
// divisions (the GB/T 2260 administrative tree), devices and channels.
//
// The types carry no I/O and no behaviour beyond what is intrinsic to the
// data: parsing and printing enums, validation, redaction and building the
// division tree. Persistence lives in package store; protocol-level checks
// (for example the full GB/T 28181 code structure) live in their own packages.
//
// Validate methods report every invalid field at once. The returned error is
// nil or a join (errors.Join) of *FieldError values; use FieldErrors to list
// them or errors.As to find the first.
package model

import (
	"errors"
	"fmt"
)

// FieldError reports one invalid field of a value. Field is the JSON name of
// the field ("code", "source_url", ...); Message says what is wrong without
// repeating the field name. Message never contains secrets such as the
// password of a source URL.
type FieldError struct {
	Field   string
	Message string
}

// Error returns "field: message", for example "code: must be 20 digits, got 19".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldErrors returns every *FieldError in err's tree, in order, or nil if
// there is none. It is meant for turning a Validate error into a per-field
// response.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// fieldErrors accumulates the field errors of one Validate call.
type fieldErrors []error

func (fe *fieldErrors) add(field, msg string) {
	*fe = append(*fe, &FieldError{Field: field, Message: msg})
}

// err returns nil when nothing was added.
func (fe fieldErrors) err() error { return errors.Join(fe...) }

// isDigits reports whether s is non-empty and consists of ASCII digits only.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkCode20 checks the shape of a GB/T 28181 code: exactly 20 ASCII digits.
// The structure of the code (division, industry, type, network, serial) is
// not checked here.
func checkCode20(code string) string {
	if len(code) != 20 {
		return fmt.Sprintf("must be 20 digits, got %d", len(code))
	}
	if !isDigits(code) {
		return "must be 20 digits, got a non-digit character"
	}
	return ""
}

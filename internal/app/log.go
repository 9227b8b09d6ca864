package app

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/xueliang/xueliang/internal/config"
)

// NewLogger returns the process logger configured by c, writing to w.
func NewLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("app: log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

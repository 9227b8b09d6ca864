package whep

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

var discardLogger = slog.New(slog.DiscardHandler)

// pionLoggerFactory sends pion's logs to slog, so that the library prints
// nothing by itself. pion's Info is state tracing and its Warn mostly benign
// events of every session ("Failed to ping without candidate pairs", "stream
// is already closed" at teardown): both go to Debug. The session logs its
// own state changes and errors. pion's Error becomes a Warn.
type pionLoggerFactory struct{ log *slog.Logger }

func newPionLoggerFactory(log *slog.Logger) *pionLoggerFactory {
	return &pionLoggerFactory{log: log}
}

// NewLogger implements logging.LoggerFactory.
func (f *pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l *pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l *pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l *pionLogger) Trace(msg string)                  { l.emit(slog.LevelDebug-4, msg) }
func (l *pionLogger) Tracef(format string, args ...any) { l.emitf(slog.LevelDebug-4, format, args...) }
func (l *pionLogger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l *pionLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l *pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Warn(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l *pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l *pionLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l *pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }

// Package logging builds the one log/slog logger a Cutover process writes
// with, and adapts the libraries that would otherwise log on their own
// (net/http's ErrorLog, gofakes3) to it, so every line has one format.
package logging

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/johannesboyne/gofakes3"
)

// Formats are the accepted values of --log-format.
var Formats = []string{"text", "json"}

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error") in format ("text" or "json"; empty means text).
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", format)
}

// StdLogger is a *log.Logger for APIs that take one (http.Server.ErrorLog)
// that writes through l at level.
func StdLogger(l *slog.Logger, level slog.Level) *log.Logger {
	return slog.NewLogLogger(l.Handler(), level)
}

// S3 adapts l for gofakes3.WithLogger; without it gofakes3 writes with the
// standard library's global logger, in another format.
func S3(l *slog.Logger) gofakes3.Logger { return s3Logger{l} }

type s3Logger struct{ l *slog.Logger }

func (s s3Logger) Print(level gofakes3.LogLevel, v ...any) {
	lv := slog.LevelInfo
	switch level {
	case gofakes3.LogErr:
		lv = slog.LevelError
	case gofakes3.LogWarn:
		lv = slog.LevelWarn
	case gofakes3.LogInfo:
		// gofakes3 reports every request at info; that is debug detail here.
		lv = slog.LevelDebug
	}
	s.l.Log(context.Background(), lv, strings.TrimSpace(fmt.Sprintln(v...)), "component", "s3")
}

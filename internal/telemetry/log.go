package telemetry

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
)

// LogOptions configures NewLogger.
type LogOptions struct {
	// Text writes logfmt-style text lines instead of JSON.
	Text bool
	// Dev, with Text, shortens the time to the time of day (15:04:05.000),
	// for a person watching a local run.
	Dev bool
	// Writer receives the log lines. Default os.Stderr.
	Writer io.Writer
	// Level is the minimum level. Default slog.LevelInfo.
	Level slog.Leveler
}

// NewLogger returns a slog logger writing JSON (or text) whose lines
// logged with a request's context carry request_id and trace_id. Log with
// the ctx variants (InfoContext, …) for that to work. It is the host's one
// logger constructor (runtime/cli builds its logger with it).
func NewLogger(opts LogOptions) *slog.Logger {
	w := opts.Writer
	if w == nil {
		w = os.Stderr
	}
	ho := &slog.HandlerOptions{Level: opts.Level}
	var h slog.Handler
	switch {
	case opts.Text && opts.Dev:
		ho.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				return slog.String(slog.TimeKey, a.Value.Time().Format(time.TimeOnly+".000"))
			}
			return a
		}
		h = slog.NewTextHandler(w, ho)
	case opts.Text:
		h = slog.NewTextHandler(w, ho)
	default:
		h = slog.NewJSONHandler(w, ho)
	}
	return slog.New(NewContextHandler(h))
}

// ContextHandler adds request_id (from agent.FromContext) and trace_id/span_id
// (from the span context) of the record's context to every record. On a
// logger derived with WithGroup they land inside the group, like any other
// attribute of the record.
type ContextHandler struct{ next slog.Handler }

// NewContextHandler wraps next with request and trace correlation.
func NewContextHandler(next slog.Handler) *ContextHandler { return &ContextHandler{next: next} }

// Enabled defers to the wrapped handler.
func (h *ContextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle adds the correlation attributes and passes the record on.
func (h *ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := agent.FromContext(ctx).RequestID; id != "" && !hasAttr(r, "request_id") {
			r.AddAttrs(slog.String("request_id", id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs keeps the correlation on the derived handler.
func (h *ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &ContextHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup keeps the correlation on the derived handler.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	return &ContextHandler{next: h.next.WithGroup(name)}
}

// hasAttr reports whether the caller already logged key (callers that pass
// request_id explicitly must not get it twice).
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

package telemetry

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/syncbuf"
)

func TestLoggerCorrelation(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "predict")
	defer span.End()
	ctx = agent.NewContext(ctx, &agent.Env{RequestID: "req-9"})
	traceID, spanID := span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()

	t.Run("json", func(t *testing.T) {
		var buf syncbuf.Buffer
		log := NewLogger(LogOptions{Writer: &buf}).With("component", "test")
		log.InfoContext(ctx, "tool skipped", "tool", "genie")
		log.Info("no request context")
		log.WarnContext(ctx, "explicit id", "request_id", "req-9")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 3 || strings.Count(lines[2], "request_id") != 1 {
			t.Fatalf("lines: %q", lines)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["request_id"] != "req-9" || rec["trace_id"] != traceID || rec["span_id"] != spanID ||
			rec["component"] != "test" || rec["tool"] != "genie" || rec["msg"] != "tool skipped" {
			t.Errorf("record %v", rec)
		}
		rec = nil
		if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
			t.Fatal(err)
		}
		if _, ok := rec["trace_id"]; ok {
			t.Errorf("trace id without a span: %v", rec)
		}
	})
	t.Run("dev text", func(t *testing.T) {
		var buf syncbuf.Buffer
		NewLogger(LogOptions{Text: true, Dev: true, Writer: &buf, Level: slog.LevelDebug}).DebugContext(ctx, "hello")
		out := buf.String()
		for _, want := range []string{"level=DEBUG", "msg=hello", "request_id=req-9", "trace_id=" + traceID} {
			if !strings.Contains(out, want) {
				t.Errorf("%q lacks %q", out, want)
			}
		}
		if !regexp.MustCompile(`^time=\d\d:\d\d:\d\d\.\d{3} `).MatchString(out) {
			t.Errorf("dev time not compact: %q", out)
		}
	})
	t.Run("level filters", func(t *testing.T) {
		var buf syncbuf.Buffer
		NewLogger(LogOptions{Writer: &buf, Level: slog.LevelWarn}).InfoContext(ctx, "quiet")
		if buf.String() != "" {
			t.Errorf("info logged at warn level: %q", buf.String())
		}
	})
}

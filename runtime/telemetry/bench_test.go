package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkRequestPath measures what telemetry adds to one request: the
// server span and HTTP metrics (Handler), the route name (SetRoute), the
// predict span with request attributes, one correlated log line, and
// inflight accounting. The handler does no other work, so the difference
// between the modes is the cost of telemetry alone.
func BenchmarkRequestPath(b *testing.B) {
	modes := []struct {
		name string
		env  map[string]string
		opts func() Options
	}{
		{"bare", map[string]string{"OTEL_SDK_DISABLED": "true"}, nil},
		{"off", map[string]string{"OTEL_SDK_DISABLED": "true"}, func() Options { return Options{} }},
		{"metrics_only", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, func() Options { return Options{} }},
		{"traced_sampled_batch", nil, func() Options {
			return Options{SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter())}}
		}},
		{"traced_dev_tree", nil, func() Options { return Options{Dev: true, ConsoleWriter: io.Discard} }},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			for _, k := range otelVars {
				b.Setenv(k, "")
			}
			for k, v := range m.env {
				b.Setenv(k, v)
			}
			var h http.Handler
			if m.opts == nil {
				// No telemetry code at all: the floor the other modes are compared with.
				log := slog.New(slog.NewJSONHandler(io.Discard, nil))
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					env := &agent.Env{RequestID: "req-1", Caller: agent.Caller{Identity: agent.Identity{PrincipalID: "alice"}}}
					ctx := agent.NewContext(r.Context(), env)
					log.InfoContext(ctx, "predict done", "request_id", env.RequestID)
					w.WriteHeader(http.StatusOK)
				})
			} else {
				opts := m.opts()
				opts.Getenv = func(string) string { return "" }
				tel, err := Setup(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = tel.Shutdown(context.Background()) }()
				log := NewLogger(LogOptions{Writer: io.Discard})
				h = Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					SetRoute(r, "/responses")
					env := &agent.Env{RequestID: "req-1", Caller: agent.Caller{Identity: agent.Identity{PrincipalID: "alice"}}}
					ctx := agent.NewContext(r.Context(), env)
					ctx, span := StartPredict(ctx, false, nil)
					log.InfoContext(ctx, "predict done")
					End(span, nil)
					w.WriteHeader(http.StatusOK)
				}))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/responses", strings.NewReader("{}"))
				h.ServeHTTP(rec, req)
			}
		})
	}
}

package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentrt/agentrt/agent"
)

// BenchmarkRequestPath measures what telemetry adds to one request: the
// server span and HTTP metrics (Server), the predict span, and one
// correlated log line. The handler does no other work, so the differences
// between the modes are the cost of telemetry alone:
//
//   - bare: no telemetry code at all, only the log line;
//   - off: OTEL_SDK_DISABLED (NewServer is nil, StartPredict short-circuits);
//   - metrics_only: the SDK meter provider, spans never sampled (production
//     without a trace exporter);
//   - traced_sampled_batch: every span sampled and batched to a discarding
//     exporter; minus metrics_only, this is what tracing costs;
//   - traced_dev_tree: the --dev console tree instead of the batcher;
//   - sdk_two_spans: two nested sampled spans with no attributes, batched,
//     and the log line: the OpenTelemetry SDK's own floor for this trace,
//     measured next to the rest (minus bare).
func BenchmarkRequestPath(b *testing.B) {
	batched := func() Options {
		return Options{SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter())}}
	}
	modes := []struct {
		name    string
		env     map[string]string
		opts    func() Options // nil: no Setup
		handler func() http.HandlerFunc
	}{
		{"bare", nil, nil, bareHandler},
		{"off", map[string]string{"OTEL_SDK_DISABLED": "true"}, func() Options { return Options{} }, hostHandler},
		{"metrics_only", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, func() Options { return Options{} }, hostHandler},
		{"traced_sampled_batch", nil, batched, hostHandler},
		{"traced_dev_tree", nil, func() Options { return Options{Dev: true, ConsoleWriter: io.Discard} }, hostHandler},
		{"sdk_two_spans", nil, batched, twoSpansHandler},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			for _, k := range otelVars {
				b.Setenv(k, "")
			}
			for k, v := range m.env {
				b.Setenv(k, v)
			}
			if m.opts != nil {
				opts := m.opts()
				opts.Getenv = os.Getenv // cleaned above
				tel, err := Setup(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = tel.Shutdown(context.Background()) }()
			}
			h := m.handler()
			// One request and writer for all iterations: building them
			// costs more than what is measured, and only adds noise.
			req := httptest.NewRequest(http.MethodPost, "/responses", strings.NewReader("{}"))
			req.Header.Set("User-Agent", "OpenAI/Python 1.99.0")
			w := discardWriter{}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// bareHandler logs the line every mode logs, with no telemetry code.
func bareHandler() http.HandlerFunc {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return func(w http.ResponseWriter, r *http.Request) {
		env := &agent.Env{RequestID: "req-1", Caller: agent.Caller{Identity: agent.Identity{PrincipalID: "alice"}}}
		ctx := agent.NewContext(r.Context(), env)
		log.InfoContext(ctx, "predict done", "request_id", env.RequestID)
		w.WriteHeader(http.StatusOK)
	}
}

// hostHandler does what the host does around an agent call.
func hostHandler() http.HandlerFunc {
	srv := NewServer()
	log := NewLogger(LogOptions{Writer: io.Discard})
	return func(w http.ResponseWriter, r *http.Request) {
		env := &agent.Env{RequestID: "req-1"}
		ctx, q := srv.Start(agent.NewContext(r.Context(), env), r, "/responses")
		env.Caller.PrincipalID = "alice" // what identity resolution does
		ctx, span := StartPredict(ctx, false, nil)
		log.InfoContext(ctx, "predict done")
		End(span, nil)
		w.WriteHeader(http.StatusOK)
		q.End(http.StatusOK)
	}
}

// twoSpansHandler is the SDK floor: two nested spans straight from the
// tracer, nothing else of ours.
func twoSpansHandler() http.HandlerFunc {
	log := NewLogger(LogOptions{Writer: io.Discard})
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := agent.NewContext(r.Context(), &agent.Env{RequestID: "req-1"})
		ctx, server := tracer().Start(ctx, "POST /responses")
		ctx, predict := tracer().Start(ctx, "predict")
		log.InfoContext(ctx, "predict done")
		predict.End()
		w.WriteHeader(http.StatusOK)
		server.End()
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

package e2e_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/server"
)

// BenchmarkHostRequest is one non-streaming POST /responses to the echo
// agent through the whole host (gin, decoding, envelope, encoding), in the
// same run with telemetry
//   - off: no-op providers, no server instrumentation;
//   - metrics_only: the SDK meter provider (HTTP metrics) and spans that are
//     never sampled, what a production host without a trace exporter runs;
//   - on_sampled: metrics plus every span sampled and batched to a
//     discarding exporter.
//
// on_sampled minus metrics_only is what tracing costs.
func BenchmarkHostRequest(b *testing.B) {
	modes := []struct {
		name    string
		metrics bool
		sampler sdktrace.Sampler // nil: no-op tracer provider
	}{
		{name: "off"},
		{name: "metrics_only", metrics: true, sampler: sdktrace.NeverSample()},
		{name: "on_sampled", metrics: true, sampler: sdktrace.AlwaysSample()},
	}
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	defer func() { otel.SetTracerProvider(prevTP); otel.SetMeterProvider(prevMP) }()
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			opts := server.Options{Agent: echo.Agent{}, AgentName: "echo", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
			if m.metrics {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(m.sampler),
					sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer func() { _ = tp.Shutdown(context.Background()) }()
				otel.SetTracerProvider(tp)
				otel.SetMeterProvider(prevMP) // the SDK meter provider of TestMain
				opts.Telemetry = tel
			} else {
				otel.SetTracerProvider(tracenoop.NewTracerProvider())
				otel.SetMeterProvider(metricnoop.NewMeterProvider())
			}
			h, err := server.New(opts)
			if err != nil {
				b.Fatal(err)
			}
			handler := h.Handler()
			const body = `{"input":[{"role":"user","content":"hello there"}]}`
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/responses", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "OpenAI/Python 1.99.0")
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

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
	"github.com/agentrt/agentrt/runtime"
)

// BenchmarkHostRequest is one non-streaming POST /responses to the echo
// agent through the whole host (gin, decoding, envelope, encoding), with
// telemetry off (no-op providers, no server instrumentation) and on
// (server span and HTTP metrics, route, predict span, sampled, batched to a
// discarding exporter), in the same run.
func BenchmarkHostRequest(b *testing.B) {
	modes := []struct {
		name string
		on   bool
	}{
		{name: "off"},
		{name: "on_sampled", on: true},
	}
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	defer func() { otel.SetTracerProvider(prevTP); otel.SetMeterProvider(prevMP) }()
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			opts := runtime.Options{Agent: echo.Agent{}, AgentName: "echo", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
			if m.on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer func() { _ = tp.Shutdown(context.Background()) }()
				otel.SetTracerProvider(tp)
				otel.SetMeterProvider(prevMP) // the SDK meter provider of TestMain
				opts.Telemetry = tel
			} else {
				otel.SetTracerProvider(tracenoop.NewTracerProvider())
				otel.SetMeterProvider(metricnoop.NewMeterProvider())
			}
			h, err := runtime.New(opts)
			if err != nil {
				b.Fatal(err)
			}
			handler := h.Handler()
			const body = `{"input":[{"role":"user","content":"hello there"}]}`
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/responses", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

package telemetry_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/agentrt/agentrt/runtime/telemetry"
)

// A host sets telemetry up first, then builds everything that makes spans.
func ExampleSetup() {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "my-agent", Dev: true})
	if err != nil {
		log.Fatal(err) // a bad OTEL_* or AGENTRT_TRACE_PAYLOADS value
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: telemetry.Handler(mux)}
	_ = srv // srv.ListenAndServe()
}

// Outgoing clients get the instrumented transport, so each call is a span
// and carries the request's traceparent.
func ExampleTransport() {
	client := &http.Client{Transport: telemetry.Transport(nil)}
	_ = client // e.g. databricks config.Config{HTTPTransport: telemetry.Transport(nil)}
}

func ExampleNewLogger() {
	logger := telemetry.NewLogger(telemetry.LogOptions{Dev: false, Writer: os.Stderr})
	// Lines logged with a request's ctx carry request_id and trace_id.
	logger.InfoContext(context.Background(), "ready")
	fmt.Println(logger.Enabled(context.Background(), -4)) // debug is off by default
	// Output: false
}

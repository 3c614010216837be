package telemetry_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/telemetry"
)

// A host sets telemetry up first, then builds everything that makes spans.
func ExampleSetup() {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "my-agent", Dev: true, Getenv: os.Getenv})
	if err != nil {
		log.Fatal(err) // a bad OTEL_* or AGENTRT_TRACE_PAYLOADS value
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	_ = &http.Server{Addr: "127.0.0.1:8080", Handler: mux} // ListenAndServe()
}

// Routers instrument each request once they have matched its route.
func ExampleServer() {
	srv := telemetry.NewServer() // after Setup
	handler := func(w http.ResponseWriter, r *http.Request) {
		env := &agent.Env{RequestID: r.Header.Get("X-Request-Id")}
		ctx, req := srv.Start(agent.NewContext(r.Context(), env), r, "/responses")
		defer func() { req.End(http.StatusOK) }()
		_ = ctx // serve with ctx: it carries the server span
		w.WriteHeader(http.StatusOK)
	}
	_ = handler
}

// Outgoing clients get the instrumented transport, so each call is a span
// and carries the request's traceparent.
func ExampleTransport() {
	client := &http.Client{Transport: telemetry.Transport(nil)}
	_ = client // e.g. databricks config.Config{HTTPTransport: telemetry.Transport(nil)}
}

func ExampleNewLogger() {
	logger := telemetry.NewLogger(telemetry.LogOptions{Writer: os.Stderr})
	// Lines logged with a request's ctx carry request_id and trace_id.
	logger.InfoContext(context.Background(), "ready")
	fmt.Println(logger.Enabled(context.Background(), -4)) // debug is off by default
	// Output: false
}

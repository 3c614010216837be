package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/telemetry"
)

// discardWriter keeps only the status, so that the benchmark measures the
// host, not a recorder's buffer.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
func (d *discardWriter) WriteHeader(code int) { d.status = code }

// SetWriteDeadline is there because net/http's writer has it: without it
// every http.ResponseController call would allocate an error.
func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// warmIdentity stands in for the identity resolver with its verdict cache
// warm: one header read and a known principal, no allocation of its own.
var warmIdentity = server.PreparerFunc(func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
	if r.Header.Get("Authorization") != "Bearer alice" {
		return ctx, httperr.Unauthenticated("credential rejected")
	}
	env.Caller = agent.Caller{Identity: agent.Identity{PrincipalID: "1001"}, Authenticated: true}
	return ctx, nil
})

// BenchmarkServeEcho is one POST /responses of issue 17's load run
// (test/load -scenario echo) through the host as `serve --agent echo` builds
// it: telemetry.Setup with no OTEL_* variables (SDK metrics, spans never
// sampled), the five-minute request timeout, no workspace; anonymous, and
// with a verified caller (a preparer standing in for the identity
// resolver's warm cache). The request is reused, so only the host's own
// allocations are counted.
func BenchmarkServeEcho(b *testing.B) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "echo", Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	for _, tc := range []struct {
		name    string
		preps   []server.Preparer
		headers map[string]string
	}{
		{name: "anonymous"},
		{name: "verified", preps: []server.Preparer{warmIdentity}, headers: map[string]string{"Authorization": "Bearer alice"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h, err := server.New(server.Options{Agent: echo.Agent{}, AgentName: "echo", Logger: quietLog(), Telemetry: tel,
				Preparers: tc.preps, Limits: server.Limits{RequestTimeout: 5 * time.Minute}})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"model":"echo","input":"hello there, how are you today?"}`)
			r := httptest.NewRequest(http.MethodPost, "/responses", nil)
			r.Header.Set("Content-Type", "application/json")
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := &discardWriter{h: http.Header{}}
			rd := bytes.NewReader(body)
			rc := io.NopCloser(rd)
			handler := h.Handler()
			// net/http gives each request a context of its own, cancelled
			// when it ends, under the connection's: what the host derives
			// from it registers with it. Making it costs 3 allocations
			// (the context and the request's shallow copy included), which
			// are counted here but are net/http's.
			conn, endConn := context.WithCancel(context.Background())
			defer endConn()
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.status = 0
				rd.Reset(body)
				r.Body, r.ContentLength = rc, int64(len(body))
				ctx, end := context.WithCancel(conn)
				handler.ServeHTTP(w, r.WithContext(ctx))
				end()
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

package identity_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/identity"
	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/logger"
)

// countingServer answers SCIM Me for any token and 404 to everything else
// (as a workspace without host metadata does), and counts what reaches it.
func countingServer(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/2.0/preview/scim/v2/Me" {
			w.Write([]byte(`{"id":"42","userName":"dana@example.com"}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error_code":"NOT_FOUND","message":"not found"}`))
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

// BenchmarkAcquireClients is the per-request cost of identity plus both
// clients with agentrt: the identity preparer hands out the shared user and
// system clients and puts the caller's credential in the ctx.
func BenchmarkAcquireClients(b *testing.B) {
	srv, n := countingServer(b)
	sys, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: srv.URL, Logger: slog.New(slog.DiscardHandler),
		Token: "sp-pat"})
	if err != nil {
		b.Fatal(err)
	}
	defer sys.Close()
	user, err := credentials.NewUser(credentials.UserOptions{Host: srv.URL, Scopes: []string{"all-apis"}})
	if err != nil {
		b.Fatal(err)
	}
	res, err := identity.New(identity.Options{Manifest: agent.Manifest{UserAPIScopes: []string{"all-apis"}}, User: user.Client(), System: sys.Client()})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/responses", nil)
	req.Header.Set("X-Forwarded-Access-Token", "user-token-0123456789abcdef")
	before := n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		env := &agent.Env{RequestID: "r"}
		ctx, err := res.Prepare(agent.NewContext(context.Background(), env), req, env)
		if err != nil || env.User == nil || env.System == nil || !credentials.HasCaller(ctx) {
			b.Fatal("prepare failed", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n.Load()-before)/float64(b.N), "requests/op")
}

// BenchmarkVerifyNewCredential is the cost of a credential seen for the
// first time: one SCIM Me round trip on loopback, paid once per distinct
// credential per VerifyTTL (BenchmarkAcquireClients is the cached case).
func BenchmarkVerifyNewCredential(b *testing.B) {
	srv, n := countingServer(b)
	user, err := credentials.NewUser(credentials.UserOptions{Host: srv.URL, Scopes: []string{"all-apis"}})
	if err != nil {
		b.Fatal(err)
	}
	res, err := identity.New(identity.Options{Manifest: agent.Manifest{UserAPIScopes: []string{"all-apis"}}, User: user.Client(), MaxCallers: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/responses", nil)
	before := n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		req.Header.Set("X-Forwarded-Access-Token", "user-token-"+strconv.Itoa(i))
		env := &agent.Env{RequestID: "r"}
		if _, err := res.Prepare(agent.NewContext(context.Background(), env), req, env); err != nil {
			b.Fatal("prepare failed", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n.Load()-before)/float64(b.N), "requests/op")
}

// BenchmarkNewWorkspaceClientPerRequest is the naive baseline: build both
// clients with databricks.NewWorkspaceClient for every request, as the
// Python reference does inside predict.
func BenchmarkNewWorkspaceClientPerRequest(b *testing.B) {
	srv, n := countingServer(b)
	// The SDK warns on every missing host metadata; keep the output readable.
	prev := logger.DefaultLogger
	logger.DefaultLogger = &logger.SimpleLogger{Level: logger.LevelError}
	b.Cleanup(func() { logger.DefaultLogger = prev })
	before := n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		u, err := databricks.NewWorkspaceClient(&databricks.Config{Host: srv.URL, Token: "user-token-0123456789abcdef"})
		if err != nil {
			b.Fatal(err)
		}
		s, err := databricks.NewWorkspaceClient(&databricks.Config{Host: srv.URL, Token: "sp-pat"})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = u, s
	}
	b.StopTimer()
	b.ReportMetric(float64(n.Load()-before)/float64(b.N), "requests/op")
}

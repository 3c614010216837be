package server_test

import (
	"context"
	"log"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/server"
)

// A host for the echo agent with limits and a preparer that requires a
// caller header; SIGTERM drains in-flight requests before Serve returns.
func ExampleNew() {
	host, err := server.New(server.Options{
		Agent:     echo.Agent{},
		AgentName: "echo",
		Limits:    server.Limits{MaxConcurrency: 64, RequestTimeout: time.Minute},
		Preparers: []server.Preparer{server.PreparerFunc(
			func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
				user := r.Header.Get("X-Forwarded-Email")
				if user == "" {
					return nil, httperr.Unauthenticated("no caller identity")
				}
				env.Caller.Email, env.Caller.Authenticated = user, true
				return ctx, nil
			})},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := host.ListenAndServe(ctx, "127.0.0.1:8080"); err != nil {
		log.Fatal(err)
	}
}

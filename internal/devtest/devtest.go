// Package devtest serves the example assistant against a fresh dev
// workspace, as `serve --dev --agent assistant` does, for tests that need
// the whole request path: identity, tool preparation per caller, the
// agent loop and the dev model. It is test support; nothing in the serving
// binary imports it.
package devtest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/assistant"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/workspace"
)

// Users are the dev workspace's users and their personal access tokens.
var Users = map[string]string{"alice": "dev-alice-token", "bob": "dev-bob-token", "carol": "dev-carol-token"}

// Assistant serves the assistant on a loopback server and returns it with
// its dev workspace (for the audit log). opts, if given, adjusts the host's
// options before it is built. Everything stops when the test ends.
func Assistant(t testing.TB, opts ...func(*server.Options)) (*httptest.Server, *devworkspace.Workspace) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dev, err := devworkspace.Start(ctx, devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	a, err := assistant.New(assistant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(ctx, workspace.Options{
		Host:          dev.URL(),
		Manifest:      server.EffectiveManifest(a, agent.Manifest{}),
		Dev:           true,
		DevUsers:      Users,
		System:        credentials.SystemOptions{ClientID: "agent-sp", ClientSecret: "agent-sp-secret"},
		SkipPreflight: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	so := server.Options{Agent: a, AgentName: assistant.Name, Dev: true, Preparers: []server.Preparer{ws},
		System: ws.System.Client(), User: ws.User.Client()}
	for _, o := range opts {
		o(&so)
	}
	host, err := server.New(so)
	if err != nil {
		t.Fatal(err)
	}
	// Serve would provision and close; serving Handler directly, we do.
	if err := host.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(host.Handler())
	t.Cleanup(func() { srv.Close(); host.Close() })
	return srv, dev
}

// Package testws builds workspace clients for the tools' tests: no
// environment, no config file and no host-metadata request, so tests stay
// hermetic.
package testws

import (
	"context"
	"sync"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devworkspace"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
)

type noLoader struct{}

func (noLoader) Name() string                   { return "testws" }
func (noLoader) Configure(*config.Config) error { return nil }

// PAT returns a client for host authenticating with a static token.
func PAT(t testing.TB, host, token string) *databricks.WorkspaceClient {
	t.Helper()
	return PATWithRate(t, host, token, 10000)
}

// PATWithRate is PAT with the SDK's per-client rate limit set to rate
// calls per second.
func PATWithRate(t testing.TB, host, token string, rate int) *databricks.WorkspaceClient {
	t.Helper()
	w, err := databricks.NewWorkspaceClient(&databricks.Config{
		Host: host, Token: token, AuthType: "pat", Credentials: config.PatCredentials{},
		Loaders:              []config.Loader{noLoader{}},
		HostMetadataResolver: func(context.Context, string) (*config.HostMetadata, error) { return nil, nil },
		RetryTimeoutSeconds:  2,
		RateLimitPerSecond:   rate,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var (
	devOnce sync.Once
	devWS   *devworkspace.Workspace
	devErr  error
)

// Dev returns the package's shared dev workspace, started on first use and
// kept for the life of the test binary.
func Dev(t testing.TB) *devworkspace.Workspace {
	t.Helper()
	devOnce.Do(func() { devWS, devErr = devworkspace.Start(context.Background(), devworkspace.Options{}) })
	if devErr != nil {
		t.Fatal(devErr)
	}
	return devWS
}

// Dev users and their tokens.
var Tokens = map[string]string{"alice": "dev-alice-token", "bob": "dev-bob-token", "carol": "dev-carol-token"}

// User returns the runtime's user client for host limited to scopes (the
// credential comes from the ctx, see As).
func User(t testing.TB, host string, scopes ...string) *databricks.WorkspaceClient {
	t.Helper()
	u, err := credentials.NewUser(credentials.UserOptions{Host: host, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return u.Client()
}

// As returns a ctx for a request by the dev user name: its token for the
// user client and an agent.Env naming the principal.
func As(name string) context.Context {
	env := &agent.Env{Caller: agent.Caller{Identity: agent.Identity{PrincipalID: name, UserName: name + "@example.com"}, Authenticated: true}}
	return credentials.WithCaller(agent.NewContext(context.Background(), env), Tokens[name])
}

// System returns the runtime's system client for the dev workspace's
// service principal.
func System(t testing.TB, host string) *databricks.WorkspaceClient {
	t.Helper()
	s, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: host, ClientID: "agent-sp", ClientSecret: "agent-sp-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Client()
}

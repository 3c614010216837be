package discover_test

import (
	"context"
	"io"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/discover"
)

type streamOnly struct{}

func (streamOnly) PredictStream(context.Context, *agent.Request, agent.Emit) error { return nil }
func (streamOnly) Manifest() agent.Manifest {
	return agent.Manifest{UserAPIScopes: []string{"sql"}}
}
func (streamOnly) Close() error { return nil }

// wrapper wraps an Agent, as middleware would.
type wrapper struct{ agent.Agent }

func (w wrapper) Unwrap() agent.Agent { return w.Agent }

// loop is a wrapper that (wrongly) returns itself.
type loop struct{}

func (loop) Predict(context.Context, *agent.Request) (*agent.Response, error) { return nil, nil }
func (l loop) Unwrap() agent.Agent                                            { return l }

func TestAsLooksThroughWrappers(t *testing.T) {
	a := wrapper{agent.FromStream(streamOnly{})}
	if got := len(discover.Chain(a)); got != 3 {
		t.Errorf("chain of %d, want wrapper, FromStream's adapter and the agent", got)
	}
	if m, ok := discover.As[agent.Manifester](a); !ok || m.Manifest().UserAPIScopes[0] != "sql" {
		t.Error("Manifester behind two wrappers not found")
	}
	if _, ok := discover.As[io.Closer](a); !ok {
		t.Error("io.Closer behind two wrappers not found")
	}
	if _, ok := discover.As[agent.Provisioner](a); ok {
		t.Error("found a Provisioner nobody implements")
	}
	if got := len(discover.Chain(loop{})); got == 0 || got > 16 {
		t.Errorf("a self-wrapping agent gave a chain of %d", got)
	}
	if _, ok := discover.As[io.Closer](wrapper{}); ok {
		t.Error("a wrapper of nothing implements io.Closer")
	}
}

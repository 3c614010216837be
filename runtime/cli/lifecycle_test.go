package cli

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/agentrt/agentrt/agent"
)

// probe is an agent that, at start-up, calls the workspace as the service
// principal with the client Provision is given, and records its lifecycle.
type probe struct {
	mu        sync.Mutex
	principal string // who the system client called as
	provErr   error  // of that call
	closes    int
}

func (p *probe) Predict(context.Context, *agent.Request) (*agent.Response, error) {
	return &agent.Response{Output: []agent.Item{agent.TextItem("m", "ok")}}, nil
}

func (p *probe) Provision(ctx context.Context, env *agent.Env) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if env.System == nil || env.User == nil {
		p.provErr = errors.New("no clients")
		return p.provErr
	}
	me, err := env.System.CurrentUser.Me(ctx, iam.MeRequest{})
	if err == nil {
		p.principal = me.UserName
	}
	p.provErr = err
	return err
}

func (p *probe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes++
	return nil
}

type failing struct{ closed chan struct{} }

func (failing) Predict(context.Context, *agent.Request) (*agent.Response, error) { return nil, nil }
func (failing) Provision(context.Context, *agent.Env) error {
	return errors.New("the model endpoint is not configured")
}
func (f failing) Close() error { close(f.closed); return nil }

var (
	probed     = &probe{}
	failClosed = make(chan struct{})
)

func init() {
	agent.Register("lifecycle-probe", func() (agent.Agent, error) { return probed, nil })
	agent.Register("lifecycle-fail", func() (agent.Agent, error) { return failing{failClosed}, nil })
}

// TestServeProvisionsWithWorkingClients: serve --dev hands Provision the
// workspace's clients, open and working, before it listens, and closes the
// agent once when it stops.
func TestServeProvisionsWithWorkingClients(t *testing.T) {
	t.Cleanup(func() { // after serveDev's cleanup has stopped the server
		probed.mu.Lock()
		defer probed.mu.Unlock()
		if probed.closes != 1 {
			t.Errorf("agent closed %d times, want once", probed.closes)
		}
	})
	serveDev(t, "--agent", "lifecycle-probe")
	probed.mu.Lock()
	defer probed.mu.Unlock()
	if probed.provErr != nil || probed.principal == "" {
		t.Fatalf("Provision's system client: principal %q, %v", probed.principal, probed.provErr)
	}
	if probed.closes != 0 {
		t.Error("closed while serving")
	}
}

// TestServeProvisionErrorFailsStartup: an agent that cannot provision stops
// serve with an error naming it, and is closed.
func TestServeProvisionErrorFailsStartup(t *testing.T) {
	err := Run(context.Background(), []string{"--agent", "lifecycle-fail", "--addr", "127.0.0.1:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `agent "lifecycle-fail"`) || !strings.Contains(err.Error(), "model endpoint is not configured") {
		t.Fatalf("Run = %v, want the agent's Provision error naming it", err)
	}
	select {
	case <-failClosed:
	default:
		t.Error("the agent was not closed after its failed start-up")
	}
}

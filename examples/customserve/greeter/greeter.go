// Package greeter is the agent examples/customserve compiles into its own
// serve binary. It registers itself as "greeter" from init, which is all an
// agent package does to become selectable with --agent; it needs no
// workspace.
package greeter

import (
	"context"
	"strings"

	"github.com/agentrt/agentrt/agent"
)

// Name is the name the agent registers under.
const Name = "greeter"

func init() {
	agent.Register(Name, func() (agent.Agent, error) { return Agent{}, nil })
}

// Agent greets the caller by name when the host knows it.
type Agent struct{}

// Greeting is the answer to req for a caller called name ("" if unknown).
func Greeting(name string, req *agent.Request) string {
	if name == "" {
		name = "there"
	}
	g := "Hello, " + name + "!"
	if text := strings.TrimSpace(req.LastUserText()); text != "" {
		g += " You said: " + text
	}
	return g
}

// Predict implements agent.Agent.
func (Agent) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	c := agent.FromContext(ctx).Caller
	name := c.DisplayName
	if name == "" {
		name = c.UserName
	}
	return &agent.Response{Output: []agent.Item{agent.TextItem(agent.NewID("msg"), Greeting(name, req))}}, nil
}

// Package echo is the smallest agentrt agent: it answers "echo: <last user
// text>" and streams the answer word by word. It registers itself as "echo",
// so `serve --agent echo` runs it; it declares no resources and needs no
// workspace.
package echo

import (
	"context"
	"strings"

	"github.com/agentrt/agentrt/agent"
)

func init() {
	agent.Register("echo", func() (agent.Agent, error) { return Agent{}, nil })
}

// Agent echoes the caller's last message.
type Agent struct{}

// Answer is what the agent says to req.
func Answer(req *agent.Request) string { return "echo: " + req.LastUserText() }

// Predict answers in one piece.
func (Agent) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	return &agent.Response{Output: []agent.Item{agent.TextItem(agent.NewID("msg"), Answer(req))}}, nil
}

// PredictStream sends the answer one word (with its trailing space) per
// delta, then the complete message.
func (Agent) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	text := Answer(req)
	id := agent.NewID("msg")
	for _, w := range strings.SplitAfter(text, " ") {
		if w == "" {
			continue
		}
		if err := emit(agent.TextDelta(w, id)); err != nil {
			return err
		}
	}
	return emit(agent.ItemDone(agent.TextItem(id, text)))
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/discover"
	"github.com/agentrt/agentrt/internal/httperr"
)

// accepted reads what the agent says it acts on (agent.Accepter), looking
// through wrappers.
func accepted(a agent.Agent) map[string]bool {
	acc, ok := discover.As[agent.Accepter](a)
	if !ok {
		return nil
	}
	m := make(map[string]bool)
	for _, f := range acc.Accepts() {
		m[f] = true
	}
	return m
}

// unhonoured refuses, with a 400 naming the member, a request that asks the
// agent for client tools, a tool_choice or structured output it does not
// act on. A silently dropped member is worse than a refusal: the client
// goes on as if it had been honoured. (The conversation state members are
// the store's: checkState, state.go.)
func (s *Server) unhonoured(req *agent.Request) *httperr.Error {
	// "auto" and "none" ask nothing of an agent that runs no client tools:
	// it never returns a call for the client to run.
	choice := string(bytes.TrimSpace(req.ToolChoice))
	none := choice == `"none"`
	if choice != "" && choice != "null" && choice != `"auto"` && !none && !s.accepts["tool_choice"] {
		return httperr.BadRequest("tool_choice", fmt.Sprintf("tool_choice: agent %s chooses its own tools; send auto or none, or leave it out", s.name))
	}
	if len(req.Tools) > 0 && !none && !s.accepts["tools"] {
		return httperr.BadRequest("tools", fmt.Sprintf("tools: agent %s does not run client tools", s.name))
	}
	if f := formatType(req.Text); f != "" && f != "text" && !s.accepts["text.format"] {
		return httperr.BadRequest("text.format", fmt.Sprintf("text.format: agent %s does not produce %s output", s.name, f))
	}
	return nil
}

// formatType is text.format.type, or "" when there is none.
func formatType(text json.RawMessage) string {
	if len(text) == 0 {
		return ""
	}
	var t struct {
		Format struct {
			Type string `json:"type"`
		} `json:"format"`
	}
	if json.Unmarshal(text, &t) != nil {
		return "?"
	}
	return t.Format.Type
}

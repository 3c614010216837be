// Package agent is the contract between an agent author and the agentrt host:
// the ResponsesAgent wire types, the Agent interfaces, the manifest of declared
// resources and auth policy, and the per-request environment (caller, clients,
// prepared tools) the host hands to the agent before it runs.
//
// Streaming uses an emit callback rather than an iterator: an author writes
// straight-line code that calls emit as output becomes ready, errors and
// back-pressure flow through the return value, and no goroutine or yield
// bookkeeping is needed to stream from inside nested helpers (tool loops, LLM
// streams). The host turns each emitted event into an SSE frame as it arrives.
package agent

import (
	"context"
	"encoding/json"
)

// Agent answers a request in one piece. Every agent implements it; an agent
// that can only stream gets it from FromStream.
type Agent interface {
	Predict(ctx context.Context, req *Request) (*Response, error)
}

// StreamAgent is implemented by agents that produce output incrementally.
// PredictStream calls emit for each event in order and returns when done; an
// error from emit (the client went away) must end the call. The host adds the
// OpenAI envelope (response.created … response.completed, sequence numbers),
// so an agent emits only its own deltas and items.
type StreamAgent interface {
	PredictStream(ctx context.Context, req *Request, emit Emit) error
}

// Emit delivers one stream event to the host.
type Emit func(ev *StreamEvent) error

// Tool is a prepared, callable tool as the agent sees it: already bound to the
// client it must use for this request.
type Tool interface {
	Definition() ToolDefinition
	// Call runs the tool with JSON-encoded arguments and returns its textual
	// result. A returned error is reported to the model as the tool's output;
	// it does not fail the request.
	Call(ctx context.Context, arguments string) (string, error)
}

// ToolDefinition is what a model needs to choose and call a tool.
type ToolDefinition struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"` // JSON Schema object
}

// SkippedTool records a tool that was not offered for this request, and why.
type SkippedTool struct {
	Tool     string `json:"tool"`
	Resource string `json:"resource,omitempty"`
	Binding  string `json:"binding,omitempty"` // "user" or "system"
	Reason   string `json:"reason"`
}

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
//
// The host calls Predict for many requests at once, from many goroutines,
// so an implementation must be safe for concurrent use. ctx carries the
// request's Env (FromContext) and the caller's credential; it is canceled
// when the client goes away or the request times out, and Predict should
// then return promptly. req is the host's: Predict may read it but must not
// modify it or keep it after returning.
//
// The returned Response belongs to the host from then on: it fills the
// envelope (id, model, status, echoed settings), completes the output items
// (ids, status, role) and may add custom_outputs, so Predict must return a
// Response it does not touch again. A nil error with a nil Response is a
// failure.
//
// An error fails the request. The client gets 504 when the request timed
// out, 503 with Retry-After when the error wraps one with a
// RetryAfter() time.Duration method (a dependency is temporarily
// unavailable), the status of a host error it wraps (a tool's refusal, for
// example), and otherwise 500 with a generic message naming the request id.
// The error's text goes to the log, never to the client. A panic is
// recovered and answered as a 500.
type Agent interface {
	Predict(ctx context.Context, req *Request) (*Response, error)
}

// StreamAgent is implemented by agents that produce output incrementally.
//
// PredictStream is called like Predict (concurrently for many requests,
// with the same ctx and req rules) and calls emit for each event in order,
// from one goroutine at a time, and never after it returns. The host adds
// the OpenAI envelope (response.created … response.completed, sequence
// numbers, output indexes), so an agent emits only its own deltas and items;
// the items of its output_item.done events, and the text of deltas, make up
// the response (see FromStream). A nil return completes the stream; an
// error after the first event becomes an error event in the stream (the
// status is already 200), before it the same answer as Predict's error.
type StreamAgent interface {
	PredictStream(ctx context.Context, req *Request, emit Emit) error
}

// Emit delivers one stream event to the host, which writes it to the client
// before returning. It must not be called concurrently nor after
// PredictStream has returned, and the event must not be modified after.
// An error means the stream is over (the client went away, the request
// timed out, or the event was malformed): stop and return it (or any
// error); later calls keep failing.
type Emit func(ev *StreamEvent) error

// Tool is a prepared, callable tool as the agent sees it: already bound to
// the client it must use for this request (Env.Tools).
//
// A model may ask for several tools at once, so Call must be safe for
// concurrent use; Definition must be cheap and always return the same
// definition.
type Tool interface {
	Definition() ToolDefinition
	// Call runs the tool with JSON-encoded arguments and returns its
	// textual result. ctx is the request's (or derived from it). A returned
	// error is reported to the model as the tool's output; it does not
	// fail the request.
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

package tools

import (
	"context"
	"encoding/json"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
)

// Func is a tool implemented by a Go function.
type Func struct {
	Def agent.ToolDefinition
	Fn  func(ctx context.Context, arguments string) (string, error)
}

// Definition implements agent.Tool.
func (f Func) Definition() agent.ToolDefinition { return f.Def }

// Call implements agent.Tool.
func (f Func) Call(ctx context.Context, arguments string) (string, error) {
	return f.Fn(ctx, arguments)
}

// ProviderFunc adapts a function (and the requirements it declares) to a
// Provider, for tools built directly on a workspace client.
type ProviderFunc struct {
	ToolName string
	Reqs     Requirements
	Fn       func(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error)
}

// Name implements Namer.
func (p ProviderFunc) Name() string { return p.ToolName }

// Requirements implements Provider.
func (p ProviderFunc) Requirements() Requirements { return p.Reqs }

// Prepare implements Provider.
func (p ProviderFunc) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	return p.Fn(ctx, w)
}

type conversationKey struct{}

// WithConversationID returns a ctx that tells tools which conversation the
// request belongs to (the request's context.conversation_id), so stateful
// tools such as Genie can continue their own conversation across turns.
func WithConversationID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, conversationKey{}, id)
}

// ConversationID returns the id set by WithConversationID, or "".
func ConversationID(ctx context.Context) string {
	id, _ := ctx.Value(conversationKey{}).(string)
	return id
}

// ObjectSchema builds a JSON Schema object with string properties, the
// common shape of a tool's parameters. required lists mandatory properties.
func ObjectSchema(props map[string]string, required ...string) json.RawMessage {
	p := map[string]any{}
	for name, desc := range props {
		p[name] = map[string]any{"type": "string", "description": desc}
	}
	if required == nil {
		required = []string{}
	}
	b, _ := json.Marshal(map[string]any{"type": "object", "properties": p, "required": required})
	return b
}

package tools

import (
	"context"
	"encoding/json"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
)

// NewTool returns a tool that call implements. call receives the model's
// JSON-encoded arguments; it may be called concurrently. NewTool panics if
// call is nil.
func NewTool(def agent.ToolDefinition, call func(ctx context.Context, arguments string) (string, error)) agent.Tool {
	if call == nil {
		panic("tools: NewTool with a nil function")
	}
	return &funcTool{def: def, call: call}
}

type funcTool struct {
	def  agent.ToolDefinition
	call func(ctx context.Context, arguments string) (string, error)
}

func (t *funcTool) Definition() agent.ToolDefinition { return t.def }

func (t *funcTool) Call(ctx context.Context, arguments string) (string, error) {
	return t.call(ctx, arguments)
}

// NewProvider returns a Provider named name that declares req and whose
// Prepare is prepare, for tools built directly on a workspace client.
// prepare follows Provider's contract: it binds its tools to w, checks with
// one cheap call that w's identity may use them, and is safe for concurrent
// use. NewProvider panics if prepare is nil.
func NewProvider(name string, req Requirements, prepare func(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error)) Provider {
	if prepare == nil {
		panic("tools: NewProvider with a nil function")
	}
	return &funcProvider{name: name, req: req, prepare: prepare}
}

type funcProvider struct {
	name    string
	req     Requirements
	prepare func(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error)
}

func (p *funcProvider) Name() string               { return p.name }
func (p *funcProvider) Requirements() Requirements { return p.req }

func (p *funcProvider) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	return p.prepare(ctx, w)
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

// Package dialect presents an agent's output in the dialect its caller
// speaks. An agent writes one output shape; the host rewrites it per route.
//
// The two dialects differ in how a tool call the agent ran itself appears:
//
//   - MLflow (Databricks clients, /invocations): a function_call item
//     followed by its function_call_output item, as MLflow's ResponsesAgent
//     emits them.
//   - OpenAI (/v1/responses): OpenAI's output union has no
//     function_call_output item, and OpenAI-typed clients (the AI SDK among
//     them) take every function_call in the output for a call the client
//     must run. A call the agent ran is therefore one mcp_call item, which
//     those clients treat as executed by the provider, with its arguments,
//     output and error. A function_call without an output in the same
//     response is left as it is: the agent asks the client to run it.
//
// A call counts as run by the agent when its function_call_output, matched
// by call_id, is in the same response. No declaration is needed.
package dialect

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// Dialect is a wire dialect of the Responses protocol.
type Dialect uint8

const (
	// MLflow keeps function_call + function_call_output items.
	MLflow Dialect = iota
	// OpenAI folds each executed call into one mcp_call item.
	OpenAI
)

// String returns the dialect's name as Parse accepts it.
func (d Dialect) String() string {
	if d == OpenAI {
		return "openai"
	}
	return "mlflow"
}

// Parse reads a dialect name ("openai" or "mlflow", any case).
func Parse(s string) (Dialect, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "openai":
		return OpenAI, nil
	case "mlflow", "databricks":
		return MLflow, nil
	}
	return MLflow, fmt.Errorf("unknown dialect %q: want openai or mlflow", s)
}

// TypeMCPCall is the OpenAI output item for a tool call the server ran.
const TypeMCPCall = "mcp_call"

// Output rewrites a complete output list for d. The result may share items
// with out but never modifies them.
func Output(d Dialect, label string, out []agent.Item) []agent.Item {
	if d != OpenAI {
		return out
	}
	calls := make(map[string]bool)
	for i := range out {
		if out[i].Type == agent.TypeFunctionCall && out[i].CallID != "" {
			calls[out[i].CallID] = true
		}
	}
	results := make(map[string]*agent.Item)
	for i := range out {
		if it := &out[i]; it.Type == agent.TypeFunctionCallOutput && calls[it.CallID] {
			results[it.CallID] = it
		}
	}
	if len(results) == 0 {
		return out
	}
	rewritten := make([]agent.Item, 0, len(out)-len(results))
	for i := range out {
		it := &out[i]
		res, ran := results[it.CallID]
		switch {
		case ran && it.Type == agent.TypeFunctionCall:
			rewritten = append(rewritten, MCPCall(label, it, res))
		case ran && it == res:
			// folded into its call
		default:
			rewritten = append(rewritten, *it)
		}
	}
	return rewritten
}

// MCPCall is the mcp_call item for call, which the agent ran with result.
// A result whose status is incomplete or failed is reported as the call's
// error, its text as the message.
func MCPCall(label string, call, result *agent.Item) agent.Item {
	id := call.ID
	if id == "" {
		id = call.CallID
	}
	it := agent.Item{
		Type:        TypeMCPCall,
		ID:          id,
		Status:      wireproto.StatusCompleted,
		Name:        call.Name,
		Arguments:   call.Arguments,
		ServerLabel: label,
		Extra:       map[string]json.RawMessage{},
	}
	text := result.Output.String()
	if result.Status == wireproto.StatusIncomplete || result.Status == wireproto.StatusFailed {
		it.Status = wireproto.StatusFailed
		msg, _ := json.Marshal(text)
		it.Extra["output"] = json.RawMessage("null")
		// OpenAI's MCP execution error carries MCP content; message is
		// what the AI SDK and most UIs show.
		it.Extra["error"] = json.RawMessage(`{"type":"mcp_tool_execution_error","content":[{"type":"text","text":` +
			string(msg) + `}],"message":` + string(msg) + `}`)
	} else {
		it.Output = agent.TextContent(text) // always the string form
		it.Extra["error"] = json.RawMessage("null")
	}
	if it.Arguments == "" {
		it.Extra["arguments"] = json.RawMessage(`""`) // required by the union
	}
	return it
}

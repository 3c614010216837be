package loop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	openai "github.com/sashabaranov/go-openai"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httperr"
)

// Accepts implements agent.Accepter: the loop offers the client's function
// tools to the model and returns the calls to them, honours tool_choice
// on the first model call, and asks the model for text.format's structured
// output, checking the final answer against its schema.
func (l *Loop) Accepts() []string { return []string{"tools", "tool_choice", "text.format"} }

// clientAsks is what the request asks of the loop beyond its input.
type clientAsks struct {
	tools  []openai.Tool   // the client's function tools
	names  map[string]bool // their names: calls to them are the client's to run
	none   bool            // tool_choice "none": offer no tools at all
	choice any             // tool_choice for the first model call; nil: auto
	format *openai.ChatCompletionResponseFormat
	schema *jsonschema.Schema // json_schema's, compiled; nil without one
}

// readAsks reads tools, tool_choice and text.format, refusing with a 400
// what the loop cannot honour (hosted tool types, a tool named like one of
// the agent's, a malformed schema).
func readAsks(req *agent.Request, own map[string]agent.Tool) (clientAsks, error) {
	var a clientAsks
	for i, t := range req.Tools {
		param := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return a, httperr.BadRequest(param+".type", fmt.Sprintf("%s: only function tools can be offered to this agent, not %q", param, t.Type))
		}
		if _, clash := own[t.Name]; clash || a.names[t.Name] {
			return a, httperr.BadRequest(param+".name", fmt.Sprintf("%s: the name %q is taken by another tool", param, t.Name))
		}
		if a.names == nil {
			a.names = make(map[string]bool, len(req.Tools))
		}
		a.names[t.Name] = true
		params := any(t.Parameters)
		if len(t.Parameters) == 0 {
			params = map[string]any{"type": "object", "properties": map[string]any{}}
		}
		def := &openai.FunctionDefinition{Name: t.Name, Description: t.Description, Parameters: params}
		if t.Strict != nil {
			def.Strict = *t.Strict
		}
		a.tools = append(a.tools, openai.Tool{Type: openai.ToolTypeFunction, Function: def})
	}
	if err := a.readChoice(req.ToolChoice); err != nil {
		return a, err
	}
	return a, a.readFormat(req.Text)
}

func (a *clientAsks) readChoice(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto":
		case "none":
			a.none = true
		case "required":
			a.choice = "required"
		default:
			return httperr.BadRequest("tool_choice", fmt.Sprintf("tool_choice: want auto, none, required or a function, not %q", s))
		}
		return nil
	}
	var named struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &named); err != nil || named.Type != "function" || named.Name == "" {
		return httperr.BadRequest("tool_choice", "tool_choice: this agent accepts auto, none, required or {\"type\":\"function\",\"name\":…}")
	}
	a.choice = openai.ToolChoice{Type: openai.ToolTypeFunction, Function: openai.ToolFunction{Name: named.Name}}
	return nil
}

func (a *clientAsks) readFormat(text json.RawMessage) error {
	if len(text) == 0 || string(text) == "null" {
		return nil
	}
	var t struct {
		Format *struct {
			Type   string          `json:"type"`
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict *bool           `json:"strict"`
		} `json:"format"`
	}
	if err := json.Unmarshal(text, &t); err != nil {
		return httperr.BadRequest("text", "text: "+err.Error())
	}
	if t.Format == nil {
		return nil
	}
	switch t.Format.Type {
	case "", "text":
		return nil
	case "json_object":
		a.format = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}
		return nil
	case "json_schema":
	default:
		return httperr.BadRequest("text.format.type", fmt.Sprintf("text.format.type: want text, json_object or json_schema, not %q", t.Format.Type))
	}
	if t.Format.Name == "" {
		return httperr.BadRequest("text.format.name", "text.format.name: required for json_schema")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(t.Format.Schema))
	if err != nil {
		return httperr.BadRequest("text.format.schema", "text.format.schema: not JSON: "+err.Error())
	}
	c := jsonschema.NewCompiler()
	url := "mem:///" + t.Format.Name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return httperr.BadRequest("text.format.schema", "text.format.schema: "+err.Error())
	}
	if a.schema, err = c.Compile(url); err != nil {
		return httperr.BadRequest("text.format.schema", "text.format.schema: "+err.Error())
	}
	strict := t.Format.Strict != nil && *t.Format.Strict
	a.format = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
		JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: t.Format.Name, Schema: t.Format.Schema, Strict: strict}}
	return nil
}

// check reports whether the final answer is what text.format asked for.
// A model that ignored the format fails the request (502): a client that
// asked for structured output would otherwise parse prose.
func (a *clientAsks) check(text string) error {
	if a.format == nil {
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err == nil && a.schema != nil {
		err = a.schema.Validate(doc)
	} else if err == nil {
		if _, ok := doc.(map[string]any); !ok {
			err = fmt.Errorf("not a JSON object")
		}
	}
	if err != nil {
		return httperr.New(502, "the model's answer does not match text.format: "+firstLine(err.Error()))
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

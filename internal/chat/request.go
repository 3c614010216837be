// Package chat is the codec of OpenAI's Chat Completions API over a
// Responses agent: it turns a chat completion request into the agent.Request
// the agent runs with, and the agent's answer (an agent.Response, or its
// stream of agent.StreamEvents) into a chat.completion object or
// chat.completion.chunk SSE frames ending with data: [DONE]. It does no I/O;
// internal/httpapi serves it.
//
// Only the agent's text reaches the client: the tool calls the agent ran
// itself, their outputs and its reasoning are its own business, and a chat
// client would read a tool_calls entry as "client, run this".
package chat

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// Request is a decoded chat completion request.
type Request struct {
	// Model is the request's model, "" when it sent none.
	Model string
	// Stream asks for chat.completion.chunk frames.
	Stream bool
	// IncludeUsage (stream_options.include_usage) asks for a last chunk
	// with empty choices and the usage.
	IncludeUsage bool
	// Agent is the Responses request the agent runs with.
	Agent *agent.Request
}

// DecodeRequest parses a chat completion request body and maps it to the
// agent's request: messages become input items (system and developer
// messages stay messages of that role, in place; assistant tool_calls become
// function_call items and tool messages function_call_output items), and the
// generation settings with a Responses equivalent are carried over. Members
// it does not know (stop, seed, the penalties, …) are kept in the agent
// request's Extra under their chat names, as the Responses route keeps the
// members it does not know.
//
// Fields that would change what the client gets back and that the agent
// cannot honour (n > 1, logprobs, client tools, tool_choice that forces a
// tool, response_format other than text, audio) are refused: every error is
// an *wire.FieldError whose Field names the member.
func DecodeRequest(data []byte) (*Request, error) {
	if err := checkJSON(data); err != nil {
		return nil, err
	}
	r := &Request{Agent: &agent.Request{}}
	a := r.Agent
	sawMessages := false
	err := forEachField(data, func(k string, raw []byte) error {
		switch k {
		case "messages":
			sawMessages = true
			return r.decodeMessages(raw)
		case "model":
			return str(raw, &r.Model)
		case "stream":
			return boolean(raw, &r.Stream)
		case "stream_options":
			if isNull(raw) {
				return nil
			}
			return forEachField(raw, func(k string, raw []byte) error {
				switch k {
				case "include_usage":
					return boolean(raw, &r.IncludeUsage)
				case "include_obfuscation": // never added: nothing to switch off
					var b bool
					return boolean(raw, &b)
				}
				return nil
			})
		case "temperature":
			return optFloat(raw, &a.Temperature)
		case "top_p":
			return optFloat(raw, &a.TopP)
		case "max_completion_tokens":
			return optInt(raw, &a.MaxOutputTokens)
		case "max_tokens": // deprecated spelling; max_completion_tokens wins
			if a.MaxOutputTokens != nil {
				var v *int
				return optInt(raw, &v)
			}
			return optInt(raw, &a.MaxOutputTokens)
		case "user":
			return str(raw, &a.User)
		case "store":
			return optBool(raw, &a.Store)
		case "parallel_tool_calls":
			return optBool(raw, &a.ParallelToolCalls)
		case "metadata":
			if isNull(raw) {
				return nil
			}
			a.Metadata = make(map[string]string)
			return forEachField(raw, func(k string, raw []byte) error {
				var v string
				if raw[0] != '"' {
					return msgErr("expected string, got " + wireproto.Kind(raw))
				}
				err := str(raw, &v)
				a.Metadata[k] = v
				return err
			})
		case "reasoning_effort":
			return setting(raw, &a.Reasoning, "effort")
		case "verbosity":
			return setting(raw, &a.Text, "verbosity")
		case "n":
			var n *int
			if err := optInt(raw, &n); err != nil {
				return err
			}
			if n != nil && *n != 1 {
				return msgErr("only n=1 is supported: the agent gives one answer")
			}
			return nil
		case "logprobs":
			var b bool
			if err := boolean(raw, &b); err != nil {
				return err
			}
			if b {
				return msgErr("log probabilities are not available from an agent")
			}
			return nil
		case "top_logprobs":
			return refuseUnlessNull(raw, "log probabilities are not available from an agent")
		case "tools":
			if isNull(raw) || isEmptyArray(raw) {
				return nil
			}
			return msgErr("client tools are not supported by this agent; the agent runs its own tools")
		case "tool_choice":
			switch string(raw) {
			case "null", `"none"`, `"auto"`:
				return nil
			}
			return msgErr("only \"auto\" and \"none\" are supported: the agent takes no client tools")
		case "functions", "function_call":
			return refuseUnlessNull(raw, "client functions are not supported by this agent")
		case "response_format":
			if isNull(raw) {
				return nil
			}
			var typ string
			if err := forEachField(raw, func(k string, raw []byte) error {
				if k == "type" {
					return str(raw, &typ)
				}
				return nil
			}); err != nil {
				return err
			}
			if typ != "text" {
				return msgErr("only {\"type\":\"text\"} is supported: this agent does not produce structured output")
			}
			return nil
		case "modalities":
			if isNull(raw) {
				return nil
			}
			return forEachElem(raw, func(_ int, raw []byte) error {
				var m string
				if err := str(raw, &m); err != nil {
					return err
				}
				if m != "text" {
					return msgErr("only the text modality is supported")
				}
				return nil
			})
		case "audio":
			return refuseUnlessNull(raw, "audio output is not supported")
		case "web_search_options":
			return refuseUnlessNull(raw, "web search is not offered to chat clients; the agent runs its own tools")
		}
		if a.Extra == nil {
			a.Extra = make(map[string]json.RawMessage)
		}
		a.Extra[k] = append(json.RawMessage(nil), raw...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !sawMessages {
		return nil, &wire.FieldError{Field: "messages", Msg: "required"}
	}
	a.Model, a.Stream = r.Model, r.Stream
	return r, nil
}

func isEmptyArray(raw []byte) bool {
	i := skipWS(raw, 0)
	return i < len(raw) && raw[i] == '[' && skipWS(raw, i+1) < len(raw) && raw[skipWS(raw, i+1)] == ']'
}

func refuseUnlessNull(raw []byte, msg string) error {
	if isNull(raw) {
		return nil
	}
	return msgErr(msg)
}

// setting stores a string member as {"key": value} (reasoning_effort →
// reasoning.effort, verbosity → text.verbosity).
func setting(raw []byte, dst *json.RawMessage, key string) error {
	var v string
	if err := str(raw, &v); err != nil || v == "" {
		return err
	}
	b := append([]byte(`{"`), key...)
	b = append(b, `":`...)
	*dst = append(wireproto.AppendString(b, v), '}')
	return nil
}

// message is the members of one chat message.
type message struct {
	role       string
	content    []byte // raw, nil when absent or null
	toolCallID string
	refusal    string
	toolCalls  []byte
	extra      map[string]json.RawMessage
}

func (r *Request) decodeMessages(raw []byte) error {
	if isNull(raw) {
		return msgErr("required")
	}
	a := r.Agent
	var calls []string // tool call ids of assistant messages so far
	err := forEachElem(raw, func(_ int, raw []byte) error {
		var m message
		if err := forEachField(raw, func(k string, raw []byte) error {
			switch k {
			case "role":
				return str(raw, &m.role)
			case "content":
				if !isNull(raw) {
					m.content = raw
				}
				return nil
			case "tool_call_id":
				return str(raw, &m.toolCallID)
			case "refusal":
				return str(raw, &m.refusal)
			case "tool_calls":
				if !isNull(raw) {
					m.toolCalls = raw
				}
				return nil
			case "function_call":
				return refuseUnlessNull(raw, "deprecated function_call is not supported; send tool_calls")
			case "audio":
				return refuseUnlessNull(raw, "audio is not supported")
			}
			// name, and whatever else a client adds, stays with the item.
			if m.extra == nil {
				m.extra = make(map[string]json.RawMessage)
			}
			m.extra[k] = append(json.RawMessage(nil), raw...)
			return nil
		}); err != nil {
			return err
		}
		return appendMessage(a, &m, &calls)
	})
	if err != nil {
		return err // forEachField prefixes "messages"
	}
	if len(a.Input) == 0 {
		return msgErr("must hold at least one message")
	}
	return nil
}

// appendMessage turns one chat message into input items. calls are the
// ids of the tool calls of earlier assistant messages: a tool message must
// answer one of them, as OpenAI requires.
func appendMessage(a *agent.Request, m *message, calls *[]string) error {
	switch m.role {
	case "system", "developer", "user":
		if m.content == nil {
			return &wire.FieldError{Field: "content", Msg: "required"}
		}
		c, err := content(m.content, m.role)
		if err != nil {
			return fieldErr("content", err)
		}
		a.Input = append(a.Input, agent.Item{Type: agent.TypeMessage, Role: m.role, Content: c, Extra: m.extra})
	case "assistant":
		if m.content == nil && m.toolCalls == nil && m.refusal == "" {
			return &wire.FieldError{Field: "content", Msg: "required unless tool_calls or refusal is set"}
		}
		var c agent.Content
		if m.content != nil {
			var err error
			if c, err = content(m.content, m.role); err != nil {
				return fieldErr("content", err)
			}
		}
		if m.refusal != "" {
			if !c.IsList() {
				if c.Text != "" {
					c = agent.PartsContent(agent.Part{Type: wireproto.PartOutputText, Text: c.Text})
				} else {
					c = agent.PartsContent()
				}
			}
			c.Parts = append(c.Parts, agent.Part{Type: wireproto.PartRefusal, Refusal: m.refusal})
		}
		if c.String() != "" || len(c.Parts) > 0 || (m.toolCalls == nil && !c.IsZero()) {
			a.Input = append(a.Input, agent.Item{Type: agent.TypeMessage, Role: "assistant", Content: c, Extra: m.extra})
		}
		if m.toolCalls != nil {
			if err := forEachElem(m.toolCalls, func(_ int, raw []byte) error {
				it, err := toolCall(raw)
				if err != nil {
					return err
				}
				*calls = append(*calls, it.CallID)
				a.Input = append(a.Input, it)
				return nil
			}); err != nil {
				return fieldErr("tool_calls", err)
			}
		}
	case "tool":
		if m.toolCallID == "" {
			return &wire.FieldError{Field: "tool_call_id", Msg: "required"}
		}
		if !slices.Contains(*calls, m.toolCallID) {
			return &wire.FieldError{Field: "tool_call_id", Msg: "answers no tool call of an earlier assistant message"}
		}
		if m.content == nil {
			return &wire.FieldError{Field: "content", Msg: "required"}
		}
		c, err := content(m.content, m.role)
		if err != nil {
			return fieldErr("content", err)
		}
		a.Input = append(a.Input, agent.Item{Type: agent.TypeFunctionCallOutput, CallID: m.toolCallID,
			Output: agent.TextContent(c.String()), Extra: m.extra})
	case "function":
		return &wire.FieldError{Field: "role", Msg: "deprecated function messages are not supported; send tool messages"}
	case "":
		return &wire.FieldError{Field: "role", Msg: "required"}
	default:
		return &wire.FieldError{Field: "role", Msg: "must be one of system, developer, user, assistant, tool; got " + strconv.Quote(m.role)}
	}
	return nil
}

// toolCall reads one assistant tool call as a function_call item.
func toolCall(raw []byte) (agent.Item, error) {
	it := agent.Item{Type: agent.TypeFunctionCall}
	typ := ""
	err := forEachField(raw, func(k string, raw []byte) error {
		switch k {
		case "id":
			return str(raw, &it.CallID)
		case "type":
			return str(raw, &typ)
		case "function":
			return forEachField(raw, func(k string, raw []byte) error {
				switch k {
				case "name":
					return str(raw, &it.Name)
				case "arguments":
					return str(raw, &it.Arguments)
				}
				return nil
			})
		}
		return nil
	})
	switch {
	case err != nil:
	case it.CallID == "":
		err = &wire.FieldError{Field: "id", Msg: "required"}
	case typ != "function":
		err = &wire.FieldError{Field: "type", Msg: "only function tool calls are supported"}
	case it.Name == "":
		err = &wire.FieldError{Field: "function.name", Msg: "required"}
	}
	return it, err
}

// content reads a message's content: a string, or a list of parts. Text
// parts of an assistant message become output_text, of any other role
// input_text; users may also send images and files.
func content(raw []byte, role string) (agent.Content, error) {
	if raw[0] == '"' {
		var s string
		err := str(raw, &s)
		return agent.TextContent(s), err
	}
	if raw[0] != '[' {
		return agent.Content{}, msgErr("expected string or array, got " + wireproto.Kind(raw))
	}
	parts := make([]agent.Part, 0, 1)
	err := forEachElem(raw, func(_ int, raw []byte) error {
		p, err := part(raw, role)
		parts = append(parts, p)
		return err
	})
	return agent.PartsContent(parts...), err
}

func part(raw []byte, role string) (agent.Part, error) {
	var p agent.Part
	var typ string
	text := false
	err := forEachField(raw, func(k string, raw []byte) error {
		switch k {
		case "type":
			return str(raw, &typ)
		case "text":
			text = true
			return str(raw, &p.Text)
		case "refusal":
			return str(raw, &p.Refusal)
		case "image_url":
			return forEachField(raw, func(k string, raw []byte) error {
				switch k {
				case "url":
					return str(raw, &p.ImageURL)
				case "detail":
					return str(raw, &p.Detail)
				}
				return nil
			})
		case "file":
			return forEachField(raw, func(k string, raw []byte) error {
				switch k {
				case "file_data":
					return str(raw, &p.FileData)
				case "file_id":
					return str(raw, &p.FileID)
				case "filename":
					return str(raw, &p.Filename)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	bad := func() (agent.Part, error) {
		return p, &wire.FieldError{Field: "type", Msg: "a " + role + " message cannot carry a " + strconv.Quote(typ) + " part"}
	}
	switch typ {
	case "text":
		if !text {
			return p, &wire.FieldError{Field: "text", Msg: "required"}
		}
		p.Type = wireproto.PartInputText
		if role == "assistant" {
			p.Type = wireproto.PartOutputText
		}
	case "refusal":
		if role != "assistant" {
			return bad()
		}
		p.Type = wireproto.PartRefusal
	case "image_url":
		if role != "user" {
			return bad()
		}
		if p.ImageURL == "" {
			return p, &wire.FieldError{Field: "image_url.url", Msg: "required"}
		}
		p.Type = wireproto.PartInputImage
	case "file":
		if role != "user" {
			return bad()
		}
		p.Type = wireproto.PartInputFile
	case "input_audio":
		return p, &wire.FieldError{Field: "type", Msg: "audio input is not supported"}
	case "":
		return p, &wire.FieldError{Field: "type", Msg: "required"}
	default:
		return p, &wire.FieldError{Field: "type", Msg: "unknown content part type " + strconv.Quote(typ)}
	}
	return p, nil
}

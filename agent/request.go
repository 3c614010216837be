package agent

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// Request is a ResponsesAgent request in either dialect: OpenAI's (input as a
// string or a list, instructions, model, …) and MLflow's (input list,
// custom_inputs, context). A string input is read as one user message.
// Members it does not know are kept in Extra.
type Request struct {
	Input        []Item
	Instructions string
	Model        string
	Metadata     map[string]string

	Tools             []ToolSpec
	ToolChoice        json.RawMessage // "auto", "none", "required" or {"type":"function","name":…}
	ParallelToolCalls *bool

	Stream          bool
	Temperature     *float64
	TopP            *float64
	MaxOutputTokens *int
	Truncation      string
	Reasoning       json.RawMessage
	Text            json.RawMessage
	User            string
	Store           *bool

	PreviousResponseID string

	// MLflow extensions.
	CustomInputs map[string]any
	Context      *ChatContext

	Extra map[string]json.RawMessage

	inputString bool // input arrived as a string; written back the same way
}

// ChatContext is MLflow's per-conversation context.
type ChatContext struct {
	ConversationID string `json:"conversation_id,omitempty"`
	UserID         string `json:"user_id,omitempty"`
}

// ToolSpec is a tool offered by the client in a request (OpenAI's flat
// function-tool form, or any other tool type kept as is).
type ToolSpec struct {
	Type        string
	Name        string
	Description string
	Parameters  json.RawMessage
	Strict      *bool

	Extra map[string]json.RawMessage
}

// MarshalJSON writes the tool.
func (t ToolSpec) MarshalJSON() ([]byte, error) {
	w := newObj(nil)
	w.str("type", t.Type)
	w.strOpt("name", t.Name)
	w.strOpt("description", t.Description)
	w.raw("parameters", t.Parameters)
	w.boolPtr("strict", t.Strict)
	w.extra(t.Extra)
	return w.close()
}

// UnmarshalJSON reads a tool, keeping unknown members.
func (t *ToolSpec) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return t.decode(data)
}

func (t *ToolSpec) decode(data []byte) error {
	*t = ToolSpec{}
	extra, err := forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		switch k {
		case "type":
			return true, decodeString(raw, &t.Type)
		case "name":
			return true, decodeString(raw, &t.Name)
		case "description":
			return true, decodeString(raw, &t.Description)
		case "parameters":
			if !isNull(raw) && (len(raw) == 0 || raw[0] != '{') {
				return true, &wireproto.FieldError{Msg: "expected object, got " + wireproto.Kind(raw)}
			}
			t.Parameters = cloneRaw(raw)
			return true, nil
		case "strict":
			return true, decodeOptBool(raw, &t.Strict)
		}
		return false, nil
	})
	t.Extra = extra
	return err
}

func decodeOptBool(raw json.RawMessage, dst **bool) error {
	if isNull(raw) {
		return nil
	}
	var v bool
	if err := decodeValue(raw, &v); err != nil {
		return err
	}
	*dst = &v
	return nil
}

func decodeOptFloat(raw json.RawMessage, dst **float64) error {
	if isNull(raw) {
		return nil
	}
	var v float64
	if err := decodeValue(raw, &v); err != nil {
		return err
	}
	*dst = &v
	return nil
}

func decodeOptInt(raw json.RawMessage, dst **int) error {
	if isNull(raw) {
		return nil
	}
	var v int
	if err := decodeValue(raw, &v); err != nil {
		return err
	}
	*dst = &v
	return nil
}

// UnmarshalJSON reads either dialect: exactly one JSON object, with nothing
// but whitespace after it, and no member name repeated in the objects it
// reads. It does not apply the schema rules the host checks before an agent
// runs (roles, part types, required members).
func (r *Request) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return r.decode(data)
}

func (r *Request) decode(data []byte) error {
	*r = Request{}
	extra, err := forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		if ok, err := r.settings().decode(k, raw); ok || err != nil {
			return ok, err
		}
		switch k {
		case "input":
			return true, r.decodeInput(raw)
		case "instructions":
			return true, decodeString(raw, &r.Instructions)
		case "model":
			return true, decodeString(raw, &r.Model)
		case "metadata":
			if isNull(raw) {
				return true, nil
			}
			return true, decodeValue(raw, &r.Metadata)
		case "tools":
			var err error
			r.Tools, err = decodeList[ToolSpec](raw)
			return true, err
		case "tool_choice":
			if !isNull(raw) {
				if c := raw[0]; c != '"' && c != '{' {
					return true, &wireproto.FieldError{Msg: "expected string or object, got " + wireproto.Kind(raw)}
				}
				r.ToolChoice = cloneRaw(raw)
			}
			return true, nil
		case "stream":
			if isNull(raw) {
				return true, nil
			}
			return true, decodeValue(raw, &r.Stream)
		case "store":
			return true, decodeOptBool(raw, &r.Store)
		case "custom_inputs":
			if isNull(raw) {
				return true, nil
			}
			return true, decodeValue(raw, &r.CustomInputs)
		case "context":
			if isNull(raw) {
				return true, nil
			}
			r.Context = new(ChatContext)
			return true, decodeValue(raw, r.Context)
		}
		return false, nil
	})
	r.Extra = extra
	return err
}

func (r *Request) decodeInput(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := decodeString(raw, &s); err != nil {
			return err
		}
		r.Input = []Item{{Role: "user", Content: TextContent(s)}}
		r.inputString = true
		return nil
	case len(raw) > 0 && raw[0] == '[':
		var err error
		if r.Input, err = decodeList[Item](raw); err != nil {
			return err
		}
		return nil
	case isNull(raw):
		return nil
	default:
		return &wireproto.FieldError{Msg: "expected string or array, got " + wireproto.Kind(raw)}
	}
}

// MarshalJSON writes the request (a string input is written back as a string).
func (r Request) MarshalJSON() ([]byte, error) {
	w := newObj(nil)
	w.strOpt("model", r.Model)
	if r.inputString && len(r.Input) == 1 {
		w.str("input", r.Input[0].Content.Text)
	} else {
		w.key("input")
		w.b = append(w.b, '[')
		for i := range r.Input {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			var err error
			if w.b, err = r.Input[i].appendJSON(w.b); err != nil {
				return nil, fieldErr("input["+strconv.Itoa(i)+"]", err)
			}
		}
		w.b = append(w.b, ']')
	}
	w.strOpt("instructions", r.Instructions)
	if r.Metadata != nil {
		w.value("metadata", r.Metadata)
	}
	if r.Tools != nil {
		w.value("tools", r.Tools)
	}
	w.raw("tool_choice", r.ToolChoice)
	w.boolPtr("parallel_tool_calls", r.ParallelToolCalls)
	if r.Stream {
		w.bool("stream", true)
	}
	w.floatPtr("temperature", r.Temperature)
	w.floatPtr("top_p", r.TopP)
	w.intPtr("max_output_tokens", r.MaxOutputTokens)
	w.strOpt("truncation", r.Truncation)
	w.raw("reasoning", r.Reasoning)
	w.raw("text", r.Text)
	w.strOpt("user", r.User)
	w.boolPtr("store", r.Store)
	w.strOpt("previous_response_id", r.PreviousResponseID)
	if r.CustomInputs != nil {
		w.value("custom_inputs", r.CustomInputs)
	}
	if r.Context != nil {
		w.value("context", r.Context)
	}
	w.extra(r.Extra)
	return w.close()
}

// LastUserText returns the text of the last user message in the input, or ""
// when there is none.
func (r *Request) LastUserText() string {
	for i := len(r.Input) - 1; i >= 0; i-- {
		it := &r.Input[i]
		if it.Kind() == TypeMessage && it.Role == "user" {
			return it.Content.String()
		}
	}
	return ""
}

// ConversationID returns the conversation id from MLflow's context, or from
// OpenAI-style metadata ("conversation_id"), or "".
func (r *Request) ConversationID() string {
	if r.Context != nil && r.Context.ConversationID != "" {
		return r.Context.ConversationID
	}
	return r.Metadata["conversation_id"]
}

// settings points at the generation settings a request carries.
func (r *Request) settings() settings {
	return settings{&r.Temperature, &r.TopP, &r.MaxOutputTokens, &r.Truncation, &r.Reasoning,
		&r.Text, &r.User, &r.PreviousResponseID, &r.ParallelToolCalls}
}

package agent

import (
	"encoding/json"
	"strconv"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// Response is a ResponsesAgent response; with the envelope fields the host
// fills (ID, CreatedAt, Model, …) it is also an OpenAI response object.
// An agent normally sets only Output and, if it wants, CustomOutputs and Usage.
type Response struct {
	ID        string
	Object    string // "response" when empty
	CreatedAt float64
	Status    string
	Model     string
	Output    []Item

	Error             *ResponseError
	IncompleteDetails json.RawMessage
	Usage             *Usage

	Instructions       string
	Metadata           map[string]string
	ParallelToolCalls  *bool
	ToolChoice         json.RawMessage
	Tools              []ToolSpec
	Temperature        *float64
	TopP               *float64
	MaxOutputTokens    *int
	PreviousResponseID string
	Reasoning          json.RawMessage
	Text               json.RawMessage
	Truncation         string
	User               string
	// Store says whether the host stored the response (OpenAI's store
	// member); nil leaves it out. The host sets it, not the agent.
	Store *bool

	CustomOutputs map[string]any

	Extra map[string]json.RawMessage
}

// ResponseError is the error member of a failed response.
type ResponseError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

// Usage counts tokens. All members are written when usage is present, as both
// protocols require.
type Usage struct {
	InputTokens         int                 `json:"input_tokens"`
	InputTokensDetails  InputTokensDetails  `json:"input_tokens_details"`
	OutputTokens        int                 `json:"output_tokens"`
	OutputTokensDetails OutputTokensDetails `json:"output_tokens_details"`
	TotalTokens         int                 `json:"total_tokens"`
}

// InputTokensDetails breaks down input tokens.
type InputTokensDetails struct {
	CachedTokens     int `json:"cached_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
}

// OutputTokensDetails breaks down output tokens.
type OutputTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

func (u *Usage) appendJSON(b []byte) []byte {
	w := newObj(b)
	w.int("input_tokens", u.InputTokens)
	w.key("input_tokens_details")
	d := newObj(w.b)
	d.int("cached_tokens", u.InputTokensDetails.CachedTokens)
	d.int("cache_write_tokens", u.InputTokensDetails.CacheWriteTokens)
	w.b, _ = d.close()
	w.int("output_tokens", u.OutputTokens)
	w.key("output_tokens_details")
	d = newObj(w.b)
	d.int("reasoning_tokens", u.OutputTokensDetails.ReasoningTokens)
	w.b, _ = d.close()
	w.int("total_tokens", u.TotalTokens)
	b, _ = w.close()
	return b
}

// OutputText joins the text of every output message, like the Python SDKs'
// output_text property.
func (r *Response) OutputText() string {
	var b []byte
	for i := range r.Output {
		it := &r.Output[i]
		if it.Kind() != TypeMessage {
			continue
		}
		for j := range it.Content.Parts {
			if p := &it.Content.Parts[j]; p.Type == wireproto.PartOutputText {
				b = append(b, p.Text...)
			}
		}
	}
	return string(b)
}

// MarshalJSON writes the response. The members OpenAI's Response schema
// requires are always written, null (metadata {}) when unset: error,
// incomplete_details, instructions, metadata, temperature, top_p, output.
// Other absent members are omitted, as MLflow's exclude_none does (MLflow
// clients read the nulls as absent). A null error is safe in a stream:
// clients that fail a stream on any "error" member (openai-go) look only at
// the top level of an event, never inside its response.
func (r Response) MarshalJSON() ([]byte, error) { return r.appendJSON(nil) }

// appendJSON appends the JSON form of r to b.
func (r *Response) appendJSON(b []byte) ([]byte, error) {
	w := newObj(b)
	w.strOpt("id", r.ID)
	obj := r.Object
	if obj == "" {
		obj = "response"
	}
	w.str("object", obj)
	if r.CreatedAt != 0 {
		w.float("created_at", r.CreatedAt)
	}
	w.strOpt("status", r.Status)
	if r.Error != nil {
		w.value("error", r.Error)
	} else {
		w.null("error")
	}
	w.rawOrNull("incomplete_details", r.IncompleteDetails)
	if r.Instructions != "" {
		w.str("instructions", r.Instructions)
	} else if _, listForm := r.Extra["instructions"]; !listForm {
		w.null("instructions")
	}
	w.intPtr("max_output_tokens", r.MaxOutputTokens)
	if len(r.Metadata) > 0 {
		w.value("metadata", r.Metadata)
	} else {
		w.key("metadata")
		w.b = append(w.b, '{', '}')
	}
	w.strOpt("model", r.Model)
	w.key("output")
	w.b = append(w.b, '[')
	for i := range r.Output {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		var err error
		if w.b, err = r.Output[i].appendJSON(w.b); err != nil {
			return nil, fieldErr("output["+strconv.Itoa(i)+"]", err)
		}
	}
	w.b = append(w.b, ']')
	w.boolPtr("parallel_tool_calls", r.ParallelToolCalls)
	w.strOpt("previous_response_id", r.PreviousResponseID)
	w.raw("reasoning", r.Reasoning)
	w.boolPtr("store", r.Store)
	w.floatOrNull("temperature", r.Temperature)
	w.raw("text", r.Text)
	w.raw("tool_choice", r.ToolChoice)
	if r.Tools != nil {
		w.key("tools")
		w.b = append(w.b, '[')
		for i := range r.Tools {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = r.Tools[i].appendResponseJSON(w.b)
		}
		w.b = append(w.b, ']')
	}
	w.floatOrNull("top_p", r.TopP)
	w.strOpt("truncation", r.Truncation)
	if r.Usage != nil {
		w.key("usage")
		w.b = r.Usage.appendJSON(w.b)
	}
	w.strOpt("user", r.User)
	if r.CustomOutputs != nil {
		w.value("custom_outputs", r.CustomOutputs)
	}
	w.extra(r.Extra)
	return w.close()
}

// UnmarshalJSON reads a response in either dialect, keeping unknown members.
func (r *Response) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return r.decode(data)
}

func (r *Response) decode(data []byte) error {
	*r = Response{}
	extra, err := forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		if ok, err := r.settings().decode(k, raw); ok || err != nil {
			return ok, err
		}
		switch k {
		case "id":
			return true, decodeString(raw, &r.ID)
		case "object":
			return true, decodeString(raw, &r.Object)
		case "created_at":
			if isNull(raw) {
				return true, nil
			}
			return true, decodeValue(raw, &r.CreatedAt)
		case "status":
			return true, decodeString(raw, &r.Status)
		case "store":
			return true, decodeOptBool(raw, &r.Store)
		case "model":
			return true, decodeString(raw, &r.Model)
		case "output":
			var err error
			r.Output, err = decodeList[Item](raw)
			return true, err
		case "error":
			if isNull(raw) {
				return true, nil
			}
			r.Error = new(ResponseError)
			return true, decodeValue(raw, r.Error)
		case "incomplete_details":
			if !isNull(raw) {
				r.IncompleteDetails = cloneRaw(raw)
			}
			return true, nil
		case "usage":
			if isNull(raw) {
				return true, nil
			}
			r.Usage = new(Usage)
			return true, decodeValue(raw, r.Usage)
		case "instructions":
			// OpenAI may echo instructions as a list of items; keep that form as extra.
			if len(raw) > 0 && raw[0] != '"' && !isNull(raw) {
				return false, nil
			}
			return true, decodeString(raw, &r.Instructions)
		case "metadata":
			if isNull(raw) {
				return true, nil
			}
			return true, decodeValue(raw, &r.Metadata)
		case "tool_choice":
			if !isNull(raw) {
				r.ToolChoice = cloneRaw(raw)
			}
			return true, nil
		case "tools":
			var err error
			r.Tools, err = decodeList[ToolSpec](raw)
			return true, err
		case "custom_outputs":
			if isNull(raw) {
				return true, nil
			}
			return true, decodeValue(raw, &r.CustomOutputs)
		}
		return false, nil
	})
	r.Extra = extra
	return err
}

// settings points at the generation settings a response echoes.
func (r *Response) settings() settings {
	return settings{&r.Temperature, &r.TopP, &r.MaxOutputTokens, &r.Truncation, &r.Reasoning,
		&r.Text, &r.User, &r.PreviousResponseID, &r.ParallelToolCalls}
}

// appendResponseJSON writes a tool as a response echoes it: a function
// tool always carries parameters and strict (null when the request left
// them out), which OpenAI's FunctionTool schema requires.
func (t *ToolSpec) appendResponseJSON(b []byte) []byte {
	if t.Type != "function" {
		data, _ := t.MarshalJSON() // fails only on a bad Extra, which decode never makes
		return append(b, data...)
	}
	w := newObj(b)
	w.str("type", t.Type)
	w.str("name", t.Name)
	w.strOpt("description", t.Description)
	w.rawOrNull("parameters", t.Parameters)
	if t.Strict != nil {
		w.bool("strict", *t.Strict)
	} else {
		w.null("strict")
	}
	w.extra(t.Extra)
	b, _ = w.close()
	return b
}

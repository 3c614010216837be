//go:build jsonlib

package agent

import (
	"encoding/json"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// The wire types, with struct tags for github.com/go-json-experiment/json
// (issue 17's experiment; the codecs are in codec_lib.go).

// Item types of the Responses protocol that the helpers and validation know.
const (
	TypeMessage             = "message"
	TypeFunctionCall        = "function_call"
	TypeFunctionCallOutput  = "function_call_output"
	TypeReasoning           = "reasoning"
	TypeMCPApprovalRequest  = "mcp_approval_request"
	TypeMCPApprovalResponse = "mcp_approval_response"
)

// Item is one input or output item of any type. It carries the known fields
// of every item type (unused ones stay empty); members it does not know, and
// whole items of types it does not know, are kept in Extra and written back
// unchanged.
type Item struct {
	Type   string `json:"type"` // empty on an input message written in the "easy" form
	ID     string `json:"id"`
	Status string `json:"status"`

	// message
	Role    string  `json:"role"`
	Content Content `json:"content"` // also the reasoning item's content

	// function_call, mcp_approval_request
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // JSON-encoded, as the protocol sends it

	// function_call_output (a string, or a list of parts in OpenAI's form)
	Output Content `json:"output"`

	// reasoning
	Summary          []Part `json:"summary"`
	EncryptedContent string `json:"encrypted_content"`

	// mcp_approval_request / mcp_approval_response
	ServerLabel       string `json:"server_label"`
	ApprovalRequestID string `json:"approval_request_id"`
	Approve           *bool  `json:"approve"`
	Reason            string `json:"reason"`

	Extra map[string]json.RawMessage `json:",embed"`
}

// Kind is the item's type, with the protocol's default for an untyped item
// that has a role ("message").
func (it *Item) Kind() string {
	if it.Type == "" && it.Role != "" {
		return TypeMessage
	}
	return it.Type
}

// Text joins the text of the item's content parts (output_text, input_text)
// or returns its string content.
func (it *Item) Text() string { return it.Content.String() }

// Content is a message's content: a plain string, or a list of parts.
// The zero value is "absent".
type Content struct {
	Text  string // the string form, used when Parts is nil
	Parts []Part // the list form; a non-nil Parts wins over Text

	present bool
}

// TextContent is content in the string form.
func TextContent(s string) Content { return Content{Text: s, present: true} }

// PartsContent is content in the list form.
func PartsContent(parts ...Part) Content {
	if parts == nil {
		parts = []Part{}
	}
	return Content{Parts: parts, present: true}
}

// IsZero reports whether the content is absent.
func (c Content) IsZero() bool { return !c.present && c.Parts == nil && c.Text == "" }

// IsList reports whether the content is in the list form.
func (c Content) IsList() bool { return c.Parts != nil }

// String joins the text of the parts that carry text, or returns the
// string form.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	if len(c.Parts) == 1 {
		return c.Parts[0].Text
	}
	var n int
	for i := range c.Parts {
		n += len(c.Parts[i].Text)
	}
	b := make([]byte, 0, n)
	for i := range c.Parts {
		b = append(b, c.Parts[i].Text...)
	}
	return string(b)
}

// Part is one element of a content or summary list.
type Part struct {
	Type        string          `json:"type"`
	Text        string          `json:"text,omitzero"`
	Annotations []Annotation    `json:"annotations,omitzero"` // output_text
	Refusal     string          `json:"refusal,omitzero"`     // refusal
	ImageURL    string          `json:"image_url,omitzero"`   // input_image
	FileID      string          `json:"file_id,omitzero"`     // input_image, input_file
	FileURL     string          `json:"file_url,omitzero"`    // input_file
	FileData    string          `json:"file_data,omitzero"`   // input_file
	Filename    string          `json:"filename,omitzero"`    // input_file
	Detail      string          `json:"detail,omitzero"`      // input_image
	Logprobs    json.RawMessage `json:"logprobs,omitzero"`

	Extra map[string]json.RawMessage `json:",embed"`
}

// Annotation is a citation attached to output text.
type Annotation struct {
	Type       string `json:"type"`
	URL        string `json:"url,omitzero"`         // url_citation
	Title      string `json:"title,omitzero"`       // url_citation
	StartIndex *int   `json:"start_index,omitzero"` // url_citation
	EndIndex   *int   `json:"end_index,omitzero"`   // url_citation
	FileID     string `json:"file_id,omitzero"`     // file_citation, file_path
	Filename   string `json:"filename,omitzero"`    // file_citation
	Index      *int   `json:"index,omitzero"`       // file_citation, file_path

	Extra map[string]json.RawMessage `json:",embed"`
}

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
	Type        string          `json:"type"`
	Name        string          `json:"name,omitzero"`
	Description string          `json:"description,omitzero"`
	Parameters  json.RawMessage `json:"parameters,omitzero"`
	Strict      *bool           `json:"strict,omitzero"`

	Extra map[string]json.RawMessage `json:",embed"`
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

// The stream event types an agent emits (OpenAI's names; MLflow uses the
// same ones). The host writes the others (response.created, …,
// response.completed) around them.
const (
	EventOutputTextDelta = "response.output_text.delta"            // TextDelta
	EventOutputItemDone  = "response.output_item.done"             // ItemDone
	EventAnnotationAdded = "response.output_text.annotation.added" // AnnotationAdded
)

// StreamEvent is one event of a Responses stream. Which members are written
// depends on Type; unknown members are kept in Extra.
type StreamEvent struct {
	Type           string
	SequenceNumber int

	ItemID       string
	OutputIndex  int
	ContentIndex int
	SummaryIndex int

	Delta string // *.delta
	Text  string // response.output_text.done, reasoning summary .done

	Item     *Item     // response.output_item.added / .done
	Part     *Part     // response.content_part.added / .done
	Response *Response // response.created / .in_progress / .completed / …

	Annotation      *Annotation // response.output_text.annotation.added
	AnnotationIndex int

	Name      string // response.function_call_arguments.done
	Arguments string // response.function_call_arguments.done

	// error
	Code    string
	Message string
	Param   string

	// CustomOutputs may ride on any event (MLflow).
	CustomOutputs map[string]any

	Extra map[string]json.RawMessage
}

func errorType(code string) string {
	switch code {
	case "", "server_error", "internal_error", "INTERNAL_ERROR":
		return "server_error"
	case "timeout", "request_timeout":
		return "timeout_error"
	}
	return "invalid_request_error"
}

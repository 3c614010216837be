//go:build jsonlib

package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// Issue 17's experiment: the wire types' codecs on
// github.com/go-json-experiment/json. Struct tags (omitzero, embed for the
// unknown members) do the plain work; MarshalJSONTo/UnmarshalJSONFrom
// methods only where the protocol needs more than tags say: members a type
// requires (written even when empty), unions (string or list), and known
// members kept verbatim when their value does not fit.

// opts are the options of every encode and decode: sorted unknown members,
// invalid UTF-8 written as U+FFFD and U+2028/2029 escaped (as
// wireproto.AppendString does).
var opts = jsonv2.JoinOptions(jsonv2.Deterministic(true), jsontext.AllowInvalidUTF8(true), jsontext.EscapeForJS(true))

var (
	litNull       = jsontext.Value("null")
	litEmptyArray = jsontext.Value("[]")
)

// appendV2 appends the JSON form of v to b, through a pooled encoder that
// writes straight into b.
func appendV2(b []byte, v any) ([]byte, error) {
	a := appenders.Get().(*appender)
	a.b = b
	a.enc.Reset(a, opts)
	err := jsonv2.MarshalEncode(a.enc, v)
	out := a.b
	a.b = nil
	appenders.Put(a)
	if err != nil {
		return b, err
	}
	if n := len(out); n > 0 && out[n-1] == '\n' {
		out = out[:n-1] // the encoder ends a top-level value with a newline
	}
	return out, nil
}

type appender struct {
	b   []byte
	enc *jsontext.Encoder
}

func (a *appender) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }

var appenders = sync.Pool{New: func() any {
	a := new(appender)
	a.enc = jsontext.NewEncoder(a)
	return a
}}

// unmarshalV2 decodes data into v, with every error a *FieldError.
func unmarshalV2(data []byte, v any) error {
	if err := jsonv2.Unmarshal(data, v, opts); err != nil {
		return toFieldError(data, err)
	}
	return nil
}

// toFieldError turns the library's errors into the FieldError the host
// answers with: the JSON pointer becomes the member path, a syntax error
// names the byte offset (counting from 1, as json.SyntaxError does).
func toFieldError(data []byte, err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		path := pointerPath(string(se.JSONPointer))
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return &wireproto.FieldError{Field: path, Msg: "member repeated in the same object"}
		}
		off := se.ByteOffset + 1
		return &wireproto.FieldError{Field: path, Offset: off,
			Msg: "invalid JSON at byte " + strconv.FormatInt(off, 10) + ": " + se.Err.Error()}
	}
	var me *jsonv2.SemanticError
	if errors.As(err, &me) {
		path := pointerPath(string(me.JSONPointer))
		var fe *wireproto.FieldError
		if errors.As(me.Err, &fe) {
			return wireproto.Prefix(path, fe)
		}
		want := "value"
		if me.GoType != nil {
			want = me.GoType.Kind().String()
			switch want {
			case "slice":
				want = "array"
			case "map", "struct":
				want = "object"
			case "float64", "int", "int64":
				want = "number"
			case "bool":
				want = "boolean"
			}
		}
		got := wireproto.Kind([]byte{byte(me.JSONKind)})
		return &wireproto.FieldError{Field: path, Msg: "expected " + want + ", got " + got}
	}
	var fe *wireproto.FieldError
	if errors.As(err, &fe) {
		return fe
	}
	return &wireproto.FieldError{Msg: err.Error()}
}

// pointerPath turns "/input/0/role" into "input[0].role".
func pointerPath(p string) string {
	if p == "" {
		return ""
	}
	var b strings.Builder
	for tok := range strings.SplitSeq(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func rawOrNil(v jsontext.Value) json.RawMessage {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	return json.RawMessage(v)
}

// ---- Item ----

type itemAlias Item

type itemOut struct {
	Type              string                     `json:"type,omitzero"`
	ID                string                     `json:"id,omitzero"`
	Status            string                     `json:"status,omitzero"`
	Role              string                     `json:"role,omitzero"`
	Content           *Content                   `json:"content,omitzero"`
	CallID            string                     `json:"call_id,omitzero"`
	Name              string                     `json:"name,omitzero"`
	Arguments         *string                    `json:"arguments,omitzero"`
	Output            *Content                   `json:"output,omitzero"`
	Summary           *[]Part                    `json:"summary,omitzero"`
	EncryptedContent  string                     `json:"encrypted_content,omitzero"`
	ServerLabel       *string                    `json:"server_label,omitzero"`
	ApprovalRequestID string                     `json:"approval_request_id,omitzero"`
	Approve           *bool                      `json:"approve,omitzero"`
	Reason            string                     `json:"reason,omitzero"`
	Extra             map[string]json.RawMessage `json:",embed"`
}

var emptyContent = PartsContent()

// MarshalJSONTo writes the item with the members its type requires.
func (it *Item) MarshalJSONTo(enc *jsontext.Encoder) error {
	kind := it.Kind()
	o := itemOut{Type: it.Type, ID: it.ID, Status: it.Status, Role: it.Role, CallID: it.CallID, Name: it.Name,
		EncryptedContent: it.EncryptedContent, ApprovalRequestID: it.ApprovalRequestID, Approve: it.Approve,
		Reason: it.Reason, Extra: it.Extra}
	if !it.Content.IsZero() {
		o.Content = &it.Content
	} else if kind == TypeMessage {
		o.Content = &emptyContent
	}
	if it.Arguments != "" || kind == TypeFunctionCall || kind == TypeMCPApprovalRequest {
		o.Arguments = &it.Arguments
	}
	if !it.Output.IsZero() {
		o.Output = &it.Output
	} else if kind == TypeFunctionCallOutput {
		o.Output = &Content{present: true}
	}
	if it.Summary != nil || kind == TypeReasoning {
		o.Summary = &it.Summary
	}
	if it.ServerLabel != "" || kind == TypeMCPApprovalRequest {
		o.ServerLabel = &it.ServerLabel
	}
	return jsonv2.MarshalEncode(enc, &o)
}

// MarshalJSON writes the item (for encoding/json callers).
func (it Item) MarshalJSON() ([]byte, error) { return appendV2(nil, &it) }

func (it *Item) appendJSON(b []byte) ([]byte, error) { return appendV2(b, it) }

// UnmarshalJSONFrom reads any item. A known member whose value does not fit
// an item type we do not know is kept verbatim in Extra rather than rejected.
func (it *Item) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	*it = Item{}
	err = jsonv2.Unmarshal(raw, (*itemAlias)(it), opts)
	if err == nil {
		return nil
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return err
	}
	t := it.Type
	switch t {
	case "", TypeMessage, TypeFunctionCall, TypeFunctionCallOutput, TypeReasoning,
		TypeMCPApprovalRequest, TypeMCPApprovalResponse:
		return toFieldError(raw, err) // relative to the item, so the caller prefixes it
	}
	// An item type we do not know: members one by one, misfits to Extra.
	var members map[string]jsontext.Value
	if err := jsonv2.Unmarshal(raw, &members, opts); err != nil {
		return err
	}
	*it = Item{Type: t}
	for k, v := range members {
		one, _ := jsontext.AppendQuote(jsontext.Value{'{'}, k)
		one = append(append(append(one, ':'), v...), '}')
		var probe itemAlias
		if jsonv2.Unmarshal(one, &probe, opts) != nil {
			if it.Extra == nil {
				it.Extra = make(map[string]json.RawMessage)
			}
			it.Extra[k] = json.RawMessage(bytes.Clone(v))
			continue
		}
		_ = jsonv2.Unmarshal(one, (*itemAlias)(it), opts)
	}
	return nil
}

// UnmarshalJSON reads any item (for encoding/json callers).
func (it *Item) UnmarshalJSON(data []byte) error { return unmarshalV2(data, it) }

// ---- Content ----

// MarshalJSONTo writes the string or list form.
func (c *Content) MarshalJSONTo(enc *jsontext.Encoder) error {
	if c.Parts == nil {
		return enc.WriteToken(jsontext.String(c.Text))
	}
	return jsonv2.MarshalEncode(enc, c.Parts)
}

// MarshalJSON writes the string or list form (for encoding/json callers).
func (c Content) MarshalJSON() ([]byte, error) { return appendV2(nil, &c) }

// UnmarshalJSONFrom accepts a string or a list of parts.
func (c *Content) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*c = Content{}
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '"':
		c.present = true
		return jsonv2.UnmarshalDecode(dec, &c.Text)
	case '[':
		var parts []Part
		if err := jsonv2.UnmarshalDecode(dec, &parts); err != nil {
			return err
		}
		if parts == nil {
			parts = []Part{}
		}
		c.Parts, c.present = parts, true
		return nil
	default:
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		return &wireproto.FieldError{Msg: "expected string or array, got " + wireproto.Kind(v)}
	}
}

// UnmarshalJSON accepts a string or a list of parts (for encoding/json callers).
func (c *Content) UnmarshalJSON(data []byte) error { return unmarshalV2(data, c) }

// ---- Part ----

type partAlias Part

type partOut struct {
	Type        string                     `json:"type"`
	Text        *string                    `json:"text,omitzero"`
	Annotations *[]Annotation              `json:"annotations,omitzero"`
	Refusal     *string                    `json:"refusal,omitzero"`
	ImageURL    string                     `json:"image_url,omitzero"`
	FileID      string                     `json:"file_id,omitzero"`
	FileURL     string                     `json:"file_url,omitzero"`
	FileData    string                     `json:"file_data,omitzero"`
	Filename    string                     `json:"filename,omitzero"`
	Detail      string                     `json:"detail,omitzero"`
	Logprobs    jsontext.Value             `json:"logprobs,omitzero"`
	Extra       map[string]json.RawMessage `json:",embed"`
}

// MarshalJSONTo writes the part with the members its type requires.
func (p *Part) MarshalJSONTo(enc *jsontext.Encoder) error {
	o := partOut{Type: p.Type, ImageURL: p.ImageURL, FileID: p.FileID, FileURL: p.FileURL, FileData: p.FileData,
		Filename: p.Filename, Detail: p.Detail, Logprobs: jsontext.Value(p.Logprobs), Extra: p.Extra}
	switch p.Type {
	case wireproto.PartOutputText:
		o.Text, o.Annotations = &p.Text, &p.Annotations
		if len(p.Logprobs) == 0 {
			o.Logprobs = litEmptyArray // OpenAI's OutputTextContent requires logprobs
		}
	case wireproto.PartInputText, wireproto.PartSummaryText, wireproto.PartReasoningText:
		o.Text = &p.Text
	case wireproto.PartRefusal:
		o.Refusal = &p.Refusal
	default:
		if p.Text != "" {
			o.Text = &p.Text
		}
		if p.Annotations != nil {
			o.Annotations = &p.Annotations
		}
		if p.Refusal != "" {
			o.Refusal = &p.Refusal
		}
	}
	return jsonv2.MarshalEncode(enc, &o)
}

// MarshalJSON writes the part (for encoding/json callers).
func (p Part) MarshalJSON() ([]byte, error) { return appendV2(nil, &p) }

// UnmarshalJSONFrom reads any part, keeping unknown members.
func (p *Part) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*p = Part{}
	return jsonv2.UnmarshalDecode(dec, (*partAlias)(p))
}

// UnmarshalJSON reads any part (for encoding/json callers).
func (p *Part) UnmarshalJSON(data []byte) error { return unmarshalV2(data, p) }

// ---- Annotation ----

type annotationAlias Annotation

// MarshalJSONTo writes the annotation (its tags say it all).
func (a *Annotation) MarshalJSONTo(enc *jsontext.Encoder) error {
	return jsonv2.MarshalEncode(enc, (*annotationAlias)(a))
}

// MarshalJSON writes the annotation (for encoding/json callers).
func (a Annotation) MarshalJSON() ([]byte, error) { return appendV2(nil, &a) }

// UnmarshalJSONFrom reads any annotation, keeping unknown members.
func (a *Annotation) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*a = Annotation{}
	return jsonv2.UnmarshalDecode(dec, (*annotationAlias)(a))
}

// UnmarshalJSON reads any annotation (for encoding/json callers).
func (a *Annotation) UnmarshalJSON(data []byte) error { return unmarshalV2(data, a) }

// ---- ToolSpec ----

type toolAlias ToolSpec

// MarshalJSONTo writes the tool (its tags say it all).
func (t *ToolSpec) MarshalJSONTo(enc *jsontext.Encoder) error {
	return jsonv2.MarshalEncode(enc, (*toolAlias)(t))
}

// MarshalJSON writes the tool (for encoding/json callers).
func (t ToolSpec) MarshalJSON() ([]byte, error) { return appendV2(nil, &t) }

// UnmarshalJSONFrom reads a tool, keeping unknown members.
func (t *ToolSpec) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*t = ToolSpec{}
	if err := jsonv2.UnmarshalDecode(dec, (*toolAlias)(t)); err != nil {
		return err
	}
	if p := t.Parameters; len(p) > 0 && p[0] != '{' {
		if string(p) == "null" {
			t.Parameters = nil
			return nil
		}
		return &wireproto.FieldError{Field: "parameters", Msg: "expected object, got " + wireproto.Kind(p)}
	}
	return nil
}

// UnmarshalJSON reads a tool (for encoding/json callers).
func (t *ToolSpec) UnmarshalJSON(data []byte) error { return unmarshalV2(data, t) }

// responseTool is a tool as a response echoes it: a function tool always
// carries parameters and strict (null when the request left them out).
type responseTool ToolSpec

type responseToolOut struct {
	Type        string                     `json:"type"`
	Name        string                     `json:"name"`
	Description string                     `json:"description,omitzero"`
	Parameters  jsontext.Value             `json:"parameters"`
	Strict      *bool                      `json:"strict"`
	Extra       map[string]json.RawMessage `json:",embed"`
}

func (t *responseTool) MarshalJSONTo(enc *jsontext.Encoder) error {
	if t.Type != "function" {
		return jsonv2.MarshalEncode(enc, (*ToolSpec)(t))
	}
	o := responseToolOut{Type: t.Type, Name: t.Name, Description: t.Description,
		Parameters: jsontext.Value(t.Parameters), Strict: t.Strict, Extra: t.Extra}
	if len(o.Parameters) == 0 {
		o.Parameters = litNull
	}
	return jsonv2.MarshalEncode(enc, &o)
}

type responseTools []ToolSpec

func (ts responseTools) MarshalJSONTo(enc *jsontext.Encoder) error {
	if err := enc.WriteToken(jsontext.BeginArray); err != nil {
		return err
	}
	for i := range ts {
		if err := jsonv2.MarshalEncode(enc, (*responseTool)(&ts[i])); err != nil {
			return err
		}
	}
	return enc.WriteToken(jsontext.EndArray)
}

// ---- Request ----

// inputList is a request's input: a string (one user message) or a list.
type inputList struct {
	items    []Item
	isString bool
}

func (in *inputList) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case '"':
		var s string
		if err := jsonv2.UnmarshalDecode(dec, &s); err != nil {
			return err
		}
		in.items, in.isString = []Item{{Role: "user", Content: TextContent(s)}}, true
		return nil
	case '[':
		return jsonv2.UnmarshalDecode(dec, &in.items)
	case 'n':
		_, err := dec.ReadToken()
		return err
	default:
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		return &wireproto.FieldError{Msg: "expected string or array, got " + wireproto.Kind(v)}
	}
}

type requestIn struct {
	Input              inputList                  `json:"input"`
	Instructions       string                     `json:"instructions"`
	Model              string                     `json:"model"`
	Metadata           map[string]string          `json:"metadata"`
	Tools              []ToolSpec                 `json:"tools"`
	ToolChoice         jsontext.Value             `json:"tool_choice"`
	ParallelToolCalls  *bool                      `json:"parallel_tool_calls"`
	Stream             bool                       `json:"stream"`
	Temperature        *float64                   `json:"temperature"`
	TopP               *float64                   `json:"top_p"`
	MaxOutputTokens    *int                       `json:"max_output_tokens"`
	Truncation         string                     `json:"truncation"`
	Reasoning          jsontext.Value             `json:"reasoning"`
	Text               jsontext.Value             `json:"text"`
	User               string                     `json:"user"`
	Store              *bool                      `json:"store"`
	PreviousResponseID string                     `json:"previous_response_id"`
	CustomInputs       map[string]any             `json:"custom_inputs"`
	Context            *ChatContext               `json:"context"`
	Extra              map[string]json.RawMessage `json:",embed"`
}

// UnmarshalJSON reads either dialect: exactly one JSON object, and no member
// name repeated in any object. It does not apply the schema rules the host
// checks before an agent runs (roles, part types, required members).
func (r *Request) UnmarshalJSON(data []byte) error {
	var in requestIn
	if err := unmarshalV2(data, &in); err != nil {
		return err
	}
	if c := in.ToolChoice; len(c) > 0 && c[0] != '"' && c[0] != '{' && string(c) != "null" {
		return &wireproto.FieldError{Field: "tool_choice", Msg: "expected string or object, got " + wireproto.Kind(c)}
	}
	*r = Request{Input: in.Input.items, inputString: in.Input.isString, Instructions: in.Instructions, Model: in.Model,
		Metadata: in.Metadata, Tools: in.Tools, ToolChoice: rawOrNil(in.ToolChoice), ParallelToolCalls: in.ParallelToolCalls,
		Stream: in.Stream, Temperature: in.Temperature, TopP: in.TopP, MaxOutputTokens: in.MaxOutputTokens,
		Truncation: in.Truncation, Reasoning: rawOrNil(in.Reasoning), Text: rawOrNil(in.Text), User: in.User,
		Store: in.Store, PreviousResponseID: in.PreviousResponseID, CustomInputs: in.CustomInputs,
		Context: in.Context, Extra: in.Extra}
	return nil
}

type requestOut struct {
	Model              string                     `json:"model,omitzero"`
	Input              any                        `json:"input"`
	Instructions       string                     `json:"instructions,omitzero"`
	Metadata           map[string]string          `json:"metadata,omitzero"`
	Tools              []ToolSpec                 `json:"tools,omitzero"`
	ToolChoice         jsontext.Value             `json:"tool_choice,omitzero"`
	ParallelToolCalls  *bool                      `json:"parallel_tool_calls,omitzero"`
	Stream             bool                       `json:"stream,omitzero"`
	Temperature        *float64                   `json:"temperature,omitzero"`
	TopP               *float64                   `json:"top_p,omitzero"`
	MaxOutputTokens    *int                       `json:"max_output_tokens,omitzero"`
	Truncation         string                     `json:"truncation,omitzero"`
	Reasoning          jsontext.Value             `json:"reasoning,omitzero"`
	Text               jsontext.Value             `json:"text,omitzero"`
	User               string                     `json:"user,omitzero"`
	Store              *bool                      `json:"store,omitzero"`
	PreviousResponseID string                     `json:"previous_response_id,omitzero"`
	CustomInputs       map[string]any             `json:"custom_inputs,omitzero"`
	Context            *ChatContext               `json:"context,omitzero"`
	Extra              map[string]json.RawMessage `json:",embed"`
}

// MarshalJSON writes the request (a string input is written back as a string).
func (r Request) MarshalJSON() ([]byte, error) {
	o := requestOut{Model: r.Model, Instructions: r.Instructions, Metadata: r.Metadata, Tools: r.Tools,
		ToolChoice: jsontext.Value(r.ToolChoice), ParallelToolCalls: r.ParallelToolCalls, Stream: r.Stream,
		Temperature: r.Temperature, TopP: r.TopP, MaxOutputTokens: r.MaxOutputTokens, Truncation: r.Truncation,
		Reasoning: jsontext.Value(r.Reasoning), Text: jsontext.Value(r.Text), User: r.User, Store: r.Store,
		PreviousResponseID: r.PreviousResponseID, CustomInputs: r.CustomInputs, Context: r.Context, Extra: r.Extra}
	if r.inputString && len(r.Input) == 1 {
		o.Input = r.Input[0].Content.Text
	} else if r.Input == nil {
		o.Input = []Item{}
	} else {
		o.Input = r.Input
	}
	return appendV2(nil, &o)
}

// ---- Response ----

type responseOut struct {
	ID                 string                     `json:"id,omitzero"`
	Object             string                     `json:"object"`
	CreatedAt          float64                    `json:"created_at,omitzero"`
	Status             string                     `json:"status,omitzero"`
	Error              *ResponseError             `json:"error"`
	IncompleteDetails  jsontext.Value             `json:"incomplete_details"`
	Instructions       jsontext.Value             `json:"instructions,omitzero"`
	MaxOutputTokens    *int                       `json:"max_output_tokens,omitzero"`
	Metadata           map[string]string          `json:"metadata"`
	Model              string                     `json:"model,omitzero"`
	Output             []Item                     `json:"output"`
	ParallelToolCalls  *bool                      `json:"parallel_tool_calls,omitzero"`
	PreviousResponseID string                     `json:"previous_response_id,omitzero"`
	Reasoning          jsontext.Value             `json:"reasoning,omitzero"`
	Temperature        *float64                   `json:"temperature"`
	Text               jsontext.Value             `json:"text,omitzero"`
	ToolChoice         jsontext.Value             `json:"tool_choice,omitzero"`
	Tools              responseTools              `json:"tools,omitzero"`
	TopP               *float64                   `json:"top_p"`
	Truncation         string                     `json:"truncation,omitzero"`
	Usage              *Usage                     `json:"usage,omitzero"`
	User               string                     `json:"user,omitzero"`
	CustomOutputs      map[string]any             `json:"custom_outputs,omitzero"`
	Extra              map[string]json.RawMessage `json:",embed"`
}

// MarshalJSONTo writes the response. The members OpenAI's Response schema
// requires are always written, null (metadata {}) when unset: error,
// incomplete_details, instructions, metadata, temperature, top_p, output.
func (r *Response) MarshalJSONTo(enc *jsontext.Encoder) error {
	o := responseOut{ID: r.ID, Object: r.Object, CreatedAt: r.CreatedAt, Status: r.Status, Error: r.Error,
		IncompleteDetails: jsontext.Value(r.IncompleteDetails), MaxOutputTokens: r.MaxOutputTokens,
		Metadata: r.Metadata, Model: r.Model, Output: r.Output, ParallelToolCalls: r.ParallelToolCalls,
		PreviousResponseID: r.PreviousResponseID, Reasoning: jsontext.Value(r.Reasoning), Temperature: r.Temperature,
		Text: jsontext.Value(r.Text), ToolChoice: jsontext.Value(r.ToolChoice), Tools: responseTools(r.Tools),
		TopP: r.TopP, Truncation: r.Truncation, Usage: r.Usage, User: r.User, CustomOutputs: r.CustomOutputs,
		Extra: r.Extra}
	if o.Object == "" {
		o.Object = "response"
	}
	if len(o.IncompleteDetails) == 0 {
		o.IncompleteDetails = litNull
	}
	if r.Instructions != "" {
		o.Instructions, _ = jsontext.AppendQuote(nil, r.Instructions)
	} else if _, listForm := r.Extra["instructions"]; !listForm {
		o.Instructions = litNull
	}
	return jsonv2.MarshalEncode(enc, &o)
}

// MarshalJSON writes the response (for encoding/json callers).
func (r Response) MarshalJSON() ([]byte, error) { return appendV2(nil, &r) }

func (r *Response) appendJSON(b []byte) ([]byte, error) { return appendV2(b, r) }

type responseIn struct {
	ID                 string                     `json:"id"`
	Object             string                     `json:"object"`
	CreatedAt          float64                    `json:"created_at"`
	Status             string                     `json:"status"`
	Model              string                     `json:"model"`
	Output             []Item                     `json:"output"`
	Error              *ResponseError             `json:"error"`
	IncompleteDetails  jsontext.Value             `json:"incomplete_details"`
	Usage              *Usage                     `json:"usage"`
	Instructions       jsontext.Value             `json:"instructions"`
	Metadata           map[string]string          `json:"metadata"`
	ParallelToolCalls  *bool                      `json:"parallel_tool_calls"`
	ToolChoice         jsontext.Value             `json:"tool_choice"`
	Tools              []ToolSpec                 `json:"tools"`
	Temperature        *float64                   `json:"temperature"`
	TopP               *float64                   `json:"top_p"`
	MaxOutputTokens    *int                       `json:"max_output_tokens"`
	PreviousResponseID string                     `json:"previous_response_id"`
	Reasoning          jsontext.Value             `json:"reasoning"`
	Text               jsontext.Value             `json:"text"`
	Truncation         string                     `json:"truncation"`
	User               string                     `json:"user"`
	CustomOutputs      map[string]any             `json:"custom_outputs"`
	Extra              map[string]json.RawMessage `json:",embed"`
}

// UnmarshalJSONFrom reads a response in either dialect, keeping unknown members.
func (r *Response) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var in responseIn
	if err := jsonv2.UnmarshalDecode(dec, &in); err != nil {
		return err
	}
	*r = Response{ID: in.ID, Object: in.Object, CreatedAt: in.CreatedAt, Status: in.Status, Model: in.Model,
		Output: in.Output, Error: in.Error, IncompleteDetails: rawOrNil(in.IncompleteDetails), Usage: in.Usage,
		Metadata: in.Metadata, ParallelToolCalls: in.ParallelToolCalls, ToolChoice: rawOrNil(in.ToolChoice),
		Tools: in.Tools, Temperature: in.Temperature, TopP: in.TopP, MaxOutputTokens: in.MaxOutputTokens,
		PreviousResponseID: in.PreviousResponseID, Reasoning: rawOrNil(in.Reasoning), Text: rawOrNil(in.Text),
		Truncation: in.Truncation, User: in.User, CustomOutputs: in.CustomOutputs, Extra: in.Extra}
	if v := in.Instructions; len(v) > 0 {
		switch v[0] {
		case '"':
			if err := jsonv2.Unmarshal(v, &r.Instructions); err != nil {
				return err
			}
		case 'n':
		default: // OpenAI may echo instructions as a list of items; keep that form as extra
			if r.Extra == nil {
				r.Extra = make(map[string]json.RawMessage)
			}
			r.Extra["instructions"] = json.RawMessage(v)
		}
	}
	return nil
}

// UnmarshalJSON reads a response (for encoding/json callers).
func (r *Response) UnmarshalJSON(data []byte) error { return unmarshalV2(data, r) }

// ---- StreamEvent ----

type eventOut struct {
	Type            string                     `json:"type"`
	SequenceNumber  int                        `json:"sequence_number"`
	ItemID          *string                    `json:"item_id,omitzero"`
	OutputIndex     *int                       `json:"output_index,omitzero"`
	ContentIndex    *int                       `json:"content_index,omitzero"`
	SummaryIndex    *int                       `json:"summary_index,omitzero"`
	AnnotationIndex *int                       `json:"annotation_index,omitzero"`
	Name            string                     `json:"name,omitzero"`
	Delta           *string                    `json:"delta,omitzero"`
	Text            *string                    `json:"text,omitzero"`
	Arguments       *string                    `json:"arguments,omitzero"`
	Logprobs        jsontext.Value             `json:"logprobs,omitzero"`
	Item            *Item                      `json:"item,omitzero"`
	Part            *Part                      `json:"part,omitzero"`
	Annotation      *Annotation                `json:"annotation,omitzero"`
	Response        *Response                  `json:"response,omitzero"`
	Code            string                     `json:"code,omitzero"`
	Message         string                     `json:"message,omitzero"`
	Param           string                     `json:"param,omitzero"`
	CustomOutputs   map[string]any             `json:"custom_outputs,omitzero"`
	Extra           map[string]json.RawMessage `json:",embed"`
}

type errorOut struct {
	Type           string                     `json:"type"`
	SequenceNumber int                        `json:"sequence_number"`
	Code           *string                    `json:"code"`
	Message        string                     `json:"message"`
	Param          *string                    `json:"param"`
	Error          *errorInner                `json:"error,omitzero"`
	CustomOutputs  map[string]any             `json:"custom_outputs,omitzero"`
	Extra          map[string]json.RawMessage `json:",embed"`
}

type errorInner struct {
	Type    string  `json:"type"`
	Code    *string `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
}

func nilIfEmpty(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}

// MarshalJSONTo writes the event with the members its type carries.
func (e *StreamEvent) MarshalJSONTo(enc *jsontext.Encoder) error {
	if e.Type == wireproto.EventError {
		// OpenAI's error event at the top level, and the same facts nested
		// under "error" for clients that only look there.
		o := errorOut{Type: e.Type, SequenceNumber: e.SequenceNumber, Code: nilIfEmpty(&e.Code), Message: e.Message,
			Param: nilIfEmpty(&e.Param), CustomOutputs: e.CustomOutputs, Extra: e.Extra}
		if _, ok := e.Extra["error"]; !ok {
			o.Error = &errorInner{Type: errorType(e.Code), Code: o.Code, Message: e.Message, Param: o.Param}
		}
		return jsonv2.MarshalEncode(enc, &o)
	}
	o := eventOut{Type: e.Type, SequenceNumber: e.SequenceNumber, CustomOutputs: e.CustomOutputs, Extra: e.Extra}
	idx := func(content bool) {
		o.ItemID, o.OutputIndex = &e.ItemID, &e.OutputIndex
		if content {
			o.ContentIndex = &e.ContentIndex
		}
	}
	logprobs := func() {
		if _, ok := e.Extra["logprobs"]; !ok {
			o.Logprobs = litEmptyArray
		}
	}
	switch e.Type {
	case wireproto.EventCreated, wireproto.EventInProgress, wireproto.EventCompleted, wireproto.EventFailed, wireproto.EventIncomplete:
		o.Response = e.Response
	case wireproto.EventOutputItemAdded, EventOutputItemDone:
		o.OutputIndex, o.Item = &e.OutputIndex, e.Item
	case wireproto.EventContentPartAdded, wireproto.EventContentPartDone:
		idx(true)
		o.Part = e.Part
	case EventOutputTextDelta:
		idx(true)
		o.Delta = &e.Delta
		logprobs()
	case wireproto.EventOutputTextDone:
		idx(true)
		o.Text = &e.Text
		logprobs()
	case EventAnnotationAdded:
		idx(true)
		o.AnnotationIndex, o.Annotation = &e.AnnotationIndex, e.Annotation
	case wireproto.EventFunctionArgsDelta:
		idx(false)
		o.Delta = &e.Delta
	case wireproto.EventFunctionArgsDone:
		idx(false)
		o.Name, o.Arguments = e.Name, &e.Arguments
	case wireproto.EventReasoningTextDelta:
		idx(false)
		o.SummaryIndex, o.Delta = &e.SummaryIndex, &e.Delta
	case wireproto.EventReasoningTextDone:
		idx(false)
		o.SummaryIndex, o.Text = &e.SummaryIndex, &e.Text
	default:
		if e.ItemID != "" {
			o.ItemID = &e.ItemID
		}
		if e.ItemID != "" || e.OutputIndex != 0 {
			o.OutputIndex = &e.OutputIndex
		}
		if e.Delta != "" {
			o.Delta = &e.Delta
		}
		if e.Text != "" {
			o.Text = &e.Text
		}
		o.Item, o.Response = e.Item, e.Response
		o.Code, o.Message, o.Param = e.Code, e.Message, e.Param
	}
	return jsonv2.MarshalEncode(enc, &o)
}

// MarshalJSON writes the event (for encoding/json callers).
func (e StreamEvent) MarshalJSON() ([]byte, error) { return appendV2(nil, &e) }

func (e *StreamEvent) appendJSON(b []byte) ([]byte, error) { return appendV2(b, e) }

type eventIn struct {
	Type            string                     `json:"type"`
	SequenceNumber  int                        `json:"sequence_number"`
	ItemID          string                     `json:"item_id"`
	OutputIndex     int                        `json:"output_index"`
	ContentIndex    int                        `json:"content_index"`
	SummaryIndex    int                        `json:"summary_index"`
	Delta           jsontext.Value             `json:"delta"`
	Text            string                     `json:"text"`
	Item            *Item                      `json:"item"`
	Part            *Part                      `json:"part"`
	Response        *Response                  `json:"response"`
	Annotation      *Annotation                `json:"annotation"`
	AnnotationIndex int                        `json:"annotation_index"`
	Name            string                     `json:"name"`
	Arguments       string                     `json:"arguments"`
	Code            jsontext.Value             `json:"code"`
	Message         string                     `json:"message"`
	Param           string                     `json:"param"`
	CustomOutputs   map[string]any             `json:"custom_outputs"`
	Error           jsontext.Value             `json:"error"`
	Extra           map[string]json.RawMessage `json:",embed"`
}

// UnmarshalJSONFrom reads any event, keeping unknown members.
func (e *StreamEvent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var in eventIn
	if err := jsonv2.UnmarshalDecode(dec, &in); err != nil {
		return err
	}
	*e = StreamEvent{Type: in.Type, SequenceNumber: in.SequenceNumber, ItemID: in.ItemID, OutputIndex: in.OutputIndex,
		ContentIndex: in.ContentIndex, SummaryIndex: in.SummaryIndex, Text: in.Text, Item: in.Item, Part: in.Part,
		Response: in.Response, Annotation: in.Annotation, AnnotationIndex: in.AnnotationIndex, Name: in.Name,
		Arguments: in.Arguments, Message: in.Message, Param: in.Param, CustomOutputs: in.CustomOutputs, Extra: in.Extra}
	keep := func(k string, v jsontext.Value) {
		if e.Extra == nil {
			e.Extra = make(map[string]json.RawMessage)
		}
		e.Extra[k] = json.RawMessage(v)
	}
	for _, m := range []struct {
		k   string
		v   jsontext.Value
		dst *string
	}{{"delta", in.Delta, &e.Delta}, {"code", in.Code, &e.Code}} {
		switch {
		case len(m.v) == 0 || m.v[0] == 'n':
		case m.v[0] == '"':
			if err := jsonv2.Unmarshal(m.v, m.dst); err != nil {
				return err
			}
		default:
			keep(m.k, m.v) // not a string: keep verbatim
		}
	}
	if v := in.Error; len(v) > 0 && v[0] != 'n' {
		// The nested copy of an error event's facts is rebuilt on write;
		// MLflow's bare {"error": "…"} chunk becomes the message.
		keep("error", v)
		switch v[0] {
		case '"':
			if e.Message == "" {
				_ = jsonv2.Unmarshal(v, &e.Message)
			}
		case '{':
			var inner struct {
				Code    *string `json:"code"`
				Message string  `json:"message"`
				Param   *string `json:"param"`
			}
			if jsonv2.Unmarshal(v, &inner) == nil {
				delete(e.Extra, "error")
				if len(e.Extra) == 0 {
					e.Extra = nil
				}
				if e.Message == "" {
					e.Message = inner.Message
				}
				if e.Code == "" && inner.Code != nil {
					e.Code = *inner.Code
				}
				if e.Param == "" && inner.Param != nil {
					e.Param = *inner.Param
				}
			}
		}
	}
	if e.Type == "" && e.Message != "" {
		if _, ok := e.Extra["error"]; ok {
			e.Type = wireproto.EventError
		}
	}
	return nil
}

// UnmarshalJSON reads any event (for encoding/json callers).
func (e *StreamEvent) UnmarshalJSON(data []byte) error { return unmarshalV2(data, e) }

// fieldErr prefixes err with a path element.
func fieldErr(prefix string, err error) error { return wireproto.Prefix(prefix, err) }

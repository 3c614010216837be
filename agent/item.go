package agent

import (
	"bytes"
	"encoding/json"

	"github.com/agentrt/agentrt/internal/wireproto"
)

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
	Type   string // empty on an input message written in the "easy" form
	ID     string
	Status string

	// message
	Role    string
	Content Content // also the reasoning item's content

	// function_call, mcp_approval_request
	CallID    string
	Name      string
	Arguments string // JSON-encoded, as the protocol sends it

	// function_call_output (a string, or a list of parts in OpenAI's form)
	Output Content

	// reasoning
	Summary          []Part
	EncryptedContent string

	// mcp_approval_request / mcp_approval_response
	ServerLabel       string
	ApprovalRequestID string
	Approve           *bool
	Reason            string

	Extra map[string]json.RawMessage
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

// MarshalJSON writes the item with the members its type requires.
func (it Item) MarshalJSON() ([]byte, error) { return it.appendJSON(nil) }

func (it *Item) appendJSON(b []byte) ([]byte, error) {
	w := newObj(b)
	w.strOpt("type", it.Type)
	w.strOpt("id", it.ID)
	w.strOpt("status", it.Status)
	w.strOpt("role", it.Role)
	kind := it.Kind()
	if !it.Content.IsZero() {
		w.key("content")
		w.b = it.Content.appendJSON(w.b)
	} else if kind == TypeMessage {
		w.key("content")
		w.b = append(w.b, '[', ']')
	}
	w.strOpt("call_id", it.CallID)
	w.strOpt("name", it.Name)
	if it.Arguments != "" || kind == TypeFunctionCall || kind == TypeMCPApprovalRequest {
		w.str("arguments", it.Arguments)
	}
	if !it.Output.IsZero() {
		w.key("output")
		w.b = it.Output.appendJSON(w.b)
	} else if kind == TypeFunctionCallOutput {
		w.str("output", "")
	}
	if it.Summary != nil || kind == TypeReasoning {
		w.key("summary")
		w.b = appendParts(w.b, it.Summary)
	}
	w.strOpt("encrypted_content", it.EncryptedContent)
	if it.ServerLabel != "" || kind == TypeMCPApprovalRequest {
		w.str("server_label", it.ServerLabel)
	}
	w.strOpt("approval_request_id", it.ApprovalRequestID)
	w.boolPtr("approve", it.Approve)
	w.strOpt("reason", it.Reason)
	w.extra(it.Extra)
	return w.close()
}

// UnmarshalJSON reads any item. A known member whose value does not fit an
// item type we do not know is kept verbatim in Extra rather than rejected.
func (it *Item) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return it.decode(data)
}

func (it *Item) decode(data []byte) error {
	*it = Item{}
	// The type decides how strictly known members are read, so find it first.
	_, err := forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		if k == "type" {
			return true, decodeString(raw, &it.Type)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	knownType := false
	switch it.Type {
	case "", TypeMessage, TypeFunctionCall, TypeFunctionCallOutput, TypeReasoning,
		TypeMCPApprovalRequest, TypeMCPApprovalResponse:
		knownType = true
	}
	_, err = forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		var err error
		known := true
		switch k {
		case "type":
			return true, nil
		case "id":
			err = decodeString(raw, &it.ID)
		case "status":
			err = decodeString(raw, &it.Status)
		case "role":
			err = decodeString(raw, &it.Role)
		case "content":
			err = it.Content.decode(raw)
		case "call_id":
			err = decodeString(raw, &it.CallID)
		case "name":
			err = decodeString(raw, &it.Name)
		case "arguments":
			err = decodeString(raw, &it.Arguments)
		case "output":
			err = it.Output.decode(raw)
		case "summary":
			it.Summary, err = decodeList[Part](raw)
		case "encrypted_content":
			err = decodeString(raw, &it.EncryptedContent)
		case "server_label":
			err = decodeString(raw, &it.ServerLabel)
		case "approval_request_id":
			err = decodeString(raw, &it.ApprovalRequestID)
		case "approve":
			if !isNull(raw) {
				var v bool
				if err = decodeValue(raw, &v); err == nil {
					it.Approve = &v // not on error: the raw value goes to Extra instead
				}
			}
		case "reason":
			err = decodeString(raw, &it.Reason)
		default:
			known = false
		}
		if err != nil && knownType {
			return true, err
		}
		if !known || err != nil {
			if it.Extra == nil {
				it.Extra = make(map[string]json.RawMessage)
			}
			it.Extra[k] = cloneRaw(raw)
		}
		return true, nil
	})
	return err
}

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

// MarshalJSON writes the string or list form.
func (c Content) MarshalJSON() ([]byte, error) { return c.appendJSON(nil), nil }

func (c *Content) appendJSON(b []byte) []byte {
	if c.Parts == nil {
		return wireproto.AppendString(b, c.Text)
	}
	return appendParts(b, c.Parts)
}

// UnmarshalJSON accepts a string or a list of parts.
func (c *Content) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return c.decode(data)
}

func (c *Content) decode(data []byte) error {
	*c = Content{}
	data = bytes.TrimSpace(data)
	switch {
	case isNull(data):
		return nil
	case len(data) > 0 && data[0] == '"':
		c.present = true
		return decodeString(data, &c.Text)
	case len(data) > 0 && data[0] == '[':
		parts, err := decodeList[Part](data)
		if err != nil {
			return err
		}
		if parts == nil {
			parts = []Part{}
		}
		c.Parts, c.present = parts, true
		return nil
	default:
		return &wireproto.FieldError{Msg: "expected string or array, got " + wireproto.Kind(data)}
	}
}

func appendParts(b []byte, parts []Part) []byte {
	b = append(b, '[')
	for i := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = parts[i].appendJSON(b)
	}
	return append(b, ']')
}

// Part is one element of a content or summary list.
type Part struct {
	Type        string
	Text        string
	Annotations []Annotation // output_text
	Refusal     string       // refusal
	ImageURL    string       // input_image
	FileID      string       // input_image, input_file
	FileURL     string       // input_file
	FileData    string       // input_file
	Filename    string       // input_file
	Detail      string       // input_image
	Logprobs    json.RawMessage

	Extra map[string]json.RawMessage
}

// MarshalJSON writes the part with the members its type requires.
func (p Part) MarshalJSON() ([]byte, error) { return p.appendJSON(nil), nil }

func (p *Part) appendJSON(b []byte) []byte {
	w := newObj(b)
	w.str("type", p.Type)
	switch p.Type {
	case wireproto.PartOutputText:
		w.str("text", p.Text)
		w.key("annotations")
		w.b = append(w.b, '[')
		for i := range p.Annotations {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = p.Annotations[i].appendJSON(w.b)
		}
		w.b = append(w.b, ']')
		// OpenAI's OutputTextContent requires logprobs; we have none.
		if len(p.Logprobs) == 0 {
			w.key("logprobs")
			w.b = append(w.b, '[', ']')
		}
	case wireproto.PartInputText, wireproto.PartSummaryText, wireproto.PartReasoningText:
		w.str("text", p.Text)
	case wireproto.PartRefusal:
		w.str("refusal", p.Refusal)
	default:
		w.strOpt("text", p.Text)
		if p.Annotations != nil {
			w.value("annotations", p.Annotations)
		}
		w.strOpt("refusal", p.Refusal)
	}
	w.strOpt("image_url", p.ImageURL)
	w.strOpt("file_id", p.FileID)
	w.strOpt("file_url", p.FileURL)
	w.strOpt("file_data", p.FileData)
	w.strOpt("filename", p.Filename)
	w.strOpt("detail", p.Detail)
	w.raw("logprobs", p.Logprobs)
	w.extra(p.Extra)
	b, _ = w.close()
	return b
}

// UnmarshalJSON reads any part, keeping unknown members.
func (p *Part) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return p.decode(data)
}

func (p *Part) decode(data []byte) error {
	*p = Part{}
	extra, err := forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		switch k {
		case "type":
			return true, decodeString(raw, &p.Type)
		case "text":
			return true, decodeString(raw, &p.Text)
		case "annotations":
			var err error
			p.Annotations, err = decodeList[Annotation](raw)
			return true, err
		case "refusal":
			return true, decodeString(raw, &p.Refusal)
		case "image_url":
			return true, decodeString(raw, &p.ImageURL)
		case "file_id":
			return true, decodeString(raw, &p.FileID)
		case "file_url":
			return true, decodeString(raw, &p.FileURL)
		case "file_data":
			return true, decodeString(raw, &p.FileData)
		case "filename":
			return true, decodeString(raw, &p.Filename)
		case "detail":
			return true, decodeString(raw, &p.Detail)
		case "logprobs":
			p.Logprobs = cloneRaw(raw)
			return true, nil
		}
		return false, nil
	})
	p.Extra = extra
	return err
}

// Annotation is a citation attached to output text.
type Annotation struct {
	Type       string
	URL        string // url_citation
	Title      string // url_citation
	StartIndex *int   // url_citation
	EndIndex   *int   // url_citation
	FileID     string // file_citation, file_path
	Filename   string // file_citation
	Index      *int   // file_citation, file_path

	Extra map[string]json.RawMessage
}

// MarshalJSON writes the annotation.
func (a Annotation) MarshalJSON() ([]byte, error) { return a.appendJSON(nil), nil }

func (a *Annotation) appendJSON(b []byte) []byte {
	w := newObj(b)
	w.str("type", a.Type)
	w.strOpt("url", a.URL)
	w.strOpt("title", a.Title)
	w.intPtr("start_index", a.StartIndex)
	w.intPtr("end_index", a.EndIndex)
	w.strOpt("file_id", a.FileID)
	w.strOpt("filename", a.Filename)
	w.intPtr("index", a.Index)
	w.extra(a.Extra)
	b, _ = w.close()
	return b
}

// UnmarshalJSON reads any annotation, keeping unknown members.
func (a *Annotation) UnmarshalJSON(data []byte) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	return a.decode(data)
}

func (a *Annotation) decode(data []byte) error {
	*a = Annotation{}
	intp := func(raw json.RawMessage, dst **int) error {
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
	extra, err := forEachField(data, func(k string, raw json.RawMessage) (bool, error) {
		switch k {
		case "type":
			return true, decodeString(raw, &a.Type)
		case "url":
			return true, decodeString(raw, &a.URL)
		case "title":
			return true, decodeString(raw, &a.Title)
		case "start_index":
			return true, intp(raw, &a.StartIndex)
		case "end_index":
			return true, intp(raw, &a.EndIndex)
		case "file_id":
			return true, decodeString(raw, &a.FileID)
		case "filename":
			return true, decodeString(raw, &a.Filename)
		case "index":
			return true, intp(raw, &a.Index)
		}
		return false, nil
	})
	a.Extra = extra
	return err
}

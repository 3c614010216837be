package chat

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// Meta is the envelope of one completion, the same on every chunk of a
// stream.
type Meta struct {
	ID      string // "chatcmpl-" + 32 hex digits from NewMeta
	Created int64  // Unix seconds
	Model   string
}

// NewMeta returns the envelope of a completion created now.
func NewMeta(model string) Meta {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // never fails (Go 1.24+)
	var buf [48]byte
	id := hex.AppendEncode(append(buf[:0], "chatcmpl-"...), raw[:])
	return Meta{ID: string(id), Created: time.Now().Unix(), Model: model}
}

// Finish reasons.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishContentFilter = "content_filter"
)

// FinishReason is "stop", or for an incomplete response "length" (or
// "content_filter" when that is the reason it gives).
func FinishReason(resp *agent.Response) string {
	if resp.Status != wireproto.StatusIncomplete {
		return FinishStop
	}
	return incompleteReason(resp.IncompleteDetails)
}

func incompleteReason(details []byte) string {
	if bytes.Contains(details, []byte(`"content_filter"`)) {
		return FinishContentFilter
	}
	return FinishLength
}

// answer is what a chat client gets of a response: the text of its
// assistant messages, joined as Response.OutputText joins them, their
// refusals, and their URL citations.
type answer struct {
	text, refusal []byte
	citations     []agent.Annotation // indexes already shifted into text
}

func (an *answer) add(it *agent.Item) {
	if it.Kind() != agent.TypeMessage || (it.Role != "" && it.Role != "assistant") {
		return // the agent's own tool calls, their outputs, reasoning, …
	}
	if !it.Content.IsList() {
		an.text = append(an.text, it.Content.Text...)
		return
	}
	for i := range it.Content.Parts {
		p := &it.Content.Parts[i]
		switch p.Type {
		case wireproto.PartOutputText:
			shift := utf8.RuneCount(an.text)
			for _, a := range p.Annotations {
				if a.Type != wireproto.AnnotationURLCitation || a.URL == "" {
					continue
				}
				if shift > 0 {
					a.StartIndex, a.EndIndex = shifted(a.StartIndex, shift), shifted(a.EndIndex, shift)
				}
				an.citations = append(an.citations, a)
			}
			an.text = append(an.text, p.Text...)
		case wireproto.PartRefusal:
			an.refusal = append(an.refusal, p.Refusal...)
		}
	}
}

func shifted(p *int, by int) *int {
	if p == nil {
		return nil
	}
	v := *p + by
	return &v
}

// AppendCompletion appends the chat.completion object for resp to b. Usage
// is written when the agent reported it.
func AppendCompletion(b []byte, m Meta, resp *agent.Response) []byte {
	var an answer
	for i := range resp.Output {
		an.add(&resp.Output[i])
	}
	b = appendHead(b, m, "chat.completion")
	b = append(b, `{"index":0,"message":{"role":"assistant","content":`...)
	if len(an.text) == 0 && len(an.refusal) > 0 {
		b = append(b, "null"...)
	} else {
		b = wireproto.AppendString(b, unsafeString(an.text))
	}
	b = append(b, `,"refusal":`...)
	if len(an.refusal) > 0 {
		b = wireproto.AppendString(b, unsafeString(an.refusal))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"annotations":[`...)
	for i := range an.citations {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCitation(b, &an.citations[i])
	}
	b = append(b, `]},"logprobs":null,"finish_reason":`...)
	b = wireproto.AppendString(b, FinishReason(resp))
	b = append(b, "}]"...)
	if resp.Usage != nil {
		b = append(b, `,"usage":`...)
		b = appendUsage(b, resp.Usage)
	}
	return append(b, '}')
}

// appendHead writes the envelope up to the opening of choices.
func appendHead(b []byte, m Meta, object string) []byte {
	b = append(b, `{"id":`...)
	b = wireproto.AppendString(b, m.ID)
	b = append(b, `,"object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, m.Created, 10)
	b = append(b, `,"model":`...)
	b = wireproto.AppendString(b, m.Model)
	return append(b, `,"choices":[`...)
}

func appendCitation(b []byte, a *agent.Annotation) []byte {
	b = append(b, `{"type":"url_citation","url_citation":{"url":`...)
	b = wireproto.AppendString(b, a.URL)
	b = append(b, `,"title":`...)
	b = wireproto.AppendString(b, a.Title)
	b = append(b, `,"start_index":`...)
	b = strconv.AppendInt(b, int64(deref(a.StartIndex)), 10)
	b = append(b, `,"end_index":`...)
	b = strconv.AppendInt(b, int64(deref(a.EndIndex)), 10)
	return append(b, "}}"...)
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// appendUsage writes the Responses usage under the chat names; a missing
// total is the sum of the parts.
func appendUsage(b []byte, u *agent.Usage) []byte {
	total := u.TotalTokens
	if total == 0 {
		total = u.InputTokens + u.OutputTokens
	}
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokensDetails.CachedTokens), 10)
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokensDetails.ReasoningTokens), 10)
	return append(b, "}}"...)
}

// AppendModelList appends GET /v1/models's answer for a host that serves
// one agent: a list with one model object.
func AppendModelList(b []byte, id string, created int64) []byte {
	b = append(b, `{"object":"list","data":[`...)
	b = AppendModel(b, id, created)
	return append(b, "]}"...)
}

// OwnedBy is the owned_by of the model object of the served agent.
const OwnedBy = "agentrt"

// AppendModel appends the model object of the served agent.
func AppendModel(b []byte, id string, created int64) []byte {
	b = append(b, `{"id":`...)
	b = wireproto.AppendString(b, id)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"owned_by":"`+OwnedBy+`"}`...)
	return b
}

// unsafeString views b as a string for appendString, which only reads it
// while b is not written to.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

package chat

import (
	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// Stream turns the events of one agent stream into chat.completion.chunk
// SSE frames (data-only, as OpenAI sends them): a first chunk with the
// assistant role, one chunk per text delta, a chunk with the finish reason,
// with IncludeUsage a last chunk with empty choices and the usage, then
// data: [DONE]. Every method appends to b and returns it; a Stream is not
// safe for concurrent use.
type Stream struct {
	head         []byte // `data: {"id":…,"choices":[`, the same on every chunk
	includeUsage bool
	finish       string
	usage        *agent.Usage
	// Message items whose text already came as deltas, so that their
	// output_item.done adds nothing; anon stands for deltas without an
	// item id, which the next message done without an id completes.
	streamed []string
	anon     bool
}

// NewStream starts the stream of the completion m.
func NewStream(m Meta, includeUsage bool) *Stream {
	head := appendHead(append(make([]byte, 0, 128), "data: "...), m, "chat.completion.chunk")
	return &Stream{head: head, includeUsage: includeUsage, finish: FinishStop}
}

// Start appends the first chunk, which carries the role.
func (s *Stream) Start(b []byte) []byte {
	return s.chunk(b, `"role":"assistant","content":""`, "")
}

// Event appends the frames ev makes, if any: text deltas and the text of
// message items that arrive whole. The agent's tool calls, their outputs
// and its reasoning make none; a completed or incomplete response event
// gives the usage and the finish reason.
func (s *Stream) Event(b []byte, ev *agent.StreamEvent) []byte {
	switch ev.Type {
	case agent.EventOutputTextDelta:
		if ev.ItemID == "" {
			s.anon = true
		} else if !s.wasStreamed(ev.ItemID) {
			s.streamed = append(s.streamed, ev.ItemID)
		}
		if ev.Delta != "" {
			b = s.content(b, "content", ev.Delta)
		}
	case agent.EventOutputItemDone:
		it := ev.Item
		if it == nil || it.Kind() != agent.TypeMessage || (it.Role != "" && it.Role != "assistant") {
			break
		}
		var an answer
		an.add(it)
		switch {
		case it.ID != "" && s.wasStreamed(it.ID):
			s.forget(it.ID)
		case it.ID == "" && s.anon:
			s.anon = false
		default:
			if len(an.text) > 0 {
				b = s.content(b, "content", unsafeString(an.text))
			}
		}
		// Refusals only ever come whole.
		if len(an.refusal) > 0 {
			b = s.content(b, "refusal", unsafeString(an.refusal))
		}
	case wireproto.EventCompleted, wireproto.EventIncomplete, wireproto.EventFailed:
		if r := ev.Response; r != nil {
			if r.Usage != nil {
				s.usage = r.Usage
			}
			if ev.Type == wireproto.EventIncomplete || r.Status == wireproto.StatusIncomplete {
				s.finish = incompleteReason(r.IncompleteDetails)
			}
		}
	}
	return b
}

func (s *Stream) wasStreamed(id string) bool {
	for _, v := range s.streamed {
		if v == id {
			return true
		}
	}
	return false
}

func (s *Stream) forget(id string) {
	for i, v := range s.streamed {
		if v == id {
			s.streamed = append(s.streamed[:i], s.streamed[i+1:]...)
			return
		}
	}
}

// Finish appends the chunk with the finish reason, the usage chunk when it
// was asked for (zero counts if the agent reported none), and [DONE].
func (s *Stream) Finish(b []byte) []byte {
	b = s.chunk(b, "", s.finish)
	if s.includeUsage {
		b = append(b, s.head...)
		b = append(b, `],"usage":`...)
		u := s.usage
		if u == nil {
			u = &agent.Usage{}
		}
		b = appendUsage(b, u)
		b = append(b, "}\n\n"...)
	}
	return AppendDone(b)
}

// AppendError appends an error frame whose payload is body, an error body
// with an "error" object (internal/httperr's), which the OpenAI clients
// raise as an API error, then [DONE].
func AppendError(b, body []byte) []byte {
	b = append(b, "data: "...)
	b = append(b, body...)
	return AppendDone(append(b, "\n\n"...))
}

// AppendDone appends the frame that ends every stream.
func AppendDone(b []byte) []byte { return append(b, "data: [DONE]\n\n"...) }

func (s *Stream) content(b []byte, key, text string) []byte {
	b = append(b, s.head...)
	b = append(b, `{"index":0,"delta":{"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	b = wireproto.AppendString(b, text)
	return s.tail(b, "")
}

// chunk appends a chunk whose delta members are delta (raw JSON members).
func (s *Stream) chunk(b []byte, delta, finish string) []byte {
	b = append(b, s.head...)
	b = append(b, `{"index":0,"delta":{`...)
	b = append(b, delta...)
	return s.tail(b, finish)
}

func (s *Stream) tail(b []byte, finish string) []byte {
	b = append(b, `},"logprobs":null,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = wireproto.AppendString(b, finish)
	}
	b = append(b, '}', ']')
	if s.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	return append(b, "}\n\n"...)
}

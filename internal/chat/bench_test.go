package chat_test

import (
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/chat"
	"github.com/agentrt/agentrt/internal/wire"
)

// The same conversations in both wire formats, so that each chat
// sub-benchmark runs next to the Responses codec doing the same work.
var decodePairs = []struct{ name, chat, responses string }{
	{"small",
		`{"model":"echo","messages":[{"role":"user","content":"hello, how are you today?"}]}`,
		`{"model":"echo","input":[{"role":"user","content":"hello, how are you today?"}]}`},
	{"conversation",
		`{"model":"m","messages":[{"role":"system","content":"You answer questions about orders."},` +
			`{"role":"user","content":[{"type":"text","text":"Where is order 1234? It was due last week."}]},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup_order","arguments":"{\"id\":1234}"}}]},` +
			`{"role":"tool","tool_call_id":"c1","content":"{\"status\":\"shipped\",\"eta\":\"2026-12-03\"}"},` +
			`{"role":"assistant","content":"It shipped."},{"role":"user","content":"When does it arrive?"}],` +
			`"temperature":0.2,"max_completion_tokens":512,"metadata":{"conversation_id":"conv-1"},"user":"alice"}`,
		`{"model":"m","input":[{"role":"system","content":"You answer questions about orders."},` +
			`{"role":"user","content":[{"type":"input_text","text":"Where is order 1234? It was due last week."}]},` +
			`{"type":"function_call","call_id":"c1","name":"lookup_order","arguments":"{\"id\":1234}"},` +
			`{"type":"function_call_output","call_id":"c1","output":"{\"status\":\"shipped\",\"eta\":\"2026-12-03\"}"},` +
			`{"role":"assistant","content":"It shipped."},{"role":"user","content":"When does it arrive?"}],` +
			`"temperature":0.2,"max_output_tokens":512,"metadata":{"conversation_id":"conv-1"},"user":"alice"}`},
}

// BenchmarkDecode: a chat request decoded to the agent's request, against
// wire.DecodeRequest + Validate on the same conversation.
func BenchmarkDecode(b *testing.B) {
	for _, p := range decodePairs {
		b.Run(p.name+"/chat", func(b *testing.B) {
			body := []byte(p.chat)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := chat.DecodeRequest(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/responses", func(b *testing.B) {
			body := []byte(p.responses)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req, err := wire.DecodeRequest(body)
				if err == nil {
					err = wire.Validate(req)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode: a finished answer (tool call, output, message, usage)
// as a chat.completion, against the Responses object of the same answer.
func BenchmarkEncode(b *testing.B) {
	resp := answer()
	ptc := true
	resp.ID, resp.Object, resp.CreatedAt, resp.Model = "resp_1", "response", 1796000000, "assistant"
	resp.ParallelToolCalls, resp.ToolChoice, resp.Tools = &ptc, []byte(`"auto"`), []agent.ToolSpec{}
	m := chat.NewMeta("assistant")
	buf := make([]byte, 0, 4096)
	b.Run("chat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = chat.AppendCompletion(buf[:0], m, resp)
		}
	})
	b.Run("responses", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = wire.AppendResponse(buf[:0], resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStream: one streamed answer of 20 word deltas and its message
// item. chat is the whole chunk stream; responses is the encoding of the
// same agent events as Responses frames (the host adds its envelope events
// on top, which this leaves out).
func BenchmarkStream(b *testing.B) {
	var events []*agent.StreamEvent
	text := ""
	for range 20 {
		events = append(events, agent.TextDelta("word ", "msg_1"))
		text += "word "
	}
	events = append(events, agent.ItemDone(agent.TextItem("msg_1", text)))
	m := chat.NewMeta("assistant")
	buf := make([]byte, 0, 8192)
	b.Run("chat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := chat.NewStream(m, true)
			buf = s.Start(buf[:0])
			for _, ev := range events {
				buf = s.Event(buf, ev)
			}
			buf = s.Finish(buf)
		}
	})
	b.Run("responses", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = buf[:0]
			for i, ev := range events {
				ev.SequenceNumber = i
				buf = append(buf, "data: "...)
				var err error
				if buf, err = wire.AppendEvent(buf, ev); err != nil {
					b.Fatal(err)
				}
				buf = append(buf, '\n', '\n')
			}
			buf = append(buf, "data: [DONE]\n\n"...)
		}
	})
}

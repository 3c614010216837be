package agent_test

import (
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// decodeBodies are a minimal request and a fuller one with client tools,
// unknown members (kept as raw JSON) and MLflow extensions, so the cost of
// validating what the decoder keeps verbatim shows up.
var decodeBodies = []struct{ name, body string }{
	{"small", `{"model":"echo","input":[{"role":"user","content":"hello, how are you today?"}]}`},
	{"full", `{"model":"m","instructions":"Be brief.","input":[` +
		`{"role":"system","content":"You answer questions about orders."},` +
		`{"role":"user","content":[{"type":"input_text","text":"Where is order 1234? It was due last week."}]},` +
		`{"type":"function_call","call_id":"c1","name":"lookup_order","arguments":"{\"id\":1234}"},` +
		`{"type":"function_call_output","call_id":"c1","output":"{\"status\":\"shipped\",\"eta\":\"2026-12-03\"}"},` +
		`{"role":"assistant","content":[{"type":"output_text","text":"It shipped.","annotations":[]}],"x_vendor":{"a":[1,2,3],"b":"c"}}],` +
		`"tools":[{"type":"function","name":"lookup_order","description":"Look up an order by id.","parameters":{"type":"object","properties":{"id":{"type":"integer","description":"order id"}},"required":["id"]},"strict":true},` +
		`{"type":"web_search_preview","search_context_size":"low","user_location":{"type":"approximate","country":"DE"}}],` +
		`"tool_choice":"auto","temperature":0.2,"max_output_tokens":512,"metadata":{"conversation_id":"conv-1"},` +
		`"custom_inputs":{"k":[1,{"b":null}]},"context":{"conversation_id":"conv-1","user_id":"alice"},` +
		`"prompt_cache_key":"abc","service_tier":"auto","include":["reasoning.encrypted_content"]}`},
}

// BenchmarkDecodeRequest measures DecodeRequest + Validate, the decode work
// every request does before the agent runs.
func BenchmarkDecodeRequest(b *testing.B) {
	for _, tc := range decodeBodies {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
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

// encodeResponse is a finished response as the host sends it: a tool call,
// its output and an answer message, with usage.
func encodeResponse() *agent.Response {
	ptc := true
	return &agent.Response{
		ID: "resp_1", CreatedAt: 1796000000, Status: wireproto.StatusCompleted, Model: "assistant",
		ParallelToolCalls: &ptc, ToolChoice: []byte(`"auto"`), Tools: []agent.ToolSpec{},
		Output: []agent.Item{
			{Type: agent.TypeFunctionCall, ID: "fc_1", Status: wireproto.StatusCompleted, CallID: "call_1", Name: "lookup_order", Arguments: `{"id":1234}`},
			{Type: agent.TypeFunctionCallOutput, ID: "fco_1", Status: wireproto.StatusCompleted, CallID: "call_1", Output: agent.TextContent(`{"status":"shipped"}`)},
			agent.TextItem("msg_1", "Order 1234 shipped on Monday and arrives on Thursday."),
		},
		Usage: &agent.Usage{InputTokens: 120, OutputTokens: 30, TotalTokens: 150},
	}
}

// BenchmarkAppendResponse measures encoding a whole response (the JSON
// answer, and the response.completed event's payload).
func BenchmarkAppendResponse(b *testing.B) {
	r := encodeResponse()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = wire.AppendResponse(buf[:0], r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendEvents measures encoding the events of a short streamed
// message: item added, part added, deltas, text done, part done, item done.
func BenchmarkAppendEvents(b *testing.B) {
	msg := agent.TextItem("msg_1", "Order 1234 shipped on Monday.")
	added := agent.Item{Type: agent.TypeMessage, ID: "msg_1", Status: wireproto.StatusInProgress, Role: "assistant", Content: agent.PartsContent()}
	evs := []agent.StreamEvent{
		{Type: wireproto.EventOutputItemAdded, Item: &added},
		{Type: wireproto.EventContentPartAdded, ItemID: "msg_1", Part: &agent.Part{Type: wireproto.PartOutputText}},
		{Type: agent.EventOutputTextDelta, ItemID: "msg_1", Delta: "Order 1234 "},
		{Type: agent.EventOutputTextDelta, ItemID: "msg_1", Delta: "shipped on Monday."},
		{Type: wireproto.EventOutputTextDone, ItemID: "msg_1", Text: "Order 1234 shipped on Monday."},
		{Type: wireproto.EventContentPartDone, ItemID: "msg_1", Part: &msg.Content.Parts[0]},
		{Type: agent.EventOutputItemDone, Item: &msg},
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range evs {
			var err error
			if buf, err = wire.AppendEvent(buf, &evs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

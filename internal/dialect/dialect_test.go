package dialect_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/dialect"
	"github.com/agentrt/agentrt/internal/wireproto"
	"github.com/agentrt/agentrt/test/conformance"
)

// ranOne is an agent's output with one tool call it ran, one it leaves to
// the client, and an answer.
func ranOne() []agent.Item {
	failed := agent.FunctionCallOutputItem("call_2", "permission denied")
	failed.Status = wireproto.StatusIncomplete
	return []agent.Item{
		agent.FunctionCallItem("fc_1", "call_1", "search", `{"q":"x"}`),
		agent.FunctionCallItem("fc_2", "call_2", "lookup", `{}`),
		agent.FunctionCallOutputItem("call_1", "found it"),
		failed,
		agent.FunctionCallItem("fc_3", "call_3", "client_tool", `{"a":1}`),
		answer("done"),
	}
}

func answer(text string) agent.Item {
	it := agent.TextItem("msg_1", text)
	it.Status = wireproto.StatusCompleted // the host's envelope sets it
	return it
}

func types(items []agent.Item) []string {
	var ts []string
	for _, it := range items {
		ts = append(ts, it.Type)
	}
	return ts
}

func TestOutputMLflowUnchanged(t *testing.T) {
	in := ranOne()
	if got := dialect.Output(dialect.MLflow, "a", in); !reflect.DeepEqual(got, in) {
		t.Fatalf("MLflow output changed: %v", types(got))
	}
}

func TestOutputOpenAIFoldsExecutedCalls(t *testing.T) {
	in := ranOne()
	before, _ := json.Marshal(in)
	got := dialect.Output(dialect.OpenAI, "assistant", in)
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Fatal("Output modified its input")
	}
	want := []string{"mcp_call", "mcp_call", "function_call", "message"}
	if !reflect.DeepEqual(types(got), want) {
		t.Fatalf("types %v, want %v", types(got), want)
	}
	var ok, failed map[string]any
	b0, _ := json.Marshal(got[0])
	b1, _ := json.Marshal(got[1])
	json.Unmarshal(b0, &ok)
	json.Unmarshal(b1, &failed)
	if ok["id"] != "fc_1" || ok["name"] != "search" || ok["arguments"] != `{"q":"x"}` || ok["output"] != "found it" ||
		ok["server_label"] != "assistant" || ok["status"] != "completed" || ok["error"] != nil {
		t.Errorf("executed call: %s", b0)
	}
	if failed["status"] != "failed" || failed["output"] != nil {
		t.Errorf("failed call: %s", b1)
	}
	if e, _ := failed["error"].(map[string]any); e["message"] != "permission denied" {
		t.Errorf("failed call error: %s", b1)
	}
	spec, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range got {
		b, _ := json.Marshal(it)
		if err := spec.Validate("OutputItem", b); err != nil {
			t.Errorf("%s is not an OpenAI output item: %v", b, err)
		}
	}
}

// An output whose call is not in the response (answering a call from the
// input) has nothing to fold into and is kept.
func TestOutputKeepsUnmatchedOutput(t *testing.T) {
	in := []agent.Item{agent.FunctionCallOutputItem("call_9", "x"), agent.TextItem("m", "ok")}
	if got := dialect.Output(dialect.OpenAI, "a", in); !reflect.DeepEqual(types(got), []string{"function_call_output", "message"}) {
		t.Fatalf("types %v", types(got))
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]dialect.Dialect{"openai": dialect.OpenAI, " MLflow ": dialect.MLflow, "databricks": dialect.MLflow} {
		if d, err := dialect.Parse(in); err != nil || d != want {
			t.Errorf("Parse(%q) = %v, %v", in, d, err)
		}
	}
	if _, err := dialect.Parse("anthropic"); err == nil {
		t.Error("Parse accepted an unknown dialect")
	}
}

func TestStream(t *testing.T) {
	var got []*agent.StreamEvent
	next := func(ev *agent.StreamEvent) error { got = append(got, ev); return nil }
	emit, s := dialect.NewStream(dialect.OpenAI, "assistant", next)
	call := agent.FunctionCallItem("fc_1", "call_1", "search", `{"q":"x"}`)
	added := call
	added.Arguments = ""
	left := agent.FunctionCallItem("fc_2", "call_2", "client_tool", `{}`)
	done := agent.ItemDone(call)
	done.CustomOutputs = map[string]any{"k": "v"}
	for _, ev := range []*agent.StreamEvent{
		{Type: wireproto.EventOutputItemAdded, Item: &added},
		{Type: wireproto.EventFunctionArgsDelta, ItemID: "fc_1", Delta: `{"q":`},
		{Type: wireproto.EventFunctionArgsDone, ItemID: "fc_1", Arguments: `{"q":"x"}`},
		done,
		agent.ItemDone(left),
		agent.ItemDone(agent.FunctionCallOutputItem("call_1", "found it")),
		agent.TextDelta("hi", "msg_1"),
		agent.ItemDone(agent.TextItem("msg_1", "hi")),
	} {
		if err := emit(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, ev := range got {
		k := ev.Type
		if ev.Item != nil {
			k += ":" + ev.Item.Type
		}
		seq = append(seq, k)
	}
	want := []string{
		"response.output_item.done:mcp_call",
		"response.output_text.delta",
		"response.output_item.done:message",
		"response.output_item.done:function_call",
	}
	if !reflect.DeepEqual(seq, want) {
		t.Fatalf("events %v, want %v", seq, want)
	}
	if got[0].Item.Output.String() != "found it" || got[0].CustomOutputs["k"] != "v" {
		t.Errorf("mcp_call event lost its output or custom outputs: %+v", got[0])
	}
	if got[3].Item.CallID != "call_2" {
		t.Errorf("flushed call: %+v", got[3].Item)
	}
}

func TestStreamMLflowIsIdentity(t *testing.T) {
	n := 0
	next := func(*agent.StreamEvent) error { n++; return nil }
	emit, s := dialect.NewStream(dialect.MLflow, "a", next)
	if s != nil {
		t.Fatal("MLflow needs no Stream")
	}
	_ = emit(agent.ItemDone(agent.FunctionCallItem("fc", "c", "n", "{}")))
	if n != 1 || s.Flush() != nil {
		t.Fatal("MLflow emit is not the host's")
	}
}

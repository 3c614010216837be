package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/registry"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// canonical re-encodes JSON with sorted keys so that documents compare by
// content.
func canonical(t *testing.T, data []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", data, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestItemRoundTrip(t *testing.T) {
	tests := []string{
		`{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[{"type":"url_citation","url":"https://x","title":"t","start_index":0,"end_index":2}],"logprobs":[]}]}`,
		`{"role":"user","content":"plain string"}`,
		`{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"data:x","detail":"auto"}]}`,
		`{"type":"message","id":"m","role":"assistant","content":[{"type":"refusal","refusal":"no"}]}`,
		`{"type":"function_call","id":"fc_1","call_id":"c1","name":"f","arguments":"{\"a\":1}"}`,
		`{"type":"function_call_output","call_id":"c1","output":"42"}`,
		`{"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"42"}]}`,
		`{"type":"reasoning","id":"rs","summary":[{"type":"summary_text","text":"why"}],"encrypted_content":"zzz"}`,
		`{"type":"mcp_approval_request","id":"a","arguments":"{}","name":"t","server_label":"s"}`,
		`{"type":"mcp_approval_response","id":"b","approval_request_id":"a","approve":false,"reason":"no"}`,
		// Unknown types and members survive.
		`{"type":"web_search_call","id":"ws","status":"completed","action":{"type":"search","query":"q"}}`,
		`{"type":"future_item","id":"f","summary":"a string where we expect a list","weird":[1,2,{"x":null}]}`,
		`{"type":"message","id":"m","role":"assistant","content":[{"type":"output_text","text":"x","annotations":[],"logprobs":[{"token":"x"}],"vendor":{"a":1}}],"vendor_field":true}`,
	}
	for _, in := range tests {
		var it agent.Item
		if err := json.Unmarshal([]byte(in), &it); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		if canonical(t, out) != canonical(t, []byte(in)) {
			t.Errorf("round trip\n in: %s\nout: %s", in, out)
		}
	}
}

func TestHelpersMatchMLflow(t *testing.T) {
	tests := []struct {
		got  any
		want string
	}{
		// MLflow's helper writes no logprobs; OpenAI's OutputTextContent
		// requires them, and MLflow's reader ignores the member.
		{agent.TextItem("msg_1", "hi"), `{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[],"logprobs":[]}]}`},
		{agent.TextDelta("h", "msg_1"), `{"type":"response.output_text.delta","sequence_number":0,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"h","logprobs":[]}`},
		{agent.FunctionCallItem("fc", "c", "n", "{}"), `{"type":"function_call","id":"fc","call_id":"c","name":"n","arguments":"{}"}`},
		{agent.FunctionCallOutputItem("c", "out"), `{"type":"function_call_output","call_id":"c","output":"out"}`},
		{agent.ReasoningItem("rs", "r"), `{"type":"reasoning","id":"rs","summary":[{"type":"summary_text","text":"r"}]}`},
		{agent.MCPApprovalRequestItem("a", "{}", "n", "s"), `{"type":"mcp_approval_request","id":"a","arguments":"{}","name":"n","server_label":"s"}`},
		{agent.MCPApprovalResponseItem("b", "a", true, ""), `{"type":"mcp_approval_response","id":"b","approval_request_id":"a","approve":true}`},
		{agent.AnnotationAdded("m", agent.Annotation{Type: "url_citation", URL: "u", Title: "t"}, 1),
			`{"type":"response.output_text.annotation.added","sequence_number":0,"item_id":"m","output_index":0,"content_index":0,"annotation_index":1,"annotation":{"type":"url_citation","url":"u","title":"t"}}`},
		{agent.ItemDone(agent.FunctionCallOutputItem("c", "o")), `{"type":"response.output_item.done","sequence_number":0,"output_index":0,"item":{"type":"function_call_output","call_id":"c","output":"o"}}`},
	}
	for _, tc := range tests {
		out, err := json.Marshal(tc.got)
		if err != nil {
			t.Fatal(err)
		}
		if canonical(t, out) != canonical(t, []byte(tc.want)) {
			t.Errorf("got  %s\nwant %s", out, tc.want)
		}
	}
}

func TestStreamEventRoundTrip(t *testing.T) {
	tests := []string{
		`{"type":"response.output_text.delta","sequence_number":4,"item_id":"m","output_index":1,"content_index":0,"delta":"x","logprobs":[]}`,
		`{"type":"response.output_item.done","sequence_number":9,"output_index":0,"item":{"type":"function_call","id":"f","call_id":"c","name":"n","arguments":"{}"},"custom_outputs":{"k":[1,2]}}`,
		`{"type":"error","sequence_number":3,"code":"server_error","message":"boom","param":null,"error":{"type":"server_error","code":"server_error","message":"boom","param":null}}`,
		`{"type":"response.web_search_call.searching","sequence_number":2,"item_id":"ws","output_index":0,"vendor":"x"}`,
	}
	for _, in := range tests {
		var ev agent.StreamEvent
		if err := json.Unmarshal([]byte(in), &ev); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if canonical(t, out) != canonical(t, []byte(in)) {
			t.Errorf("round trip\n in: %s\nout: %s", in, out)
		}
	}
}

func TestRequestDialects(t *testing.T) {
	openAI := `{"model":"m","input":"hello","instructions":"be nice","metadata":{"conversation_id":"c9"},"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"auto","stream":true,"temperature":0.5,"include":["x"]}`
	req, err := wire.DecodeRequest([]byte(openAI))
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Validate(req); err != nil {
		t.Fatal(err)
	}
	if req.LastUserText() != "hello" || !req.Stream || req.Model != "m" || req.Instructions != "be nice" ||
		req.ConversationID() != "c9" || len(req.Tools) != 1 || *req.Temperature != 0.5 || req.Extra["include"] == nil {
		t.Errorf("decoded %+v", req)
	}
	out, _ := json.Marshal(req)
	if canonical(t, out) != canonical(t, []byte(openAI)) {
		t.Errorf("round trip\n in: %s\nout: %s", openAI, out)
	}

	mlflow := `{"input":[{"role":"user","content":"a"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"1"},{"role":"user","content":[{"type":"input_text","text":"last"}]}],"custom_inputs":{"k":"v"},"context":{"conversation_id":"conv","user_id":"u"}}`
	req, err = wire.DecodeRequest([]byte(mlflow))
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Validate(req); err != nil {
		t.Fatal(err)
	}
	if req.LastUserText() != "last" || req.ConversationID() != "conv" || req.CustomInputs["k"] != "v" || req.Context.UserID != "u" {
		t.Errorf("decoded %+v", req)
	}
	out, _ = json.Marshal(req)
	if canonical(t, out) != canonical(t, []byte(mlflow)) {
		t.Errorf("round trip\n in: %s\nout: %s", mlflow, out)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	tests := map[string]string{
		`{}`:                          "input",
		`{"input":[{"content":"x"}]}`: "input[0].type",
		`{"input":[{"role":"user"}]}`: "input[0].content",
		`{"input":[{"role":"user","content":[{"text":"x"}]}]}`:                                                            "input[0].content[0].type",
		`{"input":[{"type":"function_call_output","call_id":"c"}]}`:                                                       "input[0].output",
		`{"input":[{"type":"reasoning","id":"r"}]}`:                                                                       "input[0].summary",
		`{"input":[{"type":"mcp_approval_response","approval_request_id":"a"}]}`:                                          "input[0].approve",
		`{"input":[{"type":"mcp_approval_request","id":"a","name":"n"}]}`:                                                 "input[0].server_label",
		`{"input":[],"tools":[{"type":"function"}]}`:                                                                      "tools[0].name",
		`{"input":[{"role":"assistant","content":[{"type":"output_text","text":"x","annotations":[{"type":"bogus"}]}]}]}`: "input[0].content[0].annotations[0].type",
	}
	for body, field := range tests {
		req, err := wire.DecodeRequest([]byte(body))
		if err == nil {
			err = wire.Validate(req)
		}
		var fe *wire.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: error %v, want field %q", body, err, field)
		}
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	tests := map[string]string{
		`{"input":[{"role":"user","content":5}]}`:                    "input[0].content",
		`{"input":[{"role":"user","content":[{"type":1}]}]}`:         "input[0].content[0].type",
		`{"input":"x","metadata":{"a":1}}`:                           "metadata",
		`{"input":"x","temperature":"hot"}`:                          "temperature",
		`{"input":"x","tools":[{"type":"function","parameters":3}]}`: "tools[0].parameters",
		`nope`: "",
	}
	for body, field := range tests {
		_, err := wire.DecodeRequest([]byte(body))
		var fe *wire.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: error %v, want field %q", body, err, field)
		}
	}
}

type streamer struct{ events []*agent.StreamEvent }

func (s streamer) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	for _, ev := range s.events {
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}

func TestFromStreamKeepsOnlyDoneItems(t *testing.T) {
	done := agent.ItemDone(agent.TextItem("m1", "hello"))
	done.CustomOutputs = map[string]any{"a": 1.0}
	s := streamer{events: []*agent.StreamEvent{
		agent.TextDelta("hel", "m1"), agent.TextDelta("lo", "m1"), done,
		agent.ItemDone(agent.FunctionCallItem("f", "c", "n", "{}")),
		{Type: wireproto.EventCompleted, Response: &agent.Response{Usage: &agent.Usage{TotalTokens: 7}}},
	}}
	a := agent.FromStream(s)
	resp, err := a.Predict(context.Background(), &agent.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Output) != 2 || resp.OutputText() != "hello" || resp.CustomOutputs["a"] != 1.0 || resp.Usage.TotalTokens != 7 {
		t.Errorf("aggregated %+v", resp)
	}
	if _, ok := a.(agent.StreamAgent); !ok {
		t.Error("FromStream result no longer streams")
	}
}

func TestRegistry(t *testing.T) {
	newFn := func() (agent.Agent, error) { return nil, nil }
	agent.Register("registry-test", newFn)
	if _, ok := registry.Lookup("registry-test"); !ok {
		t.Fatal("Lookup failed")
	}
	if _, ok := registry.Lookup("absent"); ok {
		t.Fatal("Lookup found an absent name")
	}
	found := false
	for _, n := range registry.Names() {
		found = found || n == "registry-test"
	}
	if !found {
		t.Error("Names misses the agent")
	}
	for name, fn := range map[string]func(){
		"empty":     func() { agent.Register("", newFn) },
		"duplicate": func() { agent.Register("registry-test", newFn) },
		"nil":       func() { agent.Register("nil-fn", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestNewID(t *testing.T) {
	a, b := agent.NewID("msg"), agent.NewID("msg")
	if a == b || len(a) != len("msg_")+32 || !bytes.HasPrefix([]byte(a), []byte("msg_")) {
		t.Errorf("ids %q %q", a, b)
	}
}

func TestContentForms(t *testing.T) {
	var c agent.Content
	if !c.IsZero() || !reflect.DeepEqual(agent.TextContent("").IsZero(), false) {
		t.Error("zero/empty content confused")
	}
	out, _ := json.Marshal(agent.TextContent(""))
	if string(out) != `""` {
		t.Errorf("empty string content = %s", out)
	}
}

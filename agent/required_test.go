package agent_test

import (
	"encoding/json"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// TestResponseWritesRequiredMembers: the members OpenAI's Response schema
// requires are written even when unset (null, metadata {}), usage carries
// cache_write_tokens, and an echoed function tool carries strict and
// parameters; set values win, and reading the answer back gives the same
// response (the nulls read as unset). test/conformance checks the same
// against the published schema, end to end.
func TestResponseWritesRequiredMembers(t *testing.T) {
	empty := agent.Response{Usage: &agent.Usage{}, Tools: []agent.ToolSpec{{Type: "function", Name: "f"}}}
	got, err := json.Marshal(empty)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"object":"response","error":null,"incomplete_details":null,"instructions":null,"metadata":{},"output":[],` +
		`"temperature":null,"tools":[{"type":"function","name":"f","parameters":null,"strict":null}],"top_p":null,` +
		`"usage":{"input_tokens":0,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"output_tokens":0,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":0}}`
	if string(got) != want {
		t.Errorf("unset members:\n got %s\nwant %s", got, want)
	}

	temp, topP, strict := 0.5, 0.0, true
	set := agent.Response{
		Error:             &agent.ResponseError{Code: "server_error", Message: "m"},
		IncompleteDetails: json.RawMessage(`{"reason":"max_output_tokens"}`),
		Instructions:      "be brief", Metadata: map[string]string{"k": "v"}, Temperature: &temp, TopP: &topP,
		Tools: []agent.ToolSpec{{Type: "function", Name: "f", Parameters: json.RawMessage(`{"type":"object"}`), Strict: &strict}},
		Usage: &agent.Usage{InputTokens: 3, InputTokensDetails: agent.InputTokensDetails{CachedTokens: 1, CacheWriteTokens: 2}, OutputTokens: 4, TotalTokens: 7},
	}
	got, err = json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"object":"response","error":{"code":"server_error","message":"m"},"incomplete_details":{"reason":"max_output_tokens"},` +
		`"instructions":"be brief","metadata":{"k":"v"},"output":[],"temperature":0.5,` +
		`"tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":true}],"top_p":0,` +
		`"usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":1,"cache_write_tokens":2},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":7}}`
	if string(got) != want {
		t.Errorf("set members:\n got %s\nwant %s", got, want)
	}

	for _, r := range []agent.Response{empty, set} {
		first, _ := json.Marshal(r)
		var back agent.Response
		if err := json.Unmarshal(first, &back); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(first) {
			t.Errorf("round trip\n in: %s\nout: %s", first, again)
		}
	}

	// Instructions in OpenAI's list form are kept verbatim, not doubled by a null.
	var listForm agent.Response
	if err := json.Unmarshal([]byte(`{"instructions":[{"role":"developer","content":"x"}]}`), &listForm); err != nil {
		t.Fatal(err)
	}
	got, _ = json.Marshal(listForm)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(got, &m); err != nil || string(m["instructions"]) != `[{"role":"developer","content":"x"}]` {
		t.Errorf("list-form instructions: %s (%v)", got, err)
	}
}

// TestOutputTextPartWritesLogprobs: an output_text part always carries
// logprobs (OpenAI's OutputTextContent requires it), [] when the agent has
// none, and keeps the agent's own.
func TestOutputTextPartWritesLogprobs(t *testing.T) {
	for part, want := range map[*agent.Part]string{
		{Type: wireproto.PartOutputText}: `{"type":"output_text","text":"","annotations":[],"logprobs":[]}`,
		{Type: wireproto.PartOutputText, Text: "x", Logprobs: json.RawMessage(`[{"token":"x","logprob":0,"bytes":[120],"top_logprobs":[]}]`)}: `{"type":"output_text","text":"x","annotations":[],"logprobs":[{"token":"x","logprob":0,"bytes":[120],"top_logprobs":[]}]}`,
		{Type: wireproto.PartInputText, Text: "q"}: `{"type":"input_text","text":"q"}`,
	} {
		got, err := json.Marshal(part)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

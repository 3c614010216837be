package devworkspace

import (
	"encoding/json"
	"strings"
	"testing"
)

func userMsg(s string) chatMessage {
	b, _ := json.Marshal(s)
	return chatMessage{Role: "user", Content: b}
}

func tool(name, desc, params string) chatTool {
	var t chatTool
	t.Type = "function"
	t.Function.Name = name
	t.Function.Description = desc
	t.Function.Parameters = json.RawMessage(params)
	return t
}

var devTools = []chatTool{
	tool("main__tools__lookup_order", "Looks up an order by its id and returns status and amount",
		`{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}`),
	tool("search_docs", "Search the Kestrel product documentation",
		`{"type":"object","properties":{"limit":{"type":"integer"},"query":{"type":"string"}},"required":["limit","query"]}`),
	tool("get_time", "Current time", `{"type":"object","properties":{}}`),
	tool("count_things", "Counts widgets", `{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`),
}

func TestDevLLMChoosesTool(t *testing.T) {
	tests := []struct {
		user, choice, wantTool, wantArgs string
	}{
		{"Please look up order ORD-00042", "", "main__tools__lookup_order", `{"order_id":"Please look up order ORD-00042"}`},
		{"search the documentation for backups", "", "search_docs", `{"query":"search the documentation for backups"}`},
		{"what time is it", "", "get_time", `{}`},
		{"tell me a joke", "", "", ""},
		{"count widgets", "", "", ""}, // best tool has no string parameter to fill
		{"look up order 7", `"none"`, "", ""},
		{"tell me a joke", `"required"`, "main__tools__lookup_order", `{"order_id":"tell me a joke"}`},
		{"tell me a joke", `{"type":"function","function":{"name":"search_docs"}}`, "search_docs", `{"query":"tell me a joke"}`},
	}
	for _, tt := range tests {
		req := &chatRequest{Messages: []chatMessage{userMsg(tt.user)}, Tools: devTools, ToolChoice: json.RawMessage(tt.choice)}
		if err := validateChat(req); err != nil {
			t.Fatal(err)
		}
		r1, r2 := devLLM(req), devLLM(req)
		if tt.wantTool == "" {
			if len(r1.ToolCalls) != 0 || r1.FinishReason != "stop" || !strings.Contains(r1.Content, tt.user) {
				t.Errorf("%q: got %+v, want a plain answer quoting the question", tt.user, r1)
			}
			continue
		}
		if len(r1.ToolCalls) != 1 || r1.FinishReason != "tool_calls" {
			t.Fatalf("%q: got %+v, want one tool call", tt.user, r1)
		}
		tc := r1.ToolCalls[0]
		if tc.Function.Name != tt.wantTool || tc.Function.Arguments != tt.wantArgs || tc.Type != "function" {
			t.Errorf("%q: called %s(%s), want %s(%s)", tt.user, tc.Function.Name, tc.Function.Arguments, tt.wantTool, tt.wantArgs)
		}
		if !strings.HasPrefix(tc.ID, "call_") || tc.ID != r2.ToolCalls[0].ID {
			t.Errorf("call id %q not deterministic (%q)", tc.ID, r2.ToolCalls[0].ID)
		}
	}
}

func TestDevLLMSummarisesToolResults(t *testing.T) {
	first := devLLM(&chatRequest{Messages: []chatMessage{userMsg("look up order ORD-1")}, Tools: devTools})
	call := first.ToolCalls[0]
	long := strings.Repeat("x", 2000)
	content, _ := json.Marshal(`{"status":"SHIPPED"} ` + long)
	msgs := []chatMessage{
		userMsg("look up order ORD-1"),
		{Role: "assistant", ToolCalls: []chatToolCall{call}},
		{Role: "tool", ToolCallID: call.ID, Content: content},
	}
	got := devLLM(&chatRequest{Messages: msgs, Tools: devTools})
	if got.FinishReason != "stop" || len(got.ToolCalls) != 0 {
		t.Fatalf("after a tool result: %+v", got)
	}
	if !strings.Contains(got.Content, "main__tools__lookup_order") || !strings.Contains(got.Content, `{"status":"SHIPPED"}`) || !strings.Contains(got.Content, "…") || len(got.Content) > 1000 {
		t.Fatalf("summary = %q", got.Content)
	}
	// A different conversation gets a different call id.
	other := devLLM(&chatRequest{Messages: []chatMessage{userMsg("look up order ORD-2")}, Tools: devTools})
	if other.ToolCalls[0].ID == call.ID {
		t.Fatal("call ids collide across conversations")
	}
}

func TestValidateChat(t *testing.T) {
	bad := []chatRequest{
		{},
		{Messages: []chatMessage{{Role: "robot"}}},
		{Messages: []chatMessage{{Role: "tool"}}},
		{Messages: []chatMessage{userMsg("x")}, Tools: []chatTool{tool("", "", "")}},
		{Messages: []chatMessage{userMsg("x")}, Tools: []chatTool{tool("f", "", "[1]")}},
	}
	for i, r := range bad {
		if err := validateChat(&r); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	parts := chatMessage{Role: "user", Content: json.RawMessage(`[{"type":"text","text":"a"},{"type":"text","text":"b"}]`)}
	if parts.text() != "a\nb" {
		t.Fatalf("content parts = %q", parts.text())
	}
}

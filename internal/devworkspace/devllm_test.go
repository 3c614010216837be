package devworkspace

import (
	"encoding/json"
	"slices"
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
	tool("top_products", "The n best-selling products by revenue",
		`{"type":"object","properties":{"n":{"type":"integer","description":"How many products to return"}},"required":["n"]}`),
}

func TestDevLLMChoosesTool(t *testing.T) {
	tests := []struct {
		user, choice, wantTool, wantArgs string
	}{
		{"Please look up order ORD-00042", "", "main__tools__lookup_order", `{"order_id":"ORD-00042"}`},
		{"look up order 100042", "", "main__tools__lookup_order", `{"order_id":"100042"}`},
		{"search the documentation for backups", "", "search_docs", `{"limit":5,"query":"search the documentation for backups"}`},
		{`search the documentation for "disk backups", 3 results`, "", "search_docs", `{"limit":3,"query":"disk backups"}`},
		{"show the top 3 products", "", "top_products", `{"n":3}`},
		{"search 20 documents about backups", "", "search_docs", `{"limit":20,"query":"search 20 documents about backups"}`},
		{"what time is it", "", "get_time", `{}`},
		{"tell me a joke", "", "", ""},
		{"count widgets", "", "", ""}, // best tool needs an n the text does not give
		{"look up order 7", `"none"`, "", ""},
		{"tell me a joke", `"required"`, "main__tools__lookup_order", `{"order_id":"tell me a joke"}`},
		{"tell me a joke", `{"type":"function","function":{"name":"search_docs"}}`, "search_docs", `{"limit":5,"query":"tell me a joke"}`},
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

// answerFor runs one tool turn: the user's question, the model's call of
// tool, and out as the tool's result, after the earlier turns.
func answerFor(t *testing.T, earlier []chatMessage, question, tool, out string) string {
	t.Helper()
	var call chatToolCall
	call.ID, call.Type, call.Function.Name, call.Function.Arguments = "call_1", "function", tool, "{}"
	content, _ := json.Marshal(out)
	msgs := append(slices.Clone(earlier), userMsg(question),
		chatMessage{Role: "assistant", ToolCalls: []chatToolCall{call}},
		chatMessage{Role: "tool", ToolCallID: call.ID, Content: content})
	req := &chatRequest{Messages: msgs, Tools: devTools}
	got := devLLM(req)
	if got.FinishReason != "stop" || len(got.ToolCalls) != 0 {
		t.Fatalf("after a tool result: %+v", got)
	}
	if again := devLLM(req); again.Content != got.Content {
		t.Fatalf("not deterministic:\n%s\n---\n%s", got.Content, again.Content)
	}
	return got.Content
}

// The outputs below are what the dev workspace's tools return (tools/vectorsearch,
// tools/genie's Markdown, the UC functions over MCP).
const (
	docsOut = `[{"page_content":"The official image is kestrel/gateway. Start it with ` + "`docker run -p 8443:8443 kestrel/gateway:latest`" + `. Mount your gateway.yaml at /etc/gateway/gateway.yaml to override defaults. The container runs as a non-root user.","metadata":{"chunk_id":4,"doc_uri":"https://docs.kestrel.example/gateway/install-docker","title":"Running Kestrel Gateway in Docker"}},` +
		`{"page_content":"Kestrel Gateway reads its settings from gateway.yaml.","metadata":{"doc_uri":"https://docs.kestrel.example/gateway/config-file","title":"The gateway.yaml configuration file"}},` +
		`{"page_content":"Run kgw doctor.","metadata":{"title":"Troubleshooting"}},{"page_content":"Restore with kgw backup restore.","metadata":{"title":"Restoring"}}]`
	genieOut = "Revenue by region: 4 row(s). region=APAC, revenue=2574070.93. …\n\n## Description\nAnswers: What is the total revenue by region?\n\n## SQL\n```sql\nSELECT 1\n```\n\n## Result\n| region | revenue |\n| --- | ---: |\n| APAC | 2574070.93 |\n| NA | 2418026.04 |\n| LATAM | 2294164.49 |\n| EMEA | 2278702.59 |\n\nGenie conversation: 01f0conv"
	orderOut = "Order ORD-100042 placed on 2025-02-05 by Uma Okafor (Okafor Logistics) (NA, Mid-Market): 2 x Kestrel Forms Support Plan at 222.52 USD = 445.04 USD, status shipped"
	topOut   = `[{"category":"Security","product":"Kestrel Vault Enterprise","product_id":18,"revenue":813722.25,"units":827},{"category":"Networking","product":"Kestrel Gateway Enterprise","product_id":17,"revenue":777110.21,"units":811}]`
)

func TestDevLLMAnswersReadably(t *testing.T) {
	long := strings.Repeat("word ", 100) + "end"
	tests := []struct {
		name, question, tool, out string
		want                      []string
		not                       []string
	}{
		{"docs", "How do I install Kestrel Gateway?", "main__docs__product_docs_index", docsOut,
			[]string{`I found 4 passages in main.docs.product_docs_index for "How do I install Kestrel Gateway?":`,
				"- **Running Kestrel Gateway in Docker**: The official image is kestrel/gateway. Start it with `docker run -p 8443:8443 kestrel/gateway:latest`. Mount your gateway.yaml at /etc/gateway/gateway.yaml to override defaults. [1]",
				"- **The gateway.yaml configuration file**: Kestrel Gateway reads its settings from gateway.yaml. [2]",
				"- …and 1 more.",
				"[1] Running Kestrel Gateway in Docker — https://docs.kestrel.example/gateway/install-docker",
				"[3] Troubleshooting"},
			[]string{"page_content", "{", "Restoring", "non-root"}},
		{"genie", "What is the total revenue by region?", "ask_sales_genie", genieOut,
			[]string{"Revenue by region, from the Genie space (4 rows):", "- APAC: revenue 2,574,070.93 [1]", "- EMEA: revenue 2,278,702.59 [1]",
				"[1] Genie space query (Answers: What is the total revenue by region?)"},
			[]string{"SELECT", "|", "01f0conv"}},
		{"order", "look up order 100042", "main__tools__lookup_order", orderOut,
			[]string{orderOut + " [1]", "- Status: shipped", "- Amount: 445.04 USD", "- Date: 2025-02-05", "[1] main.tools.lookup_order"}, nil},
		{"table", "top 2 products", "main__tools__top_products", topOut,
			[]string{`main.tools.top_products returned 2 rows for "top 2 products":`,
				"- Kestrel Vault Enterprise: category Security, product_id 18, revenue 813,722.25, units 827"}, []string{"{"}},
		{"error", "look up order 100042", "main__tools__lookup_order", "Error: permission denied: PERMISSION_DENIED: carol may not",
			[]string{"I could not use main.tools.lookup_order: permission denied: PERMISSION_DENIED: carol may not."}, []string{"Sources"}},
		{"json object", "status?", "get_status", `{"state":"RUNNING","note":"` + long + `","n":3,"tags":["a","b"]}`,
			[]string{"get_status returned 4 fields:", `- state: "RUNNING"`, "- n: 3", "- tags: a list of 2 items", "- note: word word"},
			[]string{"end", `"word`}},
		{"long text", "q", "t", strings.Repeat("A fine sentence here. ", 40), []string{"A fine sentence here. A fine sentence here."}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := answerFor(t, nil, tt.question, tt.tool, tt.out)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("answer lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("answer has %q:\n%s", n, got)
				}
			}
			if strings.Contains(got, "earlier turn") {
				t.Errorf("no history, but the answer mentions it:\n%s", got)
			}
			// Every quote is closed: nothing was cut mid-string.
			if strings.Count(got, `"`)%2 != 0 {
				t.Errorf("unbalanced quotes:\n%s", got)
			}
		})
	}
}

func TestDevLLMSaysWhichTurnsItWasGiven(t *testing.T) {
	earlier := []chatMessage{
		{Role: "system", Content: json.RawMessage(`"be brief"`)},
		userMsg("How do I install Kestrel Gateway?"),
		{Role: "assistant", Content: json.RawMessage(`"Use the Docker image."`)},
		userMsg(strings.Repeat("very long question ", 20)),
	}
	got := answerFor(t, earlier, "look up order 100042", "main__tools__lookup_order", orderOut)
	want := `(I was given 3 earlier turns; you asked before: "How do I install Kestrel Gateway?", a long question.)`
	if !strings.HasSuffix(got, want) {
		t.Fatalf("answer does not end with %q:\n%s", want, got)
	}
	plain := devLLM(&chatRequest{Messages: append(slices.Clone(earlier[1:3]), userMsg("thanks"))})
	if !strings.HasSuffix(plain.Content, `(I was given 2 earlier turns; you asked before: "How do I install Kestrel Gateway?".)`) {
		t.Fatalf("plain answer: %q", plain.Content)
	}
}

func TestDevLLMAsksForAMissingValue(t *testing.T) {
	got := devLLM(&chatRequest{Messages: []chatMessage{userMsg("please look up an order")}, Tools: devTools})
	if len(got.ToolCalls) != 0 || !strings.Contains(got.Content, "main__tools__lookup_order I need the order_id") {
		t.Fatalf("got %+v", got)
	}
}

func TestDevLLMCallIDs(t *testing.T) {
	a := devLLM(&chatRequest{Messages: []chatMessage{userMsg("look up order ORD-1")}, Tools: devTools})
	b := devLLM(&chatRequest{Messages: []chatMessage{userMsg("look up order ORD-2")}, Tools: devTools})
	if a.ToolCalls[0].ID == b.ToolCalls[0].ID {
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

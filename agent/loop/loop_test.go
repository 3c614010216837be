package loop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/agent/loop"
	"github.com/agentrt/agentrt/internal/servingtest"
	"github.com/agentrt/agentrt/internal/wireproto"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/serving"
)

func model(t *testing.T, script ...servingtest.Reply) (*serving.Client, *servingtest.Server) {
	llm := servingtest.New(t, script...)
	c, err := serving.New(serving.Options{Endpoint: "scripted", BaseURL: llm.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return c, llm
}

func userReq(text string) *agent.Request {
	return &agent.Request{Input: []agent.Item{{Type: agent.TypeMessage, Role: "user", Content: agent.TextContent(text)}}}
}

// barrierTools returns two tools that each wait until both have started,
// so the test only passes when the loop runs them concurrently.
func barrierTools() []agent.Tool {
	var wg sync.WaitGroup
	wg.Add(2)
	mk := func(name string) agent.Tool {
		return tools.NewTool(agent.ToolDefinition{Name: name, Parameters: tools.ObjectSchema(map[string]string{"q": "query"}, "q")},
			func(ctx context.Context, args string) (string, error) {
				wg.Done()
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					return "", errors.New("ran alone: not parallel")
				}
				return name + " got " + args, nil
			})
	}
	return []agent.Tool{mk("docs"), mk("sales")}
}

func TestStreamParallelToolsThenAnswer(t *testing.T) {
	m, llm := model(t,
		servingtest.Reply{Calls: []servingtest.Call{{Name: "docs", Args: `{"q":"a"}`}, {Name: "sales", Args: `{"q":"b"}`}}},
		servingtest.Reply{Text: "Both tools answered."},
	)
	l, err := loop.New(loop.Options{Model: m, System: "be brief"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := agent.NewContext(context.Background(), &agent.Env{Tools: barrierTools()})
	var events []*agent.StreamEvent
	if err := l.PredictStream(ctx, userReq("hi"), func(ev *agent.StreamEvent) error {
		events = append(events, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var deltaIDs []string
	var text strings.Builder
	for _, ev := range events {
		switch ev.Type {
		case agent.EventOutputItemDone:
			kinds = append(kinds, ev.Item.Type)
		case agent.EventOutputTextDelta:
			deltaIDs = append(deltaIDs, ev.ItemID)
			text.WriteString(ev.Delta)
		}
	}
	if got := strings.Join(kinds, ","); got != "function_call,function_call,function_call_output,function_call_output,message" {
		t.Fatalf("items = %s", got)
	}
	// The last item; the agent's usage follows as its response.completed.
	if ev := events[len(events)-1]; ev.Type != "response.completed" || ev.Response.Usage == nil || ev.Response.Usage.TotalTokens == 0 {
		t.Errorf("stream does not end with the loop's usage: %+v", ev)
	}
	last := events[len(events)-2].Item
	if last.Text() != "Both tools answered." || text.String() != last.Text() {
		t.Errorf("final %q deltas %q", last.Text(), text.String())
	}
	for _, id := range deltaIDs {
		if id != last.ID {
			t.Errorf("delta item id %q != message id %q", id, last.ID)
		}
	}
	out0 := events[2].Item
	if out0.CallID != events[0].Item.CallID || out0.Output.String() != `docs got {"q":"a"}` {
		t.Errorf("first output = %+v", out0)
	}
	// The second model call saw the tool round in chat form.
	reqs := llm.Snapshot()
	if len(reqs) != 2 {
		t.Fatalf("model calls = %d", len(reqs))
	}
	msgs := reqs[1].Messages
	roles := []string{}
	for _, m := range msgs {
		roles = append(roles, m["role"].(string))
	}
	if strings.Join(roles, ",") != "system,user,assistant,tool,tool" {
		t.Errorf("roles = %v", roles)
	}
	if calls := msgs[2]["tool_calls"].([]any); len(calls) != 2 || msgs[2]["content"] != "tool call" {
		t.Errorf("assistant message = %v", msgs[2])
	}
	if len(reqs[0].Tools) != 2 {
		t.Errorf("tools offered = %d", len(reqs[0].Tools))
	}
}

func TestPredictToolErrorsBecomeOutputs(t *testing.T) {
	m, _ := model(t,
		servingtest.Reply{Calls: []servingtest.Call{{Name: "denied", Args: `{}`}, {Name: "panics", Args: `{}`}, {Name: "missing", Args: `{}`}}},
		servingtest.Reply{Text: "Sorry, I could not look that up."},
	)
	denied := tools.NewTool(agent.ToolDefinition{Name: "denied"}, func(context.Context, string) (string, error) {
		return "", fmt.Errorf("query: %w", &apierr.APIError{ErrorCode: "PERMISSION_DENIED", StatusCode: 403, Message: "no SELECT on index"})
	})
	panics := tools.NewTool(agent.ToolDefinition{Name: "panics"}, func(context.Context, string) (string, error) { panic("boom") })
	l, _ := loop.New(loop.Options{Model: m, Tools: []agent.Tool{denied, panics}})
	resp, err := l.Predict(context.Background(), userReq("hi"))
	if err != nil {
		t.Fatalf("a failing tool failed the request: %v", err)
	}
	outs := map[string]string{}
	for _, it := range resp.Output {
		if it.Type == agent.TypeFunctionCallOutput {
			outs[it.CallID] = it.Output.String()
		}
	}
	want := []string{"Error: permission denied: query: no SELECT on index", "Error: tool panicked: boom", `Error: unknown tool "missing"`}
	for i, w := range want {
		if got := outs[fmt.Sprintf("call_0_%d", i)]; !strings.HasPrefix(got, w) {
			t.Errorf("output %d = %q, want prefix %q", i, got, w)
		}
	}
	if resp.OutputText() != "Sorry, I could not look that up." || resp.Usage == nil || resp.Usage.TotalTokens != 30 {
		t.Errorf("text %q usage %+v", resp.OutputText(), resp.Usage)
	}
}

func TestIterationLimit(t *testing.T) {
	m, llm := model(t, servingtest.Reply{Calls: []servingtest.Call{{Name: "echo", Args: `{"q":"again"}`}}})
	echo := tools.NewTool(agent.ToolDefinition{Name: "echo"}, func(_ context.Context, a string) (string, error) { return a, nil })
	l, _ := loop.New(loop.Options{Model: m, Tools: []agent.Tool{echo}, MaxIterations: 3})
	resp, err := l.Predict(context.Background(), userReq("loop forever"))
	if err != nil {
		t.Fatal(err)
	}
	if len(llm.Snapshot()) != 3 || resp.OutputText() != fmt.Sprintf(loop.LimitMessage, 3) {
		t.Errorf("calls %d text %q", len(llm.Snapshot()), resp.OutputText())
	}
}

func TestModelFailureFailsRequest(t *testing.T) {
	m, _ := model(t, servingtest.Reply{Status: 500})
	l, _ := loop.New(loop.Options{Model: m})
	if _, err := l.Predict(context.Background(), userReq("hi")); err == nil {
		t.Fatal("model error swallowed")
	}
}

func TestEmitErrorStops(t *testing.T) {
	m, llm := model(t, servingtest.Reply{Text: "a b c d"})
	l, _ := loop.New(loop.Options{Model: m})
	gone := errors.New("client gone")
	err := l.PredictStream(context.Background(), userReq("hi"), func(*agent.StreamEvent) error { return gone })
	if !errors.Is(err, gone) || len(llm.Snapshot()) != 1 {
		t.Fatalf("err = %v", err)
	}
}

func TestMessages(t *testing.T) {
	yes := true
	req := &agent.Request{Instructions: "inst", Input: []agent.Item{
		{Role: "developer", Content: agent.TextContent("dev")},
		{Type: agent.TypeMessage, Role: "user", Content: agent.PartsContent(agent.Part{Type: wireproto.PartInputText, Text: "p1"}, agent.Part{Type: wireproto.PartInputText, Text: "p2"})},
		agent.ReasoningItem("r1", "thinking"),
		agent.FunctionCallItem("fc1", "c1", "a", ""),
		agent.FunctionCallItem("fc2", "c2", "b", `{"x":1}`),
		agent.FunctionCallOutputItem("c1", "out1"),
		agent.FunctionCallOutputItem("c2", "out2"),
		agent.MCPApprovalRequestItem("ap1", `{}`, "tool", "srv"),
		agent.MCPApprovalResponseItem("ar1", "ap1", yes, ""),
		agent.TextItem("m1", "answer"),
	}}
	msgs := loop.Messages("sys", req)
	var got []string
	for _, m := range msgs {
		s := m.Role + ":" + m.Content
		for _, tc := range m.ToolCalls {
			s += "[" + tc.ID + " " + tc.Function.Name + " " + tc.Function.Arguments + "]"
		}
		if m.ToolCallID != "" {
			s += "@" + m.ToolCallID
		}
		got = append(got, s)
	}
	b, _ := json.Marshal([]agent.Part{{Type: wireproto.PartSummaryText, Text: "thinking"}})
	want := []string{
		"system:sys", "system:inst", "system:dev", "user:p1", "user:p2", "assistant:" + string(b),
		`assistant:tool call[c1 a {}][c2 b {"x":1}]`, "tool:out1@c1", "tool:out2@c2",
		"assistant:tool call[ap1 tool {}]", "tool:True@ap1", "assistant:answer",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

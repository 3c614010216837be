package loop_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/agent/loop"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/tools"
)

func withClientAsks(text string, mutate func(*agent.Request)) *agent.Request {
	r := userReq(text)
	mutate(r)
	return r
}

func weatherTool() agent.ToolSpec {
	return agent.ToolSpec{Type: "function", Name: "weather", Description: "Weather for a city",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}
}

// The client's tools are offered with the agent's; a call to one ends the
// answer with its function_call (no output: the client runs it), while the
// agent's own calls of the same turn are run and answered.
func TestClientToolCallEndsTheAnswer(t *testing.T) {
	m := &fakeModel{steps: []step{
		{calls: []openai.ToolCall{call("c1", "lookup", `{"q":"a"}`), call("c2", "weather", `{"city":"Paris"}`)}},
	}}
	lookup := tools.NewTool(agent.ToolDefinition{Name: "lookup"}, func(context.Context, string) (string, error) { return "found", nil })
	l, _ := loop.New(loop.Options{Model: m})
	ctx := agent.NewContext(context.Background(), &agent.Env{Tools: []agent.Tool{lookup}})
	resp, err := l.Predict(ctx, withClientAsks("weather in Paris?", func(r *agent.Request) { r.Tools = []agent.ToolSpec{weatherTool()} }))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range resp.Output {
		got = append(got, it.Type+":"+it.Name+it.CallID)
	}
	want := "function_call:lookupc1|function_call:weatherc2|function_call_output:c1"
	if strings.Join(got, "|") != want {
		t.Fatalf("output %v, want %s", got, want)
	}
	if reqs := m.requests(); len(reqs) != 1 || len(reqs[0].Tools) != 2 || reqs[0].Tools[1].Function.Name != "weather" {
		t.Fatalf("model saw %+v", reqs)
	}

	// The client comes back with its output: the loop continues from it.
	m.steps = []step{{text: "Sunny in Paris."}}
	back := withClientAsks("weather in Paris?", func(r *agent.Request) {
		r.Tools = []agent.ToolSpec{weatherTool()}
		r.Input = append(r.Input, agent.FunctionCallItem("fc_2", "c2", "weather", `{"city":"Paris"}`),
			agent.FunctionCallOutputItem("c2", "sunny"))
	})
	resp, err = l.Predict(ctx, back)
	if err != nil || resp.OutputText() != "Sunny in Paris." {
		t.Fatalf("second turn: %v %+v", err, resp)
	}
	msgs := m.requests()[1].Messages
	if last := msgs[len(msgs)-1]; last.Role != openai.ChatMessageRoleTool || last.ToolCallID != "c2" || last.Content != "sunny" {
		t.Errorf("client output fed back as %+v", last)
	}
}

func TestToolChoice(t *testing.T) {
	for _, tc := range []struct {
		choice    string
		wantFirst any
		noTools   bool
	}{
		{`"required"`, "required", false},
		{`{"type":"function","name":"weather"}`, openai.ToolChoice{Type: openai.ToolTypeFunction, Function: openai.ToolFunction{Name: "weather"}}, false},
		{`"none"`, nil, true},
		{`"auto"`, nil, false},
	} {
		m := &fakeModel{steps: []step{{text: "ok"}}}
		l, _ := loop.New(loop.Options{Model: m})
		_, err := l.Predict(context.Background(), withClientAsks("q", func(r *agent.Request) {
			r.Tools = []agent.ToolSpec{weatherTool()}
			r.ToolChoice = json.RawMessage(tc.choice)
		}))
		if err != nil {
			t.Fatalf("%s: %v", tc.choice, err)
		}
		r0 := m.requests()[0]
		if tc.noTools != (len(r0.Tools) == 0) {
			t.Errorf("%s: tools %v", tc.choice, r0.Tools)
		}
		if !equalJSON(r0.ToolChoice, tc.wantFirst) {
			t.Errorf("%s: tool_choice %#v, want %#v", tc.choice, r0.ToolChoice, tc.wantFirst)
		}
	}
	// Forced only on the first call: the model may answer after the tool.
	m := &fakeModel{steps: []step{{calls: []openai.ToolCall{call("c1", "lookup", `{}`)}}, {text: "done"}}}
	lookup := tools.NewTool(agent.ToolDefinition{Name: "lookup"}, func(context.Context, string) (string, error) { return "x", nil })
	l, _ := loop.New(loop.Options{Model: m, Tools: []agent.Tool{lookup}})
	if _, err := l.Predict(context.Background(), withClientAsks("q", func(r *agent.Request) { r.ToolChoice = json.RawMessage(`"required"`) })); err != nil {
		t.Fatal(err)
	}
	if reqs := m.requests(); reqs[0].ToolChoice != "required" || reqs[1].ToolChoice != nil {
		t.Errorf("tool_choice per call: %v, %v", reqs[0].ToolChoice, reqs[1].ToolChoice)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestStructuredOutput(t *testing.T) {
	format := json.RawMessage(`{"format":{"type":"json_schema","name":"answer","strict":true,"schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}}}`)
	for _, tc := range []struct {
		text string
		ok   bool
	}{{`{"n":3}`, true}, {`{"n":"three"}`, false}, {`three`, false}} {
		m := &fakeModel{steps: []step{{text: tc.text}}}
		l, _ := loop.New(loop.Options{Model: m})
		resp, err := l.Predict(context.Background(), withClientAsks("q", func(r *agent.Request) { r.Text = format }))
		rf := m.requests()[0].ResponseFormat
		if rf == nil || rf.Type != openai.ChatCompletionResponseFormatTypeJSONSchema || rf.JSONSchema.Name != "answer" || !rf.JSONSchema.Strict {
			t.Fatalf("response_format sent %+v", rf)
		}
		if tc.ok {
			if err != nil || resp.OutputText() != tc.text {
				t.Errorf("%s: %v", tc.text, err)
			}
			continue
		}
		var he *httperr.Error
		if !errors.As(err, &he) || he.Status != 502 {
			t.Errorf("%s: err %v, want a 502 for an answer outside the schema", tc.text, err)
		}
	}
}

func TestClientAsksRefused(t *testing.T) {
	lookup := tools.NewTool(agent.ToolDefinition{Name: "lookup"}, func(context.Context, string) (string, error) { return "x", nil })
	for param, mutate := range map[string]func(*agent.Request){
		"tools[0].type":    func(r *agent.Request) { r.Tools = []agent.ToolSpec{{Type: "web_search"}} },
		"tools[0].name":    func(r *agent.Request) { r.Tools = []agent.ToolSpec{{Type: "function", Name: "lookup"}} },
		"tool_choice":      func(r *agent.Request) { r.ToolChoice = json.RawMessage(`{"type":"allowed_tools"}`) },
		"text.format.type": func(r *agent.Request) { r.Text = json.RawMessage(`{"format":{"type":"yaml"}}`) },
		"text.format.schema": func(r *agent.Request) {
			r.Text = json.RawMessage(`{"format":{"type":"json_schema","name":"x","schema":{"type":12}}}`)
		},
	} {
		m := &fakeModel{steps: []step{{text: "ok"}}}
		l, _ := loop.New(loop.Options{Model: m, Tools: []agent.Tool{lookup}})
		_, err := l.Predict(context.Background(), withClientAsks("q", mutate))
		var he *httperr.Error
		if !errors.As(err, &he) || he.Status != 400 || he.Param != param {
			t.Errorf("%s: err %v", param, err)
		}
	}
}

// A failed call's output is marked incomplete, so the OpenAI dialect shows
// it as the call's error; a good one is not.
func TestFailedCallIsMarked(t *testing.T) {
	m := &fakeModel{steps: []step{{calls: []openai.ToolCall{call("c1", "bad", `{}`), call("c2", "good", `{}`)}}, {text: "ok"}}}
	bad := tools.NewTool(agent.ToolDefinition{Name: "bad"}, func(context.Context, string) (string, error) { return "", errors.New("boom") })
	good := tools.NewTool(agent.ToolDefinition{Name: "good"}, func(context.Context, string) (string, error) { return "fine", nil })
	l, _ := loop.New(loop.Options{Model: m, Tools: []agent.Tool{bad, good}})
	resp, err := l.Predict(context.Background(), userReq("q"))
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, it := range resp.Output {
		if it.Type == agent.TypeFunctionCallOutput {
			status[it.CallID] = it.Status
		}
	}
	if status["c1"] != "incomplete" || status["c2"] == "incomplete" {
		t.Errorf("output statuses %v", status)
	}
}

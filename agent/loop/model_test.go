package loop_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/agent/loop"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/serving"
)

var _ loop.Model = (*serving.Client)(nil)

// step is one scripted answer of fakeModel.
type step struct {
	chunks []string // streamed through onChunk, then returned as the text
	text   string   // returned whole, never streamed
	calls  []openai.ToolCall
	err    error
}

// fakeModel is a Model written the way an author would wrap their own
// client: no HTTP, no tools/serving.
type fakeModel struct {
	mu    sync.Mutex
	steps []step
	reqs  []openai.ChatCompletionRequest
}

func (m *fakeModel) ChatStream(ctx context.Context, req openai.ChatCompletionRequest, onChunk func(*openai.ChatCompletionStreamResponse) error) (*openai.ChatCompletionResponse, error) {
	m.mu.Lock()
	m.reqs = append(m.reqs, req)
	if len(m.steps) == 0 {
		m.mu.Unlock()
		return nil, errors.New("fake model: script exhausted")
	}
	st := m.steps[0]
	m.steps = m.steps[1:]
	m.mu.Unlock()
	if st.err != nil {
		return nil, st.err
	}
	for _, c := range st.chunks {
		if err := onChunk(&openai.ChatCompletionStreamResponse{Choices: []openai.ChatCompletionStreamChoice{
			{Delta: openai.ChatCompletionStreamChoiceDelta{Content: c}}}}); err != nil {
			return nil, err
		}
	}
	text := st.text + strings.Join(st.chunks, "")
	return &openai.ChatCompletionResponse{
		Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant", Content: text, ToolCalls: st.calls}}},
		Usage:   openai.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5},
	}, nil
}

func (m *fakeModel) requests() []openai.ChatCompletionRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]openai.ChatCompletionRequest(nil), m.reqs...)
}

func call(id, name, args string) openai.ToolCall {
	return openai.ToolCall{ID: id, Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: name, Arguments: args}}
}

// An author's own model drives the whole loop: streamed text, a tool round,
// the tool's output fed back, usage summed over the model calls.
func TestAuthorModel(t *testing.T) {
	m := &fakeModel{steps: []step{
		{chunks: []string{"Let me ", "check."}, calls: []openai.ToolCall{call("c1", "lookup", `{"q":"o-1"}`)}},
		{chunks: []string{"Order o-1 ", "shipped."}},
	}}
	lookup := tools.NewTool(agent.ToolDefinition{Name: "lookup", Description: "Find an order",
		Parameters: tools.ObjectSchema(map[string]string{"q": "order id"}, "q")},
		func(_ context.Context, args string) (string, error) { return "shipped " + args, nil })
	l, err := loop.New(loop.Options{Model: m, System: "be brief", Temperature: 0.5, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx := agent.NewContext(context.Background(), &agent.Env{Tools: []agent.Tool{lookup}})
	var got []string
	err = l.PredictStream(ctx, userReq("where is o-1?"), func(ev *agent.StreamEvent) error {
		switch ev.Type {
		case agent.EventOutputTextDelta:
			got = append(got, "delta:"+ev.Delta)
		case agent.EventOutputItemDone:
			got = append(got, ev.Item.Type+":"+ev.Item.Text()+ev.Item.Output.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"delta:Let me ", "delta:check.", "message:Let me check.", "function_call:", `function_call_output:shipped {"q":"o-1"}`,
		"delta:Order o-1 ", "delta:shipped.", "message:Order o-1 shipped."}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
	reqs := m.requests()
	if len(reqs) != 2 {
		t.Fatalf("model calls = %d", len(reqs))
	}
	r0 := reqs[0]
	if len(r0.Tools) != 1 || r0.Tools[0].Function.Name != "lookup" || r0.Tools[0].Function.Description != "Find an order" ||
		r0.Temperature != 0.5 || r0.MaxTokens != 100 || r0.Messages[0].Content != "be brief" {
		t.Errorf("first request = %+v", r0)
	}
	last := reqs[1].Messages[len(reqs[1].Messages)-1]
	if last.Role != openai.ChatMessageRoleTool || last.ToolCallID != "c1" || last.Content != `shipped {"q":"o-1"}` {
		t.Errorf("tool output fed back as %+v", last)
	}

	m.steps = []step{{chunks: []string{"Hello."}}}
	resp, err := l.Predict(ctx, userReq("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "Hello." || resp.Usage == nil || resp.Usage.TotalTokens != 5 {
		t.Errorf("predict: text %q usage %+v", resp.OutputText(), resp.Usage)
	}
}

// A model that does not stream still answers, in one piece, on both paths;
// so does one that returns nothing at all.
func TestModelWithoutStreaming(t *testing.T) {
	m := &fakeModel{steps: []step{{text: "Whole answer."}, {text: ""}}}
	l, _ := loop.New(loop.Options{Model: m})
	var items []*agent.Item
	if err := l.PredictStream(context.Background(), userReq("hi"), func(ev *agent.StreamEvent) error {
		if ev.Type == agent.EventOutputTextDelta {
			t.Errorf("unexpected delta %q", ev.Delta)
		}
		if ev.Type == agent.EventOutputItemDone {
			items = append(items, ev.Item)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Type != agent.TypeMessage || items[0].Text() != "Whole answer." {
		t.Errorf("items = %+v", items)
	}
	resp, err := l.Predict(context.Background(), userReq("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Output) != 1 || resp.Output[0].Type != agent.TypeMessage || resp.OutputText() != "" {
		t.Errorf("empty answer: output = %+v", resp.Output)
	}
}

type busyErr struct{}

func (busyErr) Error() string             { return "model busy" }
func (busyErr) RetryAfter() time.Duration { return 2 * time.Second }

// A model's error reaches the host unchanged (so a RetryAfter method still
// makes a 503); a nil response is an error, not a panic; an emit error
// returned through onChunk stops the request.
func TestModelErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		emit  error
		check func(error) bool
	}{
		{"retryable", []step{{err: fmt.Errorf("endpoint x: %w", busyErr{})}}, nil,
			func(err error) bool { var b busyErr; return errors.As(err, &b) }},
		{"nil response", nil, nil,
			func(err error) bool { return err != nil }},
		{"client gone", []step{{chunks: []string{"a", "b"}}}, context.Canceled,
			func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m loop.Model = &fakeModel{steps: tc.steps}
			if tc.name == "nil response" {
				m = nilModel{}
			}
			l, _ := loop.New(loop.Options{Model: m})
			err := l.PredictStream(context.Background(), userReq("hi"), func(*agent.StreamEvent) error { return tc.emit })
			if !tc.check(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
	if _, err := loop.New(loop.Options{}); err == nil {
		t.Error("New without a model succeeded")
	}
}

type nilModel struct{}

func (nilModel) ChatStream(context.Context, openai.ChatCompletionRequest, func(*openai.ChatCompletionStreamResponse) error) (*openai.ChatCompletionResponse, error) {
	return nil, nil
}

// callerModel answers as whoever the request's env says the caller is: a
// model may choose per request from ctx, and is called concurrently.
type callerModel struct{}

func (callerModel) ChatStream(ctx context.Context, _ openai.ChatCompletionRequest, onChunk func(*openai.ChatCompletionStreamResponse) error) (*openai.ChatCompletionResponse, error) {
	text := "hello " + agent.FromContext(ctx).Caller.PrincipalID
	return &openai.ChatCompletionResponse{Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Content: text}}}}, nil
}

func TestModelSeesRequestEnv(t *testing.T) {
	l, _ := loop.New(loop.Options{Model: callerModel{}})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id := fmt.Sprintf("p%d", i)
			ctx := agent.NewContext(context.Background(), &agent.Env{Caller: agent.Caller{Identity: agent.Identity{PrincipalID: id}}})
			resp, err := l.Predict(ctx, userReq("hi"))
			if err != nil {
				t.Errorf("%s: %v", id, err)
			} else if resp.OutputText() != "hello "+id {
				t.Errorf("%s: %q", id, resp.OutputText())
			}
		})
	}
	wg.Wait()
}

// Package loop runs the tool-calling loop of an agent: it turns the request's
// Responses items into chat messages, asks a Model (any OpenAI-compatible
// client) with the prepared tools, runs the tools the model calls (in
// parallel when it asks for several) and repeats until the model answers or
// a limit is hit.
//
// Everything it produces is emitted as stream events (text deltas, then
// output_item.done for messages, function calls and their outputs), so one
// Loop serves both Predict and PredictStream. A failing tool becomes a
// function_call_output carrying the error, never a failed request.
package loop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/payloads"
	"github.com/agentrt/agentrt/internal/wireproto"
	"github.com/agentrt/agentrt/tools"
)

const instrumentation = "github.com/agentrt/agentrt/agent/loop"

// Options configure a Loop.
type Options struct {
	// Model answers and chooses tools. Required; *serving.Client is one.
	Model Model
	// System is the system prompt, sent before the request's instructions.
	System string
	// Tools overrides the request's prepared tools (env.Tools).
	Tools []agent.Tool
	// MaxIterations bounds the model calls of one request. Default 8.
	MaxIterations int
	// ToolTimeout bounds one tool call. Default 60s.
	ToolTimeout time.Duration
	// MaxToolOutputBytes cuts longer tool outputs (with a note) before they
	// reach the model and the response. Default 32 KiB.
	MaxToolOutputBytes int
	// Temperature and MaxTokens are passed to the model when set.
	Temperature float32
	MaxTokens   int
}

// Loop is an agent.Agent and agent.StreamAgent running the tool loop. It is
// safe for concurrent use; it keeps no state between requests. The tools
// come from the request's agent.Env (env.Tools, prepared by the host) unless
// Options.Tools is set.
type Loop struct{ o Options }

// New returns a Loop; it fails when no model is configured.
func New(o Options) (*Loop, error) {
	if o.Model == nil {
		return nil, errors.New("loop: Options.Model is required")
	}
	if o.MaxIterations <= 0 {
		o.MaxIterations = 8
	}
	if o.ToolTimeout <= 0 {
		o.ToolTimeout = 60 * time.Second
	}
	if o.MaxToolOutputBytes <= 0 {
		o.MaxToolOutputBytes = 32 << 10
	}
	return &Loop{o: o}, nil
}

// Predict implements agent.Agent by folding its own stream, as the host
// folds it (agent.FromStream).
func (l *Loop) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	var usage openai.Usage
	resp, err := agent.FromStream(streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
		var err error
		usage, err = l.run(ctx, req, emit)
		return err
	})).Predict(ctx, req)
	if err != nil {
		return nil, err
	}
	if usage.TotalTokens > 0 {
		resp.Usage = &agent.Usage{InputTokens: usage.PromptTokens, OutputTokens: usage.CompletionTokens, TotalTokens: usage.TotalTokens}
	}
	return resp, nil
}

// streamFunc adapts a function to agent.StreamAgent.
type streamFunc func(ctx context.Context, req *agent.Request, emit agent.Emit) error

func (f streamFunc) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	return f(ctx, req, emit)
}

// PredictStream implements agent.StreamAgent.
func (l *Loop) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	usage, err := l.run(ctx, req, emit)
	if err != nil || usage.TotalTokens == 0 {
		return err
	}
	// The model's usage, summed over the loop, as the agent's own
	// response.completed: the host keeps it for the answer's usage.
	return emit(&agent.StreamEvent{Type: wireproto.EventCompleted, Response: &agent.Response{Usage: &agent.Usage{
		InputTokens: usage.PromptTokens, OutputTokens: usage.CompletionTokens, TotalTokens: usage.TotalTokens}}})
}

// LimitMessage is the final answer when the model keeps calling tools past
// MaxIterations.
const LimitMessage = "I could not finish: the tool-calling limit of %d model calls was reached before a final answer. Please narrow the question or try again."

func (l *Loop) run(ctx context.Context, req *agent.Request, emit agent.Emit) (openai.Usage, error) {
	var total openai.Usage
	if req == nil {
		return total, errors.New("loop: nil request")
	}
	ts := l.o.Tools
	if ts == nil {
		ts = agent.FromContext(ctx).Tools
	}
	byName := make(map[string]agent.Tool, len(ts))
	for _, t := range ts {
		byName[t.Definition().Name] = t
	}
	asks, err := readAsks(req, byName)
	if err != nil {
		return total, err
	}
	ctx = tools.WithConversationID(ctx, req.ConversationID())

	msgs := Messages(l.o.System, req)
	toolList := append(chatTools(ts), asks.tools...)
	if asks.none {
		toolList = nil
	}
	for iter := 0; iter < l.o.MaxIterations; iter++ {
		creq := openai.ChatCompletionRequest{Messages: msgs, Temperature: l.o.Temperature, MaxTokens: l.o.MaxTokens,
			ResponseFormat: asks.format}
		if len(toolList) > 0 {
			creq.Tools = toolList
			if iter == 0 && asks.choice != nil { // later calls may answer
				creq.ToolChoice = asks.choice
			}
		}
		msgID := agent.NewID("msg")
		streamed := false
		out, err := l.o.Model.ChatStream(ctx, creq, func(ch *openai.ChatCompletionStreamResponse) error {
			for _, c := range ch.Choices {
				if c.Delta.Content != "" {
					streamed = true
					if err := emit(agent.TextDelta(c.Delta.Content, msgID)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		if out == nil {
			return total, errors.New("loop: the model returned no response")
		}
		total.PromptTokens += out.Usage.PromptTokens
		total.CompletionTokens += out.Usage.CompletionTokens
		total.TotalTokens += out.Usage.TotalTokens
		if len(out.Choices) == 0 {
			return total, errors.New("loop: the model returned no choices")
		}
		msg := out.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			if err := asks.check(msg.Content); err != nil {
				return total, err
			}
		}
		if msg.Content != "" || (len(msg.ToolCalls) == 0 && streamed) {
			if err := emit(agent.ItemDone(agent.TextItem(msgID, msg.Content))); err != nil {
				return total, err
			}
		}
		if len(msg.ToolCalls) == 0 {
			if msg.Content == "" && !streamed {
				// An empty answer still ends the turn with a message.
				if err := emit(agent.ItemDone(agent.TextItem(msgID, ""))); err != nil {
					return total, err
				}
			}
			return total, nil
		}
		calls := msg.ToolCalls
		for i := range calls {
			if calls[i].ID == "" {
				calls[i].ID = agent.NewID("call")
			}
			if calls[i].Function.Arguments == "" {
				calls[i].Function.Arguments = "{}"
			}
			c := calls[i]
			if err := emit(agent.ItemDone(agent.FunctionCallItem(agent.NewID("fc"), c.ID, c.Function.Name, c.Function.Arguments))); err != nil {
				return total, err
			}
		}
		// Calls to the client's tools are the client's to run: the answer
		// ends with them, and the client sends their outputs back.
		var own []openai.ToolCall
		for _, c := range calls {
			if !asks.names[c.Function.Name] {
				own = append(own, c)
			}
		}
		results := l.callTools(ctx, byName, own)
		for i, c := range own {
			item := agent.FunctionCallOutputItem(c.ID, results[i].output)
			if results[i].failed {
				item.Status = wireproto.StatusIncomplete // the OpenAI dialect shows it as the call's error
			}
			if err := emit(agent.ItemDone(item)); err != nil {
				return total, err
			}
		}
		if len(own) < len(calls) {
			return total, nil
		}
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: placeholder(msg.Content), ToolCalls: calls})
		for i, c := range calls {
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, Content: results[i].output, ToolCallID: c.ID})
		}
	}
	id := agent.NewID("msg")
	text := fmt.Sprintf(LimitMessage, l.o.MaxIterations)
	if err := emit(agent.TextDelta(text, id)); err != nil {
		return total, err
	}
	return total, emit(agent.ItemDone(agent.TextItem(id, text)))
}

// placeholder keeps an assistant tool-call message non-empty: some models
// (Claude among them) reject empty content.
func placeholder(s string) string {
	if s == "" {
		return "tool call"
	}
	return s
}

// result is a tool call's output, and whether the call failed (its output
// then describes the error).
type result struct {
	output string
	failed bool
}

// callTools runs the calls concurrently and returns their results in order.
func (l *Loop) callTools(ctx context.Context, byName map[string]agent.Tool, calls []openai.ToolCall) []result {
	out := make([]result, len(calls))
	call := func(i int) {
		out[i].output, out[i].failed = l.callTool(ctx, byName, calls[i])
	}
	if len(calls) == 1 {
		call(0)
		return out
	}
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() { call(i) })
	}
	wg.Wait()
	return out
}

func (l *Loop) callTool(ctx context.Context, byName map[string]agent.Tool, c openai.ToolCall) (output string, failed bool) {
	name := c.Function.Name
	ctx, span := otel.Tracer(instrumentation).Start(ctx, "tool.call", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", name),
		attribute.String("gen_ai.tool.call.id", c.ID)))
	record := span.IsRecording() && payloads.Enabled(ctx)
	if record { // opt-in attributes of the GenAI conventions
		span.SetAttributes(attribute.String("gen_ai.tool.call.arguments", clip(c.Function.Arguments)))
	}
	start := time.Now()
	var err error
	defer func() {
		if record {
			span.SetAttributes(attribute.String("gen_ai.tool.call.result", clip(output)))
		}
		attrs := []attribute.KeyValue{attribute.String("tool", name)}
		if err != nil {
			kind := string(tools.Classify(err))
			attrs = append(attrs, attribute.String("error.type", kind))
			span.RecordError(err)
			span.SetStatus(codes.Error, kind)
		}
		callDuration().Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
		span.End()
	}()
	t, ok := byName[name]
	if !ok {
		err = fmt.Errorf("unknown tool %q", name)
		return "Error: " + err.Error() + "; it is not available for this request.", true
	}
	tctx, cancel := context.WithTimeout(ctx, l.o.ToolTimeout)
	defer cancel()
	res, err := safeCall(tctx, t, c.Function.Arguments)
	if err != nil {
		return ErrorOutput(err), true
	}
	return truncate(res, l.o.MaxToolOutputBytes), false
}

func safeCall(ctx context.Context, t agent.Tool, args string) (res string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("tool panicked: %v", v)
		}
	}()
	return t.Call(ctx, args)
}

// ErrorOutput is the function_call_output text for a failed tool call.
func ErrorOutput(err error) string {
	switch tools.Classify(err) {
	case tools.ReasonPermissionDenied:
		return "Error: permission denied: " + err.Error()
	case tools.ReasonUnauthenticated:
		return "Error: not authenticated: " + err.Error()
	case tools.ReasonTimeout:
		return "Error: the tool timed out: " + err.Error()
	}
	return "Error: " + err.Error()
}

// maxPayload bounds a recorded argument or result; backends reject or cut
// huge attributes anyway.
const maxPayload = 8 << 10

func clip(s string) string {
	if len(s) <= maxPayload {
		return s
	}
	return truncate(s, maxPayload)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && (s[cut]&0xC0) == 0x80 {
		cut-- // do not split a UTF-8 sequence
	}
	return s[:cut] + fmt.Sprintf("\n[output cut: %d of %d bytes shown]", cut, len(s))
}

// Messages converts a request to chat messages following MLflow's
// responses_to_cc rules, with one improvement: consecutive function_call
// items become one assistant message with several tool calls, as OpenAI's
// chat format requires for parallel calls.
func Messages(system string, req *agent.Request) []openai.ChatCompletionMessage {
	var msgs []openai.ChatCompletionMessage
	if system != "" {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: system})
	}
	if req.Instructions != "" {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: req.Instructions})
	}
	addCall := func(id, name, args string) {
		if args == "" {
			args = "{}"
		}
		tc := openai.ToolCall{ID: id, Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: name, Arguments: args}}
		if n := len(msgs); n > 0 && msgs[n-1].Role == openai.ChatMessageRoleAssistant && len(msgs[n-1].ToolCalls) > 0 {
			msgs[n-1].ToolCalls = append(msgs[n-1].ToolCalls, tc)
			return
		}
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: "tool call", ToolCalls: []openai.ToolCall{tc}})
	}
	for i := range req.Input {
		it := &req.Input[i]
		switch it.Kind() {
		case agent.TypeMessage:
			role := it.Role
			if role == "developer" {
				role = openai.ChatMessageRoleSystem
			}
			if it.Content.IsList() {
				for _, p := range it.Content.Parts {
					text := p.Text
					if p.Type == wireproto.PartRefusal {
						text = p.Refusal
					}
					msgs = append(msgs, openai.ChatCompletionMessage{Role: role, Content: text})
				}
				continue
			}
			msgs = append(msgs, openai.ChatCompletionMessage{Role: role, Content: it.Content.Text})
		case agent.TypeFunctionCall:
			addCall(it.CallID, it.Name, it.Arguments)
		case agent.TypeMCPApprovalRequest:
			addCall(it.ID, it.Name, it.Arguments)
		case agent.TypeFunctionCallOutput:
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, Content: it.Output.String(), ToolCallID: it.CallID})
		case agent.TypeMCPApprovalResponse:
			approve := it.Approve != nil && *it.Approve
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, Content: pyBool(approve), ToolCallID: it.ApprovalRequestID})
		case agent.TypeReasoning:
			b, _ := json.Marshal(it.Summary)
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: string(b)})
		}
	}
	return msgs
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

var (
	histOnce sync.Once
	hist     metric.Float64Histogram
)

func callDuration() metric.Float64Histogram {
	histOnce.Do(func() {
		hist, _ = otel.Meter(instrumentation).Float64Histogram("agentrt.tool.call.duration",
			metric.WithUnit("s"), metric.WithDescription("Duration of tool calls made by the agent loop."))
	})
	return hist
}

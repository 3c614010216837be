package loop_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/agent/loop"
	"github.com/agentrt/agentrt/internal/payloads"
	"github.com/agentrt/agentrt/internal/servingtest"
	"github.com/agentrt/agentrt/tools"
)

func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer otel.SetTracerProvider(prev)

	m, _ := model(t, servingtest.Reply{Calls: []servingtest.Call{{Name: "echo", Args: `{}`}}}, servingtest.Reply{Text: "done"})
	echo := tools.NewTool(agent.ToolDefinition{Name: "echo"}, func(_ context.Context, a string) (string, error) { return a, nil })
	l, _ := loop.New(loop.Options{Model: m, Tools: []agent.Tool{echo}})
	if _, err := l.Predict(context.Background(), userReq("hi")); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]map[string]string{}
	for _, s := range rec.Ended() {
		a := map[string]string{}
		for _, kv := range s.Attributes() {
			a[string(kv.Key)] = kv.Value.Emit()
		}
		attrs[s.Name()] = a
	}
	if a := attrs["tool.call"]; a["gen_ai.tool.name"] != "echo" {
		t.Errorf("tool.call attributes = %v", a)
	}
	if a := attrs["chat scripted"]; a["gen_ai.operation.name"] != "chat" || a["gen_ai.request.model"] != "scripted" ||
		a["gen_ai.usage.input_tokens"] != "10" || a["gen_ai.usage.output_tokens"] != "5" {
		t.Errorf("chat span attributes = %v (spans %v)", a, attrs)
	}
	for _, k := range []string{"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"} {
		if v, ok := attrs["tool.call"][k]; ok {
			t.Errorf("%s = %q recorded without payload tracing", k, v)
		}
	}
}

// TestToolPayloads: with payload recording on for the request (internal/payloads), tool arguments and
// results are on the tool.call span (the GenAI conventions' opt-in
// attributes), cut at 8 KiB.
func TestToolPayloads(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer otel.SetTracerProvider(prev)

	big := strings.Repeat("x", 10<<10)
	m, _ := model(t, servingtest.Reply{Calls: []servingtest.Call{{Name: "echo", Args: `{"q":"refund policy"}`}, {Name: "big", Args: `{}`}}},
		servingtest.Reply{Text: "done"})
	echo := tools.NewTool(agent.ToolDefinition{Name: "echo"}, func(_ context.Context, a string) (string, error) { return "got " + a, nil })
	bigTool := tools.NewTool(agent.ToolDefinition{Name: "big"}, func(context.Context, string) (string, error) { return big, nil })
	l, _ := loop.New(loop.Options{Model: m, Tools: []agent.Tool{echo, bigTool}})
	ctx := payloads.NewContext(context.Background(), true)
	if _, err := l.Predict(ctx, userReq("hi")); err != nil {
		t.Fatal(err)
	}
	byTool := map[string]map[string]string{}
	for _, s := range rec.Ended() {
		if s.Name() != "tool.call" {
			continue
		}
		a := map[string]string{}
		for _, kv := range s.Attributes() {
			a[string(kv.Key)] = kv.Value.Emit()
		}
		byTool[a["gen_ai.tool.name"]] = a
	}
	if a := byTool["echo"]; a["gen_ai.tool.call.arguments"] != `{"q":"refund policy"}` || a["gen_ai.tool.call.result"] != `got {"q":"refund policy"}` {
		t.Errorf("echo tool.call attributes %v", a)
	}
	if r := byTool["big"]["gen_ai.tool.call.result"]; len(r) > 9<<10 || !strings.HasPrefix(r, "xxxx") || !strings.Contains(r, "cut") {
		t.Errorf("big result recorded as %d bytes, want it cut near 8 KiB", len(r))
	}
}

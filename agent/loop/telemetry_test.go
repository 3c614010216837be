package loop_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/agent/loop"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/serving/servingtest"
)

func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer otel.SetTracerProvider(prev)

	m, _ := model(t, servingtest.Reply{Calls: []servingtest.Call{{Name: "echo", Args: `{}`}}}, servingtest.Reply{Text: "done"})
	echo := tools.Func{Def: agent.ToolDefinition{Name: "echo"}, Fn: func(_ context.Context, a string) (string, error) { return a, nil }}
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
}

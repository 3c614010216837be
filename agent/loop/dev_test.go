package loop_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/agent/loop"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/serving"
)

// TestDevLLM runs the loop against the dev workspace's deterministic
// tool-calling model: it calls the matching tool with the user's text, then
// summarises the result; a tool failing mid-call is summarised too.
func TestDevLLM(t *testing.T) {
	ws, err := devworkspace.Start(context.Background(), devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	sys, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: ws.URL(), ClientID: "agent-sp",
		ClientSecret: "agent-sp-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	llm, err := serving.New(serving.Options{Endpoint: "dev-llm", Workspace: sys.Client()})
	if err != nil {
		t.Fatal(err)
	}
	weather := tools.NewTool(agent.ToolDefinition{Name: "get_weather", Description: "Current weather for a city",
		Parameters: tools.ObjectSchema(map[string]string{"city": "city name"}, "city")},
		func(_ context.Context, args string) (string, error) { return "Sunny, 21 C in " + args, nil })
	broken := tools.NewTool(agent.ToolDefinition{Name: "stock_price", Description: "Stock price of a ticker symbol",
		Parameters: tools.ObjectSchema(map[string]string{"ticker": "symbol"}, "ticker")},
		func(context.Context, string) (string, error) { return "", errors.New("market data feed is down") })
	l, err := loop.New(loop.Options{Model: llm, Tools: []agent.Tool{weather, broken}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ question, tool, output string }{
		{"What is the weather in Paris today?", "get_weather", "Sunny, 21 C"},
		{"What is the stock price of ACME?", "stock_price", "Error: market data feed is down"},
	} {
		resp, err := l.Predict(context.Background(), userReq(tc.question))
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, it := range resp.Output {
			kinds = append(kinds, it.Type)
		}
		if strings.Join(kinds, ",") != "function_call,function_call_output,message" {
			t.Fatalf("%s: items = %v", tc.question, kinds)
		}
		if resp.Output[0].Name != tc.tool || !strings.Contains(resp.Output[1].Output.String(), tc.output) {
			t.Errorf("%s: call %s output %q", tc.question, resp.Output[0].Name, resp.Output[1].Output.String())
		}
		if !strings.Contains(resp.OutputText(), strings.TrimPrefix(tc.output, "Error: ")) {
			t.Errorf("%s: answer does not use the result: %q", tc.question, resp.OutputText())
		}
	}
}

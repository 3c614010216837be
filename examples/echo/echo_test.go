package echo_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/registry"
)

func TestEcho(t *testing.T) {
	req := new(agent.Request)
	err := json.Unmarshal([]byte(`{"input":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":"one two  three"}]}`), req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := echo.Agent{}.Predict(context.Background(), req)
	if err != nil || resp.OutputText() != "echo: one two  three" {
		t.Fatalf("Predict = %q, %v", resp.OutputText(), err)
	}
	var deltas []string
	var done *agent.Item
	err = echo.Agent{}.PredictStream(context.Background(), req, func(ev *agent.StreamEvent) error {
		switch ev.Type {
		case agent.EventOutputTextDelta:
			deltas = append(deltas, ev.Delta)
		case agent.EventOutputItemDone:
			done = ev.Item
		}
		return nil
	})
	if err != nil || done == nil {
		t.Fatalf("PredictStream: %v", err)
	}
	if strings.Join(deltas, "") != done.Text() || done.Text() != "echo: one two  three" || len(deltas) < 4 {
		t.Errorf("deltas %q, done %q", deltas, done.Text())
	}
	if _, ok := registry.Lookup("echo"); !ok {
		t.Error("echo is not registered")
	}
}

func TestEchoStopsWhenEmitFails(t *testing.T) {
	req := new(agent.Request)
	_ = json.Unmarshal([]byte(`{"input":"a b c"}`), req)
	calls := 0
	err := echo.Agent{}.PredictStream(context.Background(), req, func(*agent.StreamEvent) error {
		calls++
		return context.Canceled
	})
	if err != context.Canceled || calls != 1 {
		t.Errorf("err %v after %d emits", err, calls)
	}
}

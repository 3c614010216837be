package greeter_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/customserve/greeter"
	"github.com/agentrt/agentrt/internal/registry"
)

func TestGreeter(t *testing.T) {
	if !slices.Contains(registry.Names(), greeter.Name) {
		t.Fatalf("importing greeter did not register %q: %v", greeter.Name, registry.Names())
	}
	newFn, _ := registry.Lookup(greeter.Name)
	a, err := newFn.(func() (agent.Agent, error))()
	if err != nil {
		t.Fatal(err)
	}
	req := new(agent.Request)
	err = json.Unmarshal([]byte(`{"input":"hi"}`), req)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		caller agent.Caller
		want   string
	}{
		{"anonymous", agent.Caller{}, "Hello, there! You said: hi"},
		{"user name", agent.Caller{Identity: agent.Identity{UserName: "alice@example.com"}}, "Hello, alice@example.com! You said: hi"},
		{"display name wins", agent.Caller{Identity: agent.Identity{UserName: "bob@example.com", DisplayName: "Bob"}}, "Hello, Bob! You said: hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := agent.NewContext(context.Background(), &agent.Env{Caller: tt.caller})
			resp, err := a.Predict(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.OutputText(); got != tt.want {
				t.Errorf("Predict = %q, want %q", got, tt.want)
			}
		})
	}
}

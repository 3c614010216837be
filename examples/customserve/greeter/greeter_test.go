package greeter_test

import (
	"context"
	"slices"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/customserve/greeter"
)

func TestGreeter(t *testing.T) {
	if !slices.Contains(agent.Names(), greeter.Name) {
		t.Fatalf("importing greeter did not register %q: %v", greeter.Name, agent.Names())
	}
	newFn, _ := agent.Lookup(greeter.Name)
	a, err := newFn()
	if err != nil {
		t.Fatal(err)
	}
	req, err := agent.DecodeRequest([]byte(`{"input":"hi"}`))
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

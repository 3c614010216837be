package main

import (
	"slices"
	"testing"

	"github.com/agentrt/agentrt/agent"
)

// TestShippedAgents pins what the stock serve binary can run by name.
func TestShippedAgents(t *testing.T) {
	if !slices.Contains(agent.Names(), "echo") {
		t.Errorf("registered agents %v lack echo", agent.Names())
	}
}

package main

import (
	"slices"
	"testing"

	"github.com/agentrt/agentrt/internal/registry"
)

// TestShippedAgents pins what the stock serve binary can run by name.
func TestShippedAgents(t *testing.T) {
	if !slices.Contains(registry.Names(), "echo") {
		t.Errorf("registered agents %v lack echo", registry.Names())
	}
}

package agent

import "github.com/agentrt/agentrt/internal/registry"

// Register makes an agent constructor available under name, for hosts that
// select agents by name (serve --agent NAME). Call it from an init function.
// It panics on an empty name, a nil constructor or a name registered twice,
// since each is a programming error best caught at start-up.
//
// The host calls newFn once, at start-up, before Provision; an error stops
// the host from serving and is reported naming the agent.
func Register(name string, newFn func() (Agent, error)) {
	if newFn == nil {
		registry.Add(name, nil) // panics, naming name
	}
	registry.Add(name, newFn)
}

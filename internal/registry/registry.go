// Package registry holds the agents compiled into a binary, by name:
// agent.Register adds to it (from an init function), and the host's loader
// looks names up in it. It sits below package agent, so the constructors
// are stored as any; Lookup's caller asserts them to
// func() (agent.Agent, error).
package registry

import (
	"fmt"
	"slices"
	"sync"
)

var registry = struct {
	sync.RWMutex
	m map[string]any
}{m: make(map[string]any)}

// Add registers newFn under name. It panics on an empty name, a nil
// constructor or a name registered twice, since each is a programming error
// best caught at start-up.
func Add(name string, newFn any) {
	if name == "" {
		panic("agent: Register with an empty name")
	}
	if newFn == nil {
		panic(fmt.Sprintf("agent: Register(%q) with a nil constructor", name))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		panic(fmt.Sprintf("agent: Register called twice for %q", name))
	}
	registry.m[name] = newFn
}

// Lookup returns the constructor registered under name.
func Lookup(name string) (newFn any, ok bool) {
	registry.RLock()
	defer registry.RUnlock()
	newFn, ok = registry.m[name]
	return newFn, ok
}

// Names lists the registered names in order.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

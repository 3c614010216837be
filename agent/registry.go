package agent

import (
	"fmt"
	"slices"
	"sync"
)

var registry = struct {
	sync.RWMutex
	m map[string]func() (Agent, error)
}{m: make(map[string]func() (Agent, error))}

// Register makes an agent constructor available under name, for hosts that
// select agents by name (serve --agent NAME). Call it from an init function.
// It panics on an empty name, a nil constructor or a name registered twice,
// since each is a programming error best caught at start-up.
func Register(name string, newFn func() (Agent, error)) {
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
func Lookup(name string) (newFn func() (Agent, error), ok bool) {
	registry.RLock()
	defer registry.RUnlock()
	newFn, ok = registry.m[name]
	return newFn, ok
}

// Names lists the registered agent names in order.
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

// Package discover is the one place the host looks for the optional
// interfaces an agent may implement (agent.Manifester, tools.Declarer,
// agent.Provisioner, io.Closer). An agent reaches the host wrapped
// (agent.FromStream turns a streaming agent into an Agent), and a check made
// on the wrapper alone silently misses what the author implemented; every
// such check goes through As, which looks through every wrapper.
package discover

import "github.com/agentrt/agentrt/agent"

// maxDepth bounds the unwrapping, so a wrapper that (wrongly) returns itself
// or a cycle cannot hang start-up.
const maxDepth = 16

// Chain returns a followed by every agent it wraps, outermost first. A
// wrapper says what it wraps with an Unwrap method returning an agent.Agent
// or an agent.StreamAgent, as errors.Unwrap does for errors.
func Chain(a agent.Agent) []any {
	var chain []any
	var v any = a
	for range maxDepth {
		if v == nil {
			break
		}
		chain = append(chain, v)
		switch w := v.(type) {
		case interface{ Unwrap() agent.Agent }:
			v = w.Unwrap()
		case interface{ Unwrap() agent.StreamAgent }:
			v = w.Unwrap()
		default:
			v = nil
		}
	}
	return chain
}

// As returns the first value along a's chain (a, then what it wraps) that
// implements T. A wrapper that implements T itself is found first, so it
// must forward to what it wraps if that matters.
func As[T any](a agent.Agent) (T, bool) {
	for _, v := range Chain(a) {
		if t, ok := v.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/agentrt/agentrt/agent"
)

// Provision calls Provision on every provider that implements
// agent.Provisioner, in the order they were added, each once even when it
// was added more than once. It stops at the first error, which names the
// provider. The host calls it once at start-up (see agent.Provisioner); an
// agent that owns a Set and is served by the host never calls it itself.
func (s *Set) Provision(ctx context.Context, env *agent.Env) error {
	for _, e := range s.distinct() {
		if p, ok := e.provider.(agent.Provisioner); ok {
			if err := p.Provision(ctx, env); err != nil {
				return fmt.Errorf("tool provider %q: provision: %w", e.name, err)
			}
		}
	}
	return nil
}

// Close calls Close on every provider that implements io.Closer, in the
// reverse order of Add, each once, and returns their errors joined, each
// naming its provider. Every provider is closed even when one fails. The
// host calls it once at shutdown, after the drain; providers must stay safe
// to call afterwards (a straggling request), though they may do more work
// then, such as opening a new connection.
func (s *Set) Close() error {
	d := s.distinct()
	var errs []error
	for i := len(d) - 1; i >= 0; i-- {
		if c, ok := d[i].provider.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("tool provider %q: close: %w", d[i].name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// distinct is the entries with each provider's first occurrence only: one
// provider added with two bindings is one component to set up and tear down.
// Providers of a type that cannot be compared are never merged.
func (s *Set) distinct() []entry {
	out := make([]entry, 0, len(s.entries))
	for _, e := range s.entries {
		dup := false
		if reflect.TypeOf(e.provider).Comparable() {
			for _, o := range out {
				if reflect.TypeOf(o.provider) == reflect.TypeOf(e.provider) && o.provider == e.provider {
					dup = true
					break
				}
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

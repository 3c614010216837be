package tools_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
)

// cycled is a provider with a lifecycle that records it in *log.
type cycled struct {
	name              string
	log               *[]string
	provErr, closeErr error
}

func (c *cycled) Name() string                     { return c.name }
func (c *cycled) Requirements() tools.Requirements { return tools.Requirements{} }
func (c *cycled) Prepare(context.Context, *databricks.WorkspaceClient) ([]agent.Tool, error) {
	return nil, nil
}
func (c *cycled) Provision(_ context.Context, env *agent.Env) error {
	*c.log = append(*c.log, "provision "+c.name)
	return c.provErr
}
func (c *cycled) Close() error {
	*c.log = append(*c.log, "close "+c.name)
	return c.closeErr
}

// TestSetLifecycle: Set.Provision runs the providers' Provision in order of
// Add, once per provider, and stops at the first error, naming it;
// Set.Close closes every provider in reverse, once each, even past errors,
// and names each failure. Providers without a lifecycle are passed over.
func TestSetLifecycle(t *testing.T) {
	var log []string
	a := &cycled{name: "a", log: &log}
	b := &cycled{name: "b", log: &log, closeErr: errors.New("b stuck")}
	c := &cycled{name: "c", log: &log, provErr: errors.New("c misconfigured"), closeErr: errors.New("c stuck")}
	d := &cycled{name: "d", log: &log}
	set := tools.NewSet(tools.SetOptions{}).
		Add(a, tools.Options{Binding: tools.User}).
		Add(&fake{name: "plain"}, tools.Options{Binding: tools.User}).
		Add(b, tools.Options{Binding: tools.User}).
		Add(a, tools.Options{Binding: tools.System}). // the same provider again
		Add(tools.NewProvider("func", tools.Requirements{}, func(context.Context, *databricks.WorkspaceClient) ([]agent.Tool, error) {
			return nil, nil
		}), tools.Options{Binding: tools.User}).
		Add(c, tools.Options{Binding: tools.User}).
		Add(d, tools.Options{Binding: tools.User})

	err := set.Provision(context.Background(), &agent.Env{})
	if err == nil || !strings.Contains(err.Error(), `tool provider "c"`) || !strings.Contains(err.Error(), "c misconfigured") {
		t.Errorf("Provision = %v, want c's error naming it", err)
	}
	err = set.Close()
	for _, want := range []string{`tool provider "b": close: b stuck`, `tool provider "c": close: c stuck`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Close = %v, want it to contain %q", err, want)
		}
	}
	want := []string{"provision a", "provision b", "provision c", "close d", "close c", "close b", "close a"}
	if !slices.Equal(log, want) {
		t.Errorf("lifecycle\n got %q\nwant %q", log, want)
	}
}

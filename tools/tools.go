// Package tools prepares an agent's tools for each request: every provider is
// bound to the client its author chose (the caller's or the agent's own),
// probed in parallel under one deadline, and dropped with a reason when the
// identity may not use it, so a missing permission shrinks the toolset instead
// of failing the request.
//
// A provider also declares what it needs (resources and user API scopes), so
// adding it to a Set declares its dependencies: the host adds the set's
// Requirements to the agent's manifest.
package tools

import (
	"context"
	"fmt"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
)

// Provider supplies one or more tools that need a workspace client. A
// provider belongs to the Set it is added to; the host drives it through
// the set, and an agent never calls it directly.
//
// Requirements is called when the provider is added and when the host
// builds the manifest at start-up; it must return the same value each time.
//
// Prepare is called for each request, from many requests at once, so it must
// be safe for concurrent use. It binds the provider's tools to w (the
// caller's client for a User binding, the service principal's for System)
// and checks, with one cheap call made as w's identity, that they can be
// used; ctx carries the request's agent.Env and the probe deadline
// (SetOptions.ProbeTimeout). The returned tools may be cached and shared by
// later requests of the same principal, and the loop calls them in
// parallel: their Call must be safe for concurrent use, and neither the
// slice nor the tools may be changed after Prepare returns.
//
// An error from Prepare means:
//   - permission (IsPermission: it matches databricks.ErrPermissionDenied or
//     ErrUnauthenticated): the tools are skipped for this request and the
//     reason reported in env.Skipped; the request goes on. The one exception
//     is ErrUnauthenticated for a User binding: the workspace rejected the
//     caller's credential, so the request fails (the host answers 401).
//   - ErrNoClient (the binding has no client): skipped.
//   - anything else (missing resource, outage, timeout): skipped under the
//     Skip policy; under Fail the request fails (the host answers 503).
//
// A panic in Prepare is recovered and treated as an error of the last kind.
//
// A provider may also implement agent.Provisioner, to set itself up once
// when the host starts, and io.Closer, to release what it holds (pooled
// sessions, connections) when the host stops; see Set.Provision and
// Set.Close.
type Provider interface {
	Requirements() Requirements
	Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error)
}

// Namer is implemented by providers that have a name for logs, skip reports
// and errors; otherwise the first resource's name is used. The name must not
// change once the provider is added to a Set.
type Namer interface {
	Name() string
}

// Requirements is what a provider, or a whole Set, needs declared in the
// agent's manifest.
type Requirements struct {
	Resources []agent.Resource
	// UserScopes are the API scopes the user client needs when the provider
	// is bound to User (ignored for System).
	UserScopes []string
}

// Declarer is implemented by agents whose tools are a Set. The host finds it
// once, at start-up, through any wrapper (such as agent.FromStream's), and
// then owns the set's lifecycle: it adds Set.Requirements to the agent's
// manifest, prepares the set for every request after the caller's identity
// is known (the agent finds the result in env.Tools and env.Skipped),
// provisions its providers before serving and closes them at shutdown.
// Tools must return the same Set each time, and the set must not change
// after it is returned.
type Declarer interface {
	Tools() *Set
}

// Binding says which identity a provider's tools act as.
type Binding int

const (
	// User binds tools to the caller (on-behalf-of-user): env.User.
	User Binding = iota + 1
	// System binds tools to the agent's service principal: env.System.
	System
)

func (b Binding) String() string {
	switch b {
	case User:
		return "user"
	case System:
		return "system"
	}
	return fmt.Sprintf("Binding(%d)", int(b))
}

// Policy says what a failed probe does when the failure is not about
// permissions (the resource is missing, the service is down, the probe timed
// out). Permission failures always skip.
type Policy int

const (
	// Skip drops the provider's tools for this request and carries on.
	Skip Policy = iota
	// Fail fails the request: the agent cannot work without these tools.
	Fail
)

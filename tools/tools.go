// Package tools prepares an agent's tools for each request: every provider is
// bound to the client its author chose (the caller's or the agent's own),
// probed in parallel under one deadline, and dropped with a reason when the
// identity may not use it, so a missing permission shrinks the toolset instead
// of failing the request.
//
// A provider also declares what it needs (resources and user API scopes), so
// adding it to a Set declares its dependencies in the agent's manifest.
package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"

	"github.com/agentrt/agentrt/agent"
)

// Provider supplies one or more tools that need a workspace client.
//
// A provider may also implement agent.Provisioner, to set itself up once
// when the host starts, and io.Closer, to release what it holds (pooled
// sessions, connections) when the host stops; the Set calls both (see
// Set.Provision and Set.Close).
type Provider interface {
	// Requirements lists what the provider's tools use; the Set adds it to
	// the agent's manifest.
	Requirements() Requirements
	// Prepare binds the tools to w and checks, with one cheap call made as
	// w's identity, that they can be used. It returns an error that
	// errors.Is databricks.ErrPermissionDenied (or ErrUnauthenticated) when
	// the identity may not use them. Prepare must be safe for concurrent use.
	Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error)
}

// Namer is implemented by providers that have a name for logs and skip
// reports; otherwise the first resource's name is used.
type Namer interface {
	Name() string
}

// Requirements is what a provider contributes to the agent's manifest.
type Requirements struct {
	Resources []agent.Resource
	// UserScopes are the API scopes the user client needs when the provider
	// is bound to User (ignored for System).
	UserScopes []string
}

// Declarer is implemented by agents whose tools are a Set; the host prepares
// the set before each request and merges its requirements into the manifest.
// The host calls Tools at start-up only (it finds Declarer through
// wrappers such as agent.FromStream's), and provisions and closes the set's
// providers with the agent (Set.Provision, Set.Close); the Set must not
// change afterwards.
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

// Reason classifies why a provider was skipped; it is the low-cardinality
// "reason" label of the agentrt.tools.skipped metric.
type Reason string

const (
	ReasonPermissionDenied Reason = "permission_denied"
	ReasonUnauthenticated  Reason = "unauthenticated"
	ReasonScope            Reason = "scope_refused"
	ReasonNoClient         Reason = "no_client"
	ReasonNotFound         Reason = "not_found"
	ReasonTimeout          Reason = "timeout"
	ReasonDuplicate        Reason = "duplicate_name"
	ReasonError            Reason = "error"
)

// ScopeRefusal is implemented by errors from a client that refused a call
// outside its declared API scopes before sending it.
type ScopeRefusal interface {
	error
	MissingScope() string
}

// IsPermission reports whether err means the identity may not use the
// resource: permission denied, unauthenticated, or a refused scope. Tools
// with such errors are skipped, never failing the request.
func IsPermission(err error) bool {
	switch Classify(err) {
	case ReasonPermissionDenied, ReasonUnauthenticated, ReasonScope:
		return true
	}
	return false
}

// Classify maps an error from a probe or tool call to a Reason.
func Classify(err error) Reason {
	var sr ScopeRefusal
	switch {
	case err == nil:
		return ""
	case errors.As(err, &sr):
		return ReasonScope
	case errors.Is(err, databricks.ErrPermissionDenied):
		return ReasonPermissionDenied
	case errors.Is(err, databricks.ErrUnauthenticated):
		return ReasonUnauthenticated
	case errors.Is(err, ErrNoClient):
		return ReasonNoClient
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, apierr.ErrNotFound):
		return ReasonNotFound
	}
	return ReasonError
}

// ErrNoClient is reported when the binding's client is nil (the host has no
// workspace configured).
var ErrNoClient = errors.New("no workspace client for this binding")

// PrepareError is returned by Set.Prepare when a provider with the Fail
// policy could not be prepared.
type PrepareError struct {
	Tool    string
	Binding Binding
	Err     error
}

func (e *PrepareError) Error() string {
	return fmt.Sprintf("prepare tool %q (%s): %v", e.Tool, e.Binding, e.Err)
}

func (e *PrepareError) Unwrap() error { return e.Err }

// Requirements merges the requirements of every provider in the set:
// resources of user-bound providers are marked on-behalf-of-user, and their
// scopes become the user client's scopes. Duplicates are removed; order is
// the order of Add.
func (s *Set) Requirements() Requirements {
	var out Requirements
	type key struct {
		t    agent.ResourceType
		name string
		obo  bool
	}
	seen := map[key]bool{}
	for _, e := range s.entries {
		req := e.provider.Requirements()
		obo := e.opts.Binding == User
		for _, r := range req.Resources {
			k := key{r.Type, r.Name, obo}
			if seen[k] {
				continue
			}
			seen[k] = true
			if obo {
				t := true
				r.OnBehalfOfUser = &t
			}
			out.Resources = append(out.Resources, r)
		}
		if obo {
			for _, sc := range req.UserScopes {
				if !slices.Contains(out.UserScopes, sc) {
					out.UserScopes = append(out.UserScopes, sc)
				}
			}
		}
	}
	return out
}

// Manifest returns the set's requirements as a manifest fragment, ready to
// merge into an agent's own.
func (s *Set) Manifest() agent.Manifest {
	r := s.Requirements()
	return agent.Manifest{Resources: r.Resources, UserAPIScopes: r.UserScopes}
}

// MergeManifest adds the set's requirements to m without duplicating what m
// already declares.
func MergeManifest(m agent.Manifest, s *Set) agent.Manifest {
	if s == nil {
		return m
	}
	r := s.Requirements()
	out := agent.Manifest{Resources: slices.Clone(m.Resources), UserAPIScopes: slices.Clone(m.UserAPIScopes)}
	for _, res := range r.Resources {
		if !slices.ContainsFunc(out.Resources, func(x agent.Resource) bool {
			return x.Type == res.Type && x.Name == res.Name && oboOf(x) == oboOf(res)
		}) {
			out.Resources = append(out.Resources, res)
		}
	}
	for _, sc := range r.UserScopes {
		if !slices.Contains(out.UserAPIScopes, sc) {
			out.UserAPIScopes = append(out.UserAPIScopes, sc)
		}
	}
	return out
}

func oboOf(r agent.Resource) bool { return r.OnBehalfOfUser != nil && *r.OnBehalfOfUser }

// DevOutputs is what the host adds to a response's custom_outputs in dev
// mode so a developer sees which tools were dropped and why. It returns nil
// when nothing was skipped.
func DevOutputs(env *agent.Env) map[string]any {
	if env == nil || len(env.Skipped) == 0 {
		return nil
	}
	return map[string]any{"skipped_tools": slices.Clone(env.Skipped)}
}

package agent

import (
	"context"

	"github.com/databricks/databricks-sdk-go"
)

// Env is everything the host prepared for one request before the agent runs;
// FromContext returns it from the ctx the agent is called with. The host
// fills it before Predict or PredictStream and does not change it after, so
// it may be read from any goroutine of the request; it is read-only for the
// agent and valid only for the request's lifetime (do not keep it, or its
// clients, past the call).
type Env struct {
	RequestID string
	Caller    Caller

	// User calls the workspace as the caller (on-behalf-of-user), limited to
	// the agent's declared API scopes. It reads the caller's credential from
	// the request context, so it must be used with the ctx passed to the agent
	// (or one derived from it); with any other context it fails closed.
	// Nil when the host has no workspace configured.
	User *databricks.WorkspaceClient
	// System calls the workspace as the agent's own service principal.
	// Nil when the host has no workspace configured.
	System *databricks.WorkspaceClient

	Tools   []Tool        // tools prepared for this caller
	Skipped []SkippedTool // tools dropped for this caller, with reasons

	Dev bool // the host runs with --dev
}

// Identity describes a principal without any credential.
type Identity struct {
	PrincipalID string `json:"principal_id,omitempty"` // stable id, never a token
	UserName    string `json:"user_name,omitempty"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// Caller is who sent the request. PrincipalID is the verified principal of
// the caller (the workspace's id, never a header value or a token), or ""
// for an anonymous caller; key per-caller state by it, and share none when
// it is "".
type Caller struct {
	Identity           // what is known without a network call
	Authenticated bool // a credential came with the request

	// Lookup, when set, fetches full details (e.g. SCIM Me) on first use;
	// the host caches the answer per credential.
	Lookup func(ctx context.Context) (Identity, error) `json:"-"`
}

// Resolve returns the caller's full identity, asking Lookup only when the
// cheap fields are not enough.
func (c Caller) Resolve(ctx context.Context) (Identity, error) {
	if c.Lookup == nil || (c.UserName != "" && c.Email != "") {
		return c.Identity, nil
	}
	id, err := c.Lookup(ctx)
	if err != nil {
		return c.Identity, err
	}
	if id.PrincipalID == "" {
		id.PrincipalID = c.PrincipalID
	}
	return id, nil
}

type envKey struct{}

// NewContext returns a copy of ctx that carries env. The host calls it for
// every request; a unit test of an agent may call it to hand the agent a
// caller or tools.
func NewContext(ctx context.Context, env *Env) context.Context {
	return context.WithValue(ctx, envKey{}, env)
}

// FromContext returns the request environment carried by ctx, or an empty
// Env (never nil) when there is none, as in a unit test of an agent.
func FromContext(ctx context.Context) *Env {
	if env, ok := ctx.Value(envKey{}).(*Env); ok && env != nil {
		return env
	}
	return &Env{}
}

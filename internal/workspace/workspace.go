// Package workspace connects the host to its Databricks workspace at
// start-up: it builds the system client (service principal) and the shared
// user client (on behalf of each caller), resolves {{secrets/…}} references,
// runs the start-up permission check and provides the identity preparer that
// hands both clients to every request.
//
// It is the one call runtime/cli makes, with options it fills from flags and
// the environment (this package reads neither); the pieces live in
// internal/credentials, internal/identity, internal/secrets and
// internal/preflight.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/identity"
	"github.com/agentrt/agentrt/internal/preflight"
	"github.com/agentrt/agentrt/internal/secrets"
)

// Options configure Open. Zero values give the production behaviour.
type Options struct {
	// Host is the workspace URL (required; it overrides System.Host).
	Host string
	// Manifest is the agent's: user API scopes for the user client, system
	// resources for the start-up check.
	Manifest agent.Manifest

	// CredentialHeaders overrides identity.DefaultHeaders.
	CredentialHeaders []string
	// TokenExchange exchanges each caller's token for one limited to the
	// declared user API scopes (RFC 8693).
	TokenExchange bool
	// TrustForwardedIdentity: see identity.Options.
	TrustForwardedIdentity bool

	// Dev accepts the mock identities DevUsers (name → token).
	Dev      bool
	DevUsers map[string]string

	// Config values may hold {{secrets/scope/key}} references; they are
	// resolved in place with the system client.
	Config map[string]string
	// Environ lists environment entries ("KEY=value", e.g. os.Environ());
	// those holding references are resolved into Workspace.Environ, for the
	// caller to export so the agent reads the secret from its environment.
	Environ []string

	// SkipPreflight skips the start-up check; AllowMissingResources runs it
	// but starts even when some checks fail.
	SkipPreflight         bool
	AllowMissingResources bool
	// PreflightOut receives the check's table (nil: the logger).
	PreflightOut io.Writer

	// System is the system client's credential (runtime/cli fills it from
	// the DATABRICKS_* variables) and tuning; its Host, Passthrough and
	// Logger are filled from these options.
	System credentials.SystemOptions
	// Transport is used by both clients (e.g. an otelhttp transport).
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// Workspace is the open connection: both clients and the identity preparer.
type Workspace struct {
	User      *credentials.User
	System    *credentials.System
	Identity  *identity.Resolver
	Preflight *preflight.Report // nil when skipped
	// Environ holds the Options.Environ entries that had secret
	// references, resolved (name → value). Open does not export them: the
	// process environment is the caller's (runtime/cli sets them).
	Environ map[string]string
}

// Open builds everything and runs the start-up check. A failed check is an
// error (a *preflight.FailureError) unless AllowMissingResources is set.
func Open(ctx context.Context, o Options) (*Workspace, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	sys, err := openSystem(ctx, o, log)
	if err != nil {
		return nil, err
	}
	ws := &Workspace{System: sys}
	fail := func(err error) (*Workspace, error) {
		sys.Close()
		return nil, err
	}

	sr := secrets.NewResolver(sys.Client())
	if len(o.Config) > 0 {
		if err := sr.Map(ctx, o.Config); err != nil {
			return fail(err)
		}
	}
	if len(o.Environ) > 0 {
		vals, err := sr.Environ(ctx, o.Environ)
		if err != nil {
			return fail(err)
		}
		ws.Environ = vals
		if len(vals) > 0 {
			log.Info("resolved secret references in the environment", "count", len(vals))
		}
	}

	uo := credentials.UserOptions{
		Host:          sys.Client().Config.Host,
		Scopes:        o.Manifest.UserAPIScopes,
		ClientOptions: credentials.ClientOptions{Transport: o.Transport, WorkspaceID: sys.Client().Config.WorkspaceID},
	}
	if o.TokenExchange {
		if len(o.Manifest.UserAPIScopes) == 0 {
			return fail(errors.New("workspace: token exchange needs the agent to declare user API scopes"))
		}
		uo.Exchange = &credentials.ExchangeOptions{}
	}
	if ws.User, err = credentials.NewUser(uo); err != nil {
		return fail(err)
	}
	ws.Identity, err = identity.New(identity.Options{
		Headers:                o.CredentialHeaders,
		Manifest:               o.Manifest,
		TrustForwardedIdentity: o.TrustForwardedIdentity,
		User:                   ws.User.Client(),
		System:                 sys.Client(),
		Dev:                    o.Dev,
		DevUsers:               o.DevUsers,
		Logger:                 log,
	})
	if err != nil {
		return fail(err)
	}

	if !o.SkipPreflight {
		ws.Preflight = preflight.Run(ctx, sys.Client(), o.Manifest, preflight.Options{Principal: sys.Principal()})
		report(o.PreflightOut, log, ws.Preflight)
		if err := ws.Preflight.Err(); err != nil {
			if !o.AllowMissingResources {
				return fail(fmt.Errorf("%w (start anyway with --allow-missing-resources)", err))
			}
			log.Warn("starting despite failed resource checks (--allow-missing-resources)", "error", err)
		}
	}
	return ws, nil
}

// Check builds only the system client and runs the start-up check, for
// `serve check`.
func Check(ctx context.Context, o Options) (*preflight.Report, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	sys, err := openSystem(ctx, o, log)
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	return preflight.Run(ctx, sys.Client(), o.Manifest, preflight.Options{Principal: sys.Principal()}), nil
}

// RunCheck is `serve check`: it prints the start-up check's table to out and
// returns a *preflight.FailureError when a check failed.
func RunCheck(ctx context.Context, o Options, out io.Writer) error {
	rep, err := Check(ctx, o)
	if err != nil {
		return err
	}
	if err := rep.Render(out); err != nil {
		return err
	}
	return rep.Err()
}

// Needed reports whether an agent with manifest m needs a workspace: it
// declares resources or user API scopes.
func Needed(m agent.Manifest) bool {
	return len(m.Resources) > 0 || len(m.UserAPIScopes) > 0
}

func openSystem(ctx context.Context, o Options, log *slog.Logger) (*credentials.System, error) {
	so := o.System
	so.Host, so.Logger = o.Host, log
	if so.Transport == nil {
		so.Transport = o.Transport
	}
	if !o.Dev {
		so.Passthrough = preflight.SystemResources(o.Manifest)
	}
	return credentials.NewSystem(ctx, so)
}

func report(out io.Writer, log *slog.Logger, r *preflight.Report) {
	if len(r.Results) == 0 {
		return // nothing declared, nothing to show
	}
	if out != nil {
		r.Render(out)
		return
	}
	for _, res := range r.Results {
		lvl := slog.LevelInfo
		if res.Status != preflight.OK {
			lvl = slog.LevelWarn
		}
		log.Log(context.Background(), lvl, "resource check", "resource", res.Resource.Name, "type", res.Resource.Type,
			"principal", res.Principal, "status", res.Status, "hint", res.Hint)
	}
	for _, w := range r.Warnings {
		log.Warn(w)
	}
}

// Prepare implements the host's Preparer (see identity.Resolver.Prepare).
func (w *Workspace) Prepare(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
	return w.Identity.Prepare(ctx, r, env)
}

// Close stops the system client's background refresh.
func (w *Workspace) Close() error { return w.System.Close() }

package tools

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/ttlcache"
)

// Options says how one provider is used.
type Options struct {
	Binding Binding // required: User or System
	OnError Policy  // for probe failures that are not about permissions
}

// SetOptions tune a Set.
type SetOptions struct {
	// ProbeTimeout bounds the whole preparation (all providers in parallel).
	// Zero means 10s.
	ProbeTimeout time.Duration
	// CacheTTL keeps a probe's outcome (tools or permission skip) per
	// principal, binding and provider for this long. Zero means 30s; a
	// negative value disables the cache.
	CacheTTL time.Duration
	// FailureTTL keeps other probe failures (the service is down, the probe
	// timed out) for this long, so an outage costs one probe per tool and
	// principal rather than one per request. Zero means 5s; a negative value
	// disables it. A rejected caller credential is never cached.
	FailureTTL time.Duration
	// Logger receives one line per skip. Nil means slog.Default().
	Logger *slog.Logger
}

// Set is an agent's tool providers with their bindings. Build it once, at
// agent construction, and expose it with Declarer; the host then prepares
// it for every request. Add is not safe for concurrent use and must not be
// called once the set is in use; Prepare and Requirements are.
type Set struct {
	opts    SetOptions
	entries []entry
	cache   *ttlcache.Cache[cacheKey, []agent.Tool]
}

type entry struct {
	provider Provider
	opts     Options
	name     string
	resource string
}

// NewSet returns an empty set.
func NewSet(opts SetOptions) *Set {
	if opts.ProbeTimeout == 0 {
		opts.ProbeTimeout = 10 * time.Second
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 30 * time.Second
	}
	if opts.FailureTTL == 0 {
		opts.FailureTTL = 5 * time.Second
	}
	return &Set{opts: opts, cache: ttlcache.New[cacheKey, []agent.Tool](maxCached)}
}

// Add appends a provider and returns s. It panics on a nil provider or a missing binding:
// both are programming errors best caught at start-up.
func (s *Set) Add(p Provider, o Options) *Set {
	if p == nil {
		panic("tools: Set.Add with a nil provider")
	}
	if o.Binding != User && o.Binding != System {
		panic("tools: Set.Add needs Options.Binding (tools.User or tools.System)")
	}
	e := entry{provider: p, opts: o}
	if res := p.Requirements().Resources; len(res) > 0 {
		e.resource = string(res[0].Type) + ":" + res[0].Name
		e.name = res[0].Name
	}
	if n, ok := p.(Namer); ok {
		e.name = n.Name()
	}
	if e.name == "" {
		e.name = fmt.Sprintf("provider-%d", len(s.entries))
	}
	s.entries = append(s.entries, e)
	return s
}

// Requirements is what the set's providers need, ready to be added to the
// agent's manifest (the host does this; an agent declares only its own
// resources): resources of user-bound providers are marked
// on-behalf-of-user, and their scopes become the user client's scopes;
// system-bound providers' scopes are dropped, since the service principal's
// client is not limited by them. Duplicates are removed; the order is the
// order of Add.
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

type cacheKey struct {
	principal string
	binding   Binding
	index     int
	client    *databricks.WorkspaceClient
}

// result is the outcome of preparing one provider.
type result struct {
	tools []agent.Tool
	err   error // nil: prepared
}

// Prepare prepares every provider for the request described by env, in
// parallel, and sets env.Tools and env.Skipped. It fails when the workspace
// rejects the caller's credential for a user-bound provider (the request
// must not go on as if the caller had merely lacked a permission), or when a
// provider with the Fail policy could not be prepared for a reason other
// than permissions; the error is a *PrepareError (see Provider for what each
// kind of probe error does). The host calls it for every request, after the
// caller's identity is known; it is safe for concurrent use.
func (s *Set) Prepare(ctx context.Context, env *agent.Env) error {
	if env == nil {
		return errors.New("tools: Set.Prepare with a nil env")
	}
	ctx, span := otel.Tracer(instrumentation).Start(ctx, "tools.prepare",
		trace.WithAttributes(attribute.Int("tools.providers", len(s.entries))))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ProbeTimeout)
	defer cancel()

	// Outcomes already known (cached, or no client) are taken here: a
	// goroutine per provider only for those that need a probe.
	results := make([]result, len(s.entries))
	var wg sync.WaitGroup
	for i := range s.entries {
		if r, ok := s.known(env, i); ok {
			results[i] = r
			continue
		}
		wg.Go(func() { results[i] = s.prepareOne(ctx, env, i) })
	}
	wg.Wait()

	inst := instruments()
	log := s.opts.Logger
	if log == nil {
		log = slog.Default()
	}
	tools := []agent.Tool{} // non-nil: prepared, even when empty
	var skipped []agent.SkippedTool
	var failed error
	names := map[string]bool{}
	for i, r := range results {
		e := s.entries[i]
		if r.err == nil {
			for _, t := range r.tools {
				n := t.Definition().Name
				if names[n] {
					sk := agent.SkippedTool{Tool: n, Resource: e.resource, Binding: e.opts.Binding.String(),
						Reason: "another tool already has this name"}
					skipped = append(skipped, sk)
					s.reportSkip(ctx, log, span, inst, sk, ReasonDuplicate)
					continue
				}
				names[n] = true
				tools = append(tools, t)
			}
			inst.prepared.Add(ctx, 1, metric.WithAttributes(attribute.String("tool", e.name), attribute.String("outcome", "ok")))
			continue
		}
		reason := Classify(r.err)
		if (reason == ReasonUnauthenticated && e.opts.Binding == User) ||
			(!IsPermission(r.err) && reason != ReasonNoClient && e.opts.OnError == Fail) {
			inst.prepared.Add(ctx, 1, metric.WithAttributes(attribute.String("tool", e.name), attribute.String("outcome", "failed")))
			if failed == nil {
				failed = &PrepareError{Tool: e.name, Binding: e.opts.Binding, Err: r.err}
			}
			continue
		}
		sk := agent.SkippedTool{Tool: e.name, Resource: e.resource, Binding: e.opts.Binding.String(), Reason: r.err.Error()}
		skipped = append(skipped, sk)
		inst.prepared.Add(ctx, 1, metric.WithAttributes(attribute.String("tool", e.name), attribute.String("outcome", "skipped")))
		s.reportSkip(ctx, log, span, inst, sk, reason)
	}
	env.Tools = tools
	env.Skipped = skipped
	span.SetAttributes(attribute.Int("tools.prepared", len(tools)), attribute.Int("tools.skipped", len(skipped)))
	if failed != nil {
		span.RecordError(failed)
		span.SetStatus(codes.Error, "tool preparation failed")
		return failed
	}
	return nil
}

// prepareOne prepares provider i, through the cache when the outcome can be
// keyed by principal: the verified principal for user-bound providers (an
// anonymous caller's outcomes are never shared), one system identity for
// system-bound ones.
func (s *Set) prepareOne(ctx context.Context, env *agent.Env, i int) result {
	e := s.entries[i]
	w, key, cached := s.keyFor(env, i)
	if w == nil {
		return result{err: ErrNoClient}
	}
	if !cached {
		return probe(ctx, e.provider, w)
	}
	tools, err := s.cache.Do(ctx, key, func(fctx context.Context) ([]agent.Tool, time.Duration, error) {
		// The probe outlives a waiter that gives up, but not its own deadline.
		fctx, cancel := context.WithTimeout(fctx, s.opts.ProbeTimeout)
		defer cancel()
		r := probe(fctx, e.provider, w)
		return r.tools, s.ttlFor(r.err), r.err
	})
	return result{tools: tools, err: err}
}

// keyFor returns the client provider i prepares with for env (nil when
// there is none) and whether its outcome is cached, under key.
func (s *Set) keyFor(env *agent.Env, i int) (w *databricks.WorkspaceClient, key cacheKey, cached bool) {
	e := s.entries[i]
	w, principal := env.User, env.Caller.PrincipalID
	if e.opts.Binding == System {
		w, principal = env.System, ""
	}
	if w == nil || s.opts.CacheTTL < 0 || (e.opts.Binding == User && principal == "") {
		return w, key, false
	}
	return w, cacheKey{principal: principal, binding: e.opts.Binding, index: i, client: w}, true
}

// known returns provider i's outcome for env when it needs no probe: no
// client, or a fresh outcome in the cache.
func (s *Set) known(env *agent.Env, i int) (result, bool) {
	w, key, cached := s.keyFor(env, i)
	if w == nil {
		return result{err: ErrNoClient}, true
	}
	if !cached {
		return result{}, false
	}
	tools, ok, err := s.cache.Lookup(key)
	return result{tools: tools, err: err}, ok
}

// ttlFor says how long an outcome is kept.
func (s *Set) ttlFor(err error) time.Duration {
	switch {
	case err == nil || (IsPermission(err) && Classify(err) != ReasonUnauthenticated):
		return s.opts.CacheTTL
	case Classify(err) == ReasonUnauthenticated || errors.Is(err, context.Canceled):
		return 0
	}
	return s.opts.FailureTTL
}

// maxCached bounds the probe cache; past it, inserts evict.
const maxCached = 4096

func probe(ctx context.Context, p Provider, w *databricks.WorkspaceClient) (r result) {
	defer func() {
		if v := recover(); v != nil {
			r = result{err: fmt.Errorf("tool provider panicked: %v", v)}
		}
	}()
	tools, err := p.Prepare(ctx, w)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return result{tools: tools, err: err}
}

// DevOutputs is what the host adds to a response's custom_outputs in dev
// mode so a developer sees which tools were dropped and why. It returns nil
// when nothing was skipped.
func DevOutputs(env *agent.Env) map[string]any {
	if env == nil || len(env.Skipped) == 0 {
		return nil
	}
	return map[string]any{"skipped_tools": slices.Clone(env.Skipped)}
}

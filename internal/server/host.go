// Package server assembles the agentrt host: the HTTP surface of
// internal/httpapi with its preparers, served by a net/http server that
// drains in-flight requests on shutdown. runtime/cli configures it from
// flags and the environment; cmd/serve is a thin main around that.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/discover"
	"github.com/agentrt/agentrt/internal/hostcheck"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/store"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/tools"
)

// Re-exported so that hosts configure everything from this package.
type (
	Preparer     = httpapi.Preparer
	PreparerFunc = httpapi.PreparerFunc
	Limits       = httpapi.Limits
)

// Server timeout defaults.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	// DefaultServerWriteTimeout is net/http's Server.WriteTimeout
	// (Options.WriteTimeout): the cap on writing one whole response, from
	// the end of the request headers, on routes that do not manage their
	// write deadline. The agent routes replace it with a deadline renewed
	// on every write (Limits.WriteTimeout, a per-write bound).
	DefaultServerWriteTimeout = time.Minute
	DefaultIdleTimeout        = 2 * time.Minute
	DefaultDrainTimeout       = 25 * time.Second // inside Kubernetes' default 30s grace period
	// BackgroundGrace is how long shutdown waits, after the drain timeout,
	// for the background runs it stopped to record "incomplete".
	BackgroundGrace = 3 * time.Second
	// DefaultMaxHeaderBytes bounds a request's header block; net/http
	// answers 431 above it. Real requests carry a few KB (an OAuth token is
	// ~1-2 KB); net/http's own default of 1 MB lets every connection pin
	// a megabyte.
	DefaultMaxHeaderBytes = 64 << 10
)

// Options configure a Host. Only Agent is required.
type Options struct {
	Agent     agent.Agent
	AgentName string
	// Manifest declares the agent's resources and scopes. When it is empty
	// and the agent implements agent.Manifester, the agent's is used; the
	// requirements of its tools (tools.Declarer) are always added.
	Manifest agent.Manifest
	// Preparers run in order before each agent call. When the agent
	// declares tools (tools.Declarer), a preparer that prepares them for the
	// caller runs last.
	Preparers []Preparer
	// System and User are the workspace clients handed to Provision (see
	// agent.Provisioner): the same clients the workspace preparer puts in
	// every request's Env. Nil when the host has no workspace.
	System *databricks.WorkspaceClient
	User   *databricks.WorkspaceClient
	Limits Limits
	Logger *slog.Logger // default slog.Default()
	Dev    bool
	// DevAllowedHosts, with Dev, are the host names or addresses (no port)
	// answered besides loopback ones ("*": any). In dev mode every request
	// whose Host, or Origin when it has one, is not loopback or one of
	// these is refused with 403: dev credentials are public, so a web page
	// must not reach the host by DNS rebinding or a cross-site request.
	DevAllowedHosts []string
	// CORSOrigins are the browser origins (scheme://host[:port], or "*"
	// for any origin without credentials) that may call the host from a
	// page; Dev adds the loopback origins. See httpapi.CORS. In dev mode an
	// origin listed here also passes the Origin check above.
	CORSOrigins []string

	// net/http server timeouts; zero takes the defaults above. ReadTimeout
	// bounds the headers and body (slow uploads). On the agent routes, once
	// the body is read, the handler manages the write deadline itself
	// (Limits.RequestTimeout + Limits.WriteTimeout, renewed on every
	// write), so a RequestTimeout longer than WriteTimeout still ends in a
	// 504 or an error event, never an empty reply. See
	// docs/deploy.md#timeouts.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds the request header block (default
	// DefaultMaxHeaderBytes; 431 above it).
	MaxHeaderBytes int
	// DrainTimeout bounds how long shutdown waits for in-flight requests.
	DrainTimeout time.Duration
	// OnShutdown, if set, runs (in its own goroutine) once shutdown has
	// begun and the listener is closed.
	OnShutdown func()

	// Telemetry, when set (from telemetry.Setup), adds GET /metrics and
	// gives every request a server span and the HTTP server metrics.
	Telemetry *telemetry.Telemetry

	// Store keeps responses, conversations and background runs (see
	// docs/state.md); nil means none (stateless, as --store off). The
	// host purges its expired responses while serving and drains its
	// background runs on shutdown; the caller opens and closes it.
	Store store.Store

	// WaitReady starts the host not ready: GET /ready answers 503 until
	// SetReady(true), for a caller that finishes start-up checks (preflight)
	// after building the host. Without it the host is ready from the start.
	WaitReady bool
}

// Host serves one agent.
type Host struct {
	opts    Options
	api     *httpapi.Server
	handler http.Handler // api's, behind the loopback host check in dev mode
	log     *slog.Logger

	// The agent's lifecycle: components in Provision order.
	components []component
	provision  sync.Once
	provErr    error
	close      sync.Once
	closeErr   error

	// readiness: GET /ready is 200 only when ready and not draining.
	ready    atomic.Bool
	draining atomic.Bool
}

// New builds the host. It does no network I/O.
func New(opts Options) (*Host, error) {
	if opts.Agent == nil {
		return nil, errors.New("runtime: Options.Agent is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	userPreps := opts.Preparers
	opts.Manifest = EffectiveManifest(opts.Agent, opts.Manifest)
	if set := toolSet(opts.Agent); set != nil {
		// Graceful skip is the host's job: the agent's tools are prepared for
		// each caller after identity, so an agent never probes them itself.
		opts.Preparers = append(slices.Clip(opts.Preparers), toolsPreparer(set))
	}
	// The stored-response routes run no agent: they establish the caller
	// with the host's preparers, without preparing tools.
	statePreps := append([]Preparer{}, userPreps...)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&opts.ReadTimeout, DefaultReadTimeout)
	def(&opts.WriteTimeout, DefaultServerWriteTimeout)
	def(&opts.IdleTimeout, DefaultIdleTimeout)
	def(&opts.DrainTimeout, DefaultDrainTimeout)
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	opts.Limits.ServerWriteTimeout = opts.WriteTimeout // the server below sets it
	var tel *telemetry.Server
	if opts.Telemetry != nil {
		tel = telemetry.NewServer()
	}
	cors, err := httpapi.NewCORS(opts.CORSOrigins, opts.Dev)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	api, err := httpapi.New(httpapi.Options{
		Agent:     opts.Agent,
		AgentName: opts.AgentName,
		Manifest:  opts.Manifest,
		Preparers: opts.Preparers,
		Limits:    opts.Limits,
		Logger:    opts.Logger,
		Dev:       opts.Dev,
		Telemetry: tel,
		CORS:      cors,

		Store:          opts.Store,
		StatePreparers: statePreps,
	})
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	h := &Host{opts: opts, api: api, handler: api.Handler(), log: opts.Logger, components: components(opts.Agent, opts.AgentName)}
	if opts.Dev {
		hosts, err := hostcheck.New(opts.DevAllowedHosts)
		if err != nil {
			return nil, fmt.Errorf("runtime: DevAllowedHosts: %w", err)
		}
		h.handler = hostcheck.Handler(hosts.WithOrigins(cors.Origins()...), h.handler, h.refuseHost)
	}
	h.ready.Store(!opts.WaitReady)
	// Readiness for orchestrators (liveness is /health).
	api.Engine().GET("/ready", h.serveReady)
	if t := opts.Telemetry; t != nil {
		api.Engine().GET("/metrics", gin.WrapH(t.MetricsHandler()))
	}
	return h, nil
}

// EffectiveManifest is m, or the agent's own manifest when m is empty, plus
// the resources and user scopes the agent's tools require
// (tools.Set.Requirements): declaring a tool declares its dependencies, and
// this is the one place they are merged. What m already declares is not
// repeated, so merging twice changes nothing. Like every check of what an
// agent implements, it looks through wrappers such as agent.FromStream's.
func EffectiveManifest(a agent.Agent, m agent.Manifest) agent.Manifest {
	if len(m.Resources) == 0 && len(m.UserAPIScopes) == 0 {
		if mf, ok := discover.As[agent.Manifester](a); ok {
			m = mf.Manifest()
		}
	}
	set := toolSet(a)
	if set == nil {
		return m
	}
	req := set.Requirements()
	out := agent.Manifest{Resources: slices.Clone(m.Resources), UserAPIScopes: slices.Clone(m.UserAPIScopes)}
	obo := func(r agent.Resource) bool { return r.OnBehalfOfUser != nil && *r.OnBehalfOfUser }
	for _, r := range req.Resources {
		if !slices.ContainsFunc(out.Resources, func(x agent.Resource) bool {
			return x.Type == r.Type && x.Name == r.Name && obo(x) == obo(r)
		}) {
			out.Resources = append(out.Resources, r)
		}
	}
	for _, sc := range req.UserScopes {
		if !slices.Contains(out.UserAPIScopes, sc) {
			out.UserAPIScopes = append(out.UserAPIScopes, sc)
		}
	}
	return out
}

// toolSet is the agent's declared tool set, or nil.
func toolSet(a agent.Agent) *tools.Set {
	if d, ok := discover.As[tools.Declarer](a); ok {
		return d.Tools()
	}
	return nil
}

// component is one part of the agent with a lifecycle: the agent itself, or
// its tool set (which provisions and closes its providers).
type component struct {
	name      string // for errors: `agent "assistant"`, "tools"
	provision func(context.Context, *agent.Env) error
	close     func() error
}

// components finds, through every wrapper, what has a lifecycle, in
// Provision order: the tool providers first, since the agent depends on
// them, then the agent.
func components(a agent.Agent, name string) []component {
	var cs []component
	if set := toolSet(a); set != nil {
		// The set's errors name the provider.
		cs = append(cs, component{name: "tools", provision: set.Provision, close: set.Close})
	}
	c := component{name: "the agent"}
	if name != "" {
		c.name = fmt.Sprintf("agent %q", name)
	}
	if p, ok := discover.As[agent.Provisioner](a); ok {
		c.provision = p.Provision
	}
	if cl, ok := discover.As[io.Closer](a); ok {
		c.close = cl.Close
	}
	if c.provision != nil || c.close != nil {
		cs = append(cs, c)
	}
	return cs
}

// Provision runs the start-up half of the lifecycle (agent.Provisioner):
// the agent's tool providers, then the agent, each given the workspace
// clients of Options. It runs once; later calls return the first call's
// result. On an error, which names the component, it has already closed
// every component (Close), and the host must not serve. Serve calls it
// when the caller has not, so only a host that checks readiness after
// start-up, or serves Handler itself, calls it directly.
func (h *Host) Provision(ctx context.Context) error {
	h.provision.Do(func() {
		env := &agent.Env{System: h.opts.System, User: h.opts.User, Dev: h.opts.Dev}
		for _, c := range h.components {
			if c.provision == nil {
				continue
			}
			if err := c.provision(ctx, env); err != nil {
				h.provErr = fmt.Errorf("runtime: start-up: %s: %w", c.name, err)
				break
			}
		}
		if h.provErr != nil {
			if err := h.Close(); err != nil {
				h.log.Warn("closing after a failed start-up", "error", err)
			}
		}
	})
	return h.provErr
}

// Close runs the shutdown half of the lifecycle: it closes the agent, then
// its tool providers (io.Closer), once, whether or not Provision ran, and
// returns their errors joined. Serve calls it after the drain; a host that
// serves Handler itself calls it when done.
func (h *Host) Close() error {
	h.close.Do(func() {
		var errs []error
		for i := len(h.components) - 1; i >= 0; i-- {
			c := h.components[i]
			if c.close == nil {
				continue
			}
			if err := c.close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
			}
		}
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

// toolsPreparer prepares set for the request's caller, filling env.Tools
// and env.Skipped. A credential the workspace rejects while tools are
// prepared (it expired or was revoked since it was verified) is a 401; a
// required tool that is unavailable is a 503.
func toolsPreparer(set *tools.Set) Preparer {
	return PreparerFunc(func(ctx context.Context, _ *http.Request, env *agent.Env) (context.Context, error) {
		err := set.Prepare(ctx, env)
		var pe *tools.PrepareError
		switch {
		case err == nil:
			return ctx, nil
		case errors.As(err, &pe) && pe.Binding == tools.User && tools.Classify(pe.Err) == tools.ReasonUnauthenticated:
			return ctx, httperr.Unauthenticated("the workspace rejected the caller's credential (expired or revoked)")
		case errors.As(err, &pe):
			return ctx, httperr.Unavailable(fmt.Sprintf("required tool %q is unavailable", pe.Tool), 1)
		}
		return ctx, err
	})
}

// SetReady marks start-up as finished (true) or not (false). GET /ready
// answers 200 only while the host is ready and not draining.
func (h *Host) SetReady(ready bool) { h.ready.Store(ready) }

// Ready reports whether GET /ready would answer 200.
func (h *Host) Ready() bool { return h.ready.Load() && !h.draining.Load() }

var (
	readyBody    = []byte(`{"status":"ready"}`)
	startingBody = []byte(`{"status":"starting"}`)
	drainingBody = []byte(`{"status":"draining"}`)
)

// serveReady is GET /ready: liveness stays on /health, while readiness also
// covers start-up checks and shutdown, so an orchestrator routes traffic
// only to replicas that can answer it.
func (h *Host) serveReady(c *gin.Context) {
	body, status := readyBody, http.StatusOK
	switch {
	case h.draining.Load():
		body, status = drainingBody, http.StatusServiceUnavailable
	case !h.ready.Load():
		body, status = startingBody, http.StatusServiceUnavailable
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "application/json", body)
}

// Handler is the host's HTTP handler (for tests and for embedding).
func (h *Host) Handler() http.Handler { return h.handler }

// refuseHost answers a dev-mode request from a non-loopback Host or Origin.
func (h *Host) refuseHost(w http.ResponseWriter, r *http.Request, reason string) {
	h.log.WarnContext(r.Context(), "refused request", "method", r.Method, "path", r.URL.Path, "reason", reason)
	httperr.PermissionDenied(reason).Write(w)
}

// API is the HTTP surface, for mounting more routes.
func (h *Host) API() *httpapi.Server { return h.api }

// Manifest is the manifest the host serves with.
func (h *Host) Manifest() agent.Manifest { return h.opts.Manifest }

// ListenAndServe listens on addr and calls Serve.
func (h *Host) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return h.Serve(ctx, ln)
}

// Serve runs the agent's lifecycle around serving: it calls Provision (if
// the caller has not), answers requests on ln until ctx is done, then stops
// accepting, waits for in-flight requests (at most DrainTimeout), calls
// Close and returns nil. A Provision error is returned before anything is
// served. If the drain times out, the remaining connections are closed and
// the error says so. Errors from Close are logged. Serve closes ln.
func (h *Host) Serve(ctx context.Context, ln net.Listener) error {
	if err := h.Provision(ctx); err != nil {
		ln.Close()
		return err
	}
	defer func() {
		if err := h.Close(); err != nil {
			h.log.Warn("shutdown: closing the agent", "error", err)
		}
	}()
	srv := &http.Server{
		Handler:           h.handler,
		ReadHeaderTimeout: h.opts.ReadHeaderTimeout,
		ReadTimeout:       h.opts.ReadTimeout,
		WriteTimeout:      h.opts.WriteTimeout,
		IdleTimeout:       h.opts.IdleTimeout,
		MaxHeaderBytes:    h.opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	if h.opts.OnShutdown != nil {
		srv.RegisterOnShutdown(h.opts.OnShutdown)
	}
	if st := h.opts.Store; st != nil {
		// Expired responses are purged while the host serves.
		jctx, stopJanitor := context.WithCancel(context.Background())
		defer stopJanitor()
		go store.Janitor(jctx, st, 0, func(err error) { h.log.Warn("response store: purging expired responses", "error", err) })
		go h.api.LeaseJanitor(jctx, 0) // background runs whose process died
	}
	h.log.Info("listening", "addr", ln.Addr().String(), "agent", h.opts.AgentName)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	h.draining.Store(true) // /ready answers 503 from now on
	h.log.Info("shutting down: draining in-flight requests", "timeout", h.opts.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), h.opts.DrainTimeout)
	defer cancel()
	// Background runs finish within the drain timeout too, or are stopped
	// and recorded incomplete (within BackgroundGrace more).
	bgDone := make(chan error, 1)
	go func() { bgDone <- h.api.DrainBackground(dctx, BackgroundGrace) }()
	err := srv.Shutdown(dctx)
	if berr := <-bgDone; berr != nil {
		h.log.Warn("shutdown: background runs", "error", berr)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("runtime: drain did not finish: %w", err)
	}
	h.log.Info("drained")
	return nil
}

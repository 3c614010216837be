// Package devworkspace is an embedded, offline Databricks workspace: the REST
// APIs agentrt's tools call (OAuth, SCIM, SQL, Unity Catalog, Genie, secrets,
// Vector Search, serving, managed MCP), with mock identities, ACLs, scopes,
// deterministic sample data and an audit log.
//
// It backs the test suite and `serve --dev`; the real databricks-sdk-go,
// go-openai and mcp-go clients work against it unmodified. One YAML file
// (default.yaml is the documented example) describes the whole workspace.
//
// # Authentication
//
// Every API route needs "Authorization: Bearer <token>"; a missing, unknown
// or expired token is a 401 UNAUTHENTICATED. Tokens are:
//   - personal access tokens of the configured users (scope all-apis);
//   - opaque OAuth tokens from POST /oidc/v1/token, which accepts
//     client_credentials (HTTP Basic or form client_id/client_secret; the
//     scope parameter becomes the token's scopes, default all-apis), RFC 8693
//     token exchange of a workspace token (subject_token_type access_token or
//     jwt; the requested scopes must be a subset of the subject's, all-apis
//     covering every scope; the new token expires no later than its subject),
//     and workload-identity federation as the SDK's env-oidc/file-oidc send it
//     (subject_token_type jwt, client_id, subject_token equal to a configured
//     federation token; signatures are not checked).
//
// OAuth tokens live for Config.TokenTTL (default 1h). A token's scopes are
// enforced per route with internal/scopes (403 PERMISSION_DENIED naming the
// required scope); Unity Catalog privileges and workspace-object permissions
// are enforced on top (403 naming the securable and the missing privilege).
// Host metadata (/.well-known/databricks-config) and OIDC discovery are
// public; GET /dev/audit (the audit log, ?since=seq) is a public dev-only
// route.
//
// # Loopback only
//
// The credentials above are public, so every route (REST, managed and
// external MCP, the toy external server) refuses, with 403
// PERMISSION_DENIED, a request whose Host is not a loopback name or address
// (localhost, *.localhost, 127.0.0.0/8, [::1]; any port) or whose Origin is
// not a loopback origin: a web page cannot reach the workspace through DNS
// rebinding or a cross-site request. Options.AllowedHosts adds names.
//
// # SQL
//
// Statements run on an in-memory SQLite database (modernc.org/sqlite) as
// the caller: Databricks three-part names (main.sales.orders) are mapped to
// its tables, UC functions are SQL-bodied and expanded inline (definer's
// rights: callers need EXECUTE, not SELECT on what the body reads), and only
// read-only queries are accepted. SQLite's authorizer backs the privilege
// check: a statement can read only the tables it was checked for.
//
// # Start-up
//
// New returns with the sample data loaded. Start listens first and loads
// the data (tables, the docs table, the vector indexes) in the background;
// routes that read it wait for it, bounded by the request's context, and
// routes that read only the configuration answer at once. Readiness of the
// data is the workspace's business: a caller never sees it half-loaded.
package devworkspace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/agentrt/agentrt/internal/hostcheck"
	"github.com/agentrt/agentrt/internal/scopes"
)

// The credentials of the default workspace (default.yaml).
const (
	AliceToken     = "dev-alice-token"
	BobToken       = "dev-bob-token"
	CarolToken     = "dev-carol-token"
	SPClientID     = "agent-sp"
	SPClientSecret = "agent-sp-secret"
)

// Options configure a Workspace.
type Options struct {
	// Addr is the listen address for Start; default 127.0.0.1:0.
	Addr string
	// Config describes the workspace; nil means ConfigFile, or the embedded
	// default when ConfigFile is empty too.
	Config     *Config
	ConfigFile string
	// LLMProxyURL, when set, makes dev-llm proxy to this OpenAI-compatible
	// base URL instead of answering with the deterministic dev model.
	LLMProxyURL string
	// Logger receives request logs; nil discards them.
	Logger *slog.Logger
	// AllowedHosts are host names or addresses (no port) answered besides
	// loopback ones, for a workspace reached over the network; "*" allows
	// any host and turns the DNS-rebinding defence off.
	AllowedHosts []string
	// AuditEntries bounds the audit log (default 10,000 entries; the
	// oldest go first).
	AuditEntries int

	// beforeLoad, when set, runs at the start of Start's background data
	// load; an error fails the load. Tests hold the load with it.
	beforeLoad func(context.Context) error
	// onDataWait, when set, is called by a request about to wait for the
	// sample data (tests: a request is waiting, not yet answered).
	onDataWait func()
}

// Workspace is one running dev workspace. It is safe for concurrent use.
type Workspace struct {
	opts    Options
	cfg     *Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler // mux behind the loopback host check
	ttl     time.Duration
	now     func() time.Time
	server  *http.Server
	url     string

	principals map[string]*Principal // by user name / application id
	auth       *tokenStore
	acl        *acl
	audit      *auditLog
	db         *sqlDB
	catalog    *ucCatalog

	// The sample data (tables, the docs table and the vector indexes) is
	// loaded by New before it returns, and by Start in the background:
	// data is closed when it is in place or failed (dataErr, written
	// before the close), and routes that read it wait for it (waitData).
	data       chan struct{}
	dataErr    error
	cancelLoad context.CancelFunc
	built      time.Time // when newWorkspace ran: the tables' creation time

	mu            sync.Mutex
	statements    map[string]*statement
	stmtOrder     []string
	conversations map[string]*genieConversation
	closers       []func() error
	closed        chan struct{}
	closeOnce     sync.Once
	closeErr      error

	apis *apiState // Vector Search, serving and MCP (config_apis.go)
}

// New builds a workspace (database, data, routes) without listening. Serve
// it with Handler, or use Start. The sample data is in place when it
// returns.
func New(opts Options) (*Workspace, error) {
	ws, err := newWorkspace(opts)
	if err != nil {
		return nil, err
	}
	err = ws.loadData(context.Background())
	ws.dataLoaded(err)
	if err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

// newWorkspace builds everything but the sample data: configuration,
// identities, the empty database, the functions and connections, the API
// state and the routes. loadData must run once afterwards.
func newWorkspace(opts Options) (*Workspace, error) {
	cfg := opts.Config
	if cfg == nil {
		var err error
		if opts.ConfigFile != "" {
			cfg, err = LoadConfig(opts.ConfigFile)
		} else {
			cfg, err = DefaultConfig()
		}
		if err != nil {
			return nil, err
		}
	} else if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("devworkspace: config: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hosts, err := hostcheck.New(opts.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("devworkspace: %w", err)
	}
	ws := &Workspace{
		opts:          opts,
		cfg:           cfg,
		log:           log,
		mux:           http.NewServeMux(),
		ttl:           cfg.TokenTTL.Duration,
		now:           time.Now,
		principals:    map[string]*Principal{},
		audit:         newAuditLog(cmp.Or(max(opts.AuditEntries, 0), 10000)),
		statements:    map[string]*statement{},
		conversations: map[string]*genieConversation{},
		closed:        make(chan struct{}),
		data:          make(chan struct{}),
	}
	if ws.ttl == 0 {
		ws.ttl = time.Hour
	}
	ws.built = ws.now()
	ws.handler = hostcheck.Handler(hosts, ws.mux, ws.refuseHost)
	ws.auth = newTokenStore(ws)
	if err := ws.loadIdentities(); err != nil {
		return nil, err
	}
	ws.acl = newACL(cfg)
	ctx := context.Background()
	db, err := openSQLDB(ctx)
	if err != nil {
		return nil, err
	}
	ws.db = db
	ws.onClose(db.Close)
	ws.catalog = newUCCatalog()
	if err := ws.loadDefinitions(); err != nil {
		ws.Close()
		return nil, err
	}
	ws.registerCoreRoutes()
	if err := ws.initAPIs(); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

// Start builds a workspace and serves it on opts.Addr until ctx ends or
// Close is called. It listens before the sample data is loaded: the data
// loads in the background, and a request that reads it (SQL, Unity
// Catalog, Genie, Vector Search, MCP) waits until it is in place, so no
// answer comes from a half-loaded catalog. Requests that read only the
// configuration (OAuth, SCIM, serving endpoints, secrets, warehouses,
// apps, object permissions) are answered at once. A load that fails is
// logged, and the requests that needed it get a 500 naming the error.
func Start(ctx context.Context, opts Options) (*Workspace, error) {
	ws, err := newWorkspace(opts)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	ws.cancelLoad = cancel
	go func() {
		defer cancel()
		var err error
		if hook := opts.beforeLoad; hook != nil {
			err = hook(lctx)
		}
		if err == nil {
			err = ws.loadData(lctx)
		}
		if err != nil {
			err = fmt.Errorf("devworkspace: sample data: %w", err)
			if lctx.Err() == nil { // not Close stopping it
				ws.log.Error("devworkspace: sample data failed to load", "err", err)
			}
		}
		ws.dataLoaded(err)
	}()
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("devworkspace: listen: %w", err)
	}
	ws.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: ws.handler, ReadHeaderTimeout: 10 * time.Second}
	ws.mu.Lock()
	ws.server = srv
	ws.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ws.log.Error("devworkspace: serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			ws.Close()
		case <-ws.closed:
		}
	}()
	return ws, nil
}

// Handler serves the workspace's APIs, to loopback hosts and
// Options.AllowedHosts only.
func (ws *Workspace) Handler() http.Handler { return ws.handler }

// refuseHost answers a request the loopback host check refused, in the
// workspace's error shape. It is logged, not audited: the request reached
// no API.
func (ws *Workspace) refuseHost(w http.ResponseWriter, r *http.Request, reason string) {
	ws.log.Warn("devworkspace: refused request", "method", r.Method, "path", r.URL.Path, "reason", reason)
	writeError(w, http.StatusForbidden, codePermissionDenied, "%s", reason)
}

// URL is the base URL Start listens on ("" when built with New).
func (ws *Workspace) URL() string { return ws.url }

// Config returns the configuration the workspace was built from.
func (ws *Workspace) Config() *Config { return ws.cfg }

// Close stops the server (if started) and releases the database, after
// stopping a background data load. It runs once; concurrent and later
// calls return when that one is done, with its error (Start's ctx and its
// caller may both close).
func (ws *Workspace) Close() error {
	ws.closeOnce.Do(func() { ws.closeErr = ws.close() })
	return ws.closeErr
}

func (ws *Workspace) close() error {
	close(ws.closed)
	if ws.cancelLoad != nil {
		ws.cancelLoad()
		<-ws.data
	}
	ws.mu.Lock()
	srv := ws.server
	ws.server = nil
	closers := ws.closers
	ws.closers = nil
	ws.mu.Unlock()
	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, srv.Close())
		}
		cancel()
	}
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	return errors.Join(errs...)
}

// onClose registers cleanup run by Close, last registered first.
func (ws *Workspace) onClose(f func() error) {
	ws.mu.Lock()
	ws.closers = append(ws.closers, f)
	ws.mu.Unlock()
}

// baseURL is the URL clients reach this workspace at: the listen URL, or
// the request's host when the handler is served by someone else (httptest).
func (ws *Workspace) baseURL(r *http.Request) string {
	if ws.url != "" {
		return ws.url
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// resolveURL expands {{workspace_url}} in a configured URL.
func (ws *Workspace) resolveURL(r *http.Request, s string) string {
	return strings.ReplaceAll(s, "{{workspace_url}}", ws.baseURL(r))
}

type callerKey struct{}

type auditKey struct{}

// auditAs lets a public handler (the token endpoint) name the principal it
// authenticated in its audit entry.
func auditAs(r *http.Request, principal, method string, sc []string) {
	if e, ok := r.Context().Value(auditKey{}).(*AuditEntry); ok {
		e.Principal, e.AuthMethod, e.Scopes = principal, method, sc
	}
}

// callerFrom returns the authenticated caller of a request handled by route.
func callerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// route registers an authenticated, scope-checked, audited handler for a Go
// 1.22 ServeMux pattern. The handler runs once the sample data is loaded
// (afterData): every route waits unless registered with routeConfig.
func (ws *Workspace) route(pattern string, h http.HandlerFunc) {
	ws.mux.Handle(pattern, ws.wrap(ws.afterData(h), true))
}

// routeConfig is route for a handler that reads only the configuration
// (identities, ACLs, serving endpoints, secrets), never the catalog, the
// database or the vector indexes: it answers while the sample data loads.
func (ws *Workspace) routeConfig(pattern string, h http.HandlerFunc) {
	ws.mux.Handle(pattern, ws.wrap(h, true))
}

// routePublic registers a handler that needs no credentials (discovery,
// token endpoint). It is still audited.
func (ws *Workspace) routePublic(pattern string, h http.HandlerFunc) {
	ws.mux.Handle(pattern, ws.wrap(h, false))
}

func (ws *Workspace) wrap(h http.HandlerFunc, authenticated bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		entry := AuditEntry{
			Time:      ws.now().UTC(),
			Method:    r.Method,
			Path:      r.URL.Path,
			RequestID: r.Header.Get("X-Request-Id"),
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				ws.log.Error("devworkspace: handler panic", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if !rec.wrote {
					writeError(rec, http.StatusInternalServerError, codeInternal, "internal error")
				}
			}
			entry.Status = rec.status
			if entry.Status == 0 {
				entry.Status = http.StatusOK
			}
			ws.audit.add(entry)
			ws.log.Debug("devworkspace request", "method", r.Method, "path", r.URL.Path, "status", entry.Status, "principal", entry.Principal)
		}()
		if authenticated {
			c, err := ws.auth.authenticate(r)
			if err != nil {
				writeError(rec, http.StatusUnauthorized, codeUnauthenticated, "%s", err.Error())
				return
			}
			entry.Principal = c.Principal.Name
			entry.AuthMethod = c.Method
			entry.Scopes = c.Scopes
			if ok, missing := scopes.Check(c.Scopes, r.Method, r.URL.Path); !ok {
				writeError(rec, http.StatusForbidden, codePermissionDenied,
					"token scopes do not allow %s %s: required scopes: %s", r.Method, r.URL.Path, missing)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
		} else {
			r = r.WithContext(context.WithValue(r.Context(), auditKey{}, &entry))
		}
		h(rec, r)
	})
}

// statusRecorder remembers the response status for the audit log. Unwrap
// keeps http.ResponseController (flush, deadlines) working for streams.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if !s.wrote {
			s.status, s.wrote = http.StatusOK, true
		}
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// registerCoreRoutes registers the APIs this file's package half owns.
func (ws *Workspace) registerCoreRoutes() {
	ws.registerOAuthRoutes()
	ws.routeConfig("GET /api/2.0/preview/scim/v2/Me", ws.handleMe)
	ws.registerSQLRoutes()
	ws.registerWarehouseRoutes()
	ws.registerUCRoutes()
	ws.registerSecretRoutes()
	ws.registerGenieRoutes()
	ws.registerAppsRoutes()
	ws.routeConfig("GET /api/2.0/permissions/{object_type}/{object_id...}", ws.handleObjectPermissions)
	ws.mux.HandleFunc("GET /dev/audit", ws.handleAudit)
	ws.routePublic("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "ENDPOINT_NOT_FOUND", "no API found for %s %s", r.Method, r.URL.Path)
	})
}

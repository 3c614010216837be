// Package identity works out who sent a request before the agent runs: it
// takes the caller's credential from the inbound headers (or, in dev mode, a
// mock identity), fills the request environment's Caller and clients, and
// hands the credential to the user client through the request context.
//
// It fails closed: an agent that acts on behalf of its caller (declared user
// API scopes or on-behalf-of-user resources) gets a 401 for a request without
// a credential, never a silent run as the service principal.
package identity

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/runtime/credentials"
	"github.com/agentrt/agentrt/runtime/httperr"
	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Header names of the Databricks Apps proxy and of dev mode.
const (
	HeaderForwardedAccessToken = "X-Forwarded-Access-Token"
	HeaderAuthorization        = "Authorization"
	HeaderForwardedUser        = "X-Forwarded-User"
	HeaderForwardedEmail       = "X-Forwarded-Email"
	HeaderForwardedUsername    = "X-Forwarded-Preferred-Username"
	HeaderDevUser              = "X-Dev-User"
)

// DefaultHeaders is where the caller's credential is looked for, in order.
// Authorization is read as "Bearer <token>"; any other header as the bare
// token.
var DefaultHeaders = []string{HeaderForwardedAccessToken, HeaderAuthorization}

// maxTokenLen bounds an accepted credential; real OAuth tokens are ~1-2 KB.
const maxTokenLen = 16 << 10

// Options configure a Resolver.
type Options struct {
	// Headers lists the headers the credential is read from, first match
	// wins (default DefaultHeaders).
	Headers []string
	// Manifest decides whether a credential is required: it is when the
	// agent declares user API scopes or on-behalf-of-user resources.
	Manifest agent.Manifest
	// RequireCredential requires a credential whatever the manifest says.
	RequireCredential bool
	// IgnoreForwardedIdentity stops trusting X-Forwarded-User/-Email/
	// -Preferred-Username; set it when no trusted proxy sets them.
	IgnoreForwardedIdentity bool

	// User and System are put in every request's environment. User must be
	// the client of a credentials.User (it reads the credential this
	// resolver puts in the ctx); it also serves the SCIM Me lookup.
	User, System *databricks.WorkspaceClient

	// Dev accepts mock identities: X-Dev-User names a key of DevUsers, whose
	// value is the token it stands for. Without Dev, X-Dev-User is refused.
	Dev      bool
	DevUsers map[string]string

	// LookupTTL is how long a SCIM Me answer is cached per credential
	// (default 5m).
	LookupTTL time.Duration
	Logger    *slog.Logger
}

// Resolver is the identity preparer of the HTTP host.
type Resolver struct {
	headers  []string
	required bool
	trustFwd bool
	user     *databricks.WorkspaceClient
	system   *databricks.WorkspaceClient
	dev      bool
	devUsers map[string]string
	devNames []string
	log      *slog.Logger
	lookups  *lookupCache
	tracer   trace.Tracer
}

// New returns a Resolver.
func New(opts Options) (*Resolver, error) {
	headers := opts.Headers
	if len(headers) == 0 {
		headers = DefaultHeaders
	}
	for _, h := range headers {
		if strings.TrimSpace(h) == "" || strings.EqualFold(h, HeaderDevUser) {
			return nil, fmt.Errorf("identity: invalid credential header %q", h)
		}
	}
	if len(opts.DevUsers) > 0 && !opts.Dev {
		return nil, fmt.Errorf("identity: DevUsers (mock identities) are only allowed in dev mode")
	}
	ttl := opts.LookupTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	canon := make([]string, len(headers))
	for i, h := range headers {
		canon[i] = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(h))
	}
	r := &Resolver{
		headers:  canon,
		required: opts.RequireCredential || NeedsCredential(opts.Manifest),
		trustFwd: !opts.IgnoreForwardedIdentity,
		user:     opts.User,
		system:   opts.System,
		dev:      opts.Dev,
		devUsers: map[string]string{},
		log:      log,
		lookups:  newLookupCache(ttl, 10000),
		tracer:   otel.Tracer(tracerName),
	}
	for name, tok := range opts.DevUsers {
		r.devUsers[strings.ToLower(name)] = tok
		r.devNames = append(r.devNames, strings.ToLower(name))
	}
	sort.Strings(r.devNames)
	return r, nil
}

// NeedsCredential reports whether an agent with manifest m acts on behalf of
// its caller.
func NeedsCredential(m agent.Manifest) bool {
	if len(m.UserAPIScopes) > 0 {
		return true
	}
	for _, r := range m.Resources {
		if r.OnBehalfOfUser != nil && *r.OnBehalfOfUser {
			return true
		}
	}
	return false
}

// Required reports whether requests must carry a credential.
func (r *Resolver) Required() bool { return r.required }

// Prepare implements the host's Preparer: it fills env.Caller, env.User and
// env.System and returns a ctx that carries the caller's credential (and the
// request id) for the user client. Errors are *httperr.Error 401s.
func (r *Resolver) Prepare(ctx context.Context, req *http.Request, env *agent.Env) (context.Context, error) {
	// The span joins the request's trace; without a recording parent (no
	// tracing configured) it is skipped to keep this path allocation-light.
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		_, span = r.tracer.Start(ctx, "identity.resolve")
		defer span.End()
	}
	env.User, env.System = r.user, r.system
	if env.RequestID != "" && agent.EnvFrom(ctx) != env {
		ctx = credentials.WithRequestID(ctx, env.RequestID)
	}
	token, err := r.credential(req)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return ctx, err
	}
	if token == "" {
		if r.required {
			span.SetStatus(codes.Error, "no credential")
			return ctx, httperr.Unauthenticated(r.missingMessage())
		}
		env.Caller = agent.Caller{}
		return ctx, nil
	}
	ctx = credentials.WithCaller(ctx, token)
	fp := credentials.CallerFingerprint(ctx)
	id := agent.Identity{PrincipalID: "token:" + fp}
	if r.trustFwd {
		if u := header(req, HeaderForwardedUser); u != "" {
			id.PrincipalID = u
		}
		id.Email = header(req, HeaderForwardedEmail)
		id.UserName = header(req, HeaderForwardedUsername)
		if id.UserName == "" {
			id.UserName = id.Email
		}
	}
	env.Caller = agent.Caller{Identity: id, Authenticated: true}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("enduser.id", id.PrincipalID))
	}
	if r.user != nil {
		env.Caller.Lookup = r.lookup(token, fp)
	}
	return ctx, nil
}

// header reads a header whose name is already in canonical form, without
// canonicalising it again on every request.
func header(req *http.Request, canonical string) string {
	if v := req.Header[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// credential returns the caller's token ("" when none was sent).
func (r *Resolver) credential(req *http.Request) (string, error) {
	if name := strings.TrimSpace(header(req, HeaderDevUser)); name != "" {
		if !r.dev {
			return "", httperr.Unauthenticated("X-Dev-User is a mock identity and is accepted only when the server runs with --dev")
		}
		tok, ok := r.devUsers[strings.ToLower(name)]
		if !ok {
			return "", httperr.Unauthenticated(fmt.Sprintf("unknown mock identity %q in X-Dev-User (known: %s)", name, strings.Join(r.devNames, ", ")))
		}
		return tok, nil
	}
	for _, h := range r.headers {
		v := strings.TrimSpace(header(req, h))
		if v == "" {
			continue
		}
		if strings.EqualFold(h, HeaderAuthorization) {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return "", httperr.Unauthenticated("Authorization must be \"Bearer <token>\"")
			}
			v = strings.TrimSpace(tok)
		}
		if len(v) > maxTokenLen || strings.ContainsFunc(v, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return "", httperr.Unauthenticated("malformed credential in " + h)
		}
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}

func (r *Resolver) missingMessage() string {
	msg := "this agent acts on behalf of its caller and needs the caller's credential: send " +
		strings.Join(r.headerHints(), " or ")
	if r.dev && len(r.devNames) > 0 {
		first := r.devNames[0]
		msg += fmt.Sprintf(". In dev mode, pick a mock identity with \"X-Dev-User: %s\" (known: %s), or send \"X-Forwarded-Access-Token: %s\"",
			first, strings.Join(r.devNames, ", "), r.devUsers[first])
	}
	return msg
}

func (r *Resolver) headerHints() []string {
	out := make([]string, len(r.headers))
	for i, h := range r.headers {
		if strings.EqualFold(h, HeaderAuthorization) {
			out[i] = "Authorization: Bearer <token>"
		} else {
			out[i] = h
		}
	}
	return out
}

// lookup returns the Caller.Lookup of one credential: SCIM Me through the
// user client, cached by credential fingerprint. It runs only when the agent
// asks, since an on-behalf-of token may not allow it.
func (r *Resolver) lookup(token, fp string) func(context.Context) (agent.Identity, error) {
	return func(ctx context.Context) (agent.Identity, error) {
		if id, ok := r.lookups.get(fp); ok {
			return id, nil
		}
		ctx, span := r.tracer.Start(ctx, "identity.lookup")
		defer span.End()
		me, err := r.user.CurrentUser.Me(credentials.WithCaller(ctx, token), iam.MeRequest{})
		if err != nil {
			return agent.Identity{}, fmt.Errorf("identity: look up caller: %w", err)
		}
		id := agent.Identity{PrincipalID: me.Id, UserName: me.UserName, DisplayName: me.DisplayName}
		for _, e := range me.Emails {
			if id.Email == "" || e.Primary {
				id.Email = e.Value
			}
		}
		span.SetAttributes(attribute.String("enduser.id", id.PrincipalID))
		r.lookups.put(fp, id)
		return id, nil
	}
}

const tracerName = "github.com/agentrt/agentrt/runtime/identity"

type lookupEntry struct {
	id      agent.Identity
	expires time.Time
}

// lookupCache holds SCIM answers by credential fingerprint with a TTL.
type lookupCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]lookupEntry
}

func newLookupCache(ttl time.Duration, max int) *lookupCache {
	return &lookupCache{ttl: ttl, max: max, m: map[string]lookupEntry{}}
}

func (c *lookupCache) get(k string) (agent.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Now().After(e.expires) {
		return agent.Identity{}, false
	}
	return e.id, true
}

func (c *lookupCache) put(k string, id agent.Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		now := time.Now()
		for k, e := range c.m {
			// Down to 90% of the cap, so the sweep runs once per many inserts.
			if now.After(e.expires) || len(c.m) >= c.max*9/10 {
				delete(c.m, k)
			}
		}
	}
	c.m[k] = lookupEntry{id: id, expires: time.Now().Add(c.ttl)}
}

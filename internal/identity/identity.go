// Package identity works out who sent a request before the agent runs: it
// takes the caller's credential from the inbound headers (or, in dev mode, a
// mock identity), fills the request environment's Caller and clients, and
// hands the credential to the user client through the request context.
//
// It fails closed: a credential reaches tools or the agent only after the
// workspace has accepted it (SCIM Me, cached by the credential's full hash),
// an invalid one is a 401, and an agent that acts on behalf of its caller
// (declared user API scopes or on-behalf-of-user resources) gets a 401 for a
// request without one: never a silent run as the service principal. The
// caller's principal id is the workspace's answer, never a header value.
package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/ttlcache"
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

// Size limits of what a client sends; real OAuth tokens are ~1-2 KB and
// user names well under 256 bytes. Larger values are refused with a 431
// before anything is looked up or kept.
const (
	maxTokenLen    = 16 << 10
	maxIdentityLen = 1 << 10
)

// Verification defaults (see Options).
const (
	DefaultVerifyTTL      = time.Minute
	DefaultRejectTTL      = 5 * time.Second
	DefaultUnavailableTTL = time.Second
	DefaultVerifyTimeout  = 10 * time.Second
	DefaultMaxCallers     = 10000
)

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
	// TrustForwardedIdentity says that a trusted proxy in front of the host
	// (the Databricks Apps front door) sets X-Forwarded-User, -Email and
	// -Preferred-Username and strips them from clients. Only then, and only
	// for a credential that came in X-Forwarded-Access-Token, are they read,
	// and only to fill names the workspace did not report: the principal id
	// always comes from verification.
	TrustForwardedIdentity bool

	// User and System are put in every request's environment. User must be
	// the client of a credentials.User (it reads the credential this
	// resolver puts in the ctx); it verifies each credential with SCIM Me.
	// Without User no credential can be verified: credentials are then
	// ignored (the caller is anonymous), or refused when one is required.
	User, System *databricks.WorkspaceClient

	// Dev accepts mock identities: X-Dev-User names a key of DevUsers, whose
	// value is the token it stands for. Without Dev, X-Dev-User is refused.
	// Mock identities are verified like any other credential.
	Dev      bool
	DevUsers map[string]string

	// VerifyTTL is how long a verified credential is trusted without asking
	// the workspace again (default DefaultVerifyTTL); it is also how long a
	// revoked token keeps working. A JWT's own exp shortens it.
	VerifyTTL time.Duration
	// RejectTTL is how long a rejected credential is refused without asking
	// again (default DefaultRejectTTL).
	RejectTTL time.Duration
	// VerifyTimeout bounds one verification (default DefaultVerifyTimeout).
	VerifyTimeout time.Duration
	// MaxCallers bounds the verdicts kept (default DefaultMaxCallers).
	MaxCallers int
	Logger     *slog.Logger
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
	tracer   trace.Tracer

	verifyTTL, rejectTTL, verifyTimeout time.Duration
	verdicts                            *ttlcache.Cache[credentials.Key, agent.Identity]
	askFill                             ttlcache.Fill[agent.Identity] // r.ask, bound once: a method value per call would allocate
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
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	canon := make([]string, len(headers))
	for i, h := range headers {
		canon[i] = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(h))
	}
	r := &Resolver{
		headers:       canon,
		required:      opts.RequireCredential || NeedsCredential(opts.Manifest),
		trustFwd:      opts.TrustForwardedIdentity,
		user:          opts.User,
		system:        opts.System,
		dev:           opts.Dev,
		devUsers:      map[string]string{},
		log:           log,
		tracer:        otel.Tracer(tracerName),
		verifyTTL:     orDefault(opts.VerifyTTL, DefaultVerifyTTL),
		rejectTTL:     orDefault(opts.RejectTTL, DefaultRejectTTL),
		verifyTimeout: orDefault(opts.VerifyTimeout, DefaultVerifyTimeout),
		verdicts:      ttlcache.New[credentials.Key, agent.Identity](opts.MaxCallers),
	}
	for name, tok := range opts.DevUsers {
		r.devUsers[strings.ToLower(name)] = tok
		r.devNames = append(r.devNames, strings.ToLower(name))
	}
	sort.Strings(r.devNames)
	r.askFill = r.ask
	return r, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
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

// Prepare implements the host's Preparer: it verifies the caller's
// credential with the workspace (once per credential per VerifyTTL), fills
// env.Caller, env.User and env.System, and returns a ctx that carries the
// credential and env (with its request id) for the user client. Errors are
// *httperr.Error values: 401 for a missing, malformed or rejected
// credential, 431 for oversized identity headers, 503 while the workspace
// cannot verify.
func (r *Resolver) Prepare(ctx context.Context, req *http.Request, env *agent.Env) (context.Context, error) {
	// The span joins the request's trace; without a recording parent (no
	// tracing configured) it is skipped to keep this path allocation-light.
	span := trace.SpanFromContext(ctx)
	var spanCtx context.Context // the verification's parent when traced; the returned ctx keeps the request's span
	if span.IsRecording() {
		spanCtx, span = r.tracer.Start(ctx, "identity.resolve")
		defer span.End()
	}
	env.User, env.System = r.user, r.system
	if agent.FromContext(ctx) != env {
		// The host puts env in ctx before preparing; a caller that did not
		// gets a ctx that carries it (its request id reaches the workspace
		// calls in X-Request-Id).
		ctx = agent.NewContext(ctx, env)
	}
	token, forwarded, err := r.credential(req)
	if err == nil && token == "" && r.required {
		err = httperr.Unauthenticated(r.missingMessage())
	}
	if err == nil && token != "" && r.user == nil {
		if r.required {
			err = httperr.Unauthenticated("this host has no workspace to verify the caller's credential with")
		} else {
			token = "" // nothing could use or verify it: the caller is anonymous
		}
	}
	if err != nil {
		span.SetStatus(codes.Error, "credential refused")
		return ctx, err
	}
	if token == "" {
		env.Caller = agent.Caller{}
		return ctx, nil
	}
	ctx = credentials.WithCaller(ctx, token)
	vctx := ctx
	if spanCtx != nil {
		vctx = credentials.WithCaller(spanCtx, token)
	}
	id, err := r.verify(vctx)
	if err != nil {
		span.SetStatus(codes.Error, "credential refused")
		return ctx, err
	}
	if r.trustFwd && forwarded {
		fillForwarded(&id, req)
	}
	env.Caller = agent.Caller{Identity: id, Authenticated: true}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("enduser.id", id.PrincipalID))
	}
	return ctx, nil
}

// verify returns the workspace's answer for the credential in ctx: the
// identity it belongs to, or an *httperr.Error. Verdicts are cached by the
// credential's full SHA-256, so a hit always means the same credential.
func (r *Resolver) verify(ctx context.Context) (agent.Identity, error) {
	key, _ := credentials.CallerKey(ctx)
	id, err := r.verdicts.Do(ctx, key, r.askFill)
	if err != nil && ctx.Err() != nil {
		// The request itself ended (client gone or its deadline passed).
		return id, httperr.Unavailable("the caller's credential could not be verified in time", 1)
	}
	return id, err
}

// ask verifies one credential with SCIM Me through the user client (which
// exchanges it first when token exchange is on, so a rejected exchange is a
// rejected credential too).
func (r *Resolver) ask(ctx context.Context) (agent.Identity, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.verifyTimeout)
	defer cancel()
	ctx, span := r.tracer.Start(ctx, "identity.verify")
	defer span.End()
	fp := credentials.CallerFingerprint(ctx)
	me, err := r.user.CurrentUser.Me(ctx, iam.MeRequest{})
	switch {
	case err == nil && me.Id != "":
		id := agent.Identity{PrincipalID: me.Id, UserName: me.UserName, DisplayName: me.DisplayName}
		for _, e := range me.Emails {
			if id.Email == "" || e.Primary {
				id.Email = e.Value
			}
		}
		span.SetAttributes(attribute.String("enduser.id", id.PrincipalID))
		ttl := r.verifyTTL
		if exp, ok := jwtExpiry(credentials.CallerToken(ctx)); ok {
			ttl = min(ttl, time.Until(exp))
			if ttl <= 0 {
				return agent.Identity{}, r.rejectTTL, httperr.Unauthenticated("the caller's credential has expired")
			}
		}
		return id, ttl, nil
	case err == nil:
		err = errors.New("the workspace returned no principal id")
	case errors.Is(err, databricks.ErrUnauthenticated):
		span.SetStatus(codes.Error, "rejected")
		r.log.InfoContext(ctx, "caller credential rejected by the workspace", "credential", fp)
		return agent.Identity{}, r.rejectTTL, httperr.Unauthenticated("the caller's credential was rejected by the workspace (invalid, expired or revoked)")
	case errors.Is(err, databricks.ErrPermissionDenied):
		span.SetStatus(codes.Error, "identity unreadable")
		return agent.Identity{}, r.rejectTTL, httperr.PermissionDenied("the caller's credential may not read its own identity (SCIM Me, API scope iam.current-user:read), so it cannot be verified")
	}
	span.SetStatus(codes.Error, "unavailable")
	r.log.WarnContext(ctx, "caller credential could not be verified", "credential", fp, "error", err)
	return agent.Identity{}, DefaultUnavailableTTL, httperr.Unavailable("the workspace could not verify the caller's credential; retry shortly", 1)
}

// jwtExpiry reads the exp claim of a JWT without checking its signature
// (the workspace has just accepted the token); ok is false for opaque tokens.
func jwtExpiry(token string) (time.Time, bool) {
	_, rest, ok := strings.Cut(token, ".")
	if !ok {
		return time.Time{}, false
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	sec, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(sec), 0), true
}

// fillForwarded fills the names the workspace did not report from the
// trusted proxy's headers.
func fillForwarded(id *agent.Identity, req *http.Request) {
	if id.Email == "" {
		id.Email = header(req, HeaderForwardedEmail)
	}
	if id.UserName == "" {
		id.UserName = header(req, HeaderForwardedUsername)
	}
	if id.UserName == "" {
		id.UserName = id.Email
	}
}

// header reads a header whose name is already in canonical form, without
// canonicalising it again on every request.
func header(req *http.Request, canonical string) string {
	if v := req.Header[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// credential returns the caller's token ("" when none was sent) and whether
// it came in X-Forwarded-Access-Token.
func (r *Resolver) credential(req *http.Request) (token string, forwarded bool, err error) {
	for _, h := range [...]string{HeaderForwardedUser, HeaderForwardedEmail, HeaderForwardedUsername, HeaderDevUser} {
		if len(header(req, h)) > maxIdentityLen {
			return "", false, tooLarge(h, maxIdentityLen)
		}
	}
	if name := strings.TrimSpace(header(req, HeaderDevUser)); name != "" {
		if !r.dev {
			return "", false, httperr.Unauthenticated("X-Dev-User is a mock identity and is accepted only when the server runs with --dev")
		}
		tok, ok := r.devUsers[strings.ToLower(name)]
		if !ok {
			return "", false, httperr.Unauthenticated(fmt.Sprintf("unknown mock identity %q in X-Dev-User (known: %s)", name, strings.Join(r.devNames, ", ")))
		}
		return tok, false, nil
	}
	for _, h := range r.headers {
		v := strings.TrimSpace(header(req, h))
		if v == "" {
			continue
		}
		if len(v) > maxTokenLen+len("Bearer ") {
			return "", false, tooLarge(h, maxTokenLen)
		}
		if h == HeaderAuthorization {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return "", false, httperr.Unauthenticated("Authorization must be \"Bearer <token>\"")
			}
			v = strings.TrimSpace(tok)
		}
		if strings.ContainsFunc(v, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return "", false, httperr.Unauthenticated("malformed credential in " + h)
		}
		if v != "" {
			return v, h == HeaderForwardedAccessToken, nil
		}
	}
	return "", false, nil
}

func tooLarge(h string, limit int) error {
	return httperr.New(http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("header %s is longer than %d bytes", h, limit))
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

const tracerName = "github.com/agentrt/agentrt/internal/identity"

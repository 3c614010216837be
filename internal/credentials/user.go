package credentials

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/agentrt/agentrt/internal/httpretry"
	"github.com/agentrt/agentrt/internal/scopes"
	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
	sdkcred "github.com/databricks/databricks-sdk-go/config/credentials"
)

// UserStrategyName names the user client's credentials strategy; the SDK
// reports it in the User-Agent as auth/agentrt-user.
const UserStrategyName = "agentrt-user"

// AutoGrantedScopes are granted by Databricks to every on-behalf-of-user
// token, so the user client allows them whatever the agent declares.
var AutoGrantedScopes = []string{"iam.current-user:read", "iam.access-control:read"}

// UserOptions configure the user client.
type UserOptions struct {
	// Host is the workspace URL (required).
	Host string
	// Scopes are the agent's declared user API scopes. Calls to routes that
	// none of them (nor AutoGrantedScopes) allow are refused locally. Empty
	// means the user client may call nothing but the auto-granted routes.
	Scopes []string
	// Exchange, when set, exchanges each inbound token for one limited to
	// Scopes (RFC 8693) and uses that instead.
	Exchange *ExchangeOptions
	ClientOptions
}

// User is the on-behalf-of-user client: one *databricks.WorkspaceClient
// shared by all requests, whose credential is read from each call's ctx.
// It is safe for concurrent use and holds no per-caller state (beyond the
// exchanged-token cache, keyed by the full credential's hash).
type User struct {
	w        *databricks.WorkspaceClient
	hostport string
	declared []string
	granted  []string
	exch     *exchanger
}

// NewUser builds the user client. It does no network, file or environment
// I/O; neither does any later use except the token exchange, when enabled.
func NewUser(opts UserOptions) (*User, error) {
	host, hostport, err := parseHost(opts.Host)
	if err != nil {
		return nil, err
	}
	for _, s := range opts.Scopes {
		if !scopes.Known(s) {
			return nil, fmt.Errorf("credentials: unknown user API scope %q", s)
		}
	}
	if opts.Exchange != nil && len(opts.Scopes) == 0 {
		return nil, fmt.Errorf("credentials: token exchange needs declared user API scopes")
	}
	u := &User{
		hostport: hostport,
		declared: slices.Clone(opts.Scopes),
		granted:  append(slices.Clone(opts.Scopes), AutoGrantedScopes...),
	}
	if opts.Exchange != nil {
		// The exchanged token carries the auto-granted scopes too, as the
		// platform's own on-behalf-of tokens do.
		u.exch, err = newExchanger(host, u.granted, *opts.Exchange, opts.Transport)
		if err != nil {
			return nil, err
		}
	}
	co := opts.ClientOptions
	co.Transport = sdkRetrying{retry: &httpretry.Transport{Base: co.Transport, ErrorOnGiveUp: true}, base: co.Transport}
	u.w, err = newClient(host, userStrategy{u}, co)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Client returns the shared user client. Use it only with the request's ctx
// (or one derived from it); with any other ctx every call fails with a
// *NoCallerError.
func (u *User) Client() *databricks.WorkspaceClient { return u.w }

// Scopes returns the declared user API scopes.
func (u *User) Scopes() []string { return slices.Clone(u.declared) }

// setHeaders is the user client's credentials provider: it runs for every
// SDK call and every request signed through Config.Authenticate.
func (u *User) setHeaders(r *http.Request) error {
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	c, ok := callerFrom(r.Context())
	if !ok {
		return &NoCallerError{Method: r.Method, Path: path}
	}
	if err := checkHost(r, u.hostport); err != nil {
		return err
	}
	if ok, missing := scopes.Check(u.granted, r.Method, path); !ok {
		return &ScopeError{Scope: missing, Method: r.Method, Path: path, Declared: slices.Clone(u.declared)}
	}
	token := c.token
	if u.exch != nil {
		t, err := u.exch.token(r.Context(), c)
		if err != nil {
			return err
		}
		token = t
	}
	r.Header.Set("Authorization", "Bearer "+token)
	setRequestID(r)
	return nil
}

type userStrategy struct{ u *User }

func (userStrategy) Name() string { return UserStrategyName }

func (s userStrategy) Configure(_ context.Context, _ *config.Config) (sdkcred.CredentialsProvider, error) {
	return sdkcred.CredentialsProviderFn(s.u.setHeaders), nil
}

package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/workspace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/wsapi"
)

// Auth says how the requests to an MCP server are authenticated.
//
// The zero value is the workspace credential: the client the provider is
// prepared with signs each request (the caller's token for tools.User, the
// service principal's for tools.System). It is only ever sent to the
// workspace host, so it suits workspace paths and the Databricks managed
// servers; a server elsewhere is reached through a UC connection
// (ExternalPath, where the workspace proxy adds the connection's credential)
// or with an Auth of its own: NoAuth, BearerAuth or ClientCredentialsAuth.
type Auth struct {
	kind   authKind
	bearer string                    // a token or a {{secrets/scope/key}} reference
	cc     *clientcredentials.Config // ClientSecret may be a reference
}

type authKind int

const (
	authWorkspace authKind = iota
	authNone
	authBearer
	authClientCredentials
)

func (a Auth) String() string {
	return [...]string{"workspace", "none", "bearer", "client credentials"}[a.kind]
}

// WorkspaceAuth is the zero Auth, the workspace credential.
func WorkspaceAuth() Auth { return Auth{} }

// NoAuth sends no credential (a public server, or one on a trusted network).
func NoAuth() Auth { return Auth{kind: authNone} }

// BearerAuth sends "Authorization: Bearer <token>". token is either the
// value or a {{secrets/scope/key}} reference, which Prepare resolves through
// the workspace Secrets API with the client it is given (so the binding's
// identity needs READ on the scope; the value is not cached across Prepare
// calls, so a caller who may not read it cannot use the server either).
func BearerAuth(token string) Auth { return Auth{kind: authBearer, bearer: token} }

// ClientCredentialsAuth gets tokens with the OAuth client credentials grant
// and sends them as bearer tokens. c.ClientSecret may be a
// {{secrets/scope/key}} reference, resolved like BearerAuth's. Tokens are
// cached by the provider until they expire.
func ClientCredentialsAuth(c *clientcredentials.Config) Auth {
	return Auth{kind: authClientCredentials, cc: c}
}

// secretRef is a whole value that is one {{secrets/scope/key}} reference, the
// syntax of Databricks Model Serving and Apps environment variables.
var secretRef = regexp.MustCompile(`^\{\{\s*secrets/([A-Za-z0-9_.\-]+)/([A-Za-z0-9_.\-]+)\s*\}\}$`)

// secretRef reports whether a's credential is a secret reference.
func (a Auth) secretRef() bool {
	return secretRef.MatchString(a.bearer) || (a.cc != nil && secretRef.MatchString(a.cc.ClientSecret))
}

// validate checks a against the server URL (nil for a workspace path).
func (a Auth) validate(target *url.URL, kind Kind) error {
	switch {
	case a.kind == authWorkspace && target != nil && kind == KindCustom:
		return fmt.Errorf("mcp: refusing to configure the workspace credential for host %q: %s is not a Databricks managed MCP server path, "+
			"and the workspace credential is only sent to the workspace; reach the server through a UC connection (mcp.ExternalPath) "+
			"or give it its own Options.Auth (NoAuth, BearerAuth, ClientCredentialsAuth)", target.Host, target.Path)
	case a.kind == authWorkspace:
		return nil
	case target == nil:
		return fmt.Errorf("mcp: %s auth is for servers outside the workspace; a workspace path uses the workspace credential", a)
	}
	check := func(what, v string) error {
		if strings.Contains(v, "{{") && !secretRef.MatchString(v) {
			return fmt.Errorf("mcp: %s must be a value or exactly one {{secrets/scope/key}} reference", what)
		}
		return nil
	}
	switch a.kind {
	case authBearer:
		if strings.TrimSpace(a.bearer) == "" {
			return errors.New("mcp: BearerAuth needs a token or a {{secrets/scope/key}} reference")
		}
		if err := check("the bearer token", a.bearer); err != nil {
			return err
		}
	case authClientCredentials:
		if a.cc == nil || a.cc.ClientID == "" || a.cc.TokenURL == "" {
			return errors.New("mcp: ClientCredentialsAuth needs ClientID and TokenURL")
		}
		if err := check("the client secret", a.cc.ClientSecret); err != nil {
			return err
		}
		tu, err := url.Parse(a.cc.TokenURL)
		if err != nil || tu.Host == "" || (tu.Scheme != "https" && !(tu.Scheme == "http" && loopback(tu))) {
			return fmt.Errorf("mcp: token URL %q must be https (http only on loopback)", a.cc.TokenURL)
		}
	}
	if a.kind != authNone && target.Scheme != "https" && !loopback(target) {
		return fmt.Errorf("mcp: refusing to send a %s credential to %q over plain http (https, or http on loopback only)", a, target.Host)
	}
	return nil
}

func loopback(u *url.URL) bool {
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// conn is how one prepared toolset reaches its server.
type conn struct {
	url string
	hc  *http.Client
	w   *databricks.WorkspaceClient // part of the session key
	// auth tells apart the credentials a server-side session was opened
	// with (a digest of a resolved token or client secret), so a rotated
	// secret gets new sessions.
	auth string
}

// connect builds the conn for w: the workspace signer for the workspace
// credential, the server's own credential otherwise.
func (p *Provider) connect(ctx context.Context, w *databricks.WorkspaceClient) (*conn, error) {
	a := p.opts.Auth
	if a.kind == authWorkspace {
		if w == nil {
			return nil, tools.ErrNoClient
		}
		host, err := wsapi.Host(w)
		if err != nil {
			return nil, err
		}
		u := host + p.path
		if p.target != nil {
			// Refuse before anything is sent; the signer would refuse each
			// request anyway.
			hu, _ := url.Parse(host)
			if wsapi.HostPort(p.target) != wsapi.HostPort(hu) {
				return nil, fmt.Errorf("mcp %s: %w", p.opts.Name, &wsapi.HostError{Host: p.target.Host, Workspace: hu.Host})
			}
			u = p.opts.URL
		}
		hc, err := wsapi.HTTPClient(w)
		if err != nil {
			return nil, err
		}
		return &conn{url: u, w: w, hc: &http.Client{Transport: statusCheck{hc.Transport}}}, nil
	}
	base := http.DefaultTransport
	if w != nil && w.Config != nil && w.Config.HTTPTransport != nil {
		base = w.Config.HTTPTransport // telemetry, never credentials
	}
	t := &authTransport{host: p.target.Host, hostport: wsapi.HostPort(p.target), kind: a.String(), base: base}
	c := &conn{url: p.opts.URL, w: w}
	switch a.kind {
	case authBearer:
		tok, err := p.resolve(ctx, w, a.bearer)
		if err != nil {
			return nil, err
		}
		header := "Bearer " + tok
		t.header = func(context.Context) (string, error) { return header, nil }
		c.auth = digest(tok)
	case authClientCredentials:
		secret, err := p.resolve(ctx, w, a.cc.ClientSecret)
		if err != nil {
			return nil, err
		}
		src := p.tokenSource(secret, base)
		t.header = src.header
		c.auth = digest(a.cc.ClientID + "\x00" + secret)
	}
	c.hc = &http.Client{Transport: statusCheck{t}}
	return c, nil
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// resolve returns v, or the secret it references, read with w.
func (p *Provider) resolve(ctx context.Context, w *databricks.WorkspaceClient, v string) (string, error) {
	m := secretRef.FindStringSubmatch(v)
	if m == nil {
		return v, nil
	}
	if w == nil {
		return "", fmt.Errorf("mcp %s: secret reference %s: %w", p.opts.Name, v, tools.ErrNoClient)
	}
	resp, err := w.Secrets.GetSecret(ctx, workspace.GetSecretRequest{Scope: m[1], Key: m[2]})
	if err != nil {
		return "", fmt.Errorf("mcp %s: secret reference %s: %w", p.opts.Name, v, err)
	}
	b, err := base64.StdEncoding.DecodeString(resp.Value)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("mcp %s: secret reference %s: the Secrets API returned no usable value", p.opts.Name, v)
	}
	return string(b), nil
}

// authTransport adds a server's own credential, only to the server's host
// (not to a host a redirect leads to). Like wsapi.Transport it only signs:
// statusCheck reads the answers.
type authTransport struct {
	host, hostport string
	kind           string
	header         func(context.Context) (string, error) // nil: no credential
	base           http.RoundTripper
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req
	if t.header != nil {
		if wsapi.HostPort(req.URL) != t.hostport {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, fmt.Errorf("refusing to send the server's %s credential to host %q (server host is %q)", t.kind, req.URL.Host, t.host)
		}
		h, err := t.header(req.Context())
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		r = req.Clone(req.Context())
		r.Header.Set("Authorization", h)
	}
	return t.base.RoundTrip(r)
}

// ccSource caches client-credentials tokens. Unlike oauth2.TokenSource it
// fetches with the caller's ctx, and a caller waiting for another's fetch
// stops waiting when its own ctx ends.
type ccSource struct {
	cfg *clientcredentials.Config
	hc  *http.Client
	sem chan struct{} // held while reading, fetching or storing tok
	tok *oauth2.Token
}

func (s *ccSource) header(ctx context.Context) (string, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.sem }()
	if !s.tok.Valid() {
		tok, err := s.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.hc))
		if err != nil {
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
				// The token endpoint refused the client: unauthenticated,
				// so the tool is skipped rather than failing the request.
				return "", &apierr.APIError{ErrorCode: "UNAUTHENTICATED", StatusCode: http.StatusUnauthorized,
					Message: fmt.Sprintf("client credentials token request refused (HTTP %d %s)", re.Response.StatusCode, re.ErrorCode)}
			}
			return "", fmt.Errorf("client credentials token request: %w", err)
		}
		s.tok = tok
	}
	return s.tok.Type() + " " + s.tok.AccessToken, nil
}

// tokenSource returns the provider's token cache for secret, replacing it
// when the secret has changed.
func (p *Provider) tokenSource(secret string, base http.RoundTripper) *ccSource {
	p.ccMu.Lock()
	defer p.ccMu.Unlock()
	if p.cc != nil && p.cc.cfg.ClientSecret == secret {
		return p.cc
	}
	o := p.opts.Auth.cc
	cfg := &clientcredentials.Config{ClientID: o.ClientID, ClientSecret: secret, TokenURL: o.TokenURL,
		Scopes: o.Scopes, EndpointParams: o.EndpointParams, AuthStyle: o.AuthStyle}
	p.cc = &ccSource{cfg: cfg, hc: &http.Client{Transport: base}, sem: make(chan struct{}, 1)}
	return p.cc
}

// statusCheck is the provider's error mapping for the HTTP answers mcp-go
// reads. mcp-go reports a failed request as a formatted string ("request
// failed with status 403: …"), so the provider reads the status itself, under
// mcp-go, from the response the signing transport passed through:
//
//   - 401 and 403 become the SDK's *apierr.APIError (wsapi.ResponseError), so
//     errors.Is(err, databricks.ErrPermissionDenied) holds and a refused
//     credential reads as a permission failure (the tool is skipped);
//   - a 400 to a request that carried a session id and whose body names the
//     session ("Bad Request: No valid session ID provided", as the reference
//     TypeScript servers answer a restarted server's unknown session) becomes
//     *SessionError. mcp-go itself only knows the spec's 404
//     (transport.ErrSessionTerminated).
type statusCheck struct{ base http.RoundTripper }

func (t statusCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if wsapi.IsAuthStatus(resp.StatusCode) {
		return nil, wsapi.ResponseError(req.Context(), resp)
	}
	if resp.StatusCode != http.StatusBadRequest || req.Header.Get(sessionHeader) == "" || req.Method == http.MethodDelete {
		return resp, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if bytes.Contains(bytes.ToLower(body), []byte("session")) {
		return nil, &SessionError{Status: resp.StatusCode}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

const sessionHeader = "Mcp-Session-Id"

// SessionError is a server's answer that it no longer knows the session a
// request carried (it restarted, or expired the session).
type SessionError struct{ Status int }

func (e *SessionError) Error() string {
	return fmt.Sprintf("the server does not know the session (HTTP %d)", e.Status)
}

// Package appsdoor is an emulated Databricks Apps front door for `serve --dev
// --dev-apps`: a reverse proxy that signs the caller in against the dev
// workspace, mints a user token limited to the app's user_api_scopes, strips
// what a client could forge and forwards what the platform forwards, so the
// agent behind it sees exactly what it will see on Databricks.
package appsdoor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/agentrt/agentrt/internal/httperr"
)

// Options configure New.
type Options struct {
	// Workspace is the dev workspace's base URL (loopback).
	Workspace string
	// Agent is the base URL of the agent behind the door.
	Agent string
	// Scopes are the app's user_api_scopes. Empty means user authorization
	// is off: no user token is forwarded, as on the platform.
	Scopes []string
	// Users maps mock identities (X-Dev-User: alice) to their tokens.
	Users map[string]string
	// Client calls the dev workspace (default: a client with a 10 s
	// timeout).
	Client *http.Client
	Logger *slog.Logger
}

// Headers the platform sets; a client's own values never pass the door.
const (
	hAccessToken = "X-Forwarded-Access-Token"
	hUser        = "X-Forwarded-User"
	hEmail       = "X-Forwarded-Email"
	hUsername    = "X-Forwarded-Preferred-Username"
	hHost        = "X-Forwarded-Host"
	hRealIP      = "X-Real-Ip"
	hRequestID   = "X-Request-Id"
	hDevUser     = "X-Dev-User"
)

// Door is the front door; it is an http.Handler.
type Door struct {
	o     Options
	ws    *url.URL
	proxy *httputil.ReverseProxy
	log   *slog.Logger
}

// New builds the door; it does no I/O.
func New(o Options) (*Door, error) {
	ws, err := url.Parse(o.Workspace)
	if err != nil || ws.Host == "" {
		return nil, fmt.Errorf("appsdoor: workspace URL %q: %v", o.Workspace, err)
	}
	target, err := url.Parse(o.Agent)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("appsdoor: agent URL %q: %v", o.Agent, err)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	d := &Door{o: o, ws: ws, log: o.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			fwd := pr.In.Context().Value(forwardKey{}).(http.Header)
			for k, v := range fwd {
				pr.Out.Header[k] = v
			}
		},
		FlushInterval: -1, // SSE streams pass through as written
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			d.log.Warn("apps front door: agent unreachable", "error", err)
			httperr.Unavailable("the agent behind the Apps front door is not reachable", 1).Write(w)
		},
	}
	return d, nil
}

type forwardKey struct{}

// identity is the workspace's answer for the caller (SCIM Me).
type identity struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Emails   []struct {
		Value   string `json:"value"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
}

// ServeHTTP authenticates, mints, strips and forwards.
func (d *Door) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, herr := d.callerToken(r)
	if herr != nil {
		herr.Write(w)
		return
	}
	id, err := d.me(r.Context(), token)
	if err != nil {
		httperr.From(err).Write(w)
		return
	}
	fwd := http.Header{}
	if len(d.o.Scopes) > 0 {
		down, err := d.exchange(r.Context(), token)
		if err != nil {
			httperr.From(err).Write(w)
			return
		}
		fwd.Set(hAccessToken, down)
	}
	fwd.Set(hUser, id.ID)
	fwd.Set(hUsername, id.UserName)
	for _, e := range id.Emails {
		if fwd.Get(hEmail) == "" || e.Primary {
			fwd.Set(hEmail, e.Value)
		}
	}
	fwd.Set(hHost, r.Host)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		fwd.Set(hRealIP, ip)
	}
	if rid := r.Header.Get(hRequestID); rid != "" {
		fwd.Set(hRequestID, rid)
	}
	out := r.Clone(context.WithValue(r.Context(), forwardKey{}, fwd))
	strip(out.Header)
	d.proxy.ServeHTTP(w, out)
}

// strip removes everything a client could use to pose as someone else.
func strip(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "X-Forwarded-") || k == "Authorization" || k == hDevUser || k == hRealIP || k == "Forwarded" {
			delete(h, k)
		}
	}
}

// callerToken is the credential the client signed in with: a mock
// identity's token or its own bearer token.
func (d *Door) callerToken(r *http.Request) (string, *httperr.Error) {
	if name := strings.TrimSpace(r.Header.Get(hDevUser)); name != "" {
		tok, ok := d.o.Users[strings.ToLower(name)]
		if !ok {
			return "", httperr.Unauthenticated(fmt.Sprintf("Apps front door: unknown mock identity %q in X-Dev-User", name))
		}
		return tok, nil
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.TrimSpace(tok) != "" {
		return strings.TrimSpace(tok), nil
	}
	return "", httperr.Unauthenticated("Apps front door: sign in with X-Dev-User: alice (a mock identity) or Authorization: Bearer <dev workspace token>")
}

// me asks the workspace who the token belongs to.
func (d *Door) me(ctx context.Context, token string) (identity, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.ws.JoinPath("/api/2.0/preview/scim/v2/Me").String(), nil)
	if err != nil {
		return identity{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	var id identity
	if err := d.do(req, &id); err != nil {
		return identity{}, err
	}
	if id.ID == "" {
		return identity{}, httperr.Unauthenticated("Apps front door: the workspace returned no identity for the credential")
	}
	return id, nil
}

// exchange mints the down-scoped user token the platform forwards (RFC 8693).
func (d *Door) exchange(ctx context.Context, token string) (string, error) {
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {token},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"scope":              {strings.Join(d.o.Scopes, " ")},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.ws.JoinPath("/oidc/v1/token").String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := d.do(req, &tr); err != nil {
		return "", err
	}
	return tr.AccessToken, nil
}

// do sends req to the workspace and decodes a 200 answer into v; a 401/403
// is the caller's fault, anything else the workspace's.
func (d *Door) do(req *http.Request, v any) error {
	resp, err := d.o.Client.Do(req)
	if err != nil {
		d.log.Warn("apps front door: dev workspace unreachable", "error", err)
		return httperr.Unavailable("Apps front door: the dev workspace is not reachable", 1)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return httperr.Unavailable("Apps front door: reading the dev workspace's answer failed", 1)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(body, v); err != nil {
			return httperr.Internal("Apps front door: unreadable answer from the dev workspace")
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusBadRequest:
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		return httperr.Unauthenticated("Apps front door: the workspace refused the credential: " + e.Message)
	}
	return httperr.Unavailable(fmt.Sprintf("Apps front door: the dev workspace answered %d", resp.StatusCode), 1)
}

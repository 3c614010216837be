package mcp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/internal/wsapi"
	toolsmcp "github.com/agentrt/agentrt/tools/mcp"
)

// echoCall prepares p with w as ctx's caller and calls its echo tool n times.
func echoCall(t *testing.T, ctx context.Context, p *toolsmcp.Provider, w *databricks.WorkspaceClient, n int) {
	t.Helper()
	ts, err := p.Prepare(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	var echo agent.Tool
	for _, x := range ts {
		if x.Definition().Name == "echo" {
			echo = x
		}
	}
	if echo == nil {
		t.Fatalf("no echo tool in %d tools", len(ts))
	}
	for range n {
		if out, err := echo.Call(ctx, `{"text":"hi"}`); err != nil || out != "echo: hi" {
			t.Fatalf("call = %q, %v", out, err)
		}
	}
}

// TestWorkspaceCredentialForeignHost: the workspace credential is never
// bound to a server outside the workspace. A custom URL elsewhere is refused
// at New, naming its host; a managed-server path on a foreign host is
// refused at Prepare before anything is sent, for a static-token client
// too (whose SDK signer has no host check of its own).
func TestWorkspaceCredentialForeignHost(t *testing.T) {
	s := newSpy(t)
	host := strings.TrimPrefix(s.URL, "http://")
	_, err := toolsmcp.New(toolsmcp.Options{URL: s.URL + "/mcp"})
	if err == nil || !strings.Contains(err.Error(), `"`+host+`"`) {
		t.Fatalf("New with the workspace credential for %s: err = %v, want one naming the host", host, err)
	}
	_, err = toolsmcp.New(toolsmcp.Options{URL: s.URL + "/mcp", Auth: toolsmcp.WorkspaceAuth()})
	if err == nil {
		t.Error("explicit WorkspaceAuth for a foreign host accepted")
	}

	ws := newFakeServer(t) // the workspace
	p, err := toolsmcp.New(toolsmcp.Options{URL: toolsmcp.Functions(s.URL, "main", "tools")})
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*databricks.WorkspaceClient{
		"pat":  testws.PAT(t, ws.URL, "alice-token"),
		"user": userClient(t, ws.URL, "mcp.functions", toolsmcp.FunctionsProbeScope),
	} {
		_, err := p.Prepare(callerCtx("alice", "alice-token"), w)
		var he *wsapi.HostError
		if !errors.As(err, &he) || !tools.IsPermission(err) || !strings.Contains(err.Error(), host) {
			t.Errorf("%s client: err = %v, want a HostError naming %s", name, err, host)
		}
	}
	if n := len(s.authHeaders()); n != 0 {
		t.Errorf("the foreign server got %d requests", n)
	}

	// Own credentials are for servers outside the workspace, over TLS.
	for _, o := range []toolsmcp.Options{
		{URL: toolsmcp.FunctionsPath("main", "tools"), Auth: toolsmcp.BearerAuth("x")},
		{URL: "http://mcp.example.com/mcp", Auth: toolsmcp.BearerAuth("x")},
		{URL: "https://mcp.example.com/mcp", Auth: toolsmcp.BearerAuth("")},
		{URL: "https://mcp.example.com/mcp", Auth: toolsmcp.BearerAuth("Bearer {{secrets/a/b}}")},
		{URL: "https://mcp.example.com/mcp", Auth: toolsmcp.ClientCredentialsAuth(&clientcredentials.Config{ClientID: "c", TokenURL: "http://idp.example.com/token"})},
	} {
		if _, err := toolsmcp.New(o); err == nil {
			t.Errorf("New(%s, %s auth) accepted", o.URL, o.Auth)
		}
	}
}

// TestNoAuth: a server with NoAuth gets no credential, though the caller's
// token is in the ctx and the dev workspace client is bound.
func TestNoAuth(t *testing.T) {
	s := newSpy(t)
	ws := testws.Dev(t)
	p, err := toolsmcp.New(toolsmcp.Options{URL: s.URL + "/mcp", Auth: toolsmcp.NoAuth()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	echoCall(t, testws.As("alice"), p, testws.User(t, ws.URL()), 2)
	if r := p.Requirements(); len(r.UserScopes) != 0 || len(r.Resources) != 0 {
		t.Errorf("requirements = %+v", r)
	}
	for i, a := range s.authHeaders() {
		if a != "" {
			t.Errorf("request %d carried %q", i, a)
		}
	}
}

// TestBearerAuth: a static bearer, given as a value or as a secret reference
// resolved with the bound (system) client, is exactly what the server sees.
func TestBearerAuth(t *testing.T) {
	ws := testws.Dev(t)
	sys := testws.System(t, ws.URL())
	for _, tc := range []struct{ token, want string }{
		{"static-xyz", "Bearer static-xyz"},
		{"{{secrets/agent/external_api_token}}", "Bearer dev-external-token"},
	} {
		s := newSpy(t)
		p, err := toolsmcp.New(toolsmcp.Options{URL: s.URL + "/mcp", Auth: toolsmcp.BearerAuth(tc.token)})
		if err != nil {
			t.Fatal(err)
		}
		echoCall(t, testws.As("alice"), p, sys, 2)
		p.Close()
		got := s.authHeaders()
		if len(got) < 4 {
			t.Fatalf("%d requests", len(got))
		}
		for i, a := range got {
			if a != tc.want {
				t.Errorf("%s: request %d (%s) carried %q, want %q", tc.token, i, s.methods[i], a, tc.want)
			}
		}
	}
	ref, _ := toolsmcp.New(toolsmcp.Options{URL: "https://mcp.example.com/mcp", Auth: toolsmcp.BearerAuth("{{secrets/agent/external_api_token}}")})
	if r := ref.Requirements(); strings.Join(r.UserScopes, ",") != "workspace.secrets" {
		t.Errorf("scopes with a secret reference = %v", r.UserScopes)
	}
	// An unresolvable reference fails Prepare, naming the reference, and
	// the server is never contacted.
	s := newSpy(t)
	p, _ := toolsmcp.New(toolsmcp.Options{URL: s.URL + "/mcp", Auth: toolsmcp.BearerAuth("{{secrets/nope/key}}")})
	if _, err := p.Prepare(context.Background(), sys); err == nil || !strings.Contains(err.Error(), "{{secrets/nope/key}}") {
		t.Errorf("unresolvable reference: err = %v", err)
	}
	if n := len(s.authHeaders()); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

// tokenEndpoint is a fake OAuth token endpoint for the client credentials
// grant: it accepts one client and mints minted-1, minted-2, ...
type tokenEndpoint struct {
	*httptest.Server
	mu     sync.Mutex
	minted int
}

func newTokenEndpoint(t *testing.T, id, secret string) *tokenEndpoint {
	e := &tokenEndpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID, gotSecret, ok := r.BasicAuth()
		if !ok {
			gotID, gotSecret = r.FormValue("client_id"), r.FormValue("client_secret")
		}
		if r.FormValue("grant_type") != "client_credentials" || gotID != id || gotSecret != secret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		e.mu.Lock()
		e.minted++
		n := e.minted
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"minted-` + string(rune('0'+n)) + `","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(e.Close)
	return e
}

// TestClientCredentialsAuth: the server sees the token the token endpoint
// minted, fetched once and reused; the client secret may be a secret
// reference; a refused client skips the tool as unauthenticated.
func TestClientCredentialsAuth(t *testing.T) {
	ws := testws.Dev(t)
	sys := testws.System(t, ws.URL())
	idp := newTokenEndpoint(t, "mcp-client", "dev-external-token")
	s := newSpy(t)
	cc := &clientcredentials.Config{ClientID: "mcp-client", ClientSecret: "{{secrets/agent/external_api_token}}", TokenURL: idp.URL + "/token"}
	p, err := toolsmcp.New(toolsmcp.Options{URL: s.URL + "/mcp", Auth: toolsmcp.ClientCredentialsAuth(cc)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	echoCall(t, testws.As("alice"), p, sys, 2)
	echoCall(t, testws.As("bob"), p, sys, 1)
	for i, a := range s.authHeaders() {
		if a != "Bearer minted-1" {
			t.Errorf("request %d carried %q", i, a)
		}
	}
	idp.mu.Lock()
	if idp.minted != 1 {
		t.Errorf("minted %d tokens, want 1 (cached)", idp.minted)
	}
	idp.mu.Unlock()

	bad := &clientcredentials.Config{ClientID: "mcp-client", ClientSecret: "wrong-secret", TokenURL: idp.URL + "/token"}
	p2, _ := toolsmcp.New(toolsmcp.Options{URL: s.URL + "/mcp", Auth: toolsmcp.ClientCredentialsAuth(bad)})
	before := len(s.authHeaders())
	_, err = p2.Prepare(testws.As("alice"), nil)
	if !errors.Is(err, databricks.ErrUnauthenticated) || !tools.IsPermission(err) || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("refused client: err = %v", err)
	}
	if len(s.authHeaders()) != before {
		t.Error("the server was contacted without a token")
	}
}

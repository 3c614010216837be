package devworkspace

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bearerParams parses an RFC 6750 challenge (quoted values only, as sent).
func bearerParams(t *testing.T, h string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		t.Fatalf("WWW-Authenticate %q is not a Bearer challenge", h)
	}
	m := map[string]string{}
	for _, kv := range regexp.MustCompile(`([a-z_]+)="([^"\\]*)"(?:, |$)`).FindAllStringSubmatch(rest, -1) {
		m[kv[1]] = kv[2]
	}
	return m
}

func mcpPost(t *testing.T, url string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Every 401 of a managed MCP server (a missing, unknown or expired token)
// carries the Bearer invalid_token challenge with the body's message and
// the URL of the server's RFC 9728 metadata, which names the workspace's
// issuer for exactly that resource. Without it MCP clients start OAuth.
func TestMCPUnauthorizedChallenge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ws := apisWorkspace(t, Options{})
	ws.now = func() time.Time { return now }

	paths := []string{
		"/api/2.0/mcp/sql",
		"/api/2.0/mcp/functions/main/tools",
		"/api/2.0/mcp/functions/main/tools/lookup_order",
		"/api/2.0/mcp/vector-search/main/docs",
		"/api/2.0/mcp/genie/01dev0genie0sales",
		"/api/2.0/mcp/external/dev-external-mcp",
	}
	for _, p := range paths {
		// Expired tokens are forgotten once refused: one per path.
		expiring, _ := ws.auth.issue(ws.principals["alice@example.com"], "oauth", []string{"all-apis"}, time.Minute)
		now = now.Add(time.Hour)
		for _, tc := range []struct {
			name, auth, desc string
		}{
			{"no token", "", "no credentials"},
			{"unknown token", "Bearer dev-nobody-token", "invalid access token"},
			{"expired token", "Bearer " + expiring, "access token expired"},
		} {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			resp := mcpPost(t, ws.URL()+p, h)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s, %s: %d, want 401", p, tc.name, resp.StatusCode)
			}
			var body errorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.ErrorCode != codeUnauthenticated {
				t.Errorf("%s, %s: body %+v, %v", p, tc.name, body, err)
			}
			c := bearerParams(t, resp.Header.Get("WWW-Authenticate"))
			if c["error"] != "invalid_token" || !strings.Contains(c["error_description"], tc.desc) || c["error_description"] != body.Message {
				t.Errorf("%s, %s: challenge %q (body %q)", p, tc.name, resp.Header.Get("WWW-Authenticate"), body.Message)
			}
			if want := ws.URL() + "/.well-known/oauth-protected-resource" + p; c["resource_metadata"] != want {
				t.Errorf("%s, %s: resource_metadata %q, want %q", p, tc.name, c["resource_metadata"], want)
			}
		}
	}
	// The audit log records the 401s as before.
	found := false
	for _, e := range ws.audit.since(0) {
		found = found || e.Path == "/api/2.0/mcp/sql" && e.Status == http.StatusUnauthorized
	}
	if !found {
		t.Error("audit log lacks the 401")
	}
	// A valid token is served as before, without a challenge.
	ok := mcpPost(t, ws.URL()+"/api/2.0/mcp/sql", http.Header{"Authorization": {"Bearer " + AliceToken}})
	if ok.StatusCode != http.StatusOK || ok.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("alice: %d %q", ok.StatusCode, ok.Header.Get("WWW-Authenticate"))
	}
}

// The metadata document of a managed server names the resource exactly as
// the client dialled it and the issuer whose RFC 8414 metadata is served,
// so a client can follow the chain; a path that is no MCP server is a 404.
func TestMCPProtectedResourceMetadata(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	get := func(url string, v any) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil && resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		BearerMethods        []string `json:"bearer_methods_supported"`
		Scopes               []string `json:"scopes_supported"`
	}
	if s := get(ws.URL()+"/.well-known/oauth-protected-resource/api/2.0/mcp/functions/main/tools", &prm); s != http.StatusOK {
		t.Fatalf("metadata: %d", s)
	}
	if prm.Resource != ws.URL()+"/api/2.0/mcp/functions/main/tools" || len(prm.AuthorizationServers) != 1 ||
		prm.BearerMethods[0] != "header" || prm.Scopes[0] != "mcp.functions" {
		t.Errorf("metadata %+v", prm)
	}
	for _, u := range []string{
		prm.AuthorizationServers[0] + "/.well-known/oauth-authorization-server",                                          // Databricks' form
		ws.URL() + "/.well-known/oauth-authorization-server" + strings.TrimPrefix(prm.AuthorizationServers[0], ws.URL()), // RFC 8414
	} {
		var as struct {
			Issuer string `json:"issuer"`
		}
		if s := get(u, &as); s != http.StatusOK || as.Issuer != prm.AuthorizationServers[0] {
			t.Errorf("%s: %d issuer %q, want %q", u, s, as.Issuer, prm.AuthorizationServers[0])
		}
	}
	for _, p := range []string{"/api/2.0/mcp/nope", "/api/2.0/sql/statements"} {
		if s := get(ws.URL()+"/.well-known/oauth-protected-resource"+p, nil); s != http.StatusNotFound {
			t.Errorf("metadata of %s: %d, want 404", p, s)
		}
	}
}

// The toy external server's token is a static connection secret: its 401
// has the challenge without metadata. Relayed through the external-MCP
// proxy (a connection without the secret), the challenge says the
// connection's credential was refused.
func TestExternalMCPChallenge(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ws.cfg.MCP.ExternalServerToken = "ext-secret"
	resp := mcpPost(t, ws.URL()+defaultExternalMCPPath, http.Header{})
	c := bearerParams(t, resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || c["error"] != "invalid_token" || c["resource_metadata"] != "" || !strings.Contains(c["error_description"], "connection's bearer token") {
		t.Errorf("external server: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = mcpPost(t, ws.URL()+"/api/2.0/mcp/external/dev-external-mcp", http.Header{"Authorization": {"Bearer " + AliceToken}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("through the proxy: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestBearerChallengeQuoting(t *testing.T) {
	got := bearerChallenge("a \"quoted\" \\ message\n\x01é", `http://h/x"y`)
	want := `Bearer error="invalid_token", error_description="a 'quoted' ' message", resource_metadata="http://h/x%22y"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

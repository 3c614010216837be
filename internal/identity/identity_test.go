package identity_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/identity"
)

var oboManifest = agent.Manifest{UserAPIScopes: []string{"sql.warehouses"}}

// scim is a workspace that answers SCIM Me for the tokens it knows, 401 for
// any other, and 503 for "down-token"; it counts the calls per token.
type scim struct {
	srv   *httptest.Server
	users map[string]string // token → Me body
	mu    sync.Mutex
	calls map[string]int
}

func newSCIM(t *testing.T) *scim {
	s := &scim{calls: map[string]int{}, users: map[string]string{
		"tok-a":           `{"id":"1001","userName":"alice@example.com","displayName":"Alice","emails":[{"value":"alice@example.com","primary":true}]}`,
		"tok-b":           `{"id":"1002","userName":"bob@example.com","emails":[{"value":"bob@example.com","primary":true}]}`,
		"tok-sp":          `{"id":"2001","userName":"app-123"}`,
		"dev-alice-token": `{"id":"1001","userName":"alice@example.com","emails":[{"value":"alice@example.com","primary":true}]}`,
		"dev-bob-token":   `{"id":"1002","userName":"bob@example.com","emails":[{"value":"bob@example.com","primary":true}]}`,
		"tok-c":           `{"id":"1003","userName":"carol@example.com"}`,
	}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.calls[tok]++
		body, ok := s.users[tok]
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path != "/api/2.0/preview/scim/v2/Me":
			w.WriteHeader(404)
			w.Write([]byte(`{"error_code":"NOT_FOUND","message":"no such route"}`))
		case tok == "down-token":
			w.WriteHeader(503)
			w.Write([]byte(`{"error_code":"TEMPORARILY_UNAVAILABLE","message":"down"}`))
		case !ok:
			w.WriteHeader(401)
			w.Write([]byte(`{"error_code":"UNAUTHENTICATED","message":"invalid access token"}`))
		default:
			w.Write([]byte(body))
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scim) count(tok string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[tok]
}

// client is a user client for the fake workspace.
func (s *scim) client(t *testing.T) *databricks.WorkspaceClient {
	u, err := credentials.NewUser(credentials.UserOptions{Host: s.srv.URL, Scopes: oboManifest.UserAPIScopes,
		ClientOptions: credentials.ClientOptions{RetryTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return u.Client()
}

func prepare(r *identity.Resolver, headers map[string]string) (context.Context, *agent.Env, error) {
	req := httptest.NewRequest("POST", "/responses", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	env := &agent.Env{RequestID: "req-1"}
	ctx, err := r.Prepare(agent.NewContext(context.Background(), env), req, env)
	return ctx, env, err
}

func TestPrepare(t *testing.T) {
	yes := true
	devUsers := map[string]string{"alice": "dev-alice-token", "bob": "dev-bob-token"}
	alice := agent.Identity{PrincipalID: "1001", UserName: "alice@example.com", Email: "alice@example.com", DisplayName: "Alice"}
	tests := []struct {
		name    string
		opts    identity.Options
		noUser  bool // build the resolver without a user client
		headers map[string]string
		token   string // expected credential in ctx; "" none
		status  int    // expected *httperr.Error status; 0 success
		msg     string // substring of the error message
		caller  agent.Identity
	}{
		{name: "forwarded token, forwarded identity not trusted by default", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"X-Forwarded-Access-Token": "tok-a", "X-Forwarded-User": "victim", "X-Forwarded-Email": "victim@x.com"},
			token:   "tok-a", caller: alice},
		{name: "trusted forwarded identity fills only missing names", opts: identity.Options{Manifest: oboManifest, TrustForwardedIdentity: true},
			headers: map[string]string{"X-Forwarded-Access-Token": "tok-sp", "X-Forwarded-User": "victim", "X-Forwarded-Email": "app@x.com"},
			token:   "tok-sp", caller: agent.Identity{PrincipalID: "2001", UserName: "app-123", Email: "app@x.com"}},
		{name: "trusted forwarded identity needs the forwarded token", opts: identity.Options{Manifest: oboManifest, TrustForwardedIdentity: true},
			headers: map[string]string{"Authorization": "Bearer tok-sp", "X-Forwarded-Email": "app@x.com"},
			token:   "tok-sp", caller: agent.Identity{PrincipalID: "2001", UserName: "app-123"}},
		{name: "bearer", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "bearer tok-b"}, token: "tok-b",
			caller: agent.Identity{PrincipalID: "1002", UserName: "bob@example.com", Email: "bob@example.com"}},
		{name: "forwarded token wins by default order", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Bearer tok-b", "X-Forwarded-Access-Token": "tok-a"}, token: "tok-a", caller: alice},
		{name: "configured order", opts: identity.Options{Manifest: oboManifest, Headers: []string{"Authorization", "X-Forwarded-Access-Token"}},
			headers: map[string]string{"Authorization": "Bearer tok-c", "X-Forwarded-Access-Token": "tok-a"}, token: "tok-c",
			caller: agent.Identity{PrincipalID: "1003", UserName: "carol@example.com"}},
		{name: "custom header", opts: identity.Options{Manifest: oboManifest, Headers: []string{"X-User-Token"}},
			headers: map[string]string{"X-User-Token": "tok-a", "Authorization": "Bearer tok-b"}, token: "tok-a", caller: alice},
		{name: "garbage token", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Bearer bogus"}, status: 401, msg: "rejected by the workspace"},
		{name: "garbage token, agent not on behalf of users", opts: identity.Options{},
			headers: map[string]string{"Authorization": "Bearer bogus"}, status: 401, msg: "rejected by the workspace"},
		{name: "workspace down", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Bearer down-token"}, status: 503, msg: "could not verify"},
		{name: "expired JWT", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Bearer " + jwt(t, time.Now().Add(-time.Minute))}, status: 401},
		{name: "missing, obo scopes", opts: identity.Options{Manifest: oboManifest},
			status: 401, msg: "X-Forwarded-Access-Token or Authorization: Bearer <token>"},
		{name: "missing, obo resource", opts: identity.Options{Manifest: agent.Manifest{Resources: []agent.Resource{{Type: agent.GenieSpace, Name: "s", OnBehalfOfUser: &yes}}}},
			status: 401},
		{name: "missing, not required", opts: identity.Options{}},
		{name: "no workspace, not required: token ignored", opts: identity.Options{}, noUser: true,
			headers: map[string]string{"Authorization": "Bearer sk-anything"}},
		{name: "no workspace, required", opts: identity.Options{Manifest: oboManifest}, noUser: true,
			headers: map[string]string{"Authorization": "Bearer tok-a"}, status: 401, msg: "no workspace"},
		{name: "missing, dev", opts: identity.Options{Manifest: oboManifest, Dev: true, DevUsers: devUsers},
			status: 401, msg: `"X-Dev-User: alice" (known: alice, bob), or send "X-Forwarded-Access-Token: dev-alice-token"`},
		{name: "not bearer", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Basic YTpi"}, status: 401, msg: "Bearer"},
		{name: "malformed", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"X-Forwarded-Access-Token": "a\x01b"}, status: 401, msg: "malformed"},
		{name: "oversized token", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Bearer " + strings.Repeat("a", 17<<10)}, status: 431, msg: "Authorization"},
		{name: "oversized forwarded user", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"X-Forwarded-Access-Token": "tok-a", "X-Forwarded-User": strings.Repeat("u", 2<<10)}, status: 431, msg: "X-Forwarded-User"},
		{name: "mock identity without dev", opts: identity.Options{},
			headers: map[string]string{"X-Dev-User": "alice"}, status: 401, msg: "--dev"},
		{name: "mock identity", opts: identity.Options{Manifest: oboManifest, Dev: true, DevUsers: devUsers},
			headers: map[string]string{"X-Dev-User": "Bob"}, token: "dev-bob-token",
			caller: agent.Identity{PrincipalID: "1002", UserName: "bob@example.com", Email: "bob@example.com"}},
		{name: "unknown mock identity", opts: identity.Options{Dev: true, DevUsers: devUsers},
			headers: map[string]string{"X-Dev-User": "mallory"}, status: 401, msg: "known: alice, bob"},
		{name: "dev token as in production", opts: identity.Options{Manifest: oboManifest, Dev: true, DevUsers: devUsers},
			headers: map[string]string{"X-Forwarded-Access-Token": "dev-alice-token"}, token: "dev-alice-token",
			caller: agent.Identity{PrincipalID: "1001", UserName: "alice@example.com", Email: "alice@example.com"}},
	}
	ws := newSCIM(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.noUser {
				tt.opts.User = ws.client(t)
			}
			r, err := identity.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, env, err := prepare(r, tt.headers)
			if tt.status != 0 {
				var he *httperr.Error
				if !errors.As(err, &he) || he.Status != tt.status || !strings.Contains(he.Message, tt.msg) {
					t.Fatalf("err = %v, want %d containing %q", err, tt.status, tt.msg)
				}
				for k, v := range tt.headers {
					if k != "X-Dev-User" && len(v) > 4 && strings.Contains(he.Message, strings.TrimPrefix(v, "Bearer ")) {
						t.Fatal("error message carries the credential")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := credentials.CallerFingerprint(ctx); (tt.token == "") != (got == "") || (tt.token != "" && got != credentials.Fingerprint(tt.token)) {
				t.Fatalf("credential fingerprint in ctx = %q, want that of %q", got, tt.token)
			}
			if env.Caller.Authenticated != (tt.token != "") {
				t.Fatalf("Authenticated = %v", env.Caller.Authenticated)
			}
			if env.Caller.Identity != tt.caller {
				t.Fatalf("caller = %+v, want %+v", env.Caller.Identity, tt.caller)
			}
		})
	}
}

// jwt returns an unsigned JWT with the given expiry, as a workspace token
// looks to the resolver (it reads exp, the workspace checks the signature).
func jwt(t *testing.T, exp time.Time) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"x","exp":%d}`, exp.Unix()))) + ".sig"
}

// Verdicts are cached by the full credential hash: one SCIM call per
// credential per TTL, rejections kept only for RejectTTL, outages not
// turned into rejections.
func TestVerificationCache(t *testing.T) {
	ws := newSCIM(t)
	r, err := identity.New(identity.Options{Manifest: oboManifest, User: ws.client(t), RejectTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, _, err := prepare(r, map[string]string{"Authorization": "Bearer tok-a"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := prepare(r, map[string]string{"Authorization": "Bearer bogus"}); err == nil {
			t.Fatal("bogus token accepted")
		}
	}
	if ws.count("tok-a") != 1 || ws.count("bogus") != 1 {
		t.Fatalf("SCIM calls: valid %d, rejected %d; want 1 each", ws.count("tok-a"), ws.count("bogus"))
	}
	// A token that shares no prefix with a cached one is verified on its own.
	if _, _, err := prepare(r, map[string]string{"Authorization": "Bearer tok-a2"}); err == nil {
		t.Fatal("an unknown token was accepted")
	}
}

// A verified identity lasts at most VerifyTTL (so a revoked token stops
// working) and at most the JWT's own exp.
func TestVerificationExpires(t *testing.T) {
	ws := newSCIM(t)
	r, err := identity.New(identity.Options{Manifest: oboManifest, User: ws.client(t), VerifyTTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := prepare(r, map[string]string{"Authorization": "Bearer tok-b"}); err != nil {
		t.Fatal(err)
	}
	ws.mu.Lock()
	delete(ws.users, "tok-b") // revoked
	ws.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // the TTL itself is what is tested
	if _, _, err := prepare(r, map[string]string{"Authorization": "Bearer tok-b"}); err == nil {
		t.Fatal("a revoked token was still accepted after VerifyTTL")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []identity.Options{
		{DevUsers: map[string]string{"alice": "x"}}, // mock identities without dev
		{Headers: []string{"X-Dev-User"}},
		{Headers: []string{" "}},
	} {
		if _, err := identity.New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestRequiredFromManifest(t *testing.T) {
	no, yes := false, true
	for _, tt := range []struct {
		m    agent.Manifest
		want bool
	}{
		{agent.Manifest{}, false},
		{agent.Manifest{Resources: []agent.Resource{{Type: agent.Table, Name: "a.b.c"}}}, false},
		{agent.Manifest{Resources: []agent.Resource{{Type: agent.Table, Name: "a.b.c", OnBehalfOfUser: &no}}}, false},
		{agent.Manifest{Resources: []agent.Resource{{Type: agent.Table, Name: "a.b.c", OnBehalfOfUser: &yes}}}, true},
		{oboManifest, true},
	} {
		if got := identity.NeedsCredential(tt.m); got != tt.want {
			t.Errorf("NeedsCredential(%+v) = %v", tt.m, got)
		}
	}
	_ = http.StatusOK
}

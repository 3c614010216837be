package identity_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/runtime/credentials"
	"github.com/agentrt/agentrt/runtime/httperr"
	"github.com/agentrt/agentrt/runtime/identity"
)

var oboManifest = agent.Manifest{UserAPIScopes: []string{"sql.warehouses"}}

func TestPrepare(t *testing.T) {
	yes := true
	devUsers := map[string]string{"alice": "dev-alice-token", "bob": "dev-bob-token"}
	tests := []struct {
		name    string
		opts    identity.Options
		headers map[string]string
		token   string // expected credential in ctx; "" none
		status  int    // expected *httperr.Error status; 0 success
		msg     string // substring of the error message
		caller  agent.Identity
	}{
		{name: "forwarded token", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"X-Forwarded-Access-Token": "tok-a", "X-Forwarded-User": "u-1", "X-Forwarded-Email": "a@x.com"},
			token:   "tok-a", caller: agent.Identity{PrincipalID: "u-1", Email: "a@x.com", UserName: "a@x.com"}},
		{name: "bearer", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "bearer tok-b"}, token: "tok-b"},
		{name: "forwarded token wins by default order", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Bearer tok-b", "X-Forwarded-Access-Token": "tok-a"}, token: "tok-a"},
		{name: "configured order", opts: identity.Options{Manifest: oboManifest, Headers: []string{"Authorization", "X-Forwarded-Access-Token"}},
			headers: map[string]string{"Authorization": "Bearer tok-b", "X-Forwarded-Access-Token": "tok-a"}, token: "tok-b"},
		{name: "custom header", opts: identity.Options{Manifest: oboManifest, Headers: []string{"X-User-Token"}},
			headers: map[string]string{"X-User-Token": "tok-c", "Authorization": "Bearer tok-b"}, token: "tok-c"},
		{name: "forwarded identity ignored", opts: identity.Options{Manifest: oboManifest, IgnoreForwardedIdentity: true},
			headers: map[string]string{"X-Forwarded-Access-Token": "tok-a", "X-Forwarded-User": "spoofed"}, token: "tok-a"},
		{name: "missing, obo scopes", opts: identity.Options{Manifest: oboManifest},
			status: 401, msg: "X-Forwarded-Access-Token or Authorization: Bearer <token>"},
		{name: "missing, obo resource", opts: identity.Options{Manifest: agent.Manifest{Resources: []agent.Resource{{Type: agent.GenieSpace, Name: "s", OnBehalfOfUser: &yes}}}},
			status: 401},
		{name: "missing, not required", opts: identity.Options{}},
		{name: "missing, dev", opts: identity.Options{Manifest: oboManifest, Dev: true, DevUsers: devUsers},
			status: 401, msg: `"X-Dev-User: alice" (known: alice, bob), or send "X-Forwarded-Access-Token: dev-alice-token"`},
		{name: "not bearer", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"Authorization": "Basic YTpi"}, status: 401, msg: "Bearer"},
		{name: "malformed", opts: identity.Options{Manifest: oboManifest},
			headers: map[string]string{"X-Forwarded-Access-Token": "a\x01b"}, status: 401, msg: "malformed"},
		{name: "mock identity without dev", opts: identity.Options{},
			headers: map[string]string{"X-Dev-User": "alice"}, status: 401, msg: "--dev"},
		{name: "mock identity", opts: identity.Options{Manifest: oboManifest, Dev: true, DevUsers: devUsers},
			headers: map[string]string{"X-Dev-User": "Bob"}, token: "dev-bob-token"},
		{name: "unknown mock identity", opts: identity.Options{Dev: true, DevUsers: devUsers},
			headers: map[string]string{"X-Dev-User": "mallory"}, status: 401, msg: "known: alice, bob"},
		{name: "dev token as in production", opts: identity.Options{Manifest: oboManifest, Dev: true, DevUsers: devUsers},
			headers: map[string]string{"X-Forwarded-Access-Token": "dev-alice-token"}, token: "dev-alice-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := identity.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("POST", "/responses", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			env := &agent.Env{RequestID: "req-1"}
			ctx, err := r.Prepare(agent.NewContext(context.Background(), env), req, env)
			if tt.status != 0 {
				var he *httperr.Error
				if !errors.As(err, &he) || he.Status != tt.status || !strings.Contains(he.Message, tt.msg) {
					t.Fatalf("err = %v, want %d containing %q", err, tt.status, tt.msg)
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
			if tt.token == "" {
				return
			}
			want := tt.caller
			if want.PrincipalID == "" {
				want.PrincipalID = "token:" + credentials.Fingerprint(tt.token)
			}
			if env.Caller.Identity != want {
				t.Fatalf("caller = %+v, want %+v", env.Caller.Identity, want)
			}
			if strings.Contains(env.Caller.PrincipalID, tt.token) {
				t.Fatal("principal id contains the token")
			}
		})
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

// The SCIM lookup runs only when asked, once per credential within the TTL.
func TestLookupCached(t *testing.T) {
	var me atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/2.0/preview/scim/v2/Me" {
			me.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":"42","userName":"dana@example.com","displayName":"Dana","emails":[{"value":"other@example.com"},{"value":"dana@example.com","primary":true}]}`))
			return
		}
		w.WriteHeader(404)
	}))
	defer srv.Close()
	user, err := credentials.NewUser(credentials.UserOptions{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r, err := identity.New(identity.Options{User: user.Client()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		req := httptest.NewRequest("POST", "/responses", nil)
		req.Header.Set("Authorization", "Bearer dana-token")
		env := &agent.Env{}
		ctx, err := r.Prepare(context.Background(), req, env)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && me.Load() != 0 {
			t.Fatal("SCIM lookup ran before the agent asked")
		}
		id, err := env.Caller.Resolve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := agent.Identity{PrincipalID: "42", UserName: "dana@example.com", Email: "dana@example.com", DisplayName: "Dana"}
		if id != want {
			t.Fatalf("identity = %+v, want %+v", id, want)
		}
	}
	if me.Load() != 1 {
		t.Fatalf("%d SCIM calls, want 1", me.Load())
	}
}

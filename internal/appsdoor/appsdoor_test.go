package appsdoor

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/devworkspace"
)

// door starts the dev workspace, an agent that records the headers it
// receives, and the front door before it.
func door(t *testing.T, scopes []string) (*devworkspace.Workspace, *httptest.Server, chan http.Header) {
	t.Helper()
	ws, err := devworkspace.Start(t.Context(), devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	seen := make(chan http.Header, 1)
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(agent.Close)
	d, err := New(Options{Workspace: ws.URL(), Agent: agent.URL, Scopes: scopes,
		Users: map[string]string{"alice": devworkspace.AliceToken, "bob": devworkspace.BobToken}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(d)
	t.Cleanup(front.Close)
	return ws, front, seen
}

// whoAndScopes asks the workspace whom a forwarded token belongs to and
// which scopes it carries (from the audit entry of the call).
func whoAndScopes(t *testing.T, ws *devworkspace.Workspace, tok string) (string, []string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ws.URL()+"/api/2.0/preview/scim/v2/Me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		UserName string `json:"userName"`
	}
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	a := ws.Audit()
	return me.UserName, a[len(a)-1].Scopes
}

// TestForwardsWhatThePlatformForwards: alice signs in; the agent gets a
// token limited to the app's scopes and her identity headers from the
// workspace, and none of what the client forged.
func TestForwardsWhatThePlatformForwards(t *testing.T) {
	scopes := []string{"dashboards.genie", "iam.current-user:read"}
	ws, front, seen := door(t, scopes)
	for name, signIn := range map[string]http.Header{
		"mock identity": {"X-Dev-User": {"alice"}},
		"bearer token":  {"Authorization": {"Bearer " + devworkspace.AliceToken}},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, front.URL+"/responses", strings.NewReader(`{}`))
			for k, v := range signIn {
				req.Header[k] = v
			}
			// What a client might forge to pose as bob.
			req.Header.Set("X-Forwarded-User", "bob-id")
			req.Header.Set("X-Forwarded-Email", "bob@example.com")
			req.Header.Set("X-Forwarded-Preferred-Username", "bob@example.com")
			req.Header.Add("X-Forwarded-Access-Token", devworkspace.BobToken)
			req.Header.Set("X-Real-Ip", "10.0.0.1")
			req.Header.Set("X-Request-Id", "req-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			h := <-seen
			if h.Get("Authorization") != "" || h.Get("X-Dev-User") != "" {
				t.Errorf("client credentials reached the agent: Authorization %q, X-Dev-User %q", h.Get("Authorization"), h.Get("X-Dev-User"))
			}
			toks := h.Values("X-Forwarded-Access-Token")
			if len(toks) != 1 || toks[0] == devworkspace.AliceToken || toks[0] == devworkspace.BobToken {
				t.Fatalf("X-Forwarded-Access-Token = %q, want one freshly minted token", toks)
			}
			who, got := whoAndScopes(t, ws, toks[0])
			if who != "alice@example.com" || !slices.Equal(got, scopes) {
				t.Errorf("forwarded token is %s's with scopes %q, want alice's with %q", who, got, scopes)
			}
			if h.Get("X-Forwarded-Email") != "alice@example.com" || h.Get("X-Forwarded-Preferred-Username") != "alice@example.com" ||
				h.Get("X-Forwarded-User") == "bob-id" || h.Get("X-Forwarded-User") == "" || len(h.Values("X-Forwarded-User")) != 1 {
				t.Errorf("identity headers = user %q email %q username %q, want alice's from the workspace",
					h.Values("X-Forwarded-User"), h.Values("X-Forwarded-Email"), h.Values("X-Forwarded-Preferred-Username"))
			}
			if h.Get("X-Real-Ip") == "10.0.0.1" || h.Get("X-Request-Id") != "req-1" {
				t.Errorf("X-Real-Ip %q (the client's claim must not pass), X-Request-Id %q", h.Get("X-Real-Ip"), h.Get("X-Request-Id"))
			}
		})
	}
}

func TestRefusesUnauthenticated(t *testing.T) {
	_, front, seen := door(t, []string{"dashboards.genie"})
	for name, h := range map[string]http.Header{
		"nothing":           {},
		"forged token only": {"X-Forwarded-Access-Token": {devworkspace.AliceToken}},
		"unknown token":     {"Authorization": {"Bearer nope"}},
		"unknown mock user": {"X-Dev-User": {"mallory"}},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, front.URL+"/health", nil)
			for k, v := range h {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				ErrorCode string `json:"error_code"`
				Message   string `json:"message"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || body.ErrorCode == "" || strings.Contains(body.Message, devworkspace.AliceToken) {
				t.Errorf("status %d body %+v, want 401 in the error body without the token", resp.StatusCode, body)
			}
			select {
			case <-seen:
				t.Error("the request reached the agent")
			default:
			}
		})
	}
}

// TestNoUserAuthorization: an app without user_api_scopes gets identity
// headers but no user token, as on the platform.
func TestNoUserAuthorization(t *testing.T) {
	_, front, seen := door(t, nil)
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	req.Header.Set("X-Dev-User", "bob")
	req.Header.Set("X-Forwarded-Access-Token", devworkspace.AliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	if h.Get("X-Forwarded-Access-Token") != "" || h.Get("X-Forwarded-Email") != "bob@example.com" {
		t.Errorf("token %q email %q, want no token and bob's email", h.Get("X-Forwarded-Access-Token"), h.Get("X-Forwarded-Email"))
	}
}

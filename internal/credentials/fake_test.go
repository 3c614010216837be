package credentials_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWorkspace is a small workspace for credential tests: OAuth discovery,
// a token endpoint (client credentials, token exchange, federation) that can
// be switched off, and a few API routes that record who called them.
type fakeWorkspace struct {
	*httptest.Server
	tokenTTL time.Duration

	mu     sync.Mutex
	tokens map[string]fakeToken // bearer → identity
	calls  []fakeCall
	seq    int

	tokenDown   atomic.Bool
	tokenCalls  atomic.Int64
	exchanges   atomic.Int64
	apiRequests atomic.Int64
	lastForm    atomic.Value // url.Values of the last token request
}

type fakeToken struct {
	principal string
	expiry    time.Time // zero: never
	scope     string
}

type fakeCall struct {
	Principal, Method, Path, RequestID string
}

func newFakeWorkspace(t *testing.T) *fakeWorkspace {
	f := &fakeWorkspace{tokenTTL: time.Hour, tokens: map[string]fakeToken{
		"pat-alice": {principal: "alice@example.com"},
		"pat-bob":   {principal: "bob@example.com"},
		"pat-sp":    {principal: "sp-pat"},
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oidc/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"authorization_endpoint": f.URL + "/oidc/v1/authorize",
			"token_endpoint":         f.URL + "/oidc/v1/token",
		})
	})
	mux.HandleFunc("POST /oidc/v1/token", f.token)
	api := func(w http.ResponseWriter, r *http.Request) {
		f.apiRequests.Add(1)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		info, known := f.tokens[tok]
		f.mu.Unlock()
		if !ok || !known || (!info.expiry.IsZero() && time.Now().After(info.expiry)) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error_code":"UNAUTHENTICATED","message":"invalid token"}`)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, fakeCall{info.principal, r.Method, r.URL.Path, r.Header.Get("X-Request-Id")})
		f.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/2.0/preview/scim/v2/Me"):
			fmt.Fprintf(w, `{"id":"id-%s","userName":%q}`, info.principal, info.principal)
		case strings.HasPrefix(r.URL.Path, "/api/2.0/genie/spaces/"):
			fmt.Fprintf(w, `{"space_id":%q,"title":"t","warehouse_id":"wh1"}`, strings.TrimPrefix(r.URL.Path, "/api/2.0/genie/spaces/"))
		default:
			fmt.Fprint(w, `{}`)
		}
	}
	mux.HandleFunc("/api/", api)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeWorkspace) token(w http.ResponseWriter, r *http.Request) {
	f.tokenCalls.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if f.tokenDown.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":"temporarily_unavailable"}`)
		return
	}
	r.ParseForm()
	f.lastForm.Store(r.PostForm)
	var principal string
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		id, secret, _ := r.BasicAuth()
		if id != "agent-sp" || secret != "agent-sp-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		principal = "agent-sp"
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		subject := r.PostForm.Get("subject_token")
		if r.PostForm.Get("subject_token_type") == "urn:ietf:params:oauth:token-type:jwt" {
			if subject != "k8s-projected-jwt" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_grant"}`)
				return
			}
			principal = "agent-sp"
			break
		}
		f.exchanges.Add(1)
		f.mu.Lock()
		info, ok := f.tokens[subject]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"unknown subject token `+subject+`"}`)
			return
		}
		principal = info.principal
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
		return
	}
	f.mu.Lock()
	f.seq++
	tok := fmt.Sprintf("oauth-%s-%d", base64.RawURLEncoding.EncodeToString([]byte(principal)), f.seq)
	f.tokens[tok] = fakeToken{principal: principal, expiry: time.Now().Add(f.tokenTTL), scope: r.PostForm.Get("scope")}
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(f.tokenTTL / time.Second), "scope": r.PostForm.Get("scope"),
	})
}

func (f *fakeWorkspace) snapshot() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

func (f *fakeWorkspace) tokenInfo(tok string) fakeToken {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[tok]
}

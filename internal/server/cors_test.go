package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/server"
)

// In dev mode the Host/Origin check and the CORS policy agree: an origin
// listed in CORSOrigins passes both (preflight 204, request answered with
// its origin), loopback origins pass both, and any other origin is refused
// by the check before CORS is consulted (403, no CORS headers).
func TestDevCORSAgreesWithOriginCheck(t *testing.T) {
	const app = "https://app.example.com"
	addr, _, _ := start(t, server.Options{Agent: answer("hello"), Dev: true, CORSOrigins: []string{app + "/"}})
	do := func(method, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+"/responses", strings.NewReader(`{"input":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-dev-user")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, origin := range []string{app, "http://localhost:5173"} {
		if r := do(http.MethodOptions, origin); r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight %s: %d %q", origin, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
		}
		if r := do(http.MethodPost, origin); r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("POST %s: %d %q", origin, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	for _, origin := range []string{"https://evil.example.com", "http://app.example.com"} {
		for _, m := range []string{http.MethodOptions, http.MethodPost} {
			if r := do(m, origin); r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%s %s: %d %q, want 403 without CORS headers", m, origin, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
			}
		}
	}
	if _, err := server.New(server.Options{Agent: answer("x"), CORSOrigins: []string{"app.example.com"}}); err == nil {
		t.Error("server.New accepted an origin without a scheme")
	}
}

package server_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/server"
)

// devHostDo sends method path to addr with the given Host and Origin and
// returns the status and the httperr body's code and message.
func devHostDo(t *testing.T, addr, method, path, host, origin string) (status int, code, msg string) {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"input":[{"role":"user","content":"hi"}]}`)
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
		Error     struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if resp.StatusCode == http.StatusForbidden {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("403 body is not the host's error body: %v", err)
		}
		if e.Error.Type != "permission_error" {
			t.Errorf("403 body lacks the OpenAI error object: %+v", e)
		}
	}
	return resp.StatusCode, e.ErrorCode, e.Message
}

var devHostRoutes = []struct{ method, path string }{
	{http.MethodPost, "/responses"},
	{http.MethodPost, "/invocations"},
	{http.MethodGet, "/agent/info"},
	{http.MethodGet, "/health"},
}

// In dev mode the host answers only loopback Host and Origin values: its
// mock identities (X-Dev-User) are public, so a web page must not reach it
// by DNS rebinding or a cross-site request. Production is not affected.
func TestDevHostRefusesNonLoopback(t *testing.T) {
	addr, _, _ := start(t, server.Options{Agent: answer("hello"), Dev: true})
	_, port, _ := net.SplitHostPort(addr)
	for _, rt := range devHostRoutes {
		for _, bad := range []struct{ host, origin, names string }{
			{"evil.example.com", "", `Host "evil.example.com"`},
			{"evil.example.com:" + port, "http://evil.example.com:" + port, `Host "evil.example.com:`},
			{"127.0.0.1:" + port, "http://evil.example.com", `Origin "http://evil.example.com"`},
		} {
			status, code, msg := devHostDo(t, addr, rt.method, rt.path, bad.host, bad.origin)
			if status != http.StatusForbidden || code != "PERMISSION_DENIED" || !strings.Contains(msg, bad.names) {
				t.Errorf("%s %s Host %q Origin %q: %d %s %q, want 403 PERMISSION_DENIED naming %s", rt.method, rt.path, bad.host, bad.origin, status, code, msg, bad.names)
			}
		}
		for _, good := range []struct{ host, origin string }{
			{"127.0.0.1:" + port, ""},
			{"localhost:" + port, "http://localhost:" + port},
			{"[::1]:" + port, "http://[::1]:5173"},
		} {
			if status, code, msg := devHostDo(t, addr, rt.method, rt.path, good.host, good.origin); status != http.StatusOK {
				t.Errorf("%s %s Host %q Origin %q: %d %s %q, want 200", rt.method, rt.path, good.host, good.origin, status, code, msg)
			}
		}
	}
}

func TestDevHostAllowedHosts(t *testing.T) {
	addr, _, _ := start(t, server.Options{Agent: answer("hello"), Dev: true, DevAllowedHosts: []string{"devbox.test"}})
	for _, rt := range devHostRoutes {
		if status, code, msg := devHostDo(t, addr, rt.method, rt.path, "devbox.test:8080", "http://devbox.test:8080"); status != http.StatusOK {
			t.Errorf("%s %s on an allowed host: %d %s %q", rt.method, rt.path, status, code, msg)
		}
		if status, _, _ := devHostDo(t, addr, rt.method, rt.path, "evil.example.com", ""); status != http.StatusForbidden {
			t.Errorf("%s %s: the allow-list let evil.example.com in: %d", rt.method, rt.path, status)
		}
	}
	if _, err := server.New(server.Options{Agent: answer("x"), Dev: true, DevAllowedHosts: []string{"devbox.test:8080"}}); err == nil {
		t.Error("an allowed host with a port was accepted")
	}
}

// Without --dev the host is not a loopback dev server: it runs behind a
// proxy that sets Host, and the check does not apply.
func TestProductionHostUnchecked(t *testing.T) {
	addr, _, _ := start(t, server.Options{Agent: answer("hello")})
	for _, rt := range devHostRoutes {
		if status, code, msg := devHostDo(t, addr, rt.method, rt.path, "agent.example.com", "https://app.example.com"); status != http.StatusOK {
			t.Errorf("%s %s in production: %d %s %q", rt.method, rt.path, status, code, msg)
		}
	}
}

package devworkspace

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// hostRoutes are one route of each kind the workspace serves: REST, the
// external-MCP proxy and a managed MCP server.
var hostRoutes = []struct{ name, method, path string }{
	{"rest", http.MethodGet, "/api/2.0/preview/scim/v2/Me"},
	{"external mcp proxy", http.MethodPost, "/api/2.0/mcp/external/dev-external-mcp"},
	{"managed mcp", http.MethodPost, "/api/2.0/mcp/sql"},
}

// hostRequest sends alice's request for route to ws's loopback listener
// with the given Host and Origin headers, and returns the status and the
// decoded error body (zero unless the answer is one).
func hostRequest(t *testing.T, ws *Workspace, method, path, host, origin string) (int, errorBody) {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, ws.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Authorization", "Bearer "+AliceToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e errorBody
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.StatusCode >= 400 {
		_ = json.NewDecoder(resp.Body).Decode(&e)
	}
	return resp.StatusCode, e
}

// TestLoopbackHostCheck is the DNS-rebinding defence: the public dev
// credentials are useless to a web page because every route refuses a
// non-loopback Host or Origin, in the workspace's error shape.
func TestLoopbackHostCheck(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	u, _ := url.Parse(ws.URL())
	_, port, _ := net.SplitHostPort(u.Host)
	for _, rt := range hostRoutes {
		t.Run(rt.name, func(t *testing.T) {
			for _, bad := range []struct{ host, origin, names string }{
				{"evil.example.com", "", `Host "evil.example.com"`},
				{"evil.example.com:" + port, "http://evil.example.com:" + port, `Host "evil.example.com:`},
				{"127.0.0.1:" + port, "http://evil.example.com", `Origin "http://evil.example.com"`},
				{"localhost:" + port, "null", `Origin "null"`},
			} {
				status, e := hostRequest(t, ws, rt.method, rt.path, bad.host, bad.origin)
				if status != http.StatusForbidden || e.ErrorCode != codePermissionDenied || !strings.Contains(e.Message, bad.names) {
					t.Errorf("Host %q Origin %q: %d %+v, want 403 PERMISSION_DENIED naming %s", bad.host, bad.origin, status, e, bad.names)
				}
			}
			for _, good := range []struct{ host, origin string }{
				{"127.0.0.1:" + port, ""},
				{"localhost:" + port, "http://localhost:5173"},
				{"[::1]:" + port, "http://[::1]:" + port},
				{"app.localhost:" + port, "http://127.0.0.1:3000"},
			} {
				if status, e := hostRequest(t, ws, rt.method, rt.path, good.host, good.origin); status != http.StatusOK {
					t.Errorf("Host %q Origin %q: %d %+v, want 200", good.host, good.origin, status, e)
				}
			}
		})
	}
}

func TestAllowedHosts(t *testing.T) {
	ws := apisWorkspace(t, Options{AllowedHosts: []string{"devbox.test", "192.0.2.7"}})
	for _, rt := range hostRoutes {
		for _, h := range []struct{ host, origin string }{
			{"devbox.test:8765", "http://devbox.test:8765"},
			{"192.0.2.7", ""},
			{"localhost", ""},
		} {
			if status, e := hostRequest(t, ws, rt.method, rt.path, h.host, h.origin); status != http.StatusOK {
				t.Errorf("%s, Host %q Origin %q: %d %+v, want 200", rt.name, h.host, h.origin, status, e)
			}
		}
		if status, _ := hostRequest(t, ws, rt.method, rt.path, "evil.example.com", ""); status != http.StatusForbidden {
			t.Errorf("%s: an allow-list let evil.example.com in: %d", rt.name, status)
		}
	}
	if _, err := New(Options{AllowedHosts: []string{"devbox.test:8765"}}); err == nil || !strings.Contains(err.Error(), "without a port") {
		t.Errorf("a host with a port was accepted: %v", err)
	}
}

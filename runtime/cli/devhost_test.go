package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// serveDev runs `serve --dev` as a user would, on real loopback listeners,
// and returns the agent's and the dev workspace's addresses once both
// listen. The server stops when the test ends.
func serveDev(t *testing.T, extra ...string) (serveAddr, wsAddr string) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"--agent", "echo", "--dev", "--addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	go func() {
		done <- Run(ctx, args, pw)
		pw.Close()
	}()
	var runErr error
	stopped := false
	stop := func() error {
		if !stopped {
			cancel()
			runErr, stopped = <-done, true
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve --dev returned %v after shutdown", err)
		}
	})
	wsRE := regexp.MustCompile(`dev workspace: (http://\S+)`)
	addrRE := regexp.MustCompile(`"addr":"([^"]+)"`)
	sc := bufio.NewScanner(pr)
	for serveAddr == "" && sc.Scan() {
		if m := wsRE.FindStringSubmatch(sc.Text()); m != nil {
			u, err := url.Parse(m[1])
			if err != nil {
				t.Fatal(err)
			}
			wsAddr = u.Host
		}
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
			serveAddr = m[1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if serveAddr == "" || wsAddr == "" {
		t.Fatalf("serve --dev logged no addresses (run: %v)", stop())
	}
	return serveAddr, wsAddr
}

type devRoute struct {
	name, method, path string
	workspace          bool // on the dev workspace, else on the agent's host
}

// One route of each kind --dev serves: the agent's REST API, and the dev
// workspace's REST API, external-MCP proxy and managed MCP servers.
var devRoutes = []devRoute{
	{"serve responses", http.MethodPost, "/responses", false},
	{"serve health", http.MethodGet, "/health", false},
	{"workspace rest", http.MethodGet, "/api/2.0/preview/scim/v2/Me", true},
	{"workspace external mcp proxy", http.MethodPost, "/api/2.0/mcp/external/dev-external-mcp", true},
	{"workspace managed mcp", http.MethodPost, "/api/2.0/mcp/sql", true},
}

// devDo sends alice's request for rt with the given Host and Origin and
// returns the status and the error body's error_code.
func devDo(t *testing.T, addr string, rt devRoute, host, origin string) (int, string) {
	t.Helper()
	body := `{"input":[{"role":"user","content":"ping"}]}`
	if rt.workspace {
		body = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	}
	if rt.method == http.MethodGet {
		body = ""
	}
	req, err := http.NewRequest(rt.method, "http://"+addr+rt.path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if rt.workspace {
		req.Header.Set("Authorization", "Bearer dev-alice-token") // public, which is the point
	} else {
		req.Header.Set("X-Dev-User", "alice")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		ErrorCode string `json:"error_code"`
	}
	if resp.StatusCode >= 400 {
		_ = json.NewDecoder(resp.Body).Decode(&e)
	}
	return resp.StatusCode, e.ErrorCode
}

// TestServeDevLoopbackOnly is the DNS-rebinding defence of the whole dev
// loop: `serve --dev` and its dev workspace refuse a non-loopback Host or
// Origin with 403 PERMISSION_DENIED, answer loopback ones, and answer the
// names given to --dev-allow-remote.
func TestServeDevLoopbackOnly(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "")
	t.Setenv("AGENTRT_DEV_ALLOW_REMOTE", "")
	serveAddr, wsAddr := serveDev(t)
	for _, rt := range devRoutes {
		t.Run(rt.name, func(t *testing.T) {
			addr := serveAddr
			if rt.workspace {
				addr = wsAddr
			}
			_, port, _ := net.SplitHostPort(addr)
			for _, bad := range []struct{ host, origin string }{
				{"evil.example.com", ""},
				{"evil.example.com:" + port, "http://evil.example.com:" + port},
				{"127.0.0.1:" + port, "http://evil.example.com"},
			} {
				if status, code := devDo(t, addr, rt, bad.host, bad.origin); status != http.StatusForbidden || code != "PERMISSION_DENIED" {
					t.Errorf("Host %q Origin %q: %d %s, want 403 PERMISSION_DENIED", bad.host, bad.origin, status, code)
				}
			}
			for _, good := range []struct{ host, origin string }{
				{"127.0.0.1:" + port, ""},
				{"localhost:" + port, "http://localhost:" + port},
				{"[::1]:" + port, "http://[::1]:" + port},
			} {
				if status, code := devDo(t, addr, rt, good.host, good.origin); status != http.StatusOK {
					t.Errorf("Host %q Origin %q: %d %s, want 200", good.host, good.origin, status, code)
				}
			}
		})
	}
}

func TestServeDevAllowRemote(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "")
	serveAddr, wsAddr := serveDev(t, "--dev-allow-remote", "devbox.test, 192.0.2.7")
	for _, rt := range devRoutes {
		addr := serveAddr
		if rt.workspace {
			addr = wsAddr
		}
		for _, host := range []string{"devbox.test:8080", "192.0.2.7"} {
			if status, code := devDo(t, addr, rt, host, "http://"+host); status != http.StatusOK {
				t.Errorf("%s, allowed Host %q: %d %s, want 200", rt.name, host, status, code)
			}
		}
		if status, _ := devDo(t, addr, rt, "evil.example.com", ""); status != http.StatusForbidden {
			t.Errorf("%s: evil.example.com answered %d with an allow-list", rt.name, status)
		}
	}
	// The boolean form it had before is refused, naming the flag.
	err := Run(context.Background(), []string{"--agent", "echo", "--dev", "--addr", "127.0.0.1:0", "--dev-allow-remote", "true"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--dev-allow-remote") {
		t.Fatalf("--dev-allow-remote true: %v", err)
	}
}

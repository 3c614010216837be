package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/devworkspace"
)

// TestServeDevWorkspaceURL: `serve --dev --dev-workspace-url` uses the dev
// workspace already running there instead of starting one: the mock
// identities work, the workspace calls of a request land in its audit log,
// the dev UI shows them, and stopping serve leaves it running.
func TestServeDevWorkspaceURL(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "")
	t.Setenv("AGENTRT_DEV_ALLOW_REMOTE", "")
	ws, err := devworkspace.Start(context.Background(), devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after serveDev's cleanup stopped serve.
	t.Cleanup(func() {
		defer ws.Close()
		resp, err := http.Get(ws.URL() + "/dev/audit?since=0")
		if err != nil {
			t.Errorf("the dev workspace stopped with serve: %v", err)
			return
		}
		resp.Body.Close()
	})
	serveAddr, wsAddr := serveDev(t, "--dev-workspace-url", ws.URL())
	if "http://"+wsAddr != ws.URL() {
		t.Fatalf("serve uses the dev workspace at %s, want %s", wsAddr, ws.URL())
	}
	const id = "devurl-alice-1"
	req, _ := http.NewRequest(http.MethodPost, "http://"+serveAddr+"/responses", strings.NewReader(`{"input":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dev-User", "alice")
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "echo: ping") {
		t.Fatalf("alice's request: %d %s", resp.StatusCode, b)
	}
	var alice bool
	for _, e := range ws.Audit() {
		alice = alice || (e.RequestID == id && e.Principal == "alice@example.com")
	}
	if !alice {
		t.Fatalf("the dev workspace audited no call as alice for %s: %+v", id, ws.Audit())
	}
	// The dev UI reads the same audit log over HTTP.
	resp, err = http.Get("http://" + serveAddr + "/dev/requests/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Audit []devworkspace.AuditEntry `json:"audit"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(got.Audit) == 0 || got.Audit[0].Principal != "alice@example.com" {
		t.Fatalf("GET /dev/requests/%s: %d %+v %v", id, resp.StatusCode, got, err)
	}
}

// A --dev-workspace-url that is not loopback, that nothing answers, or
// that comes with --dev-llm-url fails at start, promptly, saying why.
func TestServeDevWorkspaceURLRefused(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "")
	t.Setenv("AGENTRT_DEV_ALLOW_REMOTE", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--dev-workspace-url", "http://192.0.2.1:8765"}, []string{"--dev-workspace-url", "not on a loopback host", "--dev-allow-remote"}},
		{[]string{"--dev-workspace-url", "http://devbox.test:8765", "--dev-allow-remote", "other.test"}, []string{"not on a loopback host"}},
		{[]string{"--dev-workspace-url", closed}, []string{"--dev-workspace-url", "no dev workspace answers there", "cmd/devworkspace"}},
		{[]string{"--dev-workspace-url", "127.0.0.1:8765"}, []string{"http://HOST:PORT"}},
		{[]string{"--dev-workspace-url", closed, "--dev-llm-url", "http://127.0.0.1:11434/v1"}, []string{"--dev-llm-url", "--llm-proxy"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := Run(ctx, append([]string{"--agent", "echo", "--dev", "--addr", "127.0.0.1:0"}, c.args...), io.Discard)
		cancel()
		if err == nil {
			t.Errorf("%v: serve started", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", c.args, err, w)
			}
		}
	}
}

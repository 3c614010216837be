package devmode_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/devworkspace"
)

func TestCheckURL(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8765":   "http://127.0.0.1:8765",
		"http://localhost:8765/":  "http://localhost:8765",
		"http://[::1]:1":          "http://[::1]:1",
		" https://127.0.0.2:443 ": "https://127.0.0.2:443",
	} {
		if got, err := devmode.CheckURL("--dev-workspace-url", raw, nil); err != nil || got != want {
			t.Errorf("CheckURL(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"http://10.0.0.5:8765", "http://devbox.test:8765", "http://0.0.0.0:8765", "http://dev.localhost:1"} {
		_, err := devmode.CheckURL("--dev-workspace-url", raw, nil)
		var ue *devmode.URLError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--dev-allow-remote") {
			t.Errorf("CheckURL(%q) = %v, want a URLError naming --dev-allow-remote", raw, err)
		}
	}
	for _, raw := range []string{"127.0.0.1:8765", "ftp://127.0.0.1:1", "http://u:p@127.0.0.1:1", "http://127.0.0.1:1/api", "http://127.0.0.1:1?x=1", "http://"} {
		_, err := devmode.CheckURL("--dev-workspace-url", raw, nil)
		var ue *devmode.URLError
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "http://HOST:PORT") && !strings.Contains(err.Error(), raw) {
			t.Errorf("CheckURL(%q) = %v, want a malformed-URL error", raw, err)
		}
	}
	// Naming the host (or *) allows it.
	if _, err := devmode.CheckURL("--dev-workspace-url", "http://DevBox.test:8765", []string{"devbox.test"}); err != nil {
		t.Error(err)
	}
	if _, err := devmode.CheckURL("--dev-workspace-url", "http://10.0.0.5:8765", []string{"*"}); err != nil {
		t.Error(err)
	}
}

// Connect uses a dev workspace in another "process" (here: another
// listener) exactly as Start's: the system client signs in as agent-sp,
// the mock identities are the dev users, and Audit reads its log, including
// entries made before Connect and after it; Close leaves it running.
func TestConnect(t *testing.T) {
	ctx := t.Context()
	ws, err := devworkspace.Start(ctx, devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	before := meAs(t, ws.URL(), devworkspace.AliceToken)
	d, err := devmode.Connect(ctx, devmode.ConnectOptions{URL: ws.URL() + "/", ServeAddr: "127.0.0.1:8000"})
	if err != nil {
		t.Fatal(err)
	}
	if d.URL() != ws.URL() || d.Workspace() != nil {
		t.Fatalf("URL %q (want %q), Workspace %v", d.URL(), ws.URL(), d.Workspace())
	}
	if users := d.Users(); users["alice"] != devworkspace.AliceToken || users["carol"] != devworkspace.CarolToken {
		t.Fatalf("Users = %v", users)
	}
	sys, err := credentials.NewSystem(ctx, d.System())
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if me, err := sys.Client().CurrentUser.Me(ctx, iam.MeRequest{}); err != nil || me.UserName != devworkspace.SPClientID {
		t.Fatalf("system client: %v, %v", me, err)
	}
	after := meAs(t, ws.URL(), devworkspace.BobToken)
	audit := d.Audit()
	if len(audit) != len(ws.Audit()) {
		t.Fatalf("Audit has %d entries, the dev workspace %d", len(audit), len(ws.Audit()))
	}
	seen := map[string]bool{}
	for _, e := range audit {
		seen[e.RequestID] = true
	}
	if !seen[before] || !seen[after] {
		t.Fatalf("audit lacks the call before Connect (%v) or after it (%v)", seen[before], seen[after])
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	meAs(t, ws.URL(), devworkspace.AliceToken) // still running
}

var reqSeq atomic.Int64

// meAs calls SCIM Me with token and a fresh X-Request-Id, which it returns.
func meAs(t *testing.T, base, token string) string {
	t.Helper()
	id := fmt.Sprintf("%s-%d", t.Name(), reqSeq.Add(1))
	req, _ := http.NewRequest(http.MethodGet, base+"/api/2.0/preview/scim/v2/Me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Me: %d", resp.StatusCode)
	}
	return id
}

// The mirror of a remote audit log notices a restarted dev workspace (its
// sequence numbers start again) and reads the new log whole. The restart is
// a second workspace behind the same URL: a loopback proxy switched from
// the first to the second, so no port has to be bound twice.
func TestConnectAuditAfterWorkspaceRestart(t *testing.T) {
	ctx := t.Context()
	ws1, err := devworkspace.Start(ctx, devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var target atomic.Pointer[url.URL]
	target.Store(mustURL(t, ws1.URL()))
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target.Load())
	}})
	defer front.Close()
	d, err := devmode.Connect(ctx, devmode.ConnectOptions{URL: front.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 3 {
		meAs(t, ws1.URL(), devworkspace.AliceToken)
	}
	if n := len(d.Audit()); n < 4 { // the sign-in check and three calls
		t.Fatalf("%d entries before the restart", n)
	}
	ws1.Close()
	ws2, err := devworkspace.Start(ctx, devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	target.Store(mustURL(t, ws2.URL()))
	id := meAs(t, ws2.URL(), devworkspace.CarolToken)
	got := d.Audit()
	if len(got) != 1 || got[0].RequestID != id {
		t.Fatalf("after the restart Audit = %+v, want only %s", got, id)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Nothing, or something else, at the URL: Connect fails within its
// timeout with an error that says what is wrong.
func TestConnectFails(t *testing.T) {
	ctx := t.Context()
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	// A listener that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	// A web server that is not a dev workspace.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	// A dev workspace whose service principal has another secret.
	cfg, err := devworkspace.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.ServicePrincipals {
		cfg.ServicePrincipals[i].Secret = "another-secret"
	}
	ws, err := devworkspace.Start(ctx, devworkspace.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	for _, c := range []struct {
		url  string
		want string
	}{
		{closedURL, "no dev workspace answers there"},
		{"http://" + silent.Addr().String(), "no dev workspace answers there"},
		{other.URL, "not a dev workspace"},
		{ws.URL(), "refuses the service principal agent-sp"},
	} {
		start := time.Now()
		d, err := devmode.Connect(ctx, devmode.ConnectOptions{URL: c.url, Timeout: 500 * time.Millisecond})
		if err == nil {
			d.Close()
			t.Errorf("Connect(%s) succeeded", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--dev-workspace-url") {
			t.Errorf("Connect(%s) = %v, want %q", c.url, err, c.want)
		}
		if strings.Contains(err.Error(), "agent-sp-secret") || strings.Contains(err.Error(), "another-secret") {
			t.Errorf("error shows a secret: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Connect(%s) took %s with a 500ms timeout", c.url, d)
		}
	}
	// A remote URL, and a remote --addr, are refused before any request.
	if _, err := devmode.Connect(ctx, devmode.ConnectOptions{URL: "http://192.0.2.1:8765"}); !errors.As(err, new(*devmode.URLError)) {
		t.Errorf("remote URL: %v", err)
	}
	if _, err := devmode.Connect(ctx, devmode.ConnectOptions{URL: ws.URL(), ServeAddr: "0.0.0.0:8080"}); !errors.As(err, new(*devmode.AddrError)) {
		t.Errorf("remote --addr: %v", err)
	}
}

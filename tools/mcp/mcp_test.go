package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
	toolsmcp "github.com/agentrt/agentrt/tools/mcp"
)

const path = "/api/2.0/mcp/functions/main/tools"

// fakeServer is an mcp-go streamable HTTP server behind a Databricks-style
// bearer check; it records the credential and method of every request.
type fakeServer struct {
	*httptest.Server
	mu      sync.Mutex
	auth    []string // Authorization of each request
	methods []string
	killed  map[string]bool // session ids answered with 404
	issued  []string        // session ids the server handed out
}

func (f *fakeServer) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.methods {
		if m == method {
			n++
		}
	}
	return n
}

func (f *fakeServer) authHeaders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}

func (f *fakeServer) kill(session string) {
	f.mu.Lock()
	f.killed[session] = true
	f.mu.Unlock()
}

func newFakeServer(t testing.TB) *fakeServer {
	s := server.NewMCPServer("uc-functions", "1.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("main__tools__lookup_order", mcp.WithDescription("Look up an order by id."),
		mcp.WithString("order_id", mcp.Required(), mcp.Description("the order id"))),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, _ := req.GetArguments()["order_id"].(string)
			return mcp.NewToolResultText(`{"order_id":"` + id + `","status":"shipped"}`), nil
		})
	s.AddTool(mcp.NewTool("main__tools__fail", mcp.WithDescription("Always fails.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("division by zero in UDF"), nil
		})
	h := server.NewStreamableHTTPServer(s)
	f := &fakeServer{killed: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &msg)
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.methods = append(f.methods, msg.Method)
		killed := f.killed[r.Header.Get("Mcp-Session-Id")]
		f.mu.Unlock()
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer alice-token", "Bearer carol-token":
		case "Bearer bob-token":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error_code":"PERMISSION_DENIED","message":"User bob does not have USE SCHEMA on main.tools"}`)
			return
		default:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error_code":"UNAUTHENTICATED","message":"invalid token"}`)
			return
		}
		if killed {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
		if id := w.Header().Get("Mcp-Session-Id"); id != "" && msg.Method == "initialize" {
			f.mu.Lock()
			f.issued = append(f.issued, id)
			f.mu.Unlock()
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func userClient(t testing.TB, host string, scopes ...string) *databricks.WorkspaceClient {
	u, err := credentials.NewUser(credentials.UserOptions{Host: host, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return u.Client()
}

func callerCtx(principal, token string) context.Context {
	ctx := agent.NewContext(context.Background(), &agent.Env{Caller: agent.Caller{Identity: agent.Identity{PrincipalID: principal}, Authenticated: true}})
	return credentials.WithCaller(ctx, token)
}

func TestManagedServerAsUser(t *testing.T) {
	f := newFakeServer(t)
	w := userClient(t, f.URL, "mcp.functions", toolsmcp.FunctionsProbeScope)
	p, err := toolsmcp.New(toolsmcp.Options{URL: toolsmcp.FunctionsPath("main", "tools")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	alice := callerCtx("alice", "alice-token")
	ts, err := p.Prepare(alice, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("tools = %d", len(ts))
	}
	byName := map[string]agent.Tool{}
	for _, x := range ts {
		byName[x.Definition().Name] = x
	}
	lookup := byName["main__tools__lookup_order"]
	if lookup == nil || !strings.Contains(string(lookup.Definition().Parameters), `"order_id"`) {
		t.Fatalf("lookup tool: %+v", ts)
	}
	for range 3 {
		out, err := lookup.Call(alice, `{"order_id":"o-17"}`)
		if err != nil || !strings.Contains(out, `"status":"shipped"`) {
			t.Fatalf("call = %q, %v", out, err)
		}
	}
	_, err = byName["main__tools__fail"].Call(alice, `{}`)
	var te *toolsmcp.ToolError
	if !errors.As(err, &te) || !strings.Contains(te.Text, "division by zero") {
		t.Fatalf("err = %v, want *ToolError", err)
	}
	if n := f.count("initialize"); n != 1 {
		t.Errorf("initialize sent %d times, want 1 (session reused)", n)
	}
	for i, a := range f.authHeaders() {
		if a != "Bearer alice-token" {
			t.Errorf("request %d (%s) carried %q", i, f.methods[i], a)
		}
	}

	// Another principal gets a session of its own, with its own token.
	carol := callerCtx("carol", "carol-token")
	if _, err := lookup.Call(carol, `{"order_id":"o-1"}`); err != nil {
		t.Fatal(err)
	}
	if n := f.count("initialize"); n != 2 {
		t.Errorf("initialize count = %d, want 2", n)
	}
	h := f.authHeaders()
	if h[len(h)-1] != "Bearer carol-token" {
		t.Errorf("carol's call carried %q", h[len(h)-1])
	}

	// A scope refusal happens before any request and reads as a permission error.
	narrow := userClient(t, f.URL, "dashboards.genie")
	before := len(f.authHeaders())
	_, err = p.Prepare(alice, narrow)
	if !tools.IsPermission(err) || !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("scope refusal err = %v", err)
	}
	if len(f.authHeaders()) != before {
		t.Error("a refused scope still sent a request")
	}
	// Without a caller credential the user client fails closed.
	if _, err := p.Prepare(context.Background(), w); !errors.Is(err, databricks.ErrUnauthenticated) {
		t.Fatalf("no-caller err = %v", err)
	}
}

func TestDeniedAtInitialize(t *testing.T) {
	f := newFakeServer(t)
	p, _ := toolsmcp.New(toolsmcp.Options{URL: toolsmcp.Functions(f.URL, "main", "tools")})
	_, err := p.Prepare(context.Background(), testws.PAT(t, f.URL, "bob-token"))
	if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "USE SCHEMA") {
		t.Fatalf("err = %v", err)
	}
}

func TestSessionReinitialised(t *testing.T) {
	f := newFakeServer(t)
	w := testws.PAT(t, f.URL, "alice-token")
	p, _ := toolsmcp.New(toolsmcp.Options{URL: path, Tools: []string{"main.tools.lookup_order"}})
	defer p.Close()
	ts, err := p.Prepare(context.Background(), w)
	if err != nil || len(ts) != 1 {
		t.Fatalf("tools %d err %v (allow-list must keep one)", len(ts), err)
	}
	// The server forgets every session it handed out.
	f.mu.Lock()
	issued := append([]string(nil), f.issued...)
	f.mu.Unlock()
	if len(issued) == 0 {
		t.Fatal("server issued no session id")
	}
	for _, id := range issued {
		f.kill(id)
	}
	out, err := ts[0].Call(context.Background(), `{"order_id":"o-2"}`)
	if err != nil || !strings.Contains(out, "o-2") {
		t.Fatalf("call after session loss = %q, %v", out, err)
	}
	if n := f.count("initialize"); n != 2 {
		t.Errorf("initialize count = %d, want 2 (re-initialised once)", n)
	}
}

func TestRequirements(t *testing.T) {
	tests := []struct {
		url       string
		resources string
		scope     string
	}{
		{toolsmcp.GeniePath("01abc"), "genie_space:01abc", "mcp.genie"},
		{toolsmcp.External("https://h", "github"), "uc_connection:github", "mcp.external"},
		{"/api/2.0/mcp/functions/main/tools/lookup_order", "function:main.tools.lookup_order", "mcp.functions," + toolsmcp.FunctionsProbeScope},
		{toolsmcp.VectorSearchPath("main", "docs"), "", "mcp.vectorsearch"},
		{toolsmcp.SQL("https://h"), "", "mcp.sql"},
		{"https://example.com/mcp", "", ""}, // with NoAuth, below
	}
	for _, tc := range tests {
		o := toolsmcp.Options{URL: tc.url}
		if tc.url == "https://example.com/mcp" {
			o.Auth = toolsmcp.NoAuth()
		}
		p, err := toolsmcp.New(o)
		if err != nil {
			t.Fatal(err)
		}
		r := p.Requirements()
		var res []string
		for _, x := range r.Resources {
			res = append(res, string(x.Type)+":"+x.Name)
		}
		if strings.Join(res, ",") != tc.resources || strings.Join(r.UserScopes, ",") != tc.scope {
			t.Errorf("%s: resources %v scopes %v", tc.url, res, r.UserScopes)
		}
	}
	if got := toolsmcp.UCName("main__tools__lookup_order"); got != "main.tools.lookup_order" {
		t.Errorf("UCName = %q", got)
	}
	if _, err := toolsmcp.New(toolsmcp.Options{URL: "ftp://x"}); err == nil {
		t.Error("ftp URL accepted")
	}
}

// TestForeignHostRefused: a user-bound client never sends the caller's
// token to a server outside the workspace; the tool is skipped instead.
func TestForeignHostRefused(t *testing.T) {
	f := newFakeServer(t)  // the "other" server
	ws := newFakeServer(t) // the workspace
	w := userClient(t, ws.URL, "mcp.functions", toolsmcp.FunctionsProbeScope)
	p, _ := toolsmcp.New(toolsmcp.Options{URL: f.URL + path})
	_, err := p.Prepare(callerCtx("alice", "alice-token"), w)
	if !tools.IsPermission(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.authHeaders()); n != 0 {
		t.Errorf("the foreign server got %d requests", n)
	}
}

func TestSessionTTL(t *testing.T) {
	f := newFakeServer(t)
	w := testws.PAT(t, f.URL, "alice-token")
	p, _ := toolsmcp.New(toolsmcp.Options{URL: path, SessionTTL: time.Minute})
	defer p.Close()
	now := time.Now()
	p.SetClock(func() time.Time { return now }) // calls are sequential
	ctx := callerCtx("alice", "")
	if _, err := p.Prepare(ctx, w); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Second)
	if _, err := p.Prepare(ctx, w); err != nil {
		t.Fatal(err)
	}
	if n := f.count("initialize"); n != 1 {
		t.Errorf("initialize count = %d, want 1 within the idle TTL", n)
	}
	now = now.Add(61 * time.Second)
	if _, err := p.Prepare(ctx, w); err != nil {
		t.Fatal(err)
	}
	if n := f.count("initialize"); n != 2 {
		t.Errorf("initialize count = %d, want 2 after the idle TTL", n)
	}
}

// Arguments reach the server as the model wrote them; anything but a JSON
// object (or nothing) is refused before a request is sent.
func TestCallArguments(t *testing.T) {
	f := newFakeServer(t)
	w := testws.PAT(t, f.URL, "alice-token")
	p, _ := toolsmcp.New(toolsmcp.Options{URL: path})
	defer p.Close()
	ctx := callerCtx("alice", "")
	ts, err := p.Prepare(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	var lookup agent.Tool
	for _, x := range ts {
		if x.Definition().Name == "main__tools__lookup_order" {
			lookup = x
		}
	}
	for _, tc := range []struct{ args, want, err string }{
		{`{"order_id":"o-1"}`, `"order_id":"o-1"`, ""},
		{" {\n \"order_id\" : \"o-\\u0032\", \"extra\": [1, {\"x\": null}] }\n", `"order_id":"o-2"`, ""},
		{"", `"order_id":""`, ""},
		{"null", `"order_id":""`, ""},
		{`[1]`, "", "invalid arguments"},
		{`"o-1"`, "", "invalid arguments"},
		{`{"order_id":`, "", "invalid arguments"},
		{`{"a":1} {"b":2}`, "", "invalid arguments"},
	} {
		calls := f.count("tools/call")
		out, err := lookup.Call(ctx, tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || f.count("tools/call") != calls {
				t.Errorf("%q: %q, %v; want %q before any request", tc.args, out, err, tc.err)
			}
			continue
		}
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%q: %q, %v; want %s", tc.args, out, err, tc.want)
		}
	}
}

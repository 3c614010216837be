package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/tools"
	toolsmcp "github.com/agentrt/agentrt/tools/mcp"
)

// journal records lifecycle events in order, from any goroutine.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf(format, args...))
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// lifeProvider is a tool provider with a lifecycle: it offers one tool named
// after itself and records Provision, Prepare and Close.
type lifeProvider struct {
	name    string
	j       *journal
	gate    chan struct{} // when set, Provision waits for it
	provErr error
	env     *agent.Env // what Provision was given
}

func (p *lifeProvider) Name() string                     { return p.name }
func (p *lifeProvider) Requirements() tools.Requirements { return tools.Requirements{} }
func (p *lifeProvider) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	return []agent.Tool{tools.NewTool(agent.ToolDefinition{Name: p.name},
		func(context.Context, string) (string, error) { return "", nil })}, nil
}

func (p *lifeProvider) Provision(ctx context.Context, env *agent.Env) error {
	if p.gate != nil {
		<-p.gate
	}
	p.env = env
	p.j.add("provision %s", p.name)
	return p.provErr
}

func (p *lifeProvider) Close() error {
	p.j.add("close %s", p.name)
	return nil
}

// streamer is a stream-only agent (it has no Predict) that declares tools
// and has a lifecycle; it answers with the names of the tools the host
// prepared for the request.
type streamer struct {
	set     *tools.Set
	j       *journal
	provErr error
	release chan struct{} // when set, PredictStream waits for it
	entered chan struct{} // closed when PredictStream starts (with release)
}

func (s *streamer) Tools() *tools.Set { return s.set }

func (s *streamer) Provision(ctx context.Context, env *agent.Env) error {
	s.j.add("provision agent")
	return s.provErr
}

func (s *streamer) Close() error {
	s.j.add("close agent")
	return nil
}

func (s *streamer) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	s.j.add("predict")
	if s.release != nil {
		close(s.entered)
		<-s.release
	}
	var names []string
	for _, t := range agent.FromContext(ctx).Tools {
		names = append(names, t.Definition().Name)
	}
	s.j.add("predict done")
	return emit(agent.ItemDone(agent.TextItem("m", "tools: "+strings.Join(names, ","))))
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func post(t *testing.T, h http.Handler, body string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/responses", strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestStreamOnlyAgentToolsPrepared: an agent that can only stream reaches
// the host wrapped by agent.FromStream; the host must still find its
// tools.Declarer, prepare its tools for each request and declare their
// requirements, streamed or not.
func TestStreamOnlyAgentToolsPrepared(t *testing.T) {
	j := &journal{}
	set := tools.NewSet(tools.SetOptions{}).
		Add(&lifeProvider{name: "search", j: j}, tools.Options{Binding: tools.System}).
		Add(tools.NewProvider("genie", tools.Requirements{Resources: []agent.Resource{{Type: agent.GenieSpace, Name: "space"}}},
			func(context.Context, *databricks.WorkspaceClient) ([]agent.Tool, error) {
				return []agent.Tool{tools.NewTool(agent.ToolDefinition{Name: "genie"},
					func(context.Context, string) (string, error) { return "", nil })}, nil
			}), tools.Options{Binding: tools.System})
	system := &databricks.WorkspaceClient{}
	h, err := server.New(server.Options{
		Agent:  agent.FromStream(&streamer{set: set, j: j}),
		Logger: quietLog(),
		Preparers: []server.Preparer{server.PreparerFunc(func(ctx context.Context, _ *http.Request, env *agent.Env) (context.Context, error) {
			env.System = system
			return ctx, nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		body := post(t, h.Handler(), fmt.Sprintf(`{"input":"x","stream":%t}`, stream))
		if !strings.Contains(body, "tools: search,genie") {
			t.Errorf("stream=%t: the agent's tools were not prepared: %s", stream, body)
		}
	}
	if m := h.Manifest(); len(m.Resources) != 1 || m.Resources[0].Name != "space" {
		t.Errorf("manifest %+v lacks the tools' requirements", m)
	}
	if got := server.EffectiveManifest(agent.FromStream(&streamer{set: set}), agent.Manifest{}); len(got.Resources) != 1 {
		t.Errorf("EffectiveManifest %+v lacks the tools' requirements", got)
	}
}

// TestLifecycle: Serve provisions the tool providers, then the agent (once,
// with the host's clients), before it answers the first request, and after
// the drain closes them once each, in reverse order.
func TestLifecycle(t *testing.T) {
	j := &journal{}
	gate := make(chan struct{})
	first := &lifeProvider{name: "first", j: j, gate: gate}
	second := &lifeProvider{name: "second", j: j}
	set := tools.NewSet(tools.SetOptions{}).
		Add(first, tools.Options{Binding: tools.System}).
		Add(second, tools.Options{Binding: tools.System}).
		Add(first, tools.Options{Binding: tools.User}) // one provider, two bindings: one lifecycle
	a := &streamer{set: set, j: j, release: make(chan struct{}), entered: make(chan struct{})}
	system, user := &databricks.WorkspaceClient{}, &databricks.WorkspaceClient{}
	shutdown := make(chan struct{})
	h, err := server.New(server.Options{Agent: agent.FromStream(a), AgentName: "life", Logger: quietLog(),
		System: system, User: user, Dev: true, OnShutdown: func() { close(shutdown) }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx, ln) }()

	// A request sent while Provision is still running waits for it.
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/responses", "application/json", strings.NewReader(`{"input":"x"}`))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		answered <- err
	}()
	close(gate)
	<-a.entered
	cancel() // SIGTERM while the request is in flight
	<-shutdown
	if got := j.list(); slices.Contains(got, "close agent") {
		t.Errorf("closed before the drain: %q", got)
	}
	close(a.release)
	if err := <-answered; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	want := []string{"provision first", "provision second", "provision agent", "predict", "predict done",
		"close agent", "close second", "close first"}
	if got := j.list(); !slices.Equal(got, want) {
		t.Errorf("lifecycle\n got %q\nwant %q", got, want)
	}
	if env := first.env; env == nil || env.System != system || env.User != user || !env.Dev {
		t.Errorf("Provision env %+v, want the host's clients and Dev", env)
	}
	// Both halves run once, whoever calls them again.
	if err := h.Provision(context.Background()); err != nil {
		t.Error(err)
	}
	if err := h.Close(); err != nil {
		t.Error(err)
	}
	if got := j.list(); len(got) != len(want) {
		t.Errorf("ran again: %q", got[len(want):])
	}
}

// TestProvisionErrorFailsStartup: a component whose Provision fails stops
// the host before it serves anything; the error names the component, and
// every component is closed.
func TestProvisionErrorFailsStartup(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name        string
		providerErr error
		agentErr    error
		wantName    string
		wantEvents  []string
	}{
		{"provider", boom, nil, `tool provider "second"`,
			[]string{"provision first", "provision second", "close agent", "close second", "close first"}},
		{"agent", nil, boom, `agent "life"`,
			[]string{"provision first", "provision second", "provision agent", "close agent", "close second", "close first"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			set := tools.NewSet(tools.SetOptions{}).
				Add(&lifeProvider{name: "first", j: j}, tools.Options{Binding: tools.System}).
				Add(&lifeProvider{name: "second", j: j, provErr: tt.providerErr}, tools.Options{Binding: tools.System})
			h, err := server.New(server.Options{Agent: agent.FromStream(&streamer{set: set, j: j, provErr: tt.agentErr}),
				AgentName: "life", Logger: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			err = h.Serve(context.Background(), ln) // returns at once: nothing to serve
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), tt.wantName) {
				t.Fatalf("Serve = %v, want boom naming %s", err, tt.wantName)
			}
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Close()
				t.Error("the listener is still open after a failed start-up")
			}
			if got := j.list(); !slices.Equal(got, tt.wantEvents) {
				t.Errorf("lifecycle\n got %q\nwant %q", got, tt.wantEvents)
			}
		})
	}
}

// mcpServer is a stateful MCP server (mcp-go's, as third-party servers
// are) that reports the sessions it was asked to end.
func mcpServer(t *testing.T) (url string, deletes <-chan string) {
	m := mcpserver.NewMCPServer("third-party", "1.0", mcpserver.WithToolCapabilities(false))
	m.AddTool(mcp.NewTool("echo", mcp.WithString("text", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("echo: " + req.GetString("text", "")), nil
		})
	h := mcpserver.NewStreamableHTTPServer(m, mcpserver.WithStateful(true))
	dels := make(chan string, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			dels <- r.Header.Get("Mcp-Session-Id")
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp", dels
}

// caller is a stream-only agent that calls every prepared tool once.
type caller struct{ set *tools.Set }

func (c caller) Tools() *tools.Set { return c.set }

func (c caller) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	var out []string
	for _, t := range agent.FromContext(ctx).Tools {
		res, err := t.Call(ctx, `{"text":"hi"}`)
		if err != nil {
			return err
		}
		out = append(out, res)
	}
	return emit(agent.ItemDone(agent.TextItem("m", strings.Join(out, ","))))
}

// TestShutdownClosesMCPSessions: the MCP sessions an agent's tools pooled
// while serving are ended at shutdown: the server has been sent the DELETE
// for each by the time Serve returns.
func TestShutdownClosesMCPSessions(t *testing.T) {
	url, deletes := mcpServer(t)
	p, err := toolsmcp.New(toolsmcp.Options{URL: url, Auth: toolsmcp.NoAuth()})
	if err != nil {
		t.Fatal(err)
	}
	set := tools.NewSet(tools.SetOptions{}).Add(p, tools.Options{Binding: tools.System})
	system := &databricks.WorkspaceClient{}
	h, err := server.New(server.Options{Agent: agent.FromStream(caller{set}), Logger: quietLog(), System: system,
		Preparers: []server.Preparer{server.PreparerFunc(func(ctx context.Context, _ *http.Request, env *agent.Env) (context.Context, error) {
			env.System = system
			env.Caller = agent.Caller{Identity: agent.Identity{PrincipalID: "alice-id"}, Authenticated: true}
			return ctx, nil
		})}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx, ln) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/responses", "application/json", strings.NewReader(`{"input":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "echo: hi") {
		t.Fatalf("the MCP tool was not called: %s", body)
	}
	select {
	case id := <-deletes:
		t.Fatalf("session %s ended while serving", id)
	default:
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	select {
	case <-deletes:
	default:
		t.Error("Serve returned before the MCP server was asked to end the session")
	}
}

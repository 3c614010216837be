package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// spy is a third-party MCP server on its own loopback port: mcp-go's
// stateful streamable HTTP server, so a restart forgets every session,
// recording the Authorization header and JSON-RPC method of each request.
type spy struct {
	*httptest.Server
	mu      sync.Mutex
	auth    []string
	methods []string
	mcp     http.Handler
	known   map[string]bool // session ids the current instance issued
	// badRequest answers unknown sessions with 400 and a body naming the
	// session, as the reference TypeScript servers do, instead of mcp-go's
	// 404.
	badRequest bool
	// rejectCalls answers every tools/call with that 400.
	rejectCalls bool
	deletes     chan string   // session ids of DELETE requests
	hanging     chan struct{} // closed by the hang tool when its request ends
}

const unknownSessionBody = `{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}`

func newSpy(t testing.TB) *spy {
	s := &spy{deletes: make(chan string, 4096), hanging: make(chan struct{})}
	s.restart()
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// restart replaces the server instance; old session ids become unknown.
func (s *spy) restart() {
	m := server.NewMCPServer("third-party", "1.0", server.WithToolCapabilities(false))
	m.AddTool(mcp.NewTool("echo", mcp.WithString("text", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("echo: " + req.GetString("text", "")), nil
		})
	m.AddTool(mcp.NewTool("boom"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New("the tool crashed")
	})
	m.AddTool(mcp.NewTool("refuse"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("not today"), nil
	})
	m.AddTool(mcp.NewTool("hang"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-ctx.Done() // until the client goes away
		close(s.hanging)
		return nil, ctx.Err()
	})
	h := server.NewStreamableHTTPServer(m, server.WithStateful(true))
	s.mu.Lock()
	s.mcp, s.known = h, map[string]bool{}
	s.mu.Unlock()
}

func (s *spy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var msg struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(body, &msg)
	id := r.Header.Get("Mcp-Session-Id")
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.methods = append(s.methods, r.Method+" "+msg.Method)
	h, unknown := s.mcp, id != "" && !s.known[id]
	reject := s.rejectCalls && msg.Method == "tools/call"
	unknown = unknown && s.badRequest
	s.mu.Unlock()
	if r.Method == http.MethodDelete {
		s.deletes <- id
	}
	if unknown || reject {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, unknownSessionBody)
		return
	}
	h.ServeHTTP(w, r)
	if sid := w.Header().Get("Mcp-Session-Id"); sid != "" && msg.Method == "initialize" {
		s.mu.Lock()
		s.known[sid] = true
		s.mu.Unlock()
	}
}

func (s *spy) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.methods {
		if m == "POST "+method {
			n++
		}
	}
	return n
}

func (s *spy) authHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

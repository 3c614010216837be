package devworkspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestMCPFastPathMatchesMCPGo sends each request both through the managed
// servers' handler (fast path first) and through mcp-go's streamable server
// alone, and wants the same status, content type and body; it also checks
// which requests the fast path took, so a fast path that silently never
// applies fails too.
func TestMCPFastPathMatchesMCPGo(t *testing.T) {
	var calls atomic.Int64
	s := newMCPServer("fast-path-test")
	s.AddTool(mcp.NewTool("echo", mcp.WithString("x")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls.Add(1)
		p, err := mcpCaller(ctx)
		if err != nil {
			return nil, err
		}
		return mcp.NewToolResultText(fmt.Sprintf("%s:%v:%d", p.Name, req.GetArguments()["x"], len(req.Header.Get("Authorization")))), nil
	})
	s.AddTool(mcp.NewTool("fails"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return toolErr(&PermissionError{Principal: "alice@example.com", Privilege: "EXECUTE", SecurableType: "function", FullName: "main.tools.f"}), nil
	})
	s.AddTool(mcp.NewTool("errs"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New(`boom "quoted" <html>`)
	})
	s.AddTool(mcp.NewTool("panics"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		panic("kaboom")
	})
	s.AddTool(mcp.NewTool("nothing"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, nil
	})
	s.AddTool(mcp.NewTool("elicit"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, fmt.Errorf("wrapped: %w", mcp.URLElicitationRequiredError{Elicitations: []mcp.ElicitationParams{{Message: "sign in"}}})
	})
	s.AddTool(mcp.NewTool("structured"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultStructured(map[string]any{"b": 1, "a": []any{"x", nil}}, "fallback"), nil
	})
	var ws Workspace
	e := ws.newMCPEntry(s)
	caller := &Caller{Principal: &Principal{Name: "alice@example.com"}, Method: "pat"}

	call := func(id, name, args string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + name + `"` + args + `}}`
	}
	const legacy = "2025-06-18"
	for _, tc := range []struct {
		name      string
		body      string
		version   string // Mcp-Protocol-Version; "-" for none
		header    [2]string
		ctype     string
		fast      bool
		wantCalls int64 // echo calls by the fast path
	}{
		{name: "number id", body: call("1", "echo", `,"arguments":{"x":"hi"}`), fast: true, wantCalls: 1},
		{name: "string id", body: call(`"req-7"`, "echo", `,"arguments":{"x":42.5}`), fast: true, wantCalls: 1},
		{name: "large id", body: call("12345678901234567890", "echo", `,"arguments":{"x":true}`), fast: true, wantCalls: 1},
		{name: "no arguments", body: call("2", "echo", ``), fast: true, wantCalls: 1},
		{name: "null arguments", body: call("2", "echo", `,"arguments":null`), fast: true, wantCalls: 1},
		{name: "array arguments", body: call("2", "echo", `,"arguments":[1]`), fast: true, wantCalls: 1},
		{name: "no version header", body: call("3", "echo", `,"arguments":{"x":"v"}`), version: "-", fast: true, wantCalls: 1},
		{name: "trailing newline", body: call("4", "echo", `,"arguments":{"x":"n"}`) + "\n", fast: true, wantCalls: 1},
		{name: "key case", body: `{"JSONRPC":"2.0","Id":5,"Method":"tools/call","Params":{"Name":"echo"}}`, fast: true, wantCalls: 1},
		{name: "duplicate name", body: `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope","name":"echo"}}`, fast: true, wantCalls: 1},
		{name: "tool error result", body: call("7", "fails", ``), fast: true},
		{name: "handler error", body: call("8", "errs", ``), fast: true},
		{name: "panic", body: call("9", "panics", ``), fast: true},
		{name: "no result", body: call("10", "nothing", ``), fast: true},
		{name: "elicitation error", body: call("11", "elicit", ``), fast: true},
		{name: "structured", body: call("12", "structured", ``), fast: true},
		// Left to mcp-go.
		{name: "unknown tool", body: call("20", "missing", ``)},
		{name: "meta", body: call("21", "echo", `,"_meta":{"progressToken":1}`)},
		{name: "task", body: call("22", "echo", `,"task":{"ttl":1000}`)},
		{name: "unknown member", body: `{"jsonrpc":"2.0","id":23,"method":"tools/call","params":{"name":"echo"},"extra":1}`},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}`},
		{name: "null id", body: call("null", "echo", ``)},
		{name: "bool id", body: call("true", "echo", ``)},
		{name: "wrong jsonrpc", body: strings.Replace(call("24", "echo", ``), `"2.0"`, `"1.0"`, 1)},
		{name: "other method", body: `{"jsonrpc":"2.0","id":25,"method":"tools/list"}`},
		{name: "method case", body: `{"jsonrpc":"2.0","id":26,"method":"Tools/call","params":{"name":"echo"}}`},
		{name: "trailing data", body: call("27", "echo", ``) + ` {}`},
		{name: "not json", body: `{"jsonrpc":`},
		{name: "modern version", body: call("28", "echo", ``), version: mcp.ProtocolVersion20260728},
		{name: "unknown version", body: call("29", "echo", ``), version: "1999-01-01"},
		{name: "session header", body: call("30", "echo", ``), header: [2]string{"Mcp-Session-Id", "s-1"}},
		{name: "content type params", body: call("31", "echo", ``), ctype: "application/json; charset=utf-8"},
		{name: "wrong content type", body: call("32", "echo", ``), ctype: "text/plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/api/2.0/mcp/functions/main/tools", strings.NewReader(tc.body))
				r = r.WithContext(context.WithValue(r.Context(), callerKey{}, caller))
				r.Header.Set("Authorization", "Bearer dapi-secret")
				r.Header.Set("Accept", "application/json, text/event-stream")
				r.Header.Set("Content-Type", "application/json")
				if tc.ctype != "" {
					r.Header.Set("Content-Type", tc.ctype)
				}
				switch tc.version {
				case "":
					r.Header.Set(mcp.HeaderProtocolVersion, legacy)
				case "-":
				default:
					r.Header.Set(mcp.HeaderProtocolVersion, tc.version)
				}
				if tc.header[0] != "" {
					r.Header.Set(tc.header[0], tc.header[1])
				}
				return r
			}
			calls.Store(0)
			got := httptest.NewRecorder()
			fast := e.serveToolCall(got, req())
			if fast != tc.fast {
				t.Fatalf("fast path taken = %v, want %v", fast, tc.fast)
			}
			if n := calls.Load(); n != tc.wantCalls {
				t.Fatalf("fast path ran echo %d times, want %d", n, tc.wantCalls)
			}
			if !fast {
				// What the entry does next: mcp-go, with the body intact.
				r := req()
				if e.serveToolCall(httptest.NewRecorder(), r) {
					t.Fatal("fast path taken on the second try")
				}
				got = httptest.NewRecorder()
				e.handler.ServeHTTP(got, r)
			}
			want := httptest.NewRecorder()
			e.handler.ServeHTTP(want, req())
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || got.Body.String() != want.Body.String() {
				t.Fatalf("fast path answered\n%d %s %q\nmcp-go answered\n%d %s %q", got.Code, got.Header().Get("Content-Type"), got.Body.String(),
					want.Code, want.Header().Get("Content-Type"), want.Body.String())
			}
			if tc.fast && tc.wantCalls > 0 && !strings.Contains(got.Body.String(), `alice@example.com:`) {
				t.Fatalf("tool did not see the caller: %s", got.Body.String())
			}
		})
	}
}

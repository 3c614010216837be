package devworkspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The tools/call fast path of the managed (stateless) MCP servers.
//
// mcp-go's streamable server decodes a message six times on its way to a
// tool (the transport's probe, the era check, HandleMessage's envelope, its
// protocol and _meta probes, the typed request) and starts a notification
// forwarder goroutine per POST; for a cheap tool that was most of the
// server's work per call. The managed servers' tools need none of that: they
// send no notifications, ask for no input, and read only the caller from
// the context. So the plain case of tools/call — a legacy-era request
// (initialize handshake, no _meta, no task, no session header) naming a
// known tool — is decoded once here and answered with the bytes mcp-go
// would write (TestMCPFastPathMatchesMCPGo compares them over success,
// tool error, handler error, panic and no-result cases). Anything else,
// down to an unknown member, goes to mcp-go unchanged.

// mcpToolCall is everything a plain tools/call may carry. Decoded with
// DisallowUnknownFields, so a request with anything more (_meta, task,
// multi round-trip state, a response's result) is left to mcp-go.
type mcpToolCall struct {
	JSONRPC string `json:"jsonrpc"`
	ID      any    `json:"id"`
	Method  string `json:"method"`
	Params  struct {
		Name      string `json:"name"`
		Arguments any    `json:"arguments"`
	} `json:"params"`
}

// newMCPEntry serves s statelessly, with the fast path for its tools. The
// tool set is fixed once built (the catalog is static), so the handlers are
// taken once.
func (ws *Workspace) newMCPEntry(s *server.MCPServer) *mcpEntry {
	e := &mcpEntry{handler: ws.newStreamable(s), tools: map[string]server.ToolHandlerFunc{}}
	for name, t := range s.ListTools() {
		e.tools[name] = t.Handler
	}
	return e
}

func (e *mcpEntry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !e.serveToolCall(w, r) {
		e.handler.ServeHTTP(w, r)
	}
}

// serveToolCall answers r if it is a plain tools/call, and reports whether
// it did. When it did not, r.Body reads as it came.
func (e *mcpEntry) serveToolCall(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.Body == nil || len(e.tools) == 0 ||
		r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get(server.HeaderKeySessionID) != "" {
		return false
	}
	// mcp-go accepts a missing version header (the client may not have
	// negotiated yet) and refuses unknown ones; the modern era has its own
	// rules.
	if v := r.Header.Get(mcp.HeaderProtocolVersion); v != "" && (!mcp.IsValidProtocolVersion(v) || mcp.IsModernProtocol(v)) {
		return false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// mcp-go reports the read error itself.
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var m mcpToolCall
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if d.Decode(&m) != nil || d.InputOffset() != int64(len(bytes.TrimRight(body, " \t\r\n"))) {
		return false
	}
	if m.JSONRPC != mcp.JSONRPC_VERSION || m.Method != string(mcp.MethodToolsCall) {
		return false
	}
	switch m.ID.(type) {
	case string, float64:
	default: // a notification (no id) or an id mcp-go would refuse
		return false
	}
	h, ok := e.tools[m.Params.Name]
	if !ok {
		return false
	}
	var req mcp.CallToolRequest
	req.Method = m.Method
	req.Params.Name = m.Params.Name
	req.Params.Arguments = m.Params.Arguments
	req.Header = r.Header
	ctx := context.WithValue(r.Context(), mcpCallerKey{}, callerFrom(r.Context()))
	res, err := callRecovered(ctx, h, req)
	var resp mcp.JSONRPCMessage
	switch {
	case err != nil:
		resp = mcpHandlerError(m.ID, err)
	case res == nil:
		resp = mcpInternalError(m.ID, fmt.Errorf("tool '%s' handler returned no result", m.Params.Name))
	case res.NeedsInput():
		// No managed tool asks for input; mcp-go would ask a legacy client
		// over the session, which a stateless server does not have.
		resp = mcpInternalError(m.ID, errors.New("tool "+m.Params.Name+" asked for input, which the dev workspace's managed servers do not support"))
	default:
		resp = mcp.NewJSONRPCResultResponse(mcp.NewRequestId(m.ID), res)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
	return true
}

// callRecovered is server.WithRecovery's middleware (newMCPServer installs
// it; it is the only one), with its message.
func callRecovered(ctx context.Context, h server.ToolHandlerFunc, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, fmt.Errorf("panic recovered in %s tool handler: %v", req.Params.Name, v)
		}
	}()
	return h(ctx, req)
}

// mcpHandlerError is mcp-go's error response for a handler's error
// (server.handlerError on the legacy era).
func mcpHandlerError(id any, err error) mcp.JSONRPCMessage {
	var v mcp.URLElicitationRequiredError
	var p *mcp.URLElicitationRequiredError
	switch {
	case errors.As(err, &v):
	case errors.As(err, &p) && p != nil:
		v = *p
	default:
		return mcpInternalError(id, err)
	}
	d := v.JSONRPCError().Error
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Error: mcp.NewJSONRPCErrorDetails(d.Code, err.Error(), d.Data)}
}

func mcpInternalError(id any, err error) mcp.JSONRPCMessage {
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Error: mcp.NewJSONRPCErrorDetails(mcp.INTERNAL_ERROR, err.Error(), nil)}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

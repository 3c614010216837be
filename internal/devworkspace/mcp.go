package devworkspace

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Managed MCP servers (MCP streamable HTTP under /api/2.0/mcp/…), built with
// mcp-go's server package. The workspace's route wrapper authenticates the
// bearer token and checks scopes; every tool then runs as that caller, with
// the same ACL checks as the REST APIs, and reports a missing right as a
// tool error result.

// mcpEntry is one MCP server, built on first use of its path.
type mcpEntry struct {
	handler http.Handler                      // mcp-go's streamable server
	tools   map[string]server.ToolHandlerFunc // for the tools/call fast path (mcp_fast.go)
}

func (ws *Workspace) registerMCP() {
	// Schema-level servers, and the newer one-index / one-function forms.
	ws.mcpRoute("/api/2.0/mcp/vector-search/{catalog}/{schema}", ws.mcpHandler(ws.buildVectorSearchMCP))
	ws.mcpRoute("/api/2.0/mcp/vector-search/{catalog}/{schema}/{name}", ws.mcpHandler(ws.buildVectorSearchMCP))
	ws.mcpRoute("/api/2.0/mcp/genie/{space_id}", ws.mcpHandler(ws.buildGenieMCP))
	ws.mcpRoute("/api/2.0/mcp/functions/{catalog}/{schema}", ws.mcpHandler(ws.buildFunctionsMCP))
	ws.mcpRoute("/api/2.0/mcp/functions/{catalog}/{schema}/{name}", ws.mcpHandler(ws.buildFunctionsMCP))
	ws.mcpRoute("/api/2.0/mcp/sql", ws.mcpHandler(ws.buildSQLMCP))
	ws.mcpRoute("/api/2.0/mcp/external/{connection}", ws.handleExternalMCP)
	// RFC 9728 metadata of each managed server, named by its challenges.
	ws.routePublic("GET "+protectedResourcePath+"/api/2.0/mcp/{rest...}", ws.handleProtectedResource)
	// The issuer's metadata also where RFC 8414 puts it for an issuer with
	// a path, the first place MCP clients look (the SDK reads
	// /oidc/.well-known/…, Databricks' form).
	ws.routePublic("GET /.well-known/oauth-authorization-server/oidc", ws.handleOIDCDiscovery)
	path := ws.cfg.MCP.ExternalServerPath
	if path == "" {
		path = defaultExternalMCPPath
	}
	// Unlike the managed servers, the external one mints Mcp-Session-Id
	// values, so proxies that must relay that header are exercised.
	ext := server.NewStreamableHTTPServer(newExternalMCPServer(), server.WithDisableLocalhostProtection(true))
	// Its token is the connection's static secret, not an OAuth token: its
	// challenges name no metadata.
	ws.mux.Handle(path, challenge(ws.wrap(func(w http.ResponseWriter, r *http.Request) {
		if t := ws.cfg.MCP.ExternalServerToken; t != "" && r.Header.Get("Authorization") != "Bearer "+t {
			writeError(w, http.StatusUnauthorized, codeUnauthenticated, "the external MCP server needs its connection's bearer token")
			return
		}
		ext.ServeHTTP(w, r)
	}, false), nil))
}

// defaultExternalMCPPath is where the toy external MCP server lives.
const defaultExternalMCPPath = "/dev/external-mcp"

// mcpCallerKey carries the caller into tool handlers. It is set from the
// HTTP request by the streamable server's context func, so each tool call
// sees the principal of the bearer token on its own HTTP request.
type mcpCallerKey struct{}

func mcpCaller(ctx context.Context) (*Principal, error) {
	if c, ok := ctx.Value(mcpCallerKey{}).(*Caller); ok && c != nil {
		return c.Principal, nil
	}
	return nil, fmt.Errorf("no authenticated caller")
}

func (ws *Workspace) newStreamable(s *server.MCPServer) *server.StreamableHTTPServer {
	return server.NewStreamableHTTPServer(s,
		server.WithStateLess(true),
		// The workspace's own host check (Handler) covers every route, in
		// its error shape and with its allow-list; mcp-go's would refuse
		// allowed hosts with a plain-text body.
		server.WithDisableLocalhostProtection(true),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			return context.WithValue(ctx, mcpCallerKey{}, callerFrom(r.Context()))
		}),
	)
}

// mcpBuilder builds the MCP server for a request's path, or returns a
// *NotFoundError when the path names nothing.
type mcpBuilder func(r *http.Request) (*server.MCPServer, error)

// mcpHandler serves the MCP server for each distinct path, building it once.
// Tool lists are static per path (they come from the configuration), so the
// cache never goes stale; rights are checked per call.
func (ws *Workspace) mcpHandler(build mcpBuilder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Path
		ws.apis.mcpMu.Lock()
		e, ok := ws.apis.mcpServers[key]
		ws.apis.mcpMu.Unlock()
		if !ok {
			s, err := build(r)
			if err != nil {
				writeErr(w, err)
				return
			}
			e = ws.newMCPEntry(s)
			ws.apis.mcpMu.Lock()
			if prev, ok := ws.apis.mcpServers[key]; ok {
				e = prev
			} else {
				ws.apis.mcpServers[key] = e
			}
			ws.apis.mcpMu.Unlock()
		}
		e.ServeHTTP(w, r)
	}
}

// newMCPServer is the managed servers' mcp-go server. The tools/call fast
// path (mcp_fast.go) applies its one middleware, WithRecovery, itself: a
// middleware added here must be added there too.
func newMCPServer(name string) *server.MCPServer {
	return server.NewMCPServer(name, "1.0.0", server.WithToolCapabilities(false), server.WithRecovery())
}

// toolErr turns an ACL or validation error into the tool error result the
// managed servers return, keeping the error code visible to the model.
func toolErr(err error) *mcp.CallToolResult {
	var code string
	switch err.(type) {
	case *PermissionError:
		code = codePermissionDenied
	case *NotFoundError:
		code = codeNotFound
	case *badRequestError:
		code = codeInvalidParam
	default:
		code = codeBadRequest
	}
	return mcp.NewToolResultErrorf("%s: %s", code, err.Error())
}

func jsonResult(v any) *mcp.CallToolResult {
	b, err := json.Marshal(v)
	if err != nil {
		return mcp.NewToolResultErrorf("%s: %v", codeInternal, err)
	}
	return mcp.NewToolResultText(string(b))
}

// ---- vector search: one tool per index of the schema ----

func (ws *Workspace) buildVectorSearchMCP(r *http.Request) (*server.MCPServer, error) {
	schema := r.PathValue("catalog") + "." + r.PathValue("schema")
	only := r.PathValue("name")
	s := newMCPServer("databricks-vector-search-" + schema)
	n := 0
	for _, name := range ws.apis.indexOrder {
		if !strings.HasPrefix(name, schema+".") || only != "" && name != schema+"."+only {
			continue
		}
		ix := ws.apis.indexes[name]
		n++
		desc := fmt.Sprintf("Searches the vector search index %s (source table %s) and returns the most relevant rows as JSON, best first.", name, ix.spec.SourceTable)
		s.AddTool(mcp.NewTool(strings.ReplaceAll(name, ".", "__"),
			mcp.WithDescription(desc),
			mcp.WithString("query", mcp.Required(), mcp.Description("The text to search for.")),
			mcp.WithInteger("num_results", mcp.Description("How many results to return (default 5).")),
			mcp.WithString("query_type", mcp.Description("ANN (default), HYBRID or FULL_TEXT."), mcp.Enum(queryANN, queryHybrid, queryFullText)),
		), ws.vectorSearchTool(name))
	}
	if n == 0 && only != "" {
		return nil, &NotFoundError{Kind: "index", Name: schema + "." + only}
	}
	if n == 0 {
		return nil, &NotFoundError{Kind: "schema with vector search indexes", Name: schema}
	}
	return s, nil
}

func (ws *Workspace) vectorSearchTool(index string) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, err := mcpCaller(ctx)
		if err != nil {
			return nil, err
		}
		query, err := req.RequireString("query")
		if err != nil {
			return toolErr(badRequest("%v", err)), nil
		}
		ix, err := ws.indexFor(p, index)
		if err != nil {
			return toolErr(err), nil
		}
		var cols []string
		for _, c := range ix.spec.Columns {
			cols = append(cols, c.Name)
		}
		res, err := ws.vsQuery(ix, vsQueryRequest{
			Columns: cols, QueryText: query, NumResults: req.GetInt("num_results", 5),
			QueryType: req.GetString("query_type", queryANN),
		}, 0)
		if err != nil {
			return toolErr(err), nil
		}
		docs := make([]map[string]any, len(res.Result.DataArray))
		for i, row := range res.Result.DataArray {
			d := map[string]any{}
			for j, c := range res.Manifest.Columns {
				d[c["name"].(string)] = row[j]
			}
			docs[i] = d
		}
		return jsonResult(docs), nil
	}
}

// ---- external MCP over a UC connection ----

// handleExternalMCP proxies MCP traffic to the server a UC connection
// points at, after checking USE_CONNECTION. The caller's workspace token is
// replaced by the connection's stored credential.
func (ws *Workspace) handleExternalMCP(w http.ResponseWriter, r *http.Request) {
	conn, err := ws.connectionAccess(callerFrom(r.Context()).Principal, r.PathValue("connection"))
	if err != nil {
		writeErr(w, err)
		return
	}
	target, err := url.Parse(ws.resolveURL(r, conn.URL))
	if err != nil || target.Host == "" {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "connection %s has no usable URL", conn.Name)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			connectionAuth(pr.Out.Header, conn)
		},
		FlushInterval: -1, // MCP answers may be SSE streams
		// The external server refused the connection's stored credential:
		// say so in the challenge, which the caller's OAuth cannot fix.
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				resp.Header.Set("WWW-Authenticate", bearerChallenge("connection "+conn.Name+": the external MCP server refused the connection's credential", ""))
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			writeError(w, http.StatusBadGateway, "TEMPORARILY_UNAVAILABLE", "connection %s: external MCP server unreachable", conn.Name)
		},
	}
	rp.ServeHTTP(w, r)
}

// newExternalMCPServer is the small "external" MCP server the dev
// connection dev-external-mcp points at: deterministic toy tools.
func newExternalMCPServer() *server.MCPServer {
	s := newMCPServer("dev-external-mcp")
	s.AddTool(mcp.NewTool("get_weather",
		mcp.WithDescription("Gets the current weather for a city (deterministic dev data)."),
		mcp.WithString("city", mcp.Required(), mcp.Description("City name")),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		city, err := req.RequireString("city")
		if err != nil || strings.TrimSpace(city) == "" {
			return mcp.NewToolResultError("city is required"), nil
		}
		return mcp.NewToolResultText(devWeather(city)), nil
	})
	s.AddTool(mcp.NewTool("unit_convert",
		mcp.WithDescription("Converts a value between units: km/mi, m/ft, kg/lb, c/f."),
		mcp.WithNumber("value", mcp.Required()),
		mcp.WithString("from", mcp.Required()),
		mcp.WithString("to", mcp.Required()),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		v, err1 := req.RequireFloat("value")
		from, err2 := req.RequireString("from")
		to, err3 := req.RequireString("to")
		if err1 != nil || err2 != nil || err3 != nil {
			return mcp.NewToolResultError("value, from and to are required"), nil
		}
		out, err := unitConvert(v, from, to)
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultText(fmt.Sprintf("%g %s = %.4g %s", v, from, out, to)), nil
	})
	return s
}

func devWeather(city string) string {
	h := apiHash(strings.ToLower(strings.TrimSpace(city)))
	var n int
	fmt.Sscanf(h[:4], "%x", &n)
	conds := []string{"sunny", "partly cloudy", "overcast", "light rain", "windy", "foggy"}
	return fmt.Sprintf("Weather in %s: %s, %d°C, humidity %d%%", strings.TrimSpace(city), conds[n%len(conds)], n%35-5, 30+n%60)
}

func unitConvert(v float64, from, to string) (float64, error) {
	from, to = strings.ToLower(from), strings.ToLower(to)
	conv := map[[2]string]func(float64) float64{
		{"km", "mi"}: func(x float64) float64 { return x / 1.609344 },
		{"mi", "km"}: func(x float64) float64 { return x * 1.609344 },
		{"m", "ft"}:  func(x float64) float64 { return x / 0.3048 },
		{"ft", "m"}:  func(x float64) float64 { return x * 0.3048 },
		{"kg", "lb"}: func(x float64) float64 { return x / 0.45359237 },
		{"lb", "kg"}: func(x float64) float64 { return x * 0.45359237 },
		{"c", "f"}:   func(x float64) float64 { return x*9/5 + 32 },
		{"f", "c"}:   func(x float64) float64 { return (x - 32) * 5 / 9 },
	}
	f, ok := conv[[2]string{from, to}]
	if !ok {
		var pairs []string
		for k := range conv {
			pairs = append(pairs, k[0]+"->"+k[1])
		}
		slices.Sort(pairs)
		return 0, fmt.Errorf("cannot convert %s to %s (supported: %s)", from, to, strings.Join(pairs, ", "))
	}
	return f(v), nil
}

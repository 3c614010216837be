package devworkspace

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// apisMCP connects an mcp-go streamable HTTP client to path with a bearer
// token and initializes the session.
func apisMCP(t testing.TB, ws *Workspace, path, token string) (*client.Client, error) {
	t.Helper()
	c, err := client.NewStreamableHttpClient(ws.URL()+path,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "agentrt-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return nil, err
	}
	return c, nil
}

func mustMCP(t testing.TB, ws *Workspace, path, token string) *client.Client {
	t.Helper()
	c, err := apisMCP(t, ws, path, token)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func toolNames(t testing.TB, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func callTool(t testing.TB, c *client.Client, name string, args map[string]any) (string, bool) {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

func TestMCPVectorSearch(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	alice := mustMCP(t, ws, "/api/2.0/mcp/vector-search/main/docs", AliceToken)
	tool := "main__docs__product_docs_index"
	if names := toolNames(t, alice); !slices.Equal(names, []string{tool}) {
		t.Fatalf("tools %v", names)
	}
	text, isErr := callTool(t, alice, tool, map[string]any{"query": "how do I rotate database passwords in Kestrel Vault", "num_results": 3})
	if isErr {
		t.Fatalf("alice: %s", text)
	}
	var docs []map[string]any
	if err := json.Unmarshal([]byte(text), &docs); err != nil || len(docs) != 3 {
		t.Fatalf("result %s (%v)", text, err)
	}
	if docs[0]["product"] != "Kestrel Vault" || docs[0]["score"] == nil || docs[0]["body"] == "" {
		t.Fatalf("top doc %v", docs[0])
	}
	// bob lists the tools but the call fails on his missing rights.
	bob := mustMCP(t, ws, "/api/2.0/mcp/vector-search/main/docs", BobToken)
	text, isErr = callTool(t, bob, tool, map[string]any{"query": "backup"})
	if !isErr || !strings.Contains(text, "PERMISSION_DENIED") || !strings.Contains(text, "main.docs") {
		t.Fatalf("bob: isError=%v %s", isErr, text)
	}
	// Calls run as the caller of each HTTP request: alice still succeeds on
	// the same (cached) server after bob's failure.
	if _, isErr := callTool(t, alice, tool, map[string]any{"query": "backup"}); isErr {
		t.Fatal("alice failed after bob")
	}
	// agent-sp via M2M.
	tok, err := apisSDK(t, ws, "").Config.GetToken()
	if err != nil {
		t.Fatal(err)
	}
	sp := mustMCP(t, ws, "/api/2.0/mcp/vector-search/main/docs", tok.AccessToken)
	if text, isErr := callTool(t, sp, tool, map[string]any{"query": "webhooks"}); isErr {
		t.Fatalf("agent-sp: %s", text)
	}
	// The one-index URL form serves just that index.
	one := mustMCP(t, ws, "/api/2.0/mcp/vector-search/main/docs/product_docs_index", AliceToken)
	if names := toolNames(t, one); !slices.Equal(names, []string{tool}) {
		t.Fatalf("one-index tools %v", names)
	}
	// Unknown schema or index: 404; unknown token: 401 (the client reports
	// that as an authorization error).
	for _, p := range []string{"/api/2.0/mcp/vector-search/main/nope", "/api/2.0/mcp/vector-search/main/docs/nope"} {
		if _, err := apisMCP(t, ws, p, AliceToken); err == nil {
			t.Fatalf("%s initialized", p)
		}
		mcpExpectStatus(t, ws, p, AliceToken, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	}
	_, err = apisMCP(t, ws, "/api/2.0/mcp/vector-search/main/docs", "bad-token")
	var authErr *transport.AuthorizationRequiredError
	if !errors.As(err, &authErr) {
		t.Fatalf("bad token: %v", err)
	}
	mcpExpectStatus(t, ws, "/api/2.0/mcp/vector-search/main/docs", "bad-token", http.StatusUnauthorized, "UNAUTHENTICATED")
}

// mcpExpectStatus posts an MCP initialize and checks the HTTP status and
// error code (mcp-go's client folds 4xx on initialize into one error).
func mcpExpectStatus(t testing.TB, ws *Workspace, path, token string, status int, code string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, ws.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != status || e.ErrorCode != code || e.Message == "" {
		t.Fatalf("%s: %d %+v, want %d %s", path, resp.StatusCode, e, status, code)
	}
}

func TestMCPFunctions(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	path := "/api/2.0/mcp/functions/main/tools"
	bob := mustMCP(t, ws, path, BobToken)
	res, err := bob.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]string{}
	for _, tl := range res.Tools {
		b, _ := json.Marshal(tl.InputSchema)
		if len(tl.RawInputSchema) > 0 {
			b = tl.RawInputSchema
		}
		schemas[tl.Name] = string(b)
	}
	if !strings.Contains(schemas["main__tools__lookup_order"], `"order_id":{`) || !strings.Contains(schemas["main__tools__top_products"], `"type":"integer"`) {
		t.Fatalf("schemas %v", schemas)
	}
	text, isErr := callTool(t, bob, "main__tools__top_products", map[string]any{"n": 3})
	if isErr {
		t.Fatalf("top_products: %s", text)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(text), &rows); err != nil || len(rows) != 3 || rows[0]["revenue"] == nil {
		t.Fatalf("top_products rows %s (%v)", text, err)
	}
	text, isErr = callTool(t, bob, "main__tools__lookup_order", map[string]any{"order_id": "ORD-100042"})
	if isErr || !strings.Contains(text, "ORD-100042") {
		t.Fatalf("lookup_order: %v %s", isErr, text)
	}
	// carol has no EXECUTE: a tool error naming the privilege.
	carol := mustMCP(t, ws, path, CarolToken)
	text, isErr = callTool(t, carol, "main__tools__lookup_order", map[string]any{"order_id": "ORD-100042"})
	if !isErr || !strings.Contains(text, "PERMISSION_DENIED") {
		t.Fatalf("carol: %v %s", isErr, text)
	}
	one := mustMCP(t, ws, path+"/lookup_order", BobToken)
	if names := toolNames(t, one); !slices.Equal(names, []string{"main__tools__lookup_order"}) {
		t.Fatalf("one-function tools %v", names)
	}
	text, isErr = callTool(t, bob, "main__tools__top_products", map[string]any{})
	if !isErr || !strings.Contains(text, "n") {
		t.Fatalf("missing arg: %v %s", isErr, text)
	}
}

func TestMCPSQLAndGenie(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	alice := mustMCP(t, ws, "/api/2.0/mcp/sql", AliceToken)
	if names := toolNames(t, alice); !slices.Equal(names, []string{"execute_sql", "execute_sql_read_only"}) {
		t.Fatalf("sql tools %v", names)
	}
	text, isErr := callTool(t, alice, "execute_sql_read_only", map[string]any{"query": "SELECT count(*) AS n FROM main.docs.product_docs"})
	if isErr || !strings.Contains(text, `"n":200`) {
		t.Fatalf("read-only: %v %s", isErr, text)
	}
	if text, isErr := callTool(t, alice, "execute_sql_read_only", map[string]any{"query": "DELETE FROM main.sales.orders"}); !isErr {
		t.Fatalf("write accepted: %s", text)
	}
	bob := mustMCP(t, ws, "/api/2.0/mcp/sql", BobToken)
	if text, isErr := callTool(t, bob, "execute_sql", map[string]any{"query": "SELECT title FROM main.docs.product_docs LIMIT 1"}); !isErr || !strings.Contains(text, "PERMISSION_DENIED") {
		t.Fatalf("bob read docs: %v %s", isErr, text)
	}

	path := "/api/2.0/mcp/genie/01dev0genie0sales"
	g := mustMCP(t, ws, path, AliceToken)
	names := toolNames(t, g)
	if len(names) != 1 {
		t.Fatalf("genie tools %v", names)
	}
	text, isErr = callTool(t, g, names[0], map[string]any{"query": "How many orders are there in each status?"})
	if isErr || !strings.Contains(text, `"status":"COMPLETED"`) || !strings.Contains(text, "GROUP BY status") {
		t.Fatalf("genie: %v %s", isErr, text)
	}
	bg := mustMCP(t, ws, path, BobToken)
	if text, isErr := callTool(t, bg, names[0], map[string]any{"query": "How many orders are there in each status?"}); !isErr || !strings.Contains(text, "CAN_RUN") {
		t.Fatalf("bob genie: %v %s", isErr, text)
	}
	mcpExpectStatus(t, ws, "/api/2.0/mcp/genie/nope", AliceToken, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
}

func TestMCPExternal(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	path := "/api/2.0/mcp/external/dev-external-mcp"
	alice := mustMCP(t, ws, path, AliceToken)
	if names := toolNames(t, alice); !slices.Equal(names, []string{"get_weather", "unit_convert"}) {
		t.Fatalf("external tools %v", names)
	}
	w1, isErr := callTool(t, alice, "get_weather", map[string]any{"city": "Oslo"})
	w2, _ := callTool(t, alice, "get_weather", map[string]any{"city": "oslo "})
	if isErr || !strings.HasPrefix(w1, "Weather in Oslo:") || w1[len("Weather in Oslo"):] != w2[len("Weather in oslo"):] {
		t.Fatalf("weather %q / %q", w1, w2)
	}
	if text, _ := callTool(t, alice, "unit_convert", map[string]any{"value": 100, "from": "c", "to": "f"}); text != "100 c = 212 f" {
		t.Fatalf("convert: %q", text)
	}
	// Without USE_CONNECTION the proxy refuses with 403 before any MCP traffic.
	if _, err := apisMCP(t, ws, path, CarolToken); err == nil {
		t.Fatal("carol initialized the external server")
	}
	mcpExpectStatus(t, ws, path, CarolToken, http.StatusForbidden, "PERMISSION_DENIED")
	mcpExpectStatus(t, ws, path, BobToken, http.StatusForbidden, "PERMISSION_DENIED")
	mcpExpectStatus(t, ws, "/api/2.0/mcp/external/nope", AliceToken, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	// agent-sp holds USE_CONNECTION.
	tok, err := apisSDK(t, ws, "").Config.GetToken()
	if err != nil {
		t.Fatal(err)
	}
	sp := mustMCP(t, ws, path, tok.AccessToken)
	if text, isErr := callTool(t, sp, "unit_convert", map[string]any{"value": 10, "from": "km", "to": "mi"}); isErr || text != "10 km = 6.214 mi" {
		t.Fatalf("agent-sp convert: %q", text)
	}
}

func TestMCPScopes(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	// A token exchanged down to the Genie REST scope cannot use the managed
	// Genie MCP server (that needs mcp.genie), but one with mcp.vectorsearch
	// can use the vector-search server.
	tok := exchangeForScopes(t, ws, AliceToken, "dashboards.genie")
	if _, err := apisMCP(t, ws, "/api/2.0/mcp/genie/01dev0genie0sales", tok); err == nil {
		t.Fatal("dashboards.genie token reached the Genie MCP server")
	}
	tok = exchangeForScopes(t, ws, AliceToken, "mcp.vectorsearch")
	c := mustMCP(t, ws, "/api/2.0/mcp/vector-search/main/docs", tok)
	if text, isErr := callTool(t, c, "main__docs__product_docs_index", map[string]any{"query": "pricing"}); isErr {
		t.Fatal(text)
	}
}

// exchangeForScopes exchanges a workspace token (RFC 8693) for one limited
// to scope, through the workspace's token endpoint.
func exchangeForScopes(t testing.TB, ws *Workspace, subject, scope string) string {
	t.Helper()
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"scope":              {scope},
	}
	resp, err := http.PostForm(ws.URL()+"/oidc/v1/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token exchange: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

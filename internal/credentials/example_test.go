package credentials_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

// One user client serves every request; the caller travels in the ctx.
func ExampleNewUser() {
	u, err := credentials.NewUser(credentials.UserOptions{
		Host:   "https://adb-123.azuredatabricks.net",
		Scopes: []string{"dashboards.genie", "sql.statement-execution"},
	})
	if err != nil {
		panic(err)
	}
	handle := func(w http.ResponseWriter, r *http.Request) {
		ctx := credentials.WithCaller(r.Context(), r.Header.Get("X-Forwarded-Access-Token"))
		me, err := u.Client().CurrentUser.Me(ctx, iam.MeRequest{})
		if err != nil {
			http.Error(w, "lookup failed", http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, "hello", me.UserName)
	}
	_ = handle
}

// Non-SDK workspace endpoints (managed MCP servers, the OpenAI-compatible
// serving path) are signed by the same client, with the same scope checks.
func ExampleHTTPClient() {
	u, _ := credentials.NewUser(credentials.UserOptions{Host: "https://adb-123.azuredatabricks.net", Scopes: []string{"mcp.genie"}})
	hc := credentials.HTTPClient(u.Client(), nil)
	ctx := credentials.WithCaller(context.Background(), "caller-token")
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://adb-123.azuredatabricks.net/serving-endpoints/chat/completions", nil)
	_, err := hc.Do(req)
	fmt.Println(err != nil)
	// Output: true
}

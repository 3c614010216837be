package credentials_test

import (
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

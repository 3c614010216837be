package devworkspace_test

import (
	"context"
	"fmt"
	"log"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"github.com/databricks/databricks-sdk-go/service/sql"

	"github.com/agentrt/agentrt/internal/devworkspace"
)

type noLoader struct{}

func (noLoader) Name() string                   { return "none" }
func (noLoader) Configure(*config.Config) error { return nil }

// Start the default dev workspace and query it as the agent's service
// principal with the real SDK (OAuth M2M).
func ExampleStart() {
	ws, err := devworkspace.Start(context.Background(), devworkspace.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close()

	w, err := databricks.NewWorkspaceClient(&databricks.Config{
		Host:         ws.URL(),
		ClientID:     devworkspace.SPClientID,
		ClientSecret: devworkspace.SPClientSecret,
		Loaders:      []config.Loader{noLoader{}}, // ignore env and ~/.databrickscfg
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	me, err := w.CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := w.StatementExecution.ExecuteStatement(ctx, sql.ExecuteStatementRequest{
		WarehouseId: "dev-warehouse",
		Statement:   "SELECT product FROM main.tools.top_products(:n)",
		Parameters:  []sql.StatementParameterListItem{{Name: "n", Value: "1", Type: "INT"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.UserName, res.Status.State, res.Result.DataArray[0][0])
	// Output: agent-sp SUCCEEDED Kestrel Vault Enterprise
}

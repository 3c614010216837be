package tools_test

import (
	"context"
	"fmt"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
)

// A set with one tool the caller may use and one whose probe is refused:
// the refused one is reported as skipped and the request goes on.
func ExampleSet() {
	clock := tools.NewProvider("clock", tools.Requirements{}, func(context.Context, *databricks.WorkspaceClient) ([]agent.Tool, error) {
		return []agent.Tool{tools.NewTool(agent.ToolDefinition{Name: "clock", Description: "The time"},
			func(context.Context, string) (string, error) { return "12:00", nil })}, nil
	})
	secret := tools.NewProvider("payroll",
		tools.Requirements{Resources: []agent.Resource{{Type: agent.Table, Name: "hr.pay.salaries"}}, UserScopes: []string{"sql"}},
		func(context.Context, *databricks.WorkspaceClient) ([]agent.Tool, error) {
			return nil, &apierr.APIError{ErrorCode: "PERMISSION_DENIED", StatusCode: 403, Message: "no SELECT on hr.pay.salaries"}
		})
	set := tools.NewSet(tools.SetOptions{}).
		Add(clock, tools.Options{Binding: tools.System}).
		Add(secret, tools.Options{Binding: tools.User})

	env := &agent.Env{User: &databricks.WorkspaceClient{}, System: &databricks.WorkspaceClient{}}
	if err := set.Prepare(context.Background(), env); err != nil {
		fmt.Println(err)
	}
	for _, t := range env.Tools {
		fmt.Println("tool:", t.Definition().Name)
	}
	for _, s := range env.Skipped {
		fmt.Printf("skipped: %s (%s binding): %s\n", s.Tool, s.Binding, s.Reason)
	}
	fmt.Println("user scopes:", set.Requirements().UserScopes)
	// Output:
	// tool: clock
	// skipped: payroll (user binding): no SELECT on hr.pay.salaries
	// user scopes: [sql]
}

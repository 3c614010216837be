package preflight_test

import (
	"os"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/preflight"
)

func ExampleReport_Render() {
	rep := &preflight.Report{Results: []preflight.Result{
		{Resource: agent.Resource{Type: agent.ServingEndpoint, Name: "dev-llm"}, Principal: "agent-sp", Status: preflight.OK},
		{Resource: agent.Resource{Type: agent.SQLWarehouse, Name: "wh1"}, Principal: "agent-sp", Status: preflight.Denied, Hint: "grant agent-sp CAN_USE on sql_warehouse wh1"},
	}}
	rep.Render(os.Stdout)
	// Output:
	// RESOURCE  TYPE              PRINCIPAL  STATUS  HINT
	// dev-llm   serving_endpoint  agent-sp   ok      -
	// wh1       sql_warehouse     agent-sp   denied  grant agent-sp CAN_USE on sql_warehouse wh1
}

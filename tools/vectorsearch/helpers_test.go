package vectorsearch_test

import (
	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
)

func agentEnv(principal string, user *databricks.WorkspaceClient) *agent.Env {
	return &agent.Env{Caller: agent.Caller{Identity: agent.Identity{PrincipalID: principal}, Authenticated: true}, User: user}
}

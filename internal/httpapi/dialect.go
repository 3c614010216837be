package httpapi

import (
	"net/http"

	"github.com/agentrt/agentrt/internal/dialect"
	"github.com/agentrt/agentrt/internal/httperr"
)

// DialectHeader lets a caller choose the dialect of a Responses route's
// answer ("openai" or "mlflow") whatever the route's own.
const DialectHeader = "Agentrt-Dialect"

// dialectOf is the dialect a Responses request is answered in: the route's
// (/invocations is MLflow's scoring route, so Databricks clients get
// function_call + function_call_output; /responses and /v1/responses are
// OpenAI's, so OpenAI-typed clients get mcp_call items), unless the caller
// names one in DialectHeader.
func dialectOf(r *http.Request, route string) (dialect.Dialect, *httperr.Error) {
	if v := r.Header.Get(DialectHeader); v != "" {
		d, err := dialect.Parse(v)
		if err != nil {
			return 0, httperr.BadRequest(DialectHeader, DialectHeader+" header: "+err.Error())
		}
		return d, nil
	}
	if route == "/invocations" {
		return dialect.MLflow, nil
	}
	return dialect.OpenAI, nil
}

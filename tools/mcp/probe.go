package mcp

import (
	"context"
	"fmt"
	"sync"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentrt/agentrt/tools"
)

// FunctionsProbeScope is the user API scope of the probe of a UC functions
// server: reading each function's metadata as the caller. The dotted name
// follows the catalog.{catalogs,schemas,tables}:read pattern; Databricks
// also accepts the coarse "unity-catalog".
const FunctionsProbeScope = "catalog.functions:read"

// probeFunctions keeps the listed functions the caller may execute. A
// managed functions server lists every function of the schema to anyone,
// and only a call finds a missing USE_CATALOG, USE_SCHEMA or EXECUTE; Unity
// Catalog's get-function needs exactly those rights, so reading each
// function as the caller is the probe, as reading the index or the space
// is for Vector Search and Genie. Functions the caller may not use are
// dropped; when none is left, the permission error is returned and the
// provider is skipped with it. Other failures leave the decision to the
// call.
func (p *Provider) probeFunctions(ctx context.Context, w *databricks.WorkspaceClient, listed []mcp.Tool) ([]mcp.Tool, error) {
	errs := make([]error, len(listed))
	var wg sync.WaitGroup
	for i, t := range listed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := UCName(t.Name)
			if _, err := w.Functions.Get(ctx, catalog.GetFunctionRequest{Name: name}); err != nil {
				errs[i] = fmt.Errorf("function %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	var kept []mcp.Tool
	var denied error
	for i, t := range listed {
		if tools.IsPermission(errs[i]) {
			if denied == nil {
				denied = errs[i]
			}
			continue
		}
		kept = append(kept, t)
	}
	if len(kept) == 0 && denied != nil {
		return nil, denied
	}
	return kept, nil
}

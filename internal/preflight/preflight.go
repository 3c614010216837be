// Package preflight checks at start-up that the agent's service principal can
// reach every resource the agent declares for it, so a missing grant shows up
// as one clear table before the first request instead of as a failed tool
// call later. `serve check` runs only this.
//
// Probes are read-only gets run in parallel with the system client; their
// answers also reveal downstream dependencies (a Genie space's warehouse, a
// vector index's endpoint, embedding endpoint and source table) that the
// manifest should declare too.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/apps"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/dashboards"
	"github.com/databricks/databricks-sdk-go/service/database"
	"github.com/databricks/databricks-sdk-go/service/serving"
	"github.com/databricks/databricks-sdk-go/service/sql"
	"github.com/databricks/databricks-sdk-go/service/vectorsearch"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Status is the outcome of one probe.
type Status string

const (
	OK      Status = "ok"
	Denied  Status = "denied"  // the principal lacks a permission
	Missing Status = "missing" // the resource does not exist
	Error   Status = "error"   // anything else (unreachable, rejected credentials, …)
)

// Result is one checked resource.
type Result struct {
	Resource  agent.Resource
	Principal string
	Status    Status
	Hint      string
	Err       error            `json:"-"`
	Depends   []agent.Resource // downstream resources the probe revealed
}

// Report is the outcome of Run.
type Report struct {
	Results  []Result // in declaration order
	Warnings []string // undeclared downstream dependencies
}

// OK reports whether every probe succeeded.
func (r *Report) OK() bool {
	for _, res := range r.Results {
		if res.Status != OK {
			return false
		}
	}
	return true
}

// Failed returns the results that are not OK.
func (r *Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status != OK {
			out = append(out, res)
		}
	}
	return out
}

// Options configure Run.
type Options struct {
	// Principal names the system identity in the table and hints.
	Principal string
	// Timeout bounds the whole check (default 30s).
	Timeout time.Duration
	// Concurrency bounds parallel probes (default 8).
	Concurrency int
}

// SystemResources returns the manifest's resources reached as the service
// principal (those not marked on-behalf-of-user).
func SystemResources(m agent.Manifest) []agent.Resource {
	var out []agent.Resource
	for _, r := range m.Resources {
		if r.OnBehalfOfUser == nil || !*r.OnBehalfOfUser {
			out = append(out, r)
		}
	}
	return out
}

// Run probes every system resource of m with w, the system client.
func Run(ctx context.Context, w *databricks.WorkspaceClient, m agent.Manifest, o Options) *Report {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Principal == "" {
		o.Principal = "system"
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	res := SystemResources(m)
	rep := &Report{Results: make([]Result, len(res))}
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for i, r := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.Results[i] = probe(ctx, w, r, o.Principal)
			recordCheck(ctx, rep.Results[i])
		}()
	}
	wg.Wait()

	declared := map[agent.Resource]bool{}
	for _, r := range m.Resources {
		declared[agent.Resource{Type: r.Type, Name: r.Name}] = true
	}
	for _, res := range rep.Results {
		for _, d := range res.Depends {
			if !declared[d] {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s %s depends on %s %s, which the agent does not declare; add {type: %s, name: %s} to its resources",
					res.Resource.Type, res.Resource.Name, d.Type, d.Name, d.Type, d.Name))
				declared[d] = true // warn once
			}
		}
	}
	return rep
}

func probe(ctx context.Context, w *databricks.WorkspaceClient, r agent.Resource, principal string) Result {
	out := Result{Resource: r, Principal: principal}
	deps, err := get(ctx, w, r)
	out.Depends = deps
	out.Err = err
	switch {
	case err == nil:
		out.Status = OK
	case errors.Is(err, errUnsupported):
		out.Status, out.Hint = Error, err.Error()
	case errors.Is(err, databricks.ErrPermissionDenied):
		out.Status, out.Hint = Denied, fmt.Sprintf("grant %s %s on %s %s", principal, privilege(r.Type), r.Type, r.Name)
	case errors.Is(err, databricks.ErrNotFound):
		out.Status, out.Hint = Missing, "no such "+string(r.Type)+"; check the name in the agent's resources"
	case errors.Is(err, databricks.ErrUnauthenticated):
		out.Status, out.Hint = Error, "the system credentials were rejected: "+firstLine(err)
	default:
		out.Status, out.Hint = Error, firstLine(err)
	}
	return out
}

var errUnsupported = errors.New("no probe for this resource type")

// get fetches r and returns the downstream resources its answer names.
func get(ctx context.Context, w *databricks.WorkspaceClient, r agent.Resource) ([]agent.Resource, error) {
	switch r.Type {
	case agent.VectorSearchIndex:
		idx, err := w.VectorSearchIndexes.GetIndex(ctx, vectorsearch.GetIndexRequest{IndexName: r.Name})
		if err != nil {
			return nil, err
		}
		var deps []agent.Resource
		var cols []vectorsearch.EmbeddingSourceColumn
		if s := idx.DeltaSyncIndexSpec; s != nil {
			cols = append(cols, s.EmbeddingSourceColumns...)
			if s.SourceTable != "" {
				deps = append(deps, agent.Resource{Type: agent.Table, Name: s.SourceTable})
			}
		}
		if s := idx.DirectAccessIndexSpec; s != nil {
			cols = append(cols, s.EmbeddingSourceColumns...)
		}
		for _, c := range cols {
			for _, ep := range []string{c.EmbeddingModelEndpointName, c.ModelEndpointNameForQuery} {
				if ep != "" {
					deps = append(deps, agent.Resource{Type: agent.ServingEndpoint, Name: ep})
				}
			}
		}
		return slices.Compact(deps), nil
	case agent.ServingEndpoint:
		_, err := w.ServingEndpoints.Get(ctx, serving.GetServingEndpointRequest{Name: r.Name})
		return nil, err
	case agent.SQLWarehouse:
		_, err := w.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: r.Name})
		return nil, err
	case agent.GenieSpace:
		sp, err := w.Genie.GetSpace(ctx, dashboards.GenieGetSpaceRequest{SpaceId: r.Name})
		if err != nil {
			return nil, err
		}
		if sp.WarehouseId != "" {
			return []agent.Resource{{Type: agent.SQLWarehouse, Name: sp.WarehouseId}}, nil
		}
		return nil, nil
	case agent.Table:
		_, err := w.Tables.Get(ctx, catalog.GetTableRequest{FullName: r.Name})
		return nil, err
	case agent.Function:
		_, err := w.Functions.Get(ctx, catalog.GetFunctionRequest{Name: r.Name})
		return nil, err
	case agent.UCConnection:
		_, err := w.Connections.Get(ctx, catalog.GetConnectionRequest{Name: r.Name})
		return nil, err
	case agent.App:
		_, err := w.Apps.Get(ctx, apps.GetAppRequest{Name: r.Name})
		return nil, err
	case agent.Lakebase:
		_, err := w.Database.GetDatabaseInstance(ctx, database.GetDatabaseInstanceRequest{Name: r.Name})
		return nil, err
	}
	return nil, fmt.Errorf("%w %q", errUnsupported, r.Type)
}

// privilege is what the principal typically needs on a resource type.
func privilege(t agent.ResourceType) string {
	switch t {
	case agent.ServingEndpoint:
		return "CAN_QUERY"
	case agent.SQLWarehouse:
		return "CAN_USE"
	case agent.GenieSpace:
		return "CAN_RUN"
	case agent.VectorSearchIndex, agent.Table:
		return "SELECT (and USE_CATALOG, USE_SCHEMA)"
	case agent.Function:
		return "EXECUTE (and USE_CATALOG, USE_SCHEMA)"
	case agent.UCConnection:
		return "USE_CONNECTION"
	case agent.App:
		return "CAN_USE"
	case agent.Lakebase:
		return "CAN_CONNECT_AND_CREATE"
	}
	return "access"
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// Render writes the report as an aligned text table followed by the
// warnings.
func (r *Report) Render(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tTYPE\tPRINCIPAL\tSTATUS\tHINT")
	for _, res := range r.Results {
		hint := res.Hint
		if hint == "" {
			hint = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", res.Resource.Name, res.Resource.Type, res.Principal, res.Status, hint)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range r.Warnings {
		if _, err := fmt.Fprintln(w, "warning: "+warn); err != nil {
			return err
		}
	}
	return nil
}

// String renders the report.
func (r *Report) String() string {
	var b strings.Builder
	r.Render(&b)
	return b.String()
}

// FailureError is returned by Err when some checks failed.
type FailureError struct{ Failed []Result }

func (e *FailureError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = fmt.Sprintf("%s %s: %s", f.Resource.Type, f.Resource.Name, f.Status)
	}
	return "start-up check failed: " + strings.Join(parts, "; ")
}

// Err returns a *FailureError when some check failed, else nil.
func (r *Report) Err() error {
	if f := r.Failed(); len(f) > 0 {
		return &FailureError{Failed: f}
	}
	return nil
}

var (
	checksOnce sync.Once
	checks     metric.Int64Counter
)

func recordCheck(ctx context.Context, r Result) {
	checksOnce.Do(func() {
		checks, _ = otel.Meter("github.com/agentrt/agentrt/internal/preflight").Int64Counter("agentrt.preflight.checks",
			metric.WithDescription("Start-up resource checks by resource type and outcome."))
	})
	if checks != nil {
		checks.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("type", string(r.Resource.Type)), attribute.String("status", string(r.Status))))
	}
}

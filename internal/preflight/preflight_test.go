package preflight_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/preflight"
)

// systemClient starts a dev workspace in which agent-sp has lost its grant
// on the warehouse, and returns agent-sp's client.
func systemClient(t *testing.T) *credentials.System {
	t.Helper()
	cfg, err := devworkspace.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Permissions = slices.DeleteFunc(cfg.Permissions, func(p devworkspace.PermissionConfig) bool {
		return p.Principal == devworkspace.SPClientID && p.ObjectType == "warehouses"
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ws, err := devworkspace.Start(ctx, devworkspace.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	sys, err := credentials.NewSystem(ctx, credentials.SystemOptions{Host: ws.URL(),
		ClientID: devworkspace.SPClientID, ClientSecret: devworkspace.SPClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	return sys
}

func TestRun(t *testing.T) {
	sys := systemClient(t)
	yes := true
	m := agent.Manifest{Resources: []agent.Resource{
		{Type: agent.ServingEndpoint, Name: "dev-llm"},
		{Type: agent.GenieSpace, Name: "01dev0genie0sales"},
		{Type: agent.VectorSearchIndex, Name: "main.docs.product_docs_index"},
		{Type: agent.Table, Name: "main.sales.orders"},
		{Type: agent.Function, Name: "main.tools.lookup_order"},
		{Type: agent.UCConnection, Name: "dev-external-mcp"},
		{Type: agent.SQLWarehouse, Name: "dev-warehouse"},
		{Type: agent.ServingEndpoint, Name: "no-such-endpoint"},
		{Type: agent.Table, Name: "main.sales.customers", OnBehalfOfUser: &yes}, // not probed
	}}
	rep := preflight.Run(context.Background(), sys.Client(), m, preflight.Options{Principal: sys.Principal()})
	want := map[string]preflight.Status{
		"dev-llm": preflight.OK, "01dev0genie0sales": preflight.OK, "main.docs.product_docs_index": preflight.OK,
		"main.sales.orders": preflight.OK, "main.tools.lookup_order": preflight.OK, "dev-external-mcp": preflight.OK,
		"dev-warehouse": preflight.Denied, "no-such-endpoint": preflight.Missing,
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d:\n%s", len(rep.Results), len(want), rep)
	}
	for _, r := range rep.Results {
		if r.Status != want[r.Resource.Name] {
			t.Errorf("%s: %s (%v), want %s", r.Resource.Name, r.Status, r.Err, want[r.Resource.Name])
		}
		if r.Principal != "agent-sp" {
			t.Errorf("principal = %q", r.Principal)
		}
	}
	if rep.OK() {
		t.Fatal("report OK despite failures")
	}
	var fe *preflight.FailureError
	if err := rep.Err(); !errors.As(err, &fe) || len(fe.Failed) != 2 {
		t.Fatalf("Err() = %v", err)
	}
	table := rep.String()
	for _, s := range []string{
		"RESOURCE", "dev-warehouse", "denied", "grant agent-sp CAN_USE on sql_warehouse dev-warehouse",
		"no-such-endpoint", "missing",
		// undeclared dependencies revealed by the probes
		"warning: vector_search_index main.docs.product_docs_index depends on serving_endpoint dev-embeddings",
		"depends on table main.docs.product_docs",
	} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	// The Genie space's warehouse is declared, so no warning for it.
	if strings.Contains(table, "depends on sql_warehouse") {
		t.Errorf("warned about a declared dependency:\n%s", table)
	}
	t.Log("\n" + table)
}

func TestRunWarnsAboutGenieWarehouse(t *testing.T) {
	sys := systemClient(t)
	rep := preflight.Run(context.Background(), sys.Client(), agent.Manifest{Resources: []agent.Resource{{Type: agent.GenieSpace, Name: "01dev0genie0sales"}}}, preflight.Options{})
	if !rep.OK() || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "sql_warehouse dev-warehouse") {
		t.Fatalf("report:\n%s", rep)
	}
}

func TestRunUnknownType(t *testing.T) {
	sys := systemClient(t)
	rep := preflight.Run(context.Background(), sys.Client(), agent.Manifest{Resources: []agent.Resource{{Type: "quantum_computer", Name: "q"}}}, preflight.Options{})
	if rep.OK() || rep.Results[0].Status != preflight.Error {
		t.Fatalf("report:\n%s", rep)
	}
}

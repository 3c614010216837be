package mcp_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
	toolsmcp "github.com/agentrt/agentrt/tools/mcp"
)

// TestDevFunctions lists and calls the UC functions of main.tools through
// the dev workspace's managed MCP server as each dev user: alice and bob
// (EXECUTE on main.tools) may; carol (no privileges) could list them, as the
// managed server lists tools for anyone with the scope, but the probe reads
// each function as her and skips the server at prepare time with the
// missing right; a call that gets through anyway (tools prepared for
// someone else) is still a tool error that reads as a permission error.
func TestDevFunctions(t *testing.T) {
	ws := testws.Dev(t)
	user := testws.User(t, ws.URL(), "mcp.functions", toolsmcp.FunctionsProbeScope)
	p, err := toolsmcp.New(toolsmcp.Options{URL: toolsmcp.FunctionsPath("main", "tools")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var aliceLookup agent.Tool
	for _, tc := range []struct {
		user   string
		denied bool
	}{{"alice", false}, {"bob", false}, {"carol", true}} {
		t.Run(tc.user, func(t *testing.T) {
			ctx := testws.As(tc.user)
			ts, err := p.Prepare(ctx, user)
			if tc.denied {
				if !tools.IsPermission(err) || !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "USE_CATALOG on catalog main") || ts != nil {
					t.Fatalf("Prepare as carol = %v, %v; want the permission error of the probe", ts, err)
				}
				_, err := aliceLookup.Call(ctx, `{"order_id":"ORD-100042"}`)
				var te *toolsmcp.ToolError
				if !errors.As(err, &te) || !errors.Is(err, databricks.ErrPermissionDenied) || !tools.IsPermission(err) {
					t.Fatalf("err = %v, want a permission tool error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]agent.Tool{}
			for _, x := range ts {
				byName[x.Definition().Name] = x
			}
			lookup := byName["main__tools__lookup_order"]
			if lookup == nil || byName["main__tools__top_products"] == nil {
				t.Fatalf("tools = %v", byName)
			}
			if tc.user == "alice" {
				aliceLookup = lookup
			}
			out, err := lookup.Call(ctx, `{"order_id":"ORD-100042"}`)
			if err != nil || !strings.Contains(out, "ORD-100042") {
				t.Fatalf("lookup = %q, %v", out, err)
			}
			out, err = byName["main__tools__top_products"].Call(ctx, `{"n":3}`)
			if err != nil || out == "" {
				t.Fatalf("top_products = %q, %v", out, err)
			}
			// A call the function rejects is a tool error, not a crash.
			if _, err := byName["main__tools__top_products"].Call(ctx, `{"n":"not a number"}`); err == nil {
				t.Error("bad argument accepted")
			}
		})
	}
	res, err := p.Resources(testws.As("alice"), user)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res {
		names = append(names, string(r.Type)+":"+r.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "function:main.tools.lookup_order") || !strings.Contains(got, "function:main.tools.top_products") {
		t.Errorf("resources = %s", got)
	}
	t.Run("scope refusal", func(t *testing.T) {
		narrow := testws.User(t, ws.URL(), "mcp.genie")
		if _, err := p.Prepare(testws.As("alice"), narrow); !tools.IsPermission(err) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestDevManagedServers uses the vector-search and Genie managed servers as
// alice (allowed) and bob (whose calls are refused as permission errors).
func TestDevManagedServers(t *testing.T) {
	ws := testws.Dev(t)
	user := testws.User(t, ws.URL(), "mcp.vectorsearch", "mcp.genie")
	for _, url := range []string{toolsmcp.VectorSearchPath("main", "docs"), toolsmcp.GeniePath("01dev0genie0sales")} {
		p, err := toolsmcp.New(toolsmcp.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := p.Prepare(testws.As("alice"), user)
		if err != nil || len(ts) == 0 {
			t.Fatalf("%s as alice: %d tools, %v", url, len(ts), err)
		}
		args := argsFor(ts[0])
		if out, err := ts[0].Call(testws.As("alice"), args); err != nil || out == "" {
			t.Errorf("%s as alice: %q, %v", url, out, err)
		}
		if _, err := ts[0].Call(testws.As("bob"), args); !tools.IsPermission(err) {
			t.Errorf("%s as bob: err = %v", url, err)
		}
		p.Close()
	}
}

// argsFor fills every required string parameter of t with a question.
func argsFor(t agent.Tool) string {
	var schema struct {
		Required []string `json:"required"`
	}
	_ = json.Unmarshal(t.Definition().Parameters, &schema)
	args := map[string]any{}
	for _, r := range schema.Required {
		args[r] = "How many orders were placed in 2024?"
	}
	b, _ := json.Marshal(args)
	return string(b)
}

// TestDevExternalConnection reaches a server outside the workspace the
// recommended way: through the UC connection proxy, which checks
// USE_CONNECTION with the caller's token and forwards with the
// connection's own credential.
func TestDevExternalConnection(t *testing.T) {
	ws := testws.Dev(t)
	user := testws.User(t, ws.URL(), "mcp.external")
	p, err := toolsmcp.New(toolsmcp.Options{URL: toolsmcp.ExternalPath("dev-external-mcp")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ts, err := p.Prepare(testws.As("alice"), user)
	if err != nil {
		t.Fatal(err)
	}
	var weather agent.Tool
	for _, x := range ts {
		if x.Definition().Name == "get_weather" {
			weather = x
		}
	}
	if weather == nil {
		t.Fatalf("no get_weather among %d tools", len(ts))
	}
	if out, err := weather.Call(testws.As("alice"), `{"city":"Oslo"}`); err != nil || !strings.Contains(out, "Oslo") {
		t.Errorf("get_weather = %q, %v", out, err)
	}
	if _, err := p.Prepare(testws.As("bob"), user); !tools.IsPermission(err) {
		t.Errorf("bob without USE_CONNECTION: err = %v", err)
	}
}

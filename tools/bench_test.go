package tools_test

import (
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/genie"
	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/mcp"
	"github.com/agentrt/agentrt/tools/vectorsearch"
)

// benchSet is four user-bound providers against the dev workspace: the
// docs index, the sales Genie space, and the functions and vector-search
// managed MCP servers.
func benchSet(b *testing.B, ttl int) (*tools.Set, *agent.Env) {
	ws := testws.Dev(b)
	user := testws.User(b, ws.URL(), vectorsearch.Scope, vectorsearch.TablesScope, genie.Scope, "mcp.functions", mcp.FunctionsProbeScope, "mcp.vectorsearch")
	vs, _ := vectorsearch.New(vectorsearch.Options{Index: "main.docs.product_docs_index"})
	g, _ := genie.New(genie.Options{SpaceID: "01dev0genie0sales"})
	fn, _ := mcp.New(mcp.Options{URL: mcp.FunctionsPath("main", "tools")})
	mvs, _ := mcp.New(mcp.Options{URL: mcp.VectorSearchPath("main", "docs"), Prefix: "mcp"})
	b.Cleanup(func() { fn.Close(); mvs.Close() })
	opts := tools.SetOptions{CacheTTL: -1}
	if ttl > 0 {
		opts.CacheTTL = 0 // default TTL
	}
	set := tools.NewSet(opts)
	for _, p := range []tools.Provider{vs, g, fn, mvs} {
		set.Add(p, tools.Options{Binding: tools.User})
	}
	env := &agent.Env{Caller: agent.Caller{Identity: agent.Identity{PrincipalID: "alice"}, Authenticated: true}, User: user}
	return set, env
}

func benchPrepare(b *testing.B, cached bool) {
	ttl := 0
	if cached {
		ttl = 1
	}
	set, env := benchSet(b, ttl)
	ctx := testws.As("alice")
	if err := set.Prepare(ctx, env); err != nil || len(env.Tools) < 4 {
		b.Fatalf("prepare: %d tools, skipped %v, %v", len(env.Tools), env.Skipped, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e := &agent.Env{Caller: env.Caller, User: env.User}
		if err := set.Prepare(ctx, e); err != nil || len(e.Skipped) != 0 {
			b.Fatal(err, e.Skipped)
		}
	}
}

// BenchmarkPrepareFourTools prepares the four providers for alice: every
// probe goes to the dev workspace (cold) or comes from the probe cache.
func BenchmarkPrepareFourTools(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchPrepare(b, false) })
	b.Run("cached", func(b *testing.B) { benchPrepare(b, true) })
}

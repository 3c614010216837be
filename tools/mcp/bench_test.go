package mcp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools/internal/testws"
	toolsmcp "github.com/agentrt/agentrt/tools/mcp"
)

func benchCall(b *testing.B, ctx context.Context, p *toolsmcp.Provider, prepare func() ([]agent.Tool, error), name, args string) {
	ts, err := prepare()
	if err != nil {
		b.Fatal(err)
	}
	var tool agent.Tool
	for _, x := range ts {
		if x.Definition().Name == name {
			tool = x
		}
	}
	if tool == nil {
		b.Fatalf("no tool %s", name)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		if _, err := tool.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkCallDev calls main.tools.lookup_order through the dev
// workspace's managed server (stateless, like Databricks') as alice, on a
// pooled session or with a new session (initialize + initialized + call)
// per call.
func BenchmarkCallDev(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"reused", 0}, {"per-call", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			ws := testws.Dev(b)
			user := testws.User(b, ws.URL(), "mcp.functions", toolsmcp.FunctionsProbeScope)
			p, _ := toolsmcp.New(toolsmcp.Options{URL: toolsmcp.FunctionsPath("main", "tools"), SessionTTL: tc.ttl})
			defer p.Close()
			ctx := testws.As("alice")
			benchCall(b, ctx, p, func() ([]agent.Tool, error) { return p.Prepare(ctx, user) },
				"main__tools__lookup_order", `{"order_id":"ORD-100042"}`)
		})
	}
}

// BenchmarkCallStateful does the same against a stateful mcp-go server
// (sessions kept server-side) with a static token, as a verified principal
// (anonymous callers never pool).
func BenchmarkCallStateful(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"reused", 0}, {"per-call", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFakeServer(b)
			w := testws.PAT(b, f.URL, "alice-token")
			p, _ := toolsmcp.New(toolsmcp.Options{URL: path, SessionTTL: tc.ttl})
			defer p.Close()
			ctx := callerCtx("alice", "")
			benchCall(b, ctx, p, func() ([]agent.Tool, error) { return p.Prepare(ctx, w) },
				"main__tools__lookup_order", `{"order_id":"o-1"}`)
		})
	}
}

// BenchmarkCallManyPrincipals calls as one principal after another, more of
// them than the pool holds, so every call opens a session and evicts (and
// closes) the least recently used one.
func BenchmarkCallManyPrincipals(b *testing.B) {
	f := newFakeServer(b)
	w := testws.PAT(b, f.URL, "alice-token")
	p, _ := toolsmcp.New(toolsmcp.Options{URL: path, MaxSessions: 8})
	defer p.Close()
	ts, err := p.Prepare(callerCtx("setup", ""), w)
	if err != nil {
		b.Fatal(err)
	}
	var tool agent.Tool
	for _, x := range ts {
		if x.Definition().Name == "main__tools__lookup_order" {
			tool = x
		}
	}
	ctxs := make([]context.Context, 64)
	for i := range ctxs {
		ctxs[i] = callerCtx(fmt.Sprintf("p-%d", i), "")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := tool.Call(ctxs[i%len(ctxs)], `{"order_id":"o-1"}`); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

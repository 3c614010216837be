// Package assistant is the example agent `make dev` serves by default: a
// product and sales assistant that answers from the documentation index, the
// sales Genie space and the UC functions of main.tools, all on behalf of the
// caller, with the dev-llm model called as the agent's service principal.
//
// It shows the whole tools story: declaring tools declares their resources
// and scopes in the manifest (the host adds them to the assistant's own),
// and a caller who may not use a tool (bob has no
// access to the docs index or the Genie space) still gets an answer, with the
// dropped tools reported.
package assistant

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/agent/loop"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/genie"
	"github.com/agentrt/agentrt/tools/mcp"
	"github.com/agentrt/agentrt/tools/serving"
	"github.com/agentrt/agentrt/tools/vectorsearch"
)

// Name is the name the assistant is registered under.
const Name = "assistant"

func init() {
	agent.Register(Name, func() (agent.Agent, error) { return New(Options{}) })
}

// Options name the workspace objects the assistant uses; the zero value
// uses the dev workspace's. The workspace host comes from the runtime.
type Options struct {
	LLMEndpoint      string // default "dev-llm", called as the service principal
	Index            string // default "main.docs.product_docs_index"
	GenieSpace       string // default "01dev0genie0sales"
	FunctionsCatalog string // default "main"
	FunctionsSchema  string // default "tools"
	System           string // system prompt
}

// Assistant implements agent.Agent, agent.StreamAgent, agent.Manifester,
// tools.Declarer and agent.Provisioner.
type Assistant struct {
	o    Options
	set  *tools.Set
	loop atomic.Pointer[loop.Loop] // set by Provision
}

// New builds the assistant; it does no I/O.
func New(o Options) (*Assistant, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.LLMEndpoint, "dev-llm")
	def(&o.Index, "main.docs.product_docs_index")
	def(&o.GenieSpace, "01dev0genie0sales")
	def(&o.FunctionsCatalog, "main")
	def(&o.FunctionsSchema, "tools")
	def(&o.System, "You are the Kestrel assistant. Answer product questions from the documentation search tool, "+
		"sales and revenue questions with the Genie sales tool, and order lookups with the order functions. "+
		"Cite the documents you used. If a tool is not available to the user, say what you could not check.")

	docs, err := vectorsearch.New(vectorsearch.Options{Index: o.Index, NumResults: 4, DocURIColumn: "url",
		Columns:         []string{"id", "title", "body", "url", "product"},
		ToolDescription: "Search the Kestrel product documentation: how to install, set up, configure, use and troubleshoot each product, its features and limits."})
	if err != nil {
		return nil, err
	}
	sales, err := genie.New(genie.Options{SpaceID: o.GenieSpace, ToolName: "ask_sales_genie",
		Description: "Answer sales analytics questions about Kestrel customers, products, orders and revenue in plain language: " +
			"totals, counts, trends and breakdowns by region, segment, product, status, month or year. Returns the SQL it ran and the result table."})
	if err != nil {
		return nil, err
	}
	funcs, err := mcp.New(mcp.Options{URL: mcp.FunctionsPath(o.FunctionsCatalog, o.FunctionsSchema),
		Tools: []string{o.FunctionsCatalog + "." + o.FunctionsSchema + ".lookup_order", o.FunctionsCatalog + "." + o.FunctionsSchema + ".top_products"}})
	if err != nil {
		return nil, err
	}
	a := &Assistant{o: o}
	a.set = tools.NewSet(tools.SetOptions{}).
		Add(docs, tools.Options{Binding: tools.User}).
		Add(sales, tools.Options{Binding: tools.User}).
		Add(funcs, tools.Options{Binding: tools.User})
	return a, nil
}

// Tools implements tools.Declarer.
func (a *Assistant) Tools() *tools.Set { return a.set }

// Manifest implements agent.Manifester: what the assistant itself uses, the
// model endpoint reached as the service principal. The host adds what the
// tools declare on behalf of the user.
func (a *Assistant) Manifest() agent.Manifest {
	return agent.Manifest{
		Resources:     []agent.Resource{{Type: agent.ServingEndpoint, Name: a.o.LLMEndpoint}},
		UserAPIScopes: []string{serving.Scope},
	}
}

// Provision implements agent.Provisioner: the model client is bound to the
// service principal's client once, when the host starts, and the loop is
// built around it.
func (a *Assistant) Provision(_ context.Context, env *agent.Env) error {
	if env.System == nil {
		return errors.New("the model endpoint is called as the service principal, but the host has no workspace configured")
	}
	c, err := serving.New(serving.Options{Endpoint: a.o.LLMEndpoint, Workspace: env.System})
	if err != nil {
		return err
	}
	l, err := loop.New(loop.Options{System: a.o.System, Model: c})
	if err != nil {
		return err
	}
	a.loop.Store(l)
	return nil
}

var errNotProvisioned = errors.New("assistant: not provisioned (the host calls Provision before serving)")

// Accepts implements agent.Accepter: the loop the assistant runs honours
// client tools, tool_choice and text.format.
func (a *Assistant) Accepts() []string { return (*loop.Loop)(nil).Accepts() }

// Predict implements agent.Agent. The host has already prepared the tools
// for this caller (env.Tools) and reports the skipped ones itself.
func (a *Assistant) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	l := a.loop.Load()
	if l == nil {
		return nil, errNotProvisioned
	}
	return l.Predict(ctx, req)
}

// PredictStream implements agent.StreamAgent.
func (a *Assistant) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	l := a.loop.Load()
	if l == nil {
		return errNotProvisioned
	}
	return l.PredictStream(ctx, req, emit)
}

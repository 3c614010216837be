package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/tools"
)

// ownAndTools is an agent with its own manifest and a tool set, the shape of
// the assistant.
type ownAndTools struct {
	agent.Agent
	own agent.Manifest
	set *tools.Set
}

func (d *ownAndTools) Manifest() agent.Manifest { return d.own }
func (d *ownAndTools) Tools() *tools.Set        { return d.set }

func provider(name string, req tools.Requirements) tools.Provider {
	return tools.NewProvider(name, req, func(context.Context, *databricks.WorkspaceClient) ([]agent.Tool, error) { return nil, nil })
}

// The host merges the agent's own manifest with its tools' requirements,
// once and without repeats: the agent never merges by hand, and merging an
// already merged manifest (as serve does before the host) changes nothing.
func TestEffectiveManifestMergesOwnAndTools(t *testing.T) {
	obo := true
	genie := agent.Resource{Type: agent.GenieSpace, Name: "space"}
	a := &ownAndTools{
		own: agent.Manifest{
			Resources:     []agent.Resource{{Type: agent.ServingEndpoint, Name: "llm"}, {Type: agent.GenieSpace, Name: "space", OnBehalfOfUser: &obo}},
			UserAPIScopes: []string{"serving.serving-endpoints", "dashboards.genie"},
		},
		set: tools.NewSet(tools.SetOptions{}).
			Add(provider("genie", tools.Requirements{Resources: []agent.Resource{genie}, UserScopes: []string{"dashboards.genie"}}), tools.Options{Binding: tools.User}).
			Add(provider("sys", tools.Requirements{Resources: []agent.Resource{genie}, UserScopes: []string{"sql"}}), tools.Options{Binding: tools.System}).
			Add(provider("docs", tools.Requirements{Resources: []agent.Resource{{Type: agent.VectorSearchIndex, Name: "idx"}},
				UserScopes: []string{"vectorsearch.vector-search-indexes"}}), tools.Options{Binding: tools.User}),
	}
	show := func(m agent.Manifest) string {
		var parts []string
		for _, r := range m.Resources {
			s := string(r.Type) + ":" + r.Name
			if r.OnBehalfOfUser != nil && *r.OnBehalfOfUser {
				s += "(user)"
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ",") + " | " + strings.Join(m.UserAPIScopes, ",")
	}
	want := "serving_endpoint:llm,genie_space:space(user),genie_space:space,vector_search_index:idx(user)" +
		" | serving.serving-endpoints,dashboards.genie,vectorsearch.vector-search-indexes"
	m := server.EffectiveManifest(a, agent.Manifest{})
	if got := show(m); got != want {
		t.Errorf("effective manifest\n got %s\nwant %s", got, want)
	}
	if got := show(server.EffectiveManifest(a, m)); got != want {
		t.Errorf("merged twice\n got %s\nwant %s", got, want)
	}
	if len(a.own.Resources) != 2 || len(a.own.UserAPIScopes) != 2 {
		t.Errorf("the agent's own manifest was modified: %+v", a.own)
	}
	// A manifest given to the host (a file) replaces the agent's own; the
	// tools' requirements are still added.
	file := agent.Manifest{UserAPIScopes: []string{"sql"}}
	if got := show(server.EffectiveManifest(a, file)); got != "genie_space:space(user),genie_space:space,vector_search_index:idx(user) | sql,dashboards.genie,vectorsearch.vector-search-indexes" {
		t.Errorf("with a manifest file: %s", got)
	}
}

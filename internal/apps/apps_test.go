package apps

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/assistant"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/databricks/databricks-sdk-go/service/apps"
)

func yes() *bool { b := true; return &b }

// assistantConfig generates the example assistant's app from its effective
// manifest, as `serve apps-config --agent assistant` does.
func assistantConfig(t *testing.T) (agent.Manifest, *Config) {
	t.Helper()
	a, err := assistant.New(assistant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := server.EffectiveManifest(a, agent.Manifest{})
	c, err := Generate(m, Options{Name: "assistant", Agent: "assistant"})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

// TestAssistantApp: the generated files parse strictly, app.yaml starts the
// binary with the agent, the bundle's app decodes strictly into apps.App,
// its user_api_scopes are the manifest's (plus those Databricks always
// grants), and every declared resource appears.
func TestAssistantApp(t *testing.T) {
	m, c := assistantConfig(t)
	rawYAML, err := c.MarshalAppYAML()
	if err != nil {
		t.Fatal(err)
	}
	ay, err := ParseAppYAML(rawYAML)
	if err != nil {
		t.Fatalf("%v\n%s", err, rawYAML)
	}
	if want := []string{"./serve", "--agent", "assistant"}; !slices.Equal(ay.Command, want) {
		t.Errorf("command = %q, want %q", ay.Command, want)
	}
	rawBundle, err := c.MarshalBundle()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBundle(rawBundle)
	if err != nil {
		t.Fatalf("%v\n%s", err, rawBundle)
	}
	app := got[c.BundleKey()]
	if app == nil || len(got) != 1 {
		t.Fatalf("bundle apps = %v, want one under %q\n%s", got, c.BundleKey(), rawBundle)
	}
	// Compared as the API sees them (the SDK tracks which fields were set).
	if g, w := mustJSON(t, *app), mustJSON(t, c.App); g != w {
		t.Errorf("bundle app does not round-trip:\n got  %s\n want %s", g, w)
	}
	wantScopes := append(slices.Clone(m.UserAPIScopes), AlwaysGrantedScopes...)
	if !slices.Equal(app.UserApiScopes, wantScopes) {
		t.Errorf("user_api_scopes = %q, want %q", app.UserApiScopes, wantScopes)
	}
	if len(m.Resources) < 4 {
		t.Fatalf("the assistant declares only %v", m.Resources)
	}
	for _, r := range m.Resources {
		if r.OnBehalfOfUser != nil && *r.OnBehalfOfUser {
			if !slices.Contains(c.Caller, r) || !strings.Contains(string(rawBundle), string(r.Type)+" "+r.Name) {
				t.Errorf("caller resource %s %s is not listed in the bundle", r.Type, r.Name)
			}
			continue
		}
		if !slices.ContainsFunc(app.Resources, func(ar apps.AppResource) bool { return names(ar) == r.Name }) {
			t.Errorf("system resource %s %s is not an app resource: %+v", r.Type, r.Name, app.Resources)
		}
	}
	// Every attached resource is bound to an env var with valueFrom.
	for _, ar := range app.Resources {
		if !slices.ContainsFunc(ay.Env, func(e EnvVar) bool { return e.ValueFrom == ar.Name }) {
			t.Errorf("resource %q has no env entry with valueFrom", ar.Name)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names is the workspace object an app resource points at.
func names(r apps.AppResource) string {
	switch {
	case r.ServingEndpoint != nil:
		return r.ServingEndpoint.Name
	case r.GenieSpace != nil:
		return r.GenieSpace.SpaceId
	case r.SqlWarehouse != nil:
		return r.SqlWarehouse.Id
	case r.UcSecurable != nil:
		return r.UcSecurable.SecurableFullName
	case r.App != nil:
		return r.App.Name
	case r.Database != nil:
		return r.Database.InstanceName
	case r.Secret != nil:
		return r.Secret.Scope + "/" + r.Secret.Key
	}
	return ""
}

// TestEveryResourceType maps each MLflow resource type declared as a
// system resource, and reports the one Apps cannot attach.
func TestEveryResourceType(t *testing.T) {
	m := agent.Manifest{Resources: []agent.Resource{
		{Type: agent.ServingEndpoint, Name: "llm"},
		{Type: agent.GenieSpace, Name: "01genie"},
		{Type: agent.SQLWarehouse, Name: "abc123"},
		{Type: agent.Table, Name: "main.sales.orders"},
		{Type: agent.Function, Name: "main.tools.lookup"},
		{Type: agent.UCConnection, Name: "github"},
		{Type: agent.App, Name: "other-app"},
		{Type: agent.Lakebase, Name: "state-db"},
		{Type: agent.VectorSearchIndex, Name: "main.docs.idx"},
		{Type: agent.Table, Name: "main.sales.customers", OnBehalfOfUser: yes()},
	}}
	c, err := Generate(m, Options{Name: "agent", Agent: "a", Secrets: []Secret{{Env: "OPENAI_API_KEY", Scope: "agents", Key: "openai"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range c.App.Resources {
		got = append(got, names(r))
	}
	want := []string{"llm", "01genie", "abc123", "main.sales.orders", "main.tools.lookup", "github", "other-app", "state-db", "agents/openai"}
	if !slices.Equal(got, want) {
		t.Errorf("attached %q, want %q", got, want)
	}
	if len(c.Unattached) != 1 || c.Unattached[0].Resource.Name != "main.docs.idx" || !strings.Contains(c.Unattached[0].Reason, "SELECT") {
		t.Errorf("unattached = %+v, want the vector search index with what to grant", c.Unattached)
	}
	if len(c.Caller) != 1 || c.Caller[0].Name != "main.sales.customers" {
		t.Errorf("caller = %+v", c.Caller)
	}
	b, err := c.MarshalBundle()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "NOT ATTACHED") || !strings.Contains(string(b), "main.docs.idx") {
		t.Errorf("bundle does not report the unattached index:\n%s", b)
	}
	if _, err := ParseBundle(b); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !slices.Contains(c.AppYAML.Env, EnvVar{Name: "OPENAI_API_KEY", ValueFrom: "secret-openai"}) {
		t.Errorf("env = %+v, want OPENAI_API_KEY from the secret", c.AppYAML.Env)
	}
	if c.App.UserApiScopes != nil {
		t.Errorf("an agent without user scopes got user_api_scopes %q", c.App.UserApiScopes)
	}
}

func TestDecodeAppStrict(t *testing.T) {
	valid := `{"name":"a","resources":[{"name":"r","serving_endpoint":{"name":"llm","permission":"CAN_QUERY"}}],"user_api_scopes":["sql"]}`
	if _, err := DecodeApp([]byte(valid)); err != nil {
		t.Fatalf("valid app: %v", err)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"unknown top-level field": {`{"name":"a","user_scopes":["sql"]}`, `unknown field "user_scopes"`},
		"unknown resource field":  {`{"name":"a","resources":[{"name":"r","vector_search_index":{"name":"x"}}]}`, `unknown field "vector_search_index"`},
		"unknown enum value":      {`{"name":"a","resources":[{"name":"r","serving_endpoint":{"name":"llm","permission":"CAN_RUN"}}]}`, `CAN_RUN`},
		"required field missing":  {`{"name":"a","resources":[{"name":"r","genie_space":{"space_id":"s","permission":"CAN_RUN"}}]}`, `required field "name"`},
		"wrong type":              {`{"name":"a","user_api_scopes":"sql"}`, `want a list`},
		"app name missing":        {`{"description":"x"}`, `required field "name"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeApp([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeApp(%s) = %v, want an error containing %q", tc.doc, err, tc.want)
			}
		})
	}
}

func TestParseAppYAMLStrict(t *testing.T) {
	for _, doc := range []string{
		"command: [./serve]\nenvs: []\n",
		"command: []\n",
		"command: [./serve]\nenv:\n  - name: A\n    value: x\n    valueFrom: r\n",
		"command: [./serve]\nenv:\n  - name: A\n",
	} {
		if _, err := ParseAppYAML([]byte(doc)); err == nil {
			t.Errorf("ParseAppYAML(%q) accepted it", doc)
		}
	}
}

func TestUserScopes(t *testing.T) {
	got := UserScopes(agent.Manifest{UserAPIScopes: []string{"sql", "iam.current-user.read", "dashboards.genie"}})
	want := []string{"sql", "iam.current-user:read", "dashboards.genie", "iam.access-control:read"}
	if !slices.Equal(got, want) {
		t.Errorf("UserScopes = %q, want %q", got, want)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []Options{
		{Agent: "a"},
		{Name: "Bad_Name", Agent: "a"},
		{Name: "-x", Agent: "a"},
		{Name: "ok"},
	} {
		if _, err := Generate(agent.Manifest{}, o); err == nil {
			t.Errorf("Generate(%+v) accepted it", o)
		}
	}
	for _, s := range []string{"A", "A=scope", "=s/k", "A=s/k/x"} {
		if _, err := ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) accepted it", s)
		}
	}
}

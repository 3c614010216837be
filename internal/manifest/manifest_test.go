package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/manifest"
)

func ptr[T any](v T) *T { return &v }

func TestManifestRoundTrip(t *testing.T) {
	tests := map[string]agent.Manifest{
		"resources form": {Resources: []agent.Resource{
			{Type: agent.ServingEndpoint, Name: "databricks-meta-llama-3-3-70b-instruct"},
			{Type: agent.VectorSearchIndex, Name: "main.docs.my_index", OnBehalfOfUser: ptr(true)},
			{Type: agent.SQLWarehouse, Name: "abc123", OnBehalfOfUser: ptr(false)},
			{Type: agent.Function, Name: "main.tools.f"},
			{Type: agent.GenieSpace, Name: "01ef19c578b21dc6af6e10983fb1e3f9"},
			{Type: agent.Table, Name: "main.sales.orders"},
			{Type: agent.UCConnection, Name: "github"},
			{Type: agent.App, Name: "my-app"},
			{Type: agent.Lakebase, Name: "instance-1"},
		}},
		"auth_policy form": {
			Resources: []agent.Resource{
				{Type: agent.ServingEndpoint, Name: "databricks-mixtral-8x7b-instruct"},
				{Type: agent.Function, Name: "rag.studio.test_function_a"},
			},
			UserAPIScopes: []string{"catalog.catalogs", "vectorsearch.vector-search-indexes", "workspace.workspace"},
		},
		"scopes only": {UserAPIScopes: []string{"all-apis"}},
		"empty":       {},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			for format, marshal := range map[string]func(agent.Manifest) ([]byte, error){
				"yaml": manifest.MarshalYAML,
				"json": manifest.MarshalJSON,
			} {
				data, err := marshal(m)
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				back, err := manifest.Parse(data)
				if err != nil {
					t.Fatalf("%s: parse %s: %v", format, data, err)
				}
				if !reflect.DeepEqual(back, m) {
					t.Errorf("%s round trip\n got %+v\nwant %+v\n%s", format, back, m, data)
				}
				hasPolicy := strings.Contains(string(data), "auth_policy")
				if hasPolicy != (len(m.UserAPIScopes) > 0) {
					t.Errorf("%s: wrong form:\n%s", format, data)
				}
			}
		})
	}
}

// An MLmodel file as MLflow writes it, with unrelated keys around.
const mlmodelYAML = `artifact_path: agent
flavors:
  python_function:
    loader_module: mlflow.pyfunc.model
auth_policy:
  system_auth_policy:
    resources:
      api_version: '1'
      databricks:
        function:
        - name: rag.studio.test_function_a
        serving_endpoint:
        - name: databricks-mixtral-8x7b-instruct
  user_auth_policy:
    api_scopes:
    - catalog.catalogs
    - vectorsearch.vector-search-indexes
`

func TestParseMLmodelFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(mlmodelYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := agent.Manifest{
		Resources: []agent.Resource{
			{Type: agent.ServingEndpoint, Name: "databricks-mixtral-8x7b-instruct"},
			{Type: agent.Function, Name: "rag.studio.test_function_a"},
		},
		UserAPIScopes: []string{"catalog.catalogs", "vectorsearch.vector-search-indexes"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %+v", m)
	}
	json := `{"resources":{"api_version":"1","databricks":{"genie_space":[{"name":"s1","on_behalf_of_user":true}]}}}`
	m, err = manifest.Parse([]byte(json))
	if err != nil || len(m.Resources) != 1 || m.Resources[0].OnBehalfOfUser == nil || !*m.Resources[0].OnBehalfOfUser {
		t.Errorf("json form: %+v %v", m, err)
	}
	if _, err := manifest.LoadFile(filepath.Join(t.TempDir(), "absent.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestParseManifestRejects(t *testing.T) {
	tests := map[string]string{
		"api version":   "resources:\n  api_version: '2'\n  databricks:\n    table:\n    - name: t\n",
		"unknown type":  "resources:\n  api_version: '1'\n  databricks:\n    warehouse:\n    - name: w\n",
		"unknown key":   "resources:\n  api_version: '1'\n  databricks: {}\n  aws: {}\n",
		"missing name":  "resources:\n  api_version: '1'\n  databricks:\n    table:\n    - on_behalf_of_user: true\n",
		"both forms":    "resources:\n  api_version: '1'\n  databricks: {}\nauth_policy:\n  user_auth_policy:\n    api_scopes: [sql]\n",
		"not a mapping": "- a\n- b\n",
		"bad yaml":      "resources: [\n",
	}
	for name, in := range tests {
		_, err := manifest.Parse([]byte(in))
		var me *manifest.Error
		if !errors.As(err, &me) {
			t.Errorf("%s: error %v is not a *manifest.Error", name, err)
		}
	}
	if _, err := manifest.MarshalYAML(agent.Manifest{Resources: []agent.Resource{{Type: "nope", Name: "x"}}}); err == nil {
		t.Error("unknown type marshalled")
	}
}

func ExampleMarshalYAML() {
	m := agent.Manifest{
		Resources:     []agent.Resource{{Type: agent.ServingEndpoint, Name: "databricks-claude-sonnet-4"}},
		UserAPIScopes: []string{"vectorsearch.vector-search-indexes"},
	}
	out, _ := manifest.MarshalYAML(m)
	os.Stdout.Write(out)
	// Output:
	// auth_policy:
	//   system_auth_policy:
	//     resources:
	//       api_version: "1"
	//       databricks:
	//         serving_endpoint:
	//         - name: databricks-claude-sonnet-4
	//   user_auth_policy:
	//     api_scopes:
	//     - vectorsearch.vector-search-indexes
}

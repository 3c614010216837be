package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"
)

// resourceTypes lists the known types in the order they are read back.
var resourceTypes = []ResourceType{
	ServingEndpoint, VectorSearchIndex, SQLWarehouse, Function, GenieSpace,
	Table, UCConnection, App, Lakebase,
}

func knownResourceType(t ResourceType) bool {
	for _, k := range resourceTypes {
		if k == t {
			return true
		}
	}
	return false
}

// ManifestError reports a manifest that MLflow would not accept.
type ManifestError struct {
	Field string // e.g. "resources.databricks.warehouse"
	Msg   string
}

func (e *ManifestError) Error() string {
	if e.Field == "" {
		return "manifest: " + e.Msg
	}
	return "manifest: " + e.Field + ": " + e.Msg
}

// Validate checks that every resource has a known type and a name.
func (m Manifest) Validate() error {
	for i, r := range m.Resources {
		field := "resources[" + strconv.Itoa(i) + "]"
		if !knownResourceType(r.Type) {
			return &ManifestError{Field: field + ".type", Msg: "unknown resource type " + strconv.Quote(string(r.Type))}
		}
		if r.Name == "" {
			return &ManifestError{Field: field + ".name", Msg: "required"}
		}
	}
	for i, s := range m.UserAPIScopes {
		if s == "" {
			return &ManifestError{Field: "user_api_scopes[" + strconv.Itoa(i) + "]", Msg: "empty scope"}
		}
	}
	return nil
}

// MLflowManifest is a manifest in the form MLflow writes into an MLmodel
// file: either "resources" (every resource, OBO ones flagged) or
// "auth_policy" (system resources and the user's API scopes), never both.
type MLflowManifest struct {
	Resources  *MLflowResources  `json:"resources,omitempty"`
	AuthPolicy *MLflowAuthPolicy `json:"auth_policy,omitempty"`
}

// MLflowResources is MLflow's serialised resource list, grouped by target
// ("databricks") and resource type.
type MLflowResources struct {
	APIVersion string                                 `json:"api_version"`
	Databricks map[ResourceType][]MLflowResourceEntry `json:"databricks"`
}

// MLflowResourceEntry is one resource under its type key.
type MLflowResourceEntry struct {
	Name           string `json:"name"`
	OnBehalfOfUser *bool  `json:"on_behalf_of_user,omitempty"`
}

// MLflowAuthPolicy is MLflow's AuthPolicy.to_dict() form.
type MLflowAuthPolicy struct {
	SystemAuthPolicy MLflowSystemAuthPolicy `json:"system_auth_policy"`
	UserAuthPolicy   MLflowUserAuthPolicy   `json:"user_auth_policy"`
}

// MLflowSystemAuthPolicy holds the resources reached as the service principal.
type MLflowSystemAuthPolicy struct {
	Resources *MLflowResources `json:"resources,omitempty"`
}

// MLflowUserAuthPolicy holds the API scopes of the on-behalf-of-user client.
type MLflowUserAuthPolicy struct {
	APIScopes []string `json:"api_scopes,omitempty"`
}

// MLflow returns m in MLflow's form: auth_policy when the manifest declares
// user API scopes, otherwise resources (empty when there is nothing to say).
func (m Manifest) MLflow() MLflowManifest {
	res := mlflowResources(m.Resources)
	if len(m.UserAPIScopes) == 0 {
		return MLflowManifest{Resources: res}
	}
	return MLflowManifest{AuthPolicy: &MLflowAuthPolicy{
		SystemAuthPolicy: MLflowSystemAuthPolicy{Resources: res},
		UserAuthPolicy:   MLflowUserAuthPolicy{APIScopes: append([]string(nil), m.UserAPIScopes...)},
	}}
}

func mlflowResources(rs []Resource) *MLflowResources {
	if len(rs) == 0 {
		return nil
	}
	out := &MLflowResources{APIVersion: "1", Databricks: make(map[ResourceType][]MLflowResourceEntry)}
	for _, r := range rs {
		out.Databricks[r.Type] = append(out.Databricks[r.Type], MLflowResourceEntry{Name: r.Name, OnBehalfOfUser: r.OnBehalfOfUser})
	}
	return out
}

// Manifest converts the MLflow form back, rejecting what MLflow rejects: an
// api_version other than "1", unknown resource types, both forms at once.
func (f MLflowManifest) Manifest() (Manifest, error) {
	if f.Resources != nil && f.AuthPolicy != nil {
		return Manifest{}, &ManifestError{Msg: "only one of resources and auth_policy can be specified"}
	}
	var m Manifest
	var err error
	switch {
	case f.Resources != nil:
		m.Resources, err = f.Resources.resources("resources")
	case f.AuthPolicy != nil:
		if r := f.AuthPolicy.SystemAuthPolicy.Resources; r != nil {
			m.Resources, err = r.resources("auth_policy.system_auth_policy.resources")
		}
		m.UserAPIScopes = append([]string(nil), f.AuthPolicy.UserAuthPolicy.APIScopes...)
	}
	if err != nil {
		return Manifest{}, err
	}
	return m, m.Validate()
}

func (r *MLflowResources) resources(field string) ([]Resource, error) {
	if r.APIVersion != "1" {
		return nil, &ManifestError{Field: field + ".api_version", Msg: "unsupported api_version " + strconv.Quote(r.APIVersion) + " (want \"1\")"}
	}
	for t := range r.Databricks {
		if !knownResourceType(t) {
			return nil, &ManifestError{Field: field + ".databricks." + string(t), Msg: "unknown resource type"}
		}
	}
	var out []Resource
	for _, t := range resourceTypes {
		for i, e := range r.Databricks[t] {
			if e.Name == "" {
				return nil, &ManifestError{Field: fmt.Sprintf("%s.databricks.%s[%d].name", field, t, i), Msg: "required"}
			}
			out = append(out, Resource{Type: t, Name: e.Name, OnBehalfOfUser: e.OnBehalfOfUser})
		}
	}
	return out, nil
}

// MarshalManifestJSON writes m in MLflow's form as JSON.
func MarshalManifestJSON(m Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(m.MLflow(), "", "  ")
}

// MarshalManifestYAML writes m in MLflow's form as YAML, as it appears in an
// MLmodel file.
func MarshalManifestYAML(m Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return yaml.Marshal(m.MLflow())
}

// ParseManifest reads MLflow's form from YAML or JSON. Other top-level keys
// (a whole MLmodel file's flavors, signature, …) are ignored; inside
// resources and auth_policy unknown keys are errors.
func ParseManifest(data []byte) (Manifest, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return Manifest{}, &ManifestError{Msg: err.Error()}
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return Manifest{}, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return Manifest{}, &ManifestError{Msg: "expected a mapping at the top level"}
	}
	var f MLflowManifest
	if raw, ok := top["resources"]; ok && string(raw) != "null" {
		f.Resources = new(MLflowResources)
		if err := strictDecode(raw, f.Resources); err != nil {
			return Manifest{}, &ManifestError{Field: "resources", Msg: err.Error()}
		}
	}
	if raw, ok := top["auth_policy"]; ok && string(raw) != "null" {
		f.AuthPolicy = new(MLflowAuthPolicy)
		if err := strictDecode(raw, f.AuthPolicy); err != nil {
			return Manifest{}, &ManifestError{Field: "auth_policy", Msg: err.Error()}
		}
	}
	return f.Manifest()
}

func strictDecode(raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// LoadManifestFile reads an agent.yaml (or an MLmodel file) in MLflow's form.
func LoadManifestFile(path string) (Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, err
	}
	m, err := ParseManifest(data)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Package manifest is the MLflow form of an agent.Manifest: the resources
// and auth policy an MLmodel file (or agent.yaml) carries, its JSON and YAML
// codecs, and the checks MLflow applies. The host reads a manifest file given
// to serve, checks what an agent declares, and reports it in /agent/info.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"

	"github.com/agentrt/agentrt/agent"
)

// resourceTypes lists the known types in the order they are read back.
var resourceTypes = []agent.ResourceType{
	agent.ServingEndpoint, agent.VectorSearchIndex, agent.SQLWarehouse, agent.Function, agent.GenieSpace,
	agent.Table, agent.UCConnection, agent.App, agent.Lakebase,
}

func knownResourceType(t agent.ResourceType) bool {
	for _, k := range resourceTypes {
		if k == t {
			return true
		}
	}
	return false
}

// Error reports a manifest that MLflow would not accept.
type Error struct {
	Field string // e.g. "resources.databricks.warehouse"
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return "manifest: " + e.Msg
	}
	return "manifest: " + e.Field + ": " + e.Msg
}

// Validate checks that every resource has a known type and a name, and
// every scope is named.
func Validate(m agent.Manifest) error {
	for i, r := range m.Resources {
		field := "resources[" + strconv.Itoa(i) + "]"
		if !knownResourceType(r.Type) {
			return &Error{Field: field + ".type", Msg: "unknown resource type " + strconv.Quote(string(r.Type))}
		}
		if r.Name == "" {
			return &Error{Field: field + ".name", Msg: "required"}
		}
	}
	for i, s := range m.UserAPIScopes {
		if s == "" {
			return &Error{Field: "user_api_scopes[" + strconv.Itoa(i) + "]", Msg: "empty scope"}
		}
	}
	return nil
}

// Form is a manifest in the form MLflow writes into an MLmodel
// file: either "resources" (every resource, OBO ones flagged) or
// "auth_policy" (system resources and the user's API scopes), never both.
type Form struct {
	Resources  *Resources  `json:"resources,omitempty"`
	AuthPolicy *AuthPolicy `json:"auth_policy,omitempty"`
}

// Resources is MLflow's serialised resource list, grouped by target
// ("databricks") and resource type.
type Resources struct {
	APIVersion string                                 `json:"api_version"`
	Databricks map[agent.ResourceType][]ResourceEntry `json:"databricks"`
}

// ResourceEntry is one resource under its type key.
type ResourceEntry struct {
	Name           string `json:"name"`
	OnBehalfOfUser *bool  `json:"on_behalf_of_user,omitempty"`
}

// AuthPolicy is MLflow's AuthPolicy.to_dict() form.
type AuthPolicy struct {
	SystemAuthPolicy SystemAuthPolicy `json:"system_auth_policy"`
	UserAuthPolicy   UserAuthPolicy   `json:"user_auth_policy"`
}

// SystemAuthPolicy holds the resources reached as the service principal.
type SystemAuthPolicy struct {
	Resources *Resources `json:"resources,omitempty"`
}

// UserAuthPolicy holds the API scopes of the on-behalf-of-user client.
type UserAuthPolicy struct {
	APIScopes []string `json:"api_scopes,omitempty"`
}

// MLflow returns m in MLflow's form: auth_policy when the manifest declares
// user API scopes, otherwise resources (empty when there is nothing to say).
func MLflow(m agent.Manifest) Form {
	res := mlflowResources(m.Resources)
	if len(m.UserAPIScopes) == 0 {
		return Form{Resources: res}
	}
	return Form{AuthPolicy: &AuthPolicy{
		SystemAuthPolicy: SystemAuthPolicy{Resources: res},
		UserAuthPolicy:   UserAuthPolicy{APIScopes: append([]string(nil), m.UserAPIScopes...)},
	}}
}

func mlflowResources(rs []agent.Resource) *Resources {
	if len(rs) == 0 {
		return nil
	}
	out := &Resources{APIVersion: "1", Databricks: make(map[agent.ResourceType][]ResourceEntry)}
	for _, r := range rs {
		out.Databricks[r.Type] = append(out.Databricks[r.Type], ResourceEntry{Name: r.Name, OnBehalfOfUser: r.OnBehalfOfUser})
	}
	return out
}

// Manifest converts the MLflow form back, rejecting what MLflow rejects: an
// api_version other than "1", unknown resource types, both forms at once.
func (f Form) Manifest() (agent.Manifest, error) {
	if f.Resources != nil && f.AuthPolicy != nil {
		return agent.Manifest{}, &Error{Msg: "only one of resources and auth_policy can be specified"}
	}
	var m agent.Manifest
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
		return agent.Manifest{}, err
	}
	return m, Validate(m)
}

func (r *Resources) resources(field string) ([]agent.Resource, error) {
	if r.APIVersion != "1" {
		return nil, &Error{Field: field + ".api_version", Msg: "unsupported api_version " + strconv.Quote(r.APIVersion) + " (want \"1\")"}
	}
	for t := range r.Databricks {
		if !knownResourceType(t) {
			return nil, &Error{Field: field + ".databricks." + string(t), Msg: "unknown resource type"}
		}
	}
	var out []agent.Resource
	for _, t := range resourceTypes {
		for i, e := range r.Databricks[t] {
			if e.Name == "" {
				return nil, &Error{Field: fmt.Sprintf("%s.databricks.%s[%d].name", field, t, i), Msg: "required"}
			}
			out = append(out, agent.Resource{Type: t, Name: e.Name, OnBehalfOfUser: e.OnBehalfOfUser})
		}
	}
	return out, nil
}

// MarshalJSON writes m in MLflow's form as JSON.
func MarshalJSON(m agent.Manifest) ([]byte, error) {
	if err := Validate(m); err != nil {
		return nil, err
	}
	return json.MarshalIndent(MLflow(m), "", "  ")
}

// MarshalYAML writes m in MLflow's form as YAML, as it appears in an
// MLmodel file.
func MarshalYAML(m agent.Manifest) ([]byte, error) {
	if err := Validate(m); err != nil {
		return nil, err
	}
	return yaml.Marshal(MLflow(m))
}

// Parse reads MLflow's form from YAML or JSON. Other top-level keys
// (a whole MLmodel file's flavors, signature, …) are ignored; inside
// resources and auth_policy unknown keys are errors.
func Parse(data []byte) (agent.Manifest, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return agent.Manifest{}, &Error{Msg: err.Error()}
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return agent.Manifest{}, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return agent.Manifest{}, &Error{Msg: "expected a mapping at the top level"}
	}
	var f Form
	if raw, ok := top["resources"]; ok && string(raw) != "null" {
		f.Resources = new(Resources)
		if err := strictDecode(raw, f.Resources); err != nil {
			return agent.Manifest{}, &Error{Field: "resources", Msg: err.Error()}
		}
	}
	if raw, ok := top["auth_policy"]; ok && string(raw) != "null" {
		f.AuthPolicy = new(AuthPolicy)
		if err := strictDecode(raw, f.AuthPolicy); err != nil {
			return agent.Manifest{}, &Error{Field: "auth_policy", Msg: err.Error()}
		}
	}
	return f.Manifest()
}

func strictDecode(raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// LoadFile reads an agent.yaml (or an MLmodel file) in MLflow's form.
func LoadFile(path string) (agent.Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return agent.Manifest{}, err
	}
	m, err := Parse(data)
	if err != nil {
		return agent.Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

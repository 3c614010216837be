package devworkspace

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

//go:embed default.yaml
var defaultYAML []byte

// Config describes a whole dev workspace: identities, grants and
// permissions, catalog objects and their data, warehouses, secrets, Genie
// spaces and (in config_apis.go) Vector Search, serving and MCP. The embedded
// default.yaml is the documented example.
type Config struct {
	// WorkspaceID is reported by host metadata; the SDK then sends it in
	// X-Databricks-Workspace-Id.
	WorkspaceID string `json:"workspace_id"`
	// TokenTTL is the lifetime of OAuth tokens the workspace issues
	// (client credentials, token exchange, federation). Default 1h.
	TokenTTL Duration `json:"token_ttl"`

	Users             []UserConfig             `json:"users"`
	ServicePrincipals []ServicePrincipalConfig `json:"service_principals"`
	// Federation lists the workload-identity tokens the token endpoint
	// accepts (the SDK's env-oidc/file-oidc flow) and the principal each
	// one stands for.
	Federation  []FederationConfig `json:"federation"`
	Grants      []GrantConfig      `json:"grants"`
	Permissions []PermissionConfig `json:"permissions"`

	SampleData   SampleDataConfig    `json:"sample_data"`
	Tables       []TableConfig       `json:"tables"`
	Functions    []FunctionConfig    `json:"functions"`
	Connections  []ConnectionConfig  `json:"connections"`
	Warehouses   []WarehouseConfig   `json:"warehouses"`
	SecretScopes []SecretScopeConfig `json:"secret_scopes"`
	Genie        GenieConfig         `json:"genie"`

	VectorSearch VectorSearchConfig `json:"vector_search"`
	Serving      ServingConfig      `json:"serving"`
	MCP          MCPConfig          `json:"mcp"`
}

// Duration is a time.Duration written as a Go duration string ("90s", "1h").
type Duration struct{ time.Duration }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"1h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// UserConfig is a workspace user with its personal access tokens (all-apis).
type UserConfig struct {
	UserName    string   `json:"user_name"`
	ID          string   `json:"id"`
	DisplayName string   `json:"display_name"`
	Tokens      []string `json:"tokens"`
}

// ServicePrincipalConfig is a service principal with an OAuth secret.
type ServicePrincipalConfig struct {
	ApplicationID string `json:"application_id"`
	ID            string `json:"id"`
	DisplayName   string `json:"display_name"`
	Secret        string `json:"secret"`
}

// FederationConfig trusts one workload-identity token (for example a
// Kubernetes projected service-account token written to a file) as the
// identity of ClientID. The dev workspace compares the subject token with
// Token exactly; it does not verify JWT signatures.
type FederationConfig struct {
	ClientID string `json:"client_id"`
	Token    string `json:"token"`
}

// GrantConfig grants Unity Catalog privileges on one securable; grants on a
// catalog or schema are inherited by everything below it.
type GrantConfig struct {
	Principal     string   `json:"principal"`
	SecurableType string   `json:"securable_type"` // catalog, schema, table, function, connection, volume
	FullName      string   `json:"full_name"`
	Privileges    []string `json:"privileges"`
}

// PermissionConfig grants a workspace-object permission level. ObjectID "*"
// covers every object of the type.
type PermissionConfig struct {
	Principal  string `json:"principal"`
	ObjectType string `json:"object_type"` // serving-endpoints, warehouses, genie, vector-search-endpoints
	ObjectID   string `json:"object_id"`
	Level      string `json:"level"` // CAN_VIEW, CAN_QUERY, CAN_USE, CAN_RUN, CAN_EDIT, CAN_MANAGE
}

// SampleDataConfig sizes the generated sales data; the same seed always
// yields the same rows.
type SampleDataConfig struct {
	Seed      int64 `json:"seed"`
	Customers int   `json:"customers"`
	Products  int   `json:"products"`
	Orders    int   `json:"orders"`
}

// ColumnConfig is one column of a table or of a table function's result.
type ColumnConfig struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // Databricks type text: string, bigint, int, double, date, timestamp, boolean
	Comment string `json:"comment,omitempty"`
}

// TableConfig is a Unity Catalog table. Its rows come from a built-in
// generator (sales.customers, sales.products, sales.orders) or are inline.
type TableConfig struct {
	FullName  string         `json:"full_name"`
	Comment   string         `json:"comment"`
	Columns   []ColumnConfig `json:"columns"`
	Generator string         `json:"generator,omitempty"`
	Rows      [][]any        `json:"rows,omitempty"`
}

// FunctionConfig is a SQL-bodied UC function. Definition is one SELECT whose
// :param markers name the parameters; a scalar function's SELECT yields one
// value, a table function's (Returns "TABLE") yields ReturnColumns. Functions
// run with their definer's rights: callers need EXECUTE, not SELECT on the
// tables the body reads.
type FunctionConfig struct {
	FullName      string         `json:"full_name"`
	Comment       string         `json:"comment"`
	Parameters    []ColumnConfig `json:"parameters"`
	Returns       string         `json:"returns"` // a type, or TABLE
	ReturnColumns []ColumnConfig `json:"return_columns,omitempty"`
	Definition    string         `json:"definition"`
}

// ConnectionConfig is a UC connection. In URL, {{workspace_url}} stands for
// the workspace's own base URL (for servers the workspace hosts itself).
type ConnectionConfig struct {
	Name           string            `json:"name"`
	ConnectionType string            `json:"connection_type"`
	URL            string            `json:"url"`
	Comment        string            `json:"comment"`
	Options        map[string]string `json:"options,omitempty"`
}

// WarehouseConfig is a SQL warehouse; every warehouse runs on the one
// embedded database.
type WarehouseConfig struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ClusterSize string `json:"cluster_size"`
}

// SecretScopeConfig is a secret scope with its secrets and ACLs.
type SecretScopeConfig struct {
	Name    string            `json:"name"`
	Secrets []SecretConfig    `json:"secrets"`
	ACLs    []SecretACLConfig `json:"acls"`
}

// SecretConfig is one secret; Value is the plain text.
type SecretConfig struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// SecretACLConfig gives a principal READ, WRITE or MANAGE on a scope.
type SecretACLConfig struct {
	Principal  string `json:"principal"`
	Permission string `json:"permission"`
}

// GenieConfig lists the Genie spaces.
type GenieConfig struct {
	Spaces []GenieSpaceConfig `json:"spaces"`
	// ImmediateAnswers makes the first GetMessage poll return the final
	// status instead of one intermediate status per poll. The SDK's waiter
	// sleeps 1s, 2s, 3s … between polls, so step-by-step answers cost it
	// about 6 s per question.
	ImmediateAnswers bool `json:"immediate_answers,omitempty"`
}

// GenieSpaceConfig is a Genie space. A question is answered by the example
// whose question shares the most words with it; its SQL runs as the caller.
type GenieSpaceConfig struct {
	SpaceID     string `json:"space_id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	WarehouseID string `json:"warehouse_id"`
	// CancelPhrase: a question containing it ends CANCELLED (for testing
	// clients against cancelled messages).
	CancelPhrase string               `json:"cancel_phrase"`
	Examples     []GenieExampleConfig `json:"examples"`
}

// GenieExampleConfig is one example question with the SQL that answers it.
type GenieExampleConfig struct {
	Question    string `json:"question"`
	Title       string `json:"title"`
	Description string `json:"description"`
	SQL         string `json:"sql"`
}

// DefaultConfig returns the embedded default workspace (default.yaml).
func DefaultConfig() (*Config, error) { return parseConfig(defaultYAML, "default.yaml") }

// LoadConfig reads a workspace description from a YAML (or JSON) file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devworkspace: read config: %w", err)
	}
	return parseConfig(b, path)
}

func parseConfig(b []byte, name string) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("devworkspace: config %s: %w", name, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("devworkspace: config %s: %w", name, err)
	}
	return &c, nil
}

// validate checks cross-references that would otherwise fail at request time.
func (c *Config) validate() error {
	if c.TokenTTL.Duration < 0 {
		return fmt.Errorf("token_ttl must not be negative")
	}
	names := map[string]bool{}
	for _, u := range c.Users {
		if u.UserName == "" {
			return fmt.Errorf("users: user_name is required")
		}
		if names[u.UserName] {
			return fmt.Errorf("duplicate principal %q", u.UserName)
		}
		names[u.UserName] = true
	}
	for _, sp := range c.ServicePrincipals {
		if sp.ApplicationID == "" {
			return fmt.Errorf("service_principals: application_id is required")
		}
		if names[sp.ApplicationID] {
			return fmt.Errorf("duplicate principal %q", sp.ApplicationID)
		}
		names[sp.ApplicationID] = true
	}
	for _, g := range c.Grants {
		if !names[g.Principal] {
			return fmt.Errorf("grant on %s names unknown principal %q", g.FullName, g.Principal)
		}
		if !validSecurableType(g.SecurableType) {
			return fmt.Errorf("grant on %s: unknown securable_type %q", g.FullName, g.SecurableType)
		}
	}
	for _, p := range c.Permissions {
		if !names[p.Principal] {
			return fmt.Errorf("permission on %s/%s names unknown principal %q", p.ObjectType, p.ObjectID, p.Principal)
		}
		if levelRank(p.Level) == 0 {
			return fmt.Errorf("permission on %s/%s: unknown level %q", p.ObjectType, p.ObjectID, p.Level)
		}
	}
	for _, f := range c.Federation {
		if !names[f.ClientID] || f.Token == "" {
			return fmt.Errorf("federation: client_id must name a principal and token must be set")
		}
	}
	for _, s := range c.SecretScopes {
		for _, a := range s.ACLs {
			if !names[a.Principal] {
				return fmt.Errorf("secret scope %s: unknown principal %q", s.Name, a.Principal)
			}
		}
	}
	for _, t := range c.Tables {
		if len(strings.Split(t.FullName, ".")) != 3 {
			return fmt.Errorf("table %q: full_name must be catalog.schema.table", t.FullName)
		}
	}
	for _, f := range c.Functions {
		if len(strings.Split(f.FullName, ".")) != 3 {
			return fmt.Errorf("function %q: full_name must be catalog.schema.function", f.FullName)
		}
		if strings.TrimSpace(f.Definition) == "" {
			return fmt.Errorf("function %s: definition is required", f.FullName)
		}
	}
	warehouses := map[string]bool{}
	for _, w := range c.Warehouses {
		if w.ID == "" || warehouses[w.ID] {
			return fmt.Errorf("warehouses: empty or duplicate id %q", w.ID)
		}
		warehouses[w.ID] = true
	}
	spaces := map[string]bool{}
	for _, s := range c.Genie.Spaces {
		if s.SpaceID == "" || spaces[s.SpaceID] {
			return fmt.Errorf("genie: empty or duplicate space_id %q", s.SpaceID)
		}
		spaces[s.SpaceID] = true
		if !warehouses[s.WarehouseID] {
			return fmt.Errorf("genie space %s: unknown warehouse_id %q", s.SpaceID, s.WarehouseID)
		}
		for _, e := range s.Examples {
			if strings.TrimSpace(e.Question) == "" || strings.TrimSpace(e.SQL) == "" {
				return fmt.Errorf("genie space %s: every example needs a question and sql", s.SpaceID)
			}
		}
	}
	return nil
}

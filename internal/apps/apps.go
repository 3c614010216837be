// Package apps turns an agent's effective manifest into what Databricks Apps
// needs to run it: the app's app.yaml (the command that starts the static
// serve binary, env bound to attached resources with valueFrom) and the app
// definition (resources granted to the app's service principal and the
// user_api_scopes of the caller's forwarded token), as a bundle file.
//
// The app definition is an apps.App of databricks-sdk-go, so what is written
// is what the Apps API and the bundle accept; DecodeApp reads one back
// strictly (unknown fields, missing required fields and unknown enum values
// are errors). A declared resource Apps cannot attach is reported in
// Config.Unattached, never silently dropped.
package apps

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agentrt/agentrt/agent"
	"github.com/databricks/databricks-sdk-go/service/apps"
)

// AlwaysGrantedScopes are granted by Databricks to every on-behalf-of-user
// token. They are listed in user_api_scopes anyway, because agentrt verifies
// each caller with SCIM Me (iam.current-user:read) and the app's scopes are
// the whole of what the forwarded token may do.
var AlwaysGrantedScopes = []string{"iam.current-user:read", "iam.access-control:read"}

// Options describe the app around the manifest.
type Options struct {
	// Name is the app's name: lowercase letters, digits and hyphens
	// (required).
	Name string
	// Description is shown in the Apps UI (default: "agentrt agent <Agent>").
	Description string
	// Agent is the registered agent (or plugin file) serve runs (required).
	Agent string
	// Manifest, when set, is the manifest file serve reads, relative to the
	// app's source directory (--manifest).
	Manifest string
	// Binary is the serve executable, relative to the app's source
	// directory (default "./serve").
	Binary string
	// SourceCodePath is the bundle's source_code_path: the directory, relative
	// to the bundle file, uploaded as the app's files (default ".").
	SourceCodePath string
	// Secrets are attached as secret resources and injected into the
	// environment variable of the same entry (valueFrom).
	Secrets []Secret
}

// Secret is one workspace secret the app reads from an environment
// variable, instead of a {{secrets/scope/key}} reference.
type Secret struct {
	Env, Scope, Key string
}

// ParseSecret parses ENV=scope/key.
func ParseSecret(s string) (Secret, error) {
	env, ref, ok := strings.Cut(s, "=")
	scope, key, ok2 := strings.Cut(ref, "/")
	if !ok || !ok2 || env == "" || scope == "" || key == "" || strings.Contains(key, "/") {
		return Secret{}, fmt.Errorf("secret %q: want ENV=scope/key", s)
	}
	return Secret{Env: env, Scope: scope, Key: key}, nil
}

// AppYAML is the app.yaml file: how the platform starts the app.
type AppYAML struct {
	Command []string `yaml:"command"`
	Env     []EnvVar `yaml:"env,omitempty"`
}

// EnvVar is one app.yaml env entry: a literal Value, or ValueFrom, the name
// of an attached resource whose id or value the platform injects.
type EnvVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value,omitempty"`
	ValueFrom string `yaml:"valueFrom,omitempty"`
}

// Unattached is a declared resource Apps cannot attach to an app, with why
// and what the operator must do instead.
type Unattached struct {
	Resource agent.Resource
	Reason   string
}

// Config is everything generated for one app.
type Config struct {
	AppYAML AppYAML
	// App is the app definition (name, description, resources,
	// user_api_scopes, source_code_path).
	App apps.App
	// Caller are the resources the agent reaches on behalf of the caller:
	// the forwarded token's user_api_scopes cover them and each user needs
	// their own grant; they are not granted to the app's service principal.
	Caller []agent.Resource
	// Unattached are system resources Apps has no resource type for.
	Unattached []Unattached
}

// Generate builds the app's configuration from the agent's effective
// manifest (its own manifest merged with its tools' requirements). It does
// no I/O.
func Generate(m agent.Manifest, o Options) (*Config, error) {
	if err := checkName(o.Name); err != nil {
		return nil, err
	}
	if o.Agent == "" {
		return nil, errors.New("apps: the agent to serve is required")
	}
	if o.Binary == "" {
		o.Binary = "./serve"
	}
	if o.SourceCodePath == "" {
		o.SourceCodePath = "."
	}
	if o.Description == "" {
		o.Description = "agentrt agent " + o.Agent
	}
	c := &Config{App: apps.App{Name: o.Name, Description: o.Description, SourceCodePath: o.SourceCodePath}}
	c.AppYAML.Command = []string{o.Binary, "--agent", o.Agent}
	if o.Manifest != "" {
		c.AppYAML.Command = append(c.AppYAML.Command, "--manifest", o.Manifest)
	}
	keys := map[string]bool{}
	attach := func(r apps.AppResource, env string) {
		r.Name = uniqueKey(keys, r.Name)
		c.App.Resources = append(c.App.Resources, r)
		if env == "" {
			env = strings.ToUpper(strings.ReplaceAll(r.Name, "-", "_"))
		}
		c.AppYAML.Env = append(c.AppYAML.Env, EnvVar{Name: env, ValueFrom: r.Name})
	}
	for _, r := range m.Resources {
		if r.OnBehalfOfUser != nil && *r.OnBehalfOfUser {
			c.Caller = append(c.Caller, r)
			continue
		}
		ar, why := resourceFor(r)
		if why != "" {
			c.Unattached = append(c.Unattached, Unattached{Resource: r, Reason: why})
			continue
		}
		attach(ar, "")
	}
	for _, s := range o.Secrets {
		if s.Env == "" || s.Scope == "" || s.Key == "" {
			return nil, fmt.Errorf("apps: secret %+v: env, scope and key are required", s)
		}
		attach(apps.AppResource{
			Name:        "secret-" + s.Key,
			Description: "secret " + s.Scope + "/" + s.Key + ", read from $" + s.Env,
			Secret:      &apps.AppResourceSecret{Scope: s.Scope, Key: s.Key, Permission: apps.AppResourceSecretSecretPermissionRead},
		}, s.Env)
	}
	c.App.UserApiScopes = UserScopes(m)
	return c, nil
}

// UserScopes are the user_api_scopes an app serving m must be granted: the
// manifest's user API scopes in canonical form (iam.current-user.read is read
// as iam.current-user:read), plus AlwaysGrantedScopes; nil when the agent
// declares none (it then never acts as its caller).
func UserScopes(m agent.Manifest) []string {
	if len(m.UserAPIScopes) == 0 {
		return nil
	}
	var out []string
	for _, s := range append(slices.Clone(m.UserAPIScopes), AlwaysGrantedScopes...) {
		s = CanonicalScope(s)
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// CanonicalScope writes the iam scopes with a colon, the form the Apps API
// and agentrt use; some write them with a dot (iam.current-user.read).
func CanonicalScope(s string) string {
	for _, svc := range []string{"iam.current-user", "iam.access-control"} {
		if rest, ok := strings.CutPrefix(s, svc+"."); ok {
			return svc + ":" + rest
		}
	}
	return s
}

// resourceFor maps one system resource to the app resource that grants the
// app's service principal what the agent needs, or says why there is none.
func resourceFor(r agent.Resource) (apps.AppResource, string) {
	uc := func(t apps.AppResourceUcSecurableUcSecurableType, p apps.AppResourceUcSecurableUcSecurablePermission) apps.AppResource {
		return apps.AppResource{Name: string(r.Type) + "-" + r.Name, UcSecurable: &apps.AppResourceUcSecurable{SecurableFullName: r.Name, SecurableType: t, Permission: p}}
	}
	var out apps.AppResource
	switch r.Type {
	case agent.ServingEndpoint:
		out = apps.AppResource{Name: "serving-endpoint-" + r.Name, ServingEndpoint: &apps.AppResourceServingEndpoint{Name: r.Name, Permission: apps.AppResourceServingEndpointServingEndpointPermissionCanQuery}}
	case agent.GenieSpace:
		out = apps.AppResource{Name: "genie-space-" + r.Name, GenieSpace: &apps.AppResourceGenieSpace{SpaceId: r.Name, Name: r.Name, Permission: apps.AppResourceGenieSpaceGenieSpacePermissionCanRun}}
	case agent.SQLWarehouse:
		out = apps.AppResource{Name: "sql-warehouse-" + r.Name, SqlWarehouse: &apps.AppResourceSqlWarehouse{Id: r.Name, Permission: apps.AppResourceSqlWarehouseSqlWarehousePermissionCanUse}}
	case agent.Table:
		out = uc(apps.AppResourceUcSecurableUcSecurableTypeTable, apps.AppResourceUcSecurableUcSecurablePermissionSelect)
	case agent.Function:
		out = uc(apps.AppResourceUcSecurableUcSecurableTypeFunction, apps.AppResourceUcSecurableUcSecurablePermissionExecute)
	case agent.UCConnection:
		out = uc(apps.AppResourceUcSecurableUcSecurableTypeConnection, apps.AppResourceUcSecurableUcSecurablePermissionUseConnection)
	case agent.App:
		out = apps.AppResource{Name: "app-" + r.Name, App: &apps.AppResourceApp{Name: r.Name, Permission: apps.AppResourceAppAppPermissionCanUse}}
	case agent.Lakebase:
		// The manifest names the instance; "instance/database" picks a
		// database other than the instance's default one.
		inst, db, ok := strings.Cut(r.Name, "/")
		if !ok {
			db = "databricks_postgres"
		}
		out = apps.AppResource{Name: "database-" + inst, Database: &apps.AppResourceDatabase{InstanceName: inst, DatabaseName: db, Permission: apps.AppResourceDatabaseDatabasePermissionCanConnectAndCreate}}
	case agent.VectorSearchIndex:
		return out, "Apps has no resource type for a Vector Search index (uc_securable covers tables, functions, connections and volumes): grant the app's service principal SELECT on the index, and USE CATALOG / USE SCHEMA on its parents, in Unity Catalog"
	default:
		return out, fmt.Sprintf("Apps has no resource type for %q", r.Type)
	}
	out.Description = fmt.Sprintf("%s %s (declared by the agent)", r.Type, r.Name)
	return out, ""
}

// checkName applies the Apps rule for app names.
func checkName(n string) error {
	if n == "" {
		return errors.New("apps: the app name is required")
	}
	if strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || n[0] == '-' || n[len(n)-1] == '-' {
		return fmt.Errorf("apps: app name %q: use lowercase letters, digits and hyphens, not starting or ending with a hyphen", n)
	}
	return nil
}

// uniqueKey makes s a resource key (lowercase letters, digits and hyphens,
// at most 64 characters) not yet in seen.
func uniqueKey(seen map[string]bool, s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	key := strings.TrimRight(b.String(), "-")
	if len(key) > 60 {
		key = strings.TrimRight(key[:60], "-")
	}
	base := key
	for i := 2; seen[key]; i++ {
		key = fmt.Sprintf("%s-%d", base, i)
	}
	seen[key] = true
	return key
}

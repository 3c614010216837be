// Package scopes maps Databricks REST routes to the OAuth API scopes that
// allow them. The user client uses it to refuse out-of-scope calls before they
// leave the process, and the dev workspace uses the same table to enforce
// scopes on its side, so both agree by construction.
//
// Each route accepts any of several names: the dotted scope of its SDK service
// (for example "vectorsearch.vector-search-indexes"), the coarse scope of the
// REST reference ("vector-search"), and "all-apis", which allows everything.
// A route missing from the table is allowed only by "all-apis": unknown means
// refused, never allowed.
package scopes

import (
	"slices"
	"strings"
)

// AllAPIs is the scope that allows every route.
const AllAPIs = "all-apis"

// Rule is one row of the table: requests whose path starts with Prefix (and
// whose method is in Methods, when set) need one of Accept.
type Rule struct {
	Prefix  string
	Methods []string // empty: any method
	Accept  []string // the first entry is the scope named in refusals
}

// table is ordered most specific first; the first matching rule wins.
var table = []Rule{
	{Prefix: "/api/2.0/vector-search/indexes", Accept: []string{"vectorsearch.vector-search-indexes", "vector-search"}},
	{Prefix: "/api/2.0/vector-search/endpoints", Accept: []string{"vectorsearch.vector-search-endpoints", "vector-search"}},
	{Prefix: "/api/2.0/genie", Accept: []string{"dashboards.genie", "genie"}},
	{Prefix: "/api/2.0/sql/statements", Accept: []string{"sql.statement-execution", "sql"}},
	{Prefix: "/api/2.0/sql/warehouses", Accept: []string{"sql.warehouses", "sql"}},
	{Prefix: "/api/2.0/serving-endpoints", Accept: []string{"serving.serving-endpoints", "model-serving"}},
	{Prefix: "/serving-endpoints", Accept: []string{"serving.serving-endpoints", "model-serving"}},
	{Prefix: "/api/2.0/external-function", Accept: []string{"serving.serving-endpoints", "model-serving"}},
	{Prefix: "/api/2.0/permissions/serving-endpoints", Accept: []string{"serving.serving-endpoints", "model-serving"}},
	{Prefix: "/api/2.1/unity-catalog/tables", Methods: []string{"GET"}, Accept: []string{"catalog.tables:read", "catalog.tables", "unity-catalog"}},
	{Prefix: "/api/2.1/unity-catalog/functions", Methods: []string{"GET"}, Accept: []string{"catalog.functions:read", "catalog.functions", "unity-catalog"}},
	{Prefix: "/api/2.1/unity-catalog/connections", Accept: []string{"catalog.connections", "unity-catalog"}},
	{Prefix: "/api/2.1/unity-catalog/catalogs", Accept: []string{"catalog.catalogs", "unity-catalog"}},
	{Prefix: "/api/2.1/unity-catalog/schemas", Methods: []string{"GET"}, Accept: []string{"catalog.schemas:read", "catalog.schemas", "unity-catalog"}},
	{Prefix: "/api/2.1/unity-catalog/effective-permissions", Accept: []string{"catalog.catalogs", "unity-catalog"}},
	{Prefix: "/api/2.1/unity-catalog/permissions", Accept: []string{"catalog.catalogs", "unity-catalog"}},
	{Prefix: "/api/2.0/mcp/genie", Accept: []string{"mcp.genie", "genie"}},
	{Prefix: "/api/2.0/mcp/functions", Accept: []string{"mcp.functions", "unity-catalog"}},
	{Prefix: "/api/2.0/mcp/vector-search", Accept: []string{"mcp.vectorsearch", "vector-search"}},
	{Prefix: "/api/2.0/mcp/external", Accept: []string{"mcp.external", "unity-catalog"}},
	{Prefix: "/api/2.0/mcp/sql", Accept: []string{"mcp.sql", "sql"}},
	{Prefix: "/api/2.0/secrets", Accept: []string{"workspace.secrets", "workspace.workspace", "workspace"}},
	{Prefix: "/api/2.0/workspace", Accept: []string{"workspace.workspace", "workspace"}},
	{Prefix: "/api/2.0/apps", Accept: []string{"apps.apps", "apps"}},
	{Prefix: "/api/2.0/preview/scim/v2/Me", Accept: []string{"iam.current-user:read", "iam"}},
	{Prefix: "/api/2.0/preview/accounts/access-control", Methods: []string{"GET"}, Accept: []string{"iam.access-control:read", "iam"}},
}

// Required returns the scopes any one of which allows method on path, with
// the canonical (dotted) name first. The result always ends with AllAPIs.
func Required(method, path string) []string {
	for _, r := range table {
		if !matches(r.Prefix, path) {
			continue
		}
		if len(r.Methods) > 0 && !slices.Contains(r.Methods, strings.ToUpper(method)) {
			continue
		}
		return append(slices.Clip(r.Accept), AllAPIs)
	}
	return []string{AllAPIs}
}

// Check reports whether granted allows method on path. When it does not,
// missing is the scope to ask for (the canonical name of the route).
func Check(granted []string, method, path string) (ok bool, missing string) {
	need := Required(method, path)
	for _, g := range granted {
		if slices.Contains(need, g) {
			return true, ""
		}
	}
	return false, need[0]
}

// Known reports whether s is a scope name that appears in the table.
func Known(s string) bool {
	if s == AllAPIs {
		return true
	}
	for _, r := range table {
		if slices.Contains(r.Accept, s) {
			return true
		}
	}
	return false
}

// matches reports whether path is prefix itself or lies below it.
func matches(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	rest := path[len(prefix):]
	return rest == "" || rest[0] == '/' || rest[0] == '?'
}

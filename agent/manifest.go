package agent

// ResourceType names a kind of Databricks resource an agent depends on. The
// values are MLflow's resource keys.
type ResourceType string

// The nine resource types of MLflow's resource model.
const (
	ServingEndpoint   ResourceType = "serving_endpoint"
	VectorSearchIndex ResourceType = "vector_search_index"
	SQLWarehouse      ResourceType = "sql_warehouse"
	Function          ResourceType = "function"
	GenieSpace        ResourceType = "genie_space"
	Table             ResourceType = "table"
	UCConnection      ResourceType = "uc_connection"
	App               ResourceType = "app"
	Lakebase          ResourceType = "lakebase"
)

// Resource is one declared dependency. Name is the resource's full name or id
// (for a warehouse its id, for a Lakebase database its instance name).
type Resource struct {
	Type ResourceType `json:"type"`
	Name string       `json:"name"`
	// OnBehalfOfUser marks a resource the agent reaches as the caller rather
	// than as its service principal. Nil leaves it unsaid (MLflow omits it).
	OnBehalfOfUser *bool `json:"on_behalf_of_user,omitempty"`
}

// Manifest is what an agent declares it needs: resources reached with the
// system identity (automatic passthrough) and the API scopes of the user
// identity (on-behalf-of-user).
type Manifest struct {
	// Resources are all declared resources; those with OnBehalfOfUser set are
	// reached as the caller, the rest as the service principal.
	Resources []Resource `json:"resources,omitempty"`
	// UserAPIScopes are the scopes the user client may use ("all-apis",
	// dotted names like "vectorsearch.vector-search-indexes", or coarse
	// names like "genie").
	UserAPIScopes []string `json:"user_api_scopes,omitempty"`
}

// Manifester is implemented by agents that declare their manifest in code.
// The host calls Manifest once at start-up, from one goroutine, before
// Provision and before serving, looking through wrappers such as
// FromStream's; a manifest file given to serve takes precedence. A manifest
// MLflow would reject (an unknown resource type, a resource without a name,
// an empty scope) stops the host from starting, with an error naming the
// offending entry.
type Manifester interface {
	Manifest() Manifest
}

package devworkspace

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// VectorSearchConfig describes Vector Search endpoints and indexes.
type VectorSearchConfig struct {
	Endpoints []VectorSearchEndpointConfig `json:"endpoints"`
	Indexes   []VectorSearchIndexConfig    `json:"indexes"`
	// DocsTable, when set, is created (catalog.schema.table) with the
	// built-in documentation corpus (see ProductDocs) before the indexes
	// are built, so an index can use it as its source table.
	DocsTable string `json:"docs_table,omitempty"`
	// PageSize is the number of rows per query page (the service's 1000
	// when 0); larger results continue through next_page_token.
	PageSize int `json:"page_size,omitempty"`
	// StringCells renders every data_array cell as a JSON string. The live
	// service sends typed values (numbers as numbers, which the typed SDK
	// QueryIndex cannot decode); this switch is for clients that need strings.
	StringCells bool `json:"string_cells,omitempty"`
}

// VectorSearchEndpointConfig is a Vector Search endpoint.
type VectorSearchEndpointConfig struct {
	Name         string `json:"name"`
	EndpointType string `json:"endpoint_type,omitempty"` // STANDARD (default) or STORAGE_OPTIMIZED
}

// VectorSearchIndexConfig is a Delta Sync index over a UC table whose
// embeddings the workspace computes (deterministically, see Embed) from
// EmbeddingSourceColumn.
type VectorSearchIndexConfig struct {
	Name                  string `json:"name"` // catalog.schema.index
	EndpointName          string `json:"endpoint_name"`
	SourceTable           string `json:"source_table"`
	PrimaryKey            string `json:"primary_key"`
	EmbeddingSourceColumn string `json:"embedding_source_column"`
	EmbeddingEndpoint     string `json:"embedding_model_endpoint_name"`
	Comment               string `json:"comment,omitempty"`
}

// ServingConfig describes serving endpoints.
type ServingConfig struct {
	Endpoints []ServingEndpointConfig `json:"endpoints"`
}

// ServingEndpointConfig is one serving endpoint. Model selects what
// answers it:
//
//   - "dev-llm": the deterministic dev chat model (see devllm.go), or a proxy
//     to ProxyURL (an OpenAI-compatible base URL such as a local model
//     server's http://127.0.0.1:8080/v1) when set here or by
//     Options.LLMProxyURL;
//   - "dev-embeddings": the deterministic dev embedding (EmbeddingDim floats).
type ServingEndpointConfig struct {
	Name        string `json:"name"`
	Model       string `json:"model"`
	Task        string `json:"task,omitempty"` // llm/v1/chat, llm/v1/embeddings; derived from Model when empty
	Description string `json:"description,omitempty"`
	ProxyURL    string `json:"proxy_url,omitempty"`
	// ProxyModel is the model name sent upstream (default: the endpoint name).
	ProxyModel string `json:"proxy_model,omitempty"`
	// ProxyAPIKeyEnv names an environment variable holding the upstream API
	// key, so keys never live in the config file.
	ProxyAPIKeyEnv string `json:"proxy_api_key_env,omitempty"`
}

// MCPConfig describes the managed MCP servers and the small external MCP
// server the workspace hosts for UC connections to point at.
type MCPConfig struct {
	// ExternalServerPath is where the toy external MCP server is served
	// (default /dev/external-mcp). It is outside /api, needs no workspace
	// token, and checks ExternalServerToken when set.
	ExternalServerPath  string `json:"external_server_path,omitempty"`
	ExternalServerToken string `json:"external_server_token,omitempty"`
}

const (
	modelDevLLM        = "dev-llm"
	modelDevEmbeddings = "dev-embeddings"
	taskChat           = "llm/v1/chat"
	taskEmbeddings     = "llm/v1/embeddings"
)

// apiState is the Vector Search, serving and MCP half of a Workspace.
type apiState struct {
	vsEndpoints map[string]VectorSearchEndpointConfig
	indexes     map[string]*vsIndex // by full name
	indexOrder  []string
	serving     map[string]ServingEndpointConfig
	servingOrd  []string

	mcpMu      sync.Mutex
	mcpServers map[string]*mcpEntry // by request path
}

func (c *VectorSearchConfig) validate() error {
	eps := map[string]bool{}
	for _, e := range c.Endpoints {
		if e.Name == "" {
			return fmt.Errorf("vector_search.endpoints: name is required")
		}
		eps[e.Name] = true
	}
	for _, ix := range c.Indexes {
		if len(strings.Split(ix.Name, ".")) != 3 {
			return fmt.Errorf("vector_search index %q: name must be catalog.schema.index", ix.Name)
		}
		if !eps[ix.EndpointName] {
			return fmt.Errorf("vector_search index %s: unknown endpoint %q", ix.Name, ix.EndpointName)
		}
		if ix.SourceTable == "" || ix.PrimaryKey == "" || ix.EmbeddingSourceColumn == "" {
			return fmt.Errorf("vector_search index %s: source_table, primary_key and embedding_source_column are required", ix.Name)
		}
	}
	if c.DocsTable != "" && len(strings.Split(c.DocsTable, ".")) != 3 {
		return fmt.Errorf("vector_search.docs_table %q: want catalog.schema.table", c.DocsTable)
	}
	if c.PageSize < 0 {
		return fmt.Errorf("vector_search.page_size must not be negative")
	}
	return nil
}

func (c *ServingConfig) validate() error {
	seen := map[string]bool{}
	for _, e := range c.Endpoints {
		if e.Name == "" || seen[e.Name] {
			return fmt.Errorf("serving endpoint %q: names must be set and unique", e.Name)
		}
		seen[e.Name] = true
		switch e.Model {
		case modelDevLLM, modelDevEmbeddings:
		default:
			return fmt.Errorf("serving endpoint %s: model must be %s or %s, not %q", e.Name, modelDevLLM, modelDevEmbeddings, e.Model)
		}
	}
	return nil
}

// initAPIs sets up the APIs' state from the configuration and registers
// their routes; newWorkspace calls it after the core is built. Their data
// (the docs table, the vector indexes) comes with loadData.
func (ws *Workspace) initAPIs() error {
	if err := ws.cfg.VectorSearch.validate(); err != nil {
		return fmt.Errorf("devworkspace: config: %w", err)
	}
	if err := ws.cfg.Serving.validate(); err != nil {
		return fmt.Errorf("devworkspace: config: %w", err)
	}
	for _, ix := range ws.cfg.VectorSearch.Indexes {
		if ix.EmbeddingEndpoint != "" && !slices.ContainsFunc(ws.cfg.Serving.Endpoints, func(e ServingEndpointConfig) bool {
			return e.Name == ix.EmbeddingEndpoint && e.Model == modelDevEmbeddings
		}) {
			return fmt.Errorf("devworkspace: config: vector_search index %s: embedding_model_endpoint_name %q is not a dev-embeddings serving endpoint", ix.Name, ix.EmbeddingEndpoint)
		}
	}
	ws.apis = &apiState{
		vsEndpoints: map[string]VectorSearchEndpointConfig{},
		indexes:     map[string]*vsIndex{},
		serving:     map[string]ServingEndpointConfig{},
		mcpServers:  map[string]*mcpEntry{},
	}
	for _, e := range ws.cfg.VectorSearch.Endpoints {
		if e.EndpointType == "" {
			e.EndpointType = "STANDARD"
		}
		ws.apis.vsEndpoints[e.Name] = e
	}
	for _, e := range ws.cfg.Serving.Endpoints {
		if e.Task == "" {
			e.Task = taskChat
			if e.Model == modelDevEmbeddings {
				e.Task = taskEmbeddings
			}
		}
		if e.Model == modelDevLLM && e.ProxyURL == "" {
			e.ProxyURL = ws.opts.LLMProxyURL
		}
		ws.apis.serving[e.Name] = e
		ws.apis.servingOrd = append(ws.apis.servingOrd, e.Name)
	}
	ws.registerVectorSearch()
	ws.registerServing()
	ws.registerMCP()
	return nil
}

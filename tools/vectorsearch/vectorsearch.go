// Package vectorsearch is a retriever tool over a Databricks Vector Search
// index: the model sends a query (and optionally filters) and gets back the
// most similar documents as JSON, each with its page content and metadata.
//
// It follows databricks-ai-bridge's VectorSearchRetrieverTool (tool naming,
// description listing the index's columns, documents with doc_uri and
// chunk_id), and queries through the SDK's raw API client into its own types
// because the typed QueryIndex cannot decode numeric result cells.
package vectorsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/vectorsearch"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/wsapi"
)

// Scope is the user API scope the tool needs.
const Scope = "vectorsearch.vector-search-indexes"

// TablesScope lets the tool read the index's columns for its description;
// without it the description omits them.
const TablesScope = "catalog.tables:read"

// Query types accepted by the service.
const (
	ANN      = "ANN"
	Hybrid   = "HYBRID"
	FullText = "FULL_TEXT"
)

// Options configure a retriever tool.
type Options struct {
	Index      string // required: catalog.schema.index
	NumResults int    // default 5
	// Columns to return. Empty: the primary key, the text column and the
	// doc URI column.
	Columns []string
	// Filters are fixed filters (the service's filter syntax: keys like
	// "col", "col NOT", "col <", "col LIKE", "col1 OR col2").
	Filters map[string]any
	// DynamicFilter lets the model add filters as a list of {key, value}.
	// Unlike the Python reference, this may be combined with Filters: the
	// fixed filters win on the same key, so the model can narrow a search
	// but never widen it past what the author fixed.
	DynamicFilter  bool
	QueryType      string  // ANN (default), HYBRID or FULL_TEXT
	ScoreThreshold float64 // drop results scoring below this; 0: keep all
	IncludeScore   bool    // add metadata.score

	ToolName        string // default: Index with "." → "__", last 64 characters
	ToolDescription string // default: a generic retriever description

	TextColumn   string // page_content; default: the index's embedding source column
	DocURIColumn string // becomes metadata.doc_uri; default "doc_uri" when the index has it
	PrimaryKey   string // becomes metadata.chunk_id; default: the index's primary key
}

var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Provider prepares the retriever tool for one index.
type Provider struct {
	opts Options
	name string
}

// indexMeta is what one identity could read about the index: the column list
// and comments come from Unity Catalog, where another caller may see more or
// less, so it is never shared between identities.
type indexMeta struct {
	textColumn, docURI, primaryKey string
	columns                        []string
	description                    string
}

// New validates o and returns a provider.
func New(o Options) (*Provider, error) {
	if strings.Count(o.Index, ".") != 2 || strings.Contains(o.Index, "..") || strings.ContainsAny(o.Index, " /") {
		return nil, fmt.Errorf("vectorsearch: index %q must be a full name catalog.schema.index", o.Index)
	}
	if o.NumResults == 0 {
		o.NumResults = 5
	}
	if o.NumResults < 0 || o.NumResults > 10000 {
		return nil, fmt.Errorf("vectorsearch: num_results %d out of range 1..10000", o.NumResults)
	}
	switch strings.ToUpper(o.QueryType) {
	case "":
		o.QueryType = ANN
	case ANN, Hybrid, FullText:
		o.QueryType = strings.ToUpper(o.QueryType)
	default:
		return nil, fmt.Errorf("vectorsearch: query_type %q: want ANN, HYBRID or FULL_TEXT", o.QueryType)
	}
	if o.ScoreThreshold < 0 {
		return nil, errors.New("vectorsearch: score_threshold must not be negative")
	}
	name := o.ToolName
	if name == "" {
		name = ToolName(o.Index)
	}
	if !toolNameRE.MatchString(name) {
		return nil, fmt.Errorf("vectorsearch: tool name %q must match %s", name, toolNameRE)
	}
	if _, err := json.Marshal(o.Filters); err != nil {
		return nil, fmt.Errorf("vectorsearch: filters: %w", err)
	}
	return &Provider{opts: o, name: name}, nil
}

// ToolName derives a tool name from an index name: dots become "__" and
// only the last 64 characters are kept.
func ToolName(index string) string {
	n := strings.ReplaceAll(index, ".", "__")
	if len(n) > 64 {
		n = n[len(n)-64:]
	}
	return n
}

// Name implements tools.Namer.
func (p *Provider) Name() string { return p.name }

// Requirements implements tools.Provider.
func (p *Provider) Requirements() tools.Requirements {
	return tools.Requirements{
		Resources:  []agent.Resource{{Type: agent.VectorSearchIndex, Name: p.opts.Index}},
		UserScopes: []string{Scope, TablesScope},
	}
}

// Prepare implements tools.Provider: it reads the index as w's identity (a
// caller without SELECT on it gets a permission error and the tool is
// skipped) and, as the same identity, its columns for the description. The
// provider keeps nothing between calls: what one caller may read about the
// index must not reach another, and tools.Set already caches prepared tools
// per verified principal.
func (p *Provider) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	if w == nil {
		return nil, tools.ErrNoClient
	}
	idx, err := w.VectorSearchIndexes.GetIndex(ctx, vectorsearch.GetIndexRequest{IndexName: p.opts.Index})
	if err != nil {
		return nil, fmt.Errorf("vector search index %s: %w", p.opts.Index, err)
	}
	api, err := wsapi.API(w)
	if err != nil {
		return nil, err
	}
	meta := p.metadata(ctx, w, idx)
	return []agent.Tool{&tool{p: p, api: api, meta: meta}}, nil
}

func (p *Provider) metadata(ctx context.Context, w *databricks.WorkspaceClient, idx *vectorsearch.VectorIndex) *indexMeta {
	m := &indexMeta{textColumn: p.opts.TextColumn, docURI: p.opts.DocURIColumn, primaryKey: p.opts.PrimaryKey}
	if m.primaryKey == "" {
		m.primaryKey = idx.PrimaryKey
	}
	source := ""
	if ds := idx.DeltaSyncIndexSpec; ds != nil {
		source = ds.SourceTable
		if m.textColumn == "" && len(ds.EmbeddingSourceColumns) > 0 {
			m.textColumn = ds.EmbeddingSourceColumns[0].Name
		}
	}
	// Columns come from Unity Catalog: the index itself is a securable
	// table; fall back to its source table. Failing both only costs the
	// description its column list.
	var cols []catalog.ColumnInfo
	for _, name := range []string{p.opts.Index, source} {
		if name == "" {
			continue
		}
		if t, err := w.Tables.Get(ctx, catalog.GetTableRequest{FullName: name}); err == nil {
			cols = t.Columns
			break
		}
	}
	have := map[string]bool{}
	for _, c := range cols {
		have[c.Name] = true
	}
	if m.docURI == "" && have["doc_uri"] {
		m.docURI = "doc_uri"
	}
	m.columns = p.opts.Columns
	if len(m.columns) == 0 {
		for _, c := range []string{m.primaryKey, m.textColumn, m.docURI} {
			if c != "" && !contains(m.columns, c) {
				m.columns = append(m.columns, c)
			}
		}
	}
	m.description = p.describe(source, cols)
	return m
}

func (p *Provider) describe(source string, cols []catalog.ColumnInfo) string {
	var b strings.Builder
	if p.opts.ToolDescription != "" {
		b.WriteString(p.opts.ToolDescription)
	} else {
		b.WriteString("A vector search-based retrieval tool for querying indexed embeddings.")
	}
	if source != "" {
		fmt.Fprintf(&b, " The queried index uses the source table %s.", source)
	}
	var lines []string
	for _, c := range cols {
		if strings.HasPrefix(c.Name, "__") {
			continue
		}
		typ := c.TypeText
		if typ == "" {
			typ = string(c.TypeName)
		}
		line := fmt.Sprintf("%s (%s)", c.Name, strings.ToUpper(typ))
		if c.Comment != "" {
			line += ": " + c.Comment
		}
		lines = append(lines, line)
	}
	if len(lines) > 0 {
		b.WriteString("\n\nThe vector search index includes the following columns:\n")
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Document is one search result as the model sees it.
type Document struct {
	PageContent string         `json:"page_content"`
	Metadata    map[string]any `json:"metadata"`
}

type tool struct {
	p   *Provider
	api interface {
		Do(context.Context, string, string, map[string]string, map[string]any, any, any, ...func(*http.Request) error) error
	}
	meta *indexMeta
}

func (t *tool) Definition() agent.ToolDefinition {
	props := map[string]any{
		"query": map[string]any{"type": "string",
			"description": "The string used to query the index with and identify the most similar vectors and return the associated documents."},
	}
	if t.p.opts.DynamicFilter {
		props["filters"] = map[string]any{
			"type": "array",
			"description": "Optional filters on the index's columns (" + strings.Join(t.meta.columns, ", ") + "). " +
				`Each item is {"key": ..., "value": ...}. Key forms: "col" (equals, or any of a list value), "col NOT", ` +
				`"col <", "col <=", "col >", "col >=", "col LIKE" (token match), "col1 OR col2" (values by position).`,
			"items": map[string]any{"type": "object", "required": []string{"key", "value"},
				"properties": map[string]any{
					"key":   map[string]any{"type": "string", "description": "column name with an optional operator"},
					"value": map[string]any{"description": "value to compare with (string, number, boolean or list)"},
				}},
		}
	}
	params, _ := json.Marshal(map[string]any{"type": "object", "properties": props, "required": []string{"query"}})
	return agent.ToolDefinition{Name: t.p.name, Description: t.meta.description, Parameters: params}
}

type filterItem struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

type callArgs struct {
	Query   string       `json:"query"`
	Filters []filterItem `json:"filters"`
}

type queryRequest struct {
	Columns        []string `json:"columns"`
	QueryText      string   `json:"query_text,omitempty"`
	NumResults     int      `json:"num_results,omitempty"`
	FiltersJSON    string   `json:"filters_json,omitempty"`
	QueryType      string   `json:"query_type,omitempty"`
	ScoreThreshold float64  `json:"score_threshold,omitempty"`
}

type queryResponse struct {
	Manifest struct {
		Columns []struct {
			Name string `json:"name"`
		} `json:"columns"`
	} `json:"manifest"`
	Result struct {
		RowCount  int     `json:"row_count"`
		DataArray [][]any `json:"data_array"`
	} `json:"result"`
}

// ArgumentError is a tool call with unusable arguments.
type ArgumentError struct{ Msg string }

func (e *ArgumentError) Error() string { return "invalid arguments: " + e.Msg }

func (t *tool) Call(ctx context.Context, arguments string) (string, error) {
	var a callArgs
	if err := json.Unmarshal([]byte(arguments), &a); err != nil {
		return "", &ArgumentError{Msg: err.Error()}
	}
	if strings.TrimSpace(a.Query) == "" {
		return "", &ArgumentError{Msg: `"query" is required`}
	}
	if len(a.Filters) > 0 && !t.p.opts.DynamicFilter {
		return "", &ArgumentError{Msg: "this tool takes no filters"}
	}
	filters := map[string]any{}
	for _, f := range a.Filters {
		if strings.TrimSpace(f.Key) == "" {
			return "", &ArgumentError{Msg: "filter with an empty key"}
		}
		filters[f.Key] = f.Value
	}
	for k, v := range t.p.opts.Filters {
		filters[k] = v // fixed filters win
	}
	req := queryRequest{
		Columns: t.meta.columns, QueryText: a.Query, NumResults: t.p.opts.NumResults,
		QueryType: t.p.opts.QueryType, ScoreThreshold: t.p.opts.ScoreThreshold,
	}
	if len(filters) > 0 {
		b, err := json.Marshal(filters)
		if err != nil {
			return "", &ArgumentError{Msg: "filters: " + err.Error()}
		}
		req.FiltersJSON = string(b)
	}
	docs, err := t.query(ctx, req)
	if err != nil {
		return "", err
	}
	out, err := json.Marshal(docs)
	return string(out), err
}

func (t *tool) query(ctx context.Context, req queryRequest) ([]Document, error) {
	var resp queryResponse
	path := "/api/2.0/vector-search/indexes/" + t.p.opts.Index + "/query"
	headers := map[string]string{"Accept": "application/json", "Content-Type": "application/json"}
	if err := t.api.Do(ctx, http.MethodPost, path, headers, nil, req, &resp); err != nil {
		return nil, fmt.Errorf("query %s: %w", t.p.opts.Index, err)
	}
	names := make([]string, len(resp.Manifest.Columns))
	for i, c := range resp.Manifest.Columns {
		names[i] = c.Name
	}
	docs := make([]Document, 0, len(resp.Result.DataArray))
	for _, row := range resp.Result.DataArray {
		d := Document{Metadata: map[string]any{}}
		for i, cell := range row {
			name := ""
			if i < len(names) {
				name = names[i]
			}
			// The service appends the score as the last cell.
			if i == len(row)-1 && (name == "score" || name == "" || i >= len(t.meta.columns)) {
				if t.p.opts.IncludeScore {
					d.Metadata["score"] = cell
				}
				continue
			}
			switch name {
			case t.meta.textColumn:
				if s, ok := cell.(string); ok {
					d.PageContent = s
				} else if cell != nil {
					d.PageContent = fmt.Sprint(cell)
				}
			case t.meta.primaryKey:
				d.Metadata["chunk_id"] = cell
			case t.meta.docURI:
				d.Metadata["doc_uri"] = cell
			default:
				d.Metadata[name] = cell
			}
		}
		docs = append(docs, d)
	}
	return docs, nil
}

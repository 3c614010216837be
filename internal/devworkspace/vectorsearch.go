package devworkspace

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// Vector Search REST API (/api/2.0/vector-search/…): endpoints, indexes and
// queries over in-memory indexes built from UC tables at start-up.

// vsCreated is the fixed creation time reported for endpoints and indexes,
// so responses are deterministic.
var vsCreated = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// loadVectorSearch builds every configured index from its source table.
func (ws *Workspace) loadVectorSearch(ctx context.Context) error {
	if t := ws.cfg.VectorSearch.DocsTable; t != "" {
		if err := ws.loadTable(ctx, t, docsTableComment, docsTableColumns, docRows(ProductDocs())); err != nil {
			return err
		}
	}
	for _, c := range ws.cfg.VectorSearch.Indexes {
		cols, rows, err := ws.sourceRows(ctx, c.SourceTable)
		if err != nil {
			return fmt.Errorf("devworkspace: index %s: %w", c.Name, err)
		}
		ix, err := newVSIndex(vsIndexSpec{
			Name: c.Name, Endpoint: c.EndpointName, PrimaryKey: c.PrimaryKey,
			TextColumn: c.EmbeddingSourceColumn, SourceTable: c.SourceTable,
			EmbeddingEndpoint: c.EmbeddingEndpoint, Columns: cols,
		}, rows)
		if err != nil {
			return fmt.Errorf("devworkspace: %w", err)
		}
		ws.apis.indexes[c.Name] = ix
		ws.apis.indexOrder = append(ws.apis.indexOrder, c.Name)
		// In Unity Catalog an index is a table-like securable: GET
		// /unity-catalog/tables/{index} describes its columns (clients read
		// their comments for tool descriptions) and grants on its schema
		// apply. It holds no SQL data, so SELECT from it fails, as it does
		// on Databricks.
		key := strings.ToLower(c.Name)
		ws.catalog.mu.Lock()
		_, clash := ws.catalog.tables[key]
		if !clash {
			ws.catalog.tables[key] = &ucTable{FullName: c.Name, Comment: indexComment(c), Columns: ws.catalog.tables[strings.ToLower(c.SourceTable)].Columns, Created: time.UnixMilli(vsCreated)}
		}
		ws.catalog.mu.Unlock()
		if clash {
			return fmt.Errorf("devworkspace: index %s: a table with that name exists", c.Name)
		}
	}
	return nil
}

func indexComment(c VectorSearchIndexConfig) string {
	if c.Comment != "" {
		return c.Comment
	}
	return "Vector search index over " + c.SourceTable + " (embedding source column " + c.EmbeddingSourceColumn + ", endpoint " + c.EndpointName + ")"
}

const docsTableComment = "Documentation chunks for the fictional Kestrel product line (dev workspace sample data)"

var docsTableColumns = []ColumnConfig{
	{Name: "id", Type: "bigint", Comment: "Chunk id (primary key)"},
	{Name: "title", Type: "string", Comment: "Page title"},
	{Name: "body", Type: "string", Comment: "Chunk text; the index's embedding source"},
	{Name: "url", Type: "string", Comment: "Documentation page URL"},
	{Name: "product", Type: "string", Comment: "Product the page documents"},
	{Name: "updated_at", Type: "timestamp", Comment: "Last update (UTC)"},
}

// sourceRows reads a whole UC table from the embedded database (as the
// index pipeline, not as a user) with cells typed for the index: int64,
// float64, bool, string (timestamps as RFC 3339) or nil.
func (ws *Workspace) sourceRows(ctx context.Context, table string) ([]vsColumn, [][]any, error) {
	t := ws.catalog.table(table)
	if t == nil {
		return nil, nil, &NotFoundError{Kind: "table", Name: table}
	}
	cols := make([]vsColumn, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = vsColumn{Name: c.Name, TypeText: strings.ToLower(c.Type)}
	}
	conn, err := ws.db.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if err := ws.db.setAuthorizer(conn, func(sqlite.AuthorizerActionCode, string, string, string, string) sqlite.AuthorizerReturnCode {
		return sqlite.AuthorizerOK
	}); err != nil {
		return nil, nil, err
	}
	rs, err := conn.QueryContext(ctx, "SELECT * FROM "+quoteIdent(strings.ToLower(table)))
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	var rows [][]any
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		for i, v := range vals {
			switch x := v.(type) {
			case []byte:
				vals[i] = string(x)
			case time.Time:
				vals[i] = x.UTC().Format(time.RFC3339)
			case int:
				vals[i] = int64(x)
			}
		}
		rows = append(rows, vals)
	}
	return cols, rows, rs.Err()
}

func (ws *Workspace) registerVectorSearch() {
	ws.route("GET /api/2.0/vector-search/endpoints", ws.handleVSListEndpoints)
	ws.route("GET /api/2.0/vector-search/endpoints/{name}", ws.handleVSGetEndpoint)
	ws.route("GET /api/2.0/vector-search/indexes", ws.handleVSListIndexes)
	ws.route("GET /api/2.0/vector-search/indexes/{name}", ws.handleVSGetIndex)
	ws.route("POST /api/2.0/vector-search/indexes/{name}/query", ws.handleVSQuery)
	ws.route("POST /api/2.0/vector-search/indexes/{name}/query-next-page", ws.handleVSQueryNextPage)
}

// Wire shapes (the fields the SDK's vectorsearch package reads).

type vsEndpointInfo struct {
	Name                 string `json:"name"`
	ID                   string `json:"id"`
	EndpointType         string `json:"endpoint_type"`
	EndpointStatus       any    `json:"endpoint_status"`
	NumIndexes           int    `json:"num_indexes"`
	Creator              string `json:"creator"`
	CreationTimestamp    int64  `json:"creation_timestamp"`
	LastUpdatedTimestamp int64  `json:"last_updated_timestamp"`
	LastUpdatedUser      string `json:"last_updated_user"`
}

const vsCreator = "admin@example.com"

func (ws *Workspace) endpointInfo(e VectorSearchEndpointConfig) vsEndpointInfo {
	n := 0
	for _, name := range ws.apis.indexOrder {
		if ws.apis.indexes[name].spec.Endpoint == e.Name {
			n++
		}
	}
	return vsEndpointInfo{
		Name: e.Name, ID: "vse-" + apiHash(e.Name), EndpointType: e.EndpointType,
		EndpointStatus: map[string]string{"state": "ONLINE", "message": "Endpoint is online"},
		NumIndexes:     n, Creator: vsCreator, CreationTimestamp: vsCreated,
		LastUpdatedTimestamp: vsCreated, LastUpdatedUser: vsCreator,
	}
}

func (ws *Workspace) handleVSListEndpoints(w http.ResponseWriter, r *http.Request) {
	out := []vsEndpointInfo{}
	for _, e := range ws.cfg.VectorSearch.Endpoints {
		out = append(out, ws.endpointInfo(ws.apis.vsEndpoints[e.Name]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": out})
}

func (ws *Workspace) handleVSGetEndpoint(w http.ResponseWriter, r *http.Request) {
	e, ok := ws.apis.vsEndpoints[r.PathValue("name")]
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "Vector search endpoint %s not found", r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, ws.endpointInfo(e))
}

func (ws *Workspace) handleVSListIndexes(w http.ResponseWriter, r *http.Request) {
	ep := r.URL.Query().Get("endpoint_name")
	if ep == "" {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "endpoint_name is required")
		return
	}
	if _, ok := ws.apis.vsEndpoints[ep]; !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "Vector search endpoint %s not found", ep)
		return
	}
	out := []map[string]any{}
	for _, name := range ws.apis.indexOrder {
		ix := ws.apis.indexes[name]
		if ix.spec.Endpoint != ep {
			continue
		}
		out = append(out, map[string]any{
			"name": name, "endpoint_name": ep, "primary_key": ix.spec.PrimaryKey,
			"index_type": "DELTA_SYNC", "creator": vsCreator,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"vector_indexes": out})
}

// indexFor finds an index and checks that p may read it: USE_CATALOG,
// USE_SCHEMA and SELECT on the index, as the service requires.
func (ws *Workspace) indexFor(p *Principal, name string) (*vsIndex, error) {
	ix, ok := ws.apis.indexes[name]
	if !ok {
		return nil, &NotFoundError{Kind: "index", Name: name}
	}
	if err := ws.acl.checkUC(p, PrivSelect, "table", name); err != nil {
		return nil, err
	}
	return ix, nil
}

// lookupIndex is indexFor for the caller of r, writing 404/403 itself.
func (ws *Workspace) lookupIndex(w http.ResponseWriter, r *http.Request, name string) (*vsIndex, bool) {
	ix, err := ws.indexFor(callerFrom(r.Context()).Principal, name)
	if err != nil {
		writeErr(w, err)
		return nil, false
	}
	return ix, true
}

func (ws *Workspace) handleVSGetIndex(w http.ResponseWriter, r *http.Request) {
	ix, ok := ws.lookupIndex(w, r, r.PathValue("name"))
	if !ok {
		return
	}
	var sync []string
	for _, c := range ix.spec.Columns {
		sync = append(sync, c.Name)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": ix.spec.Name, "endpoint_name": ix.spec.Endpoint, "primary_key": ix.spec.PrimaryKey,
		"index_type": "DELTA_SYNC", "index_subtype": "HYBRID", "creator": vsCreator,
		"delta_sync_index_spec": map[string]any{
			"source_table": ix.spec.SourceTable,
			"embedding_source_columns": []map[string]any{{
				"name": ix.spec.TextColumn, "embedding_model_endpoint_name": ix.spec.EmbeddingEndpoint,
			}},
			"columns_to_sync": sync,
			"pipeline_type":   "TRIGGERED",
			"pipeline_id":     "pl-" + apiHash(ix.spec.Name),
		},
		"status": map[string]any{
			"ready": true, "indexed_row_count": len(ix.rows),
			"message":   "Index is ready; embeddings are the dev workspace's deterministic hashed bag of words",
			"index_url": ws.baseURL(r) + "/api/2.0/vector-search/indexes/" + ix.spec.Name,
		},
	})
}

// vsQueryRequest is the query body (QueryVectorIndexRequest on the wire).
// Columns is a pointer-free slice: JSON null and a missing field both
// leave it empty, which is an error, as columns is required.
type vsQueryRequest struct {
	Columns        []string  `json:"columns"`
	QueryText      string    `json:"query_text,omitempty"`
	QueryVector    []float32 `json:"query_vector,omitempty"`
	NumResults     int       `json:"num_results,omitempty"`
	FiltersJSON    string    `json:"filters_json,omitempty"`
	QueryType      string    `json:"query_type,omitempty"`
	ScoreThreshold float64   `json:"score_threshold,omitempty"`
	// Accepted and ignored: the dev index has no reranker, and ordering by
	// relevance is what a reranker would refine.
	ColumnsToRerank []string        `json:"columns_to_rerank,omitempty"`
	Reranker        json.RawMessage `json:"reranker,omitempty"`
	QueryColumns    []string        `json:"query_columns,omitempty"`
	// Not supported: refused with a clear error rather than silently ignored.
	SortColumns []string `json:"sort_columns,omitempty"`
	Facets      []string `json:"facets,omitempty"`
}

// vsPageToken is the opaque next_page_token: the query and where the next
// page starts. Queries are deterministic, so re-running one and skipping
// Offset rows continues exactly where the previous page ended, with the
// caller's rights checked again on every page.
type vsPageToken struct {
	Index  string         `json:"i"`
	Query  vsQueryRequest `json:"q"`
	Offset int            `json:"o"`
}

func (ws *Workspace) handleVSQuery(w http.ResponseWriter, r *http.Request) {
	var req vsQueryRequest
	if !decodeBody(w, r, &req) {
		return
	}
	ws.runVSQuery(w, r, r.PathValue("name"), req, 0)
}

func (ws *Workspace) handleVSQueryNextPage(w http.ResponseWriter, r *http.Request) {
	var req struct {
		EndpointName string `json:"endpoint_name"`
		PageToken    string `json:"page_token"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	name := r.PathValue("name")
	raw, err := base64.RawURLEncoding.DecodeString(req.PageToken)
	var tok vsPageToken
	if err == nil {
		err = json.Unmarshal(raw, &tok)
	}
	if req.PageToken == "" || err != nil || tok.Index != name || tok.Offset <= 0 {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "page_token is not a next_page_token of a query on index %s", name)
		return
	}
	if ix, ok := ws.apis.indexes[name]; ok && req.EndpointName != "" && req.EndpointName != ix.spec.Endpoint {
		writeError(w, http.StatusBadRequest, codeInvalidParam, "index %s is on endpoint %s, not %s", name, ix.spec.Endpoint, req.EndpointName)
		return
	}
	ws.runVSQuery(w, r, name, tok.Query, tok.Offset)
}

// vsQueryResult is the query response.
type vsQueryResult struct {
	Manifest struct {
		ColumnCount int              `json:"column_count"`
		Columns     []map[string]any `json:"columns"`
	} `json:"manifest"`
	Result struct {
		RowCount  int     `json:"row_count"`
		DataArray [][]any `json:"data_array"`
	} `json:"result"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

func (ws *Workspace) runVSQuery(w http.ResponseWriter, r *http.Request, name string, req vsQueryRequest, offset int) {
	ix, ok := ws.lookupIndex(w, r, name)
	if !ok {
		return
	}
	res, err := ws.vsQuery(ix, req, offset)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// vsQuery validates req and runs it on ix, returning the page at offset.
func (ws *Workspace) vsQuery(ix *vsIndex, req vsQueryRequest, offset int) (*vsQueryResult, error) {
	if len(req.SortColumns) > 0 || len(req.Facets) > 0 {
		return nil, badRequest("sort_columns and facets are not supported by the dev workspace")
	}
	for _, c := range req.QueryColumns {
		if c != ix.spec.TextColumn {
			return nil, badRequest("query_columns: %q is not a text column of %s (the only one is %s)", c, ix.spec.Name, ix.spec.TextColumn)
		}
	}
	cols, err := ix.resolveColumns(req.Columns)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	q := vsQuery{
		Text: req.QueryText, Vector: req.QueryVector, NumResults: req.NumResults,
		QueryType: strings.ToUpper(req.QueryType), ScoreThreshold: req.ScoreThreshold,
	}
	if q.NumResults == 0 {
		q.NumResults = vsDefaultResults
	}
	if q.NumResults < 0 || q.NumResults > vsMaxResults {
		return nil, badRequest("num_results must be between 1 and %d, got %d", vsMaxResults, req.NumResults)
	}
	if q.QueryType == "" {
		q.QueryType = queryANN
	}
	switch q.QueryType {
	case queryANN:
		if q.Text == "" && q.Vector == nil {
			return nil, badRequest("one of query_text or query_vector is required")
		}
	case queryHybrid, queryFullText:
		if q.Text == "" {
			return nil, badRequest("query_type %s needs query_text", q.QueryType)
		}
	default:
		return nil, badRequest("query_type must be ANN, HYBRID or FULL_TEXT, got %q", req.QueryType)
	}
	if q.Filters, err = parseFilters(req.FiltersJSON, ix.colIndex); err != nil {
		return nil, badRequest("invalid filters_json: %v", err)
	}
	hits, err := ix.search(q)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	pageSize := ws.cfg.VectorSearch.PageSize
	if pageSize <= 0 {
		pageSize = vsDefaultPageSize
	}
	if offset > len(hits) {
		offset = len(hits)
	}
	end := min(offset+pageSize, len(hits))
	res := &vsQueryResult{}
	for _, c := range cols {
		col := ix.spec.Columns[c]
		res.Manifest.Columns = append(res.Manifest.Columns, map[string]any{"name": col.Name, "type_text": col.TypeText, "type_name": strings.ToUpper(col.TypeText)})
	}
	res.Manifest.Columns = append(res.Manifest.Columns, map[string]any{"name": "score", "type_text": "double", "type_name": "DOUBLE"})
	res.Manifest.ColumnCount = len(res.Manifest.Columns)
	res.Result.DataArray = ix.project(hits[offset:end], cols)
	if ws.cfg.VectorSearch.StringCells {
		stringifyCells(res.Result.DataArray)
	}
	res.Result.RowCount = len(res.Result.DataArray)
	if end < len(hits) {
		b, _ := json.Marshal(vsPageToken{Index: ix.spec.Name, Query: req, Offset: end})
		res.NextPageToken = base64.RawURLEncoding.EncodeToString(b)
	}
	return res, nil
}

// stringifyCells renders every cell as a JSON string (null stays null).
func stringifyCells(rows [][]any) {
	for _, row := range rows {
		for i, c := range row {
			switch x := c.(type) {
			case nil, string:
			case float64:
				row[i] = strconv.FormatFloat(x, 'g', -1, 64)
			default:
				row[i] = fmt.Sprint(x)
			}
		}
	}
}

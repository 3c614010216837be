package devworkspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/vectorsearch"
)

// apisWorkspace starts the default workspace on a loopback port for one test.
func apisWorkspace(t testing.TB, opts Options) *Workspace {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ws, err := Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); ws.Close() })
	return ws
}

// apisNoLoader keeps the SDK from reading the environment or ~/.databrickscfg.
type apisNoLoader struct{}

func (apisNoLoader) Name() string                   { return "none" }
func (apisNoLoader) Configure(*config.Config) error { return nil }

// apisConfig is a hermetic SDK config for a PAT, or for M2M when token is
// empty (the default service principal).
func apisConfig(ws *Workspace, token string) *config.Config {
	c := &config.Config{
		Host: ws.URL(), Loaders: []config.Loader{apisNoLoader{}}, RetryTimeoutSeconds: 5,
		HostMetadataResolver: func(context.Context, string) (*config.HostMetadata, error) { return nil, nil },
		RateLimitPerSecond:   1000,
	}
	if token == "" {
		c.ClientID, c.ClientSecret, c.AuthType = SPClientID, SPClientSecret, "oauth-m2m"
	} else {
		c.Token, c.AuthType = token, "pat"
	}
	return c
}

func apisSDK(t testing.TB, ws *Workspace, token string) *databricks.WorkspaceClient {
	t.Helper()
	w, err := databricks.NewWorkspaceClient((*databricks.Config)(apisConfig(ws, token)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func apisRaw(t testing.TB, ws *Workspace, token string) *client.DatabricksClient {
	t.Helper()
	c, err := client.New(apisConfig(ws, token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// vsResponse is how a client decodes a query with typed cells.
type vsResponse struct {
	Manifest struct {
		ColumnCount int `json:"column_count"`
		Columns     []struct {
			Name string `json:"name"`
		} `json:"columns"`
	} `json:"manifest"`
	Result struct {
		RowCount  int     `json:"row_count"`
		DataArray [][]any `json:"data_array"`
	} `json:"result"`
	NextPageToken string `json:"next_page_token"`
}

func vsQueryRaw(t testing.TB, c *client.DatabricksClient, index string, body map[string]any) (*vsResponse, error) {
	t.Helper()
	var out vsResponse
	err := c.Do(context.Background(), http.MethodPost, "/api/2.0/vector-search/indexes/"+index+"/query",
		map[string]string{"Content-Type": "application/json", "Accept": "application/json"}, nil, body, &out)
	return &out, err
}

func TestVectorSearchQueryThroughSDK(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	alice := apisRaw(t, ws, AliceToken)

	res, err := vsQueryRaw(t, alice, docsIndex, map[string]any{
		"columns": []string{"id", "title", "product"}, "query_text": "restore Kestrel Vault from a backup archive", "num_results": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.ColumnCount != 4 || res.Manifest.Columns[3].Name != "score" || res.Result.RowCount != 3 {
		t.Fatalf("manifest/rows: %+v", res)
	}
	top := res.Result.DataArray[0]
	if _, ok := top[0].(float64); !ok {
		t.Fatalf("id cell %T, want a JSON number", top[0])
	}
	if _, ok := top[3].(float64); !ok {
		t.Fatalf("score cell %T, want a JSON number", top[3])
	}
	if top[1] != "Restoring from a backup" || top[2] != "Kestrel Vault" {
		t.Fatalf("top hit %v", top)
	}

	// The typed SDK method cannot decode numeric cells: the known SDK gap.
	w := apisSDK(t, ws, AliceToken)
	_, err = w.VectorSearchIndexes.QueryIndex(context.Background(), vectorsearch.QueryVectorIndexRequest{
		IndexName: docsIndex, Columns: []string{"id"}, QueryText: "backup",
	})
	if err == nil || !strings.Contains(err.Error(), "unmarshal") {
		t.Fatalf("typed QueryIndex err = %v, want an unmarshal failure", err)
	}

	// Same query as agent-sp over M2M.
	sp := apisRaw(t, ws, "")
	if _, err := vsQueryRaw(t, sp, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "pricing"}); err != nil {
		t.Fatalf("agent-sp: %v", err)
	}
}

func TestVectorSearchErrors(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	alice, bob, carol := apisRaw(t, ws, AliceToken), apisRaw(t, ws, BobToken), apisRaw(t, ws, CarolToken)
	q := map[string]any{"columns": []string{"id"}, "query_text": "backup"}
	tests := []struct {
		name   string
		c      *client.DatabricksClient
		index  string
		body   map[string]any
		target error
	}{
		{"bob lacks SELECT", bob, docsIndex, q, databricks.ErrPermissionDenied},
		{"carol lacks USE_CATALOG", carol, docsIndex, q, databricks.ErrPermissionDenied},
		{"missing index", alice, "main.docs.nope", q, databricks.ErrResourceDoesNotExist},
		{"columns null", alice, docsIndex, map[string]any{"columns": nil, "query_text": "x"}, databricks.ErrInvalidParameterValue},
		{"unknown column", alice, docsIndex, map[string]any{"columns": []string{"nope"}, "query_text": "x"}, databricks.ErrInvalidParameterValue},
		{"bad filter", alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "x", "filters_json": `{"id BETWEEN": 1}`}, databricks.ErrInvalidParameterValue},
		{"no query", alice, docsIndex, map[string]any{"columns": []string{"id"}}, databricks.ErrInvalidParameterValue},
		{"bad query type", alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "x", "query_type": "MAGIC"}, databricks.ErrInvalidParameterValue},
		{"sort unsupported", alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "x", "sort_columns": []string{"id ASC"}}, databricks.ErrInvalidParameterValue},
		{"bad query_columns", alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "x", "query_columns": []string{"title"}}, databricks.ErrInvalidParameterValue},
		{"too many results", alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "x", "num_results": 10001}, databricks.ErrInvalidParameterValue},
	}
	for _, tt := range tests {
		_, err := vsQueryRaw(t, tt.c, tt.index, tt.body)
		if !errors.Is(err, tt.target) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.target)
		}
		var ae *apierr.APIError
		if errors.As(err, &ae) && tt.target == databricks.ErrPermissionDenied && !strings.Contains(ae.Message, "main") {
			t.Errorf("%s: message %q does not name the securable", tt.name, ae.Message)
		}
	}
	// Typed GetIndex as bob: 403 too.
	_, err := apisSDK(t, ws, BobToken).VectorSearchIndexes.GetIndexByIndexName(context.Background(), docsIndex)
	if !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("bob GetIndex: %v", err)
	}
}

func TestVectorSearchFiltersAndQueryTypes(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	alice := apisRaw(t, ws, AliceToken)
	filters := []struct {
		filter string
		ok     func(row []any) bool
	}{
		{`{"product": "Kestrel Lens"}`, func(r []any) bool { return r[1] == "Kestrel Lens" }},
		{`{"product": ["Kestrel Lens", "Kestrel Sync"]}`, func(r []any) bool { return r[1] == "Kestrel Lens" || r[1] == "Kestrel Sync" }},
		{`{"product NOT": "Kestrel Lens"}`, func(r []any) bool { return r[1] != "Kestrel Lens" }},
		{`{"id <": 30}`, func(r []any) bool { return r[0].(float64) < 30 }},
		{`{"id >=": 180}`, func(r []any) bool { return r[0].(float64) >= 180 }},
		{`{"title LIKE": "troubleshooting"}`, func(r []any) bool { return strings.Contains(r[2].(string), "Troubleshooting") }},
		{`{"product OR id": ["Kestrel Relay", 3]}`, func(r []any) bool { return r[1] == "Kestrel Relay" || r[0] == 3.0 }},
	}
	for _, f := range filters {
		res, err := vsQueryRaw(t, alice, docsIndex, map[string]any{
			"columns": []string{"id", "product", "title"}, "query_text": "slow responses and errors", "num_results": 50, "filters_json": f.filter,
		})
		if err != nil {
			t.Fatalf("%s: %v", f.filter, err)
		}
		if res.Result.RowCount == 0 {
			t.Fatalf("%s: no rows", f.filter)
		}
		for _, row := range res.Result.DataArray {
			if !f.ok(row) {
				t.Fatalf("%s: row %v violates the filter", f.filter, row)
			}
		}
	}

	// HYBRID ranks the chunk holding a rare literal first; FULL_TEXT returns
	// only chunks containing a query term; score_threshold drops weak rows.
	hyb, err := vsQueryRaw(t, alice, docsIndex, map[string]any{"columns": []string{"body"}, "query_text": "port 9092", "query_type": "HYBRID", "num_results": 5})
	if err != nil || !strings.Contains(hyb.Result.DataArray[0][0].(string), "9092") {
		t.Fatalf("HYBRID top = %v, %v", hyb.Result.DataArray, err)
	}
	ft, err := vsQueryRaw(t, alice, docsIndex, map[string]any{"columns": []string{"body"}, "query_text": "Twilio", "query_type": "FULL_TEXT", "num_results": 50})
	if err != nil || ft.Result.RowCount == 0 {
		t.Fatalf("FULL_TEXT: %v %v", ft, err)
	}
	for _, row := range ft.Result.DataArray {
		if !strings.Contains(row[0].(string), "Twilio") {
			t.Fatalf("FULL_TEXT row without the term: %v", row)
		}
	}
	full, err := vsQueryRaw(t, alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "quiet hours for SMS", "num_results": 200})
	if err != nil || full.Result.RowCount != 200 {
		t.Fatalf("all rows: %v", err)
	}
	cut := full.Result.DataArray[9][1].(float64)
	th, err := vsQueryRaw(t, alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "quiet hours for SMS", "num_results": 200, "score_threshold": cut})
	if err != nil || th.Result.RowCount < 10 || th.Result.RowCount >= 200 {
		t.Fatalf("score_threshold %v kept %d rows (%v)", cut, th.Result.RowCount, err)
	}
	for _, row := range th.Result.DataArray {
		if row[1].(float64) < cut {
			t.Fatalf("row %v below threshold %v", row, cut)
		}
	}

	// query_vector with the dev embedding finds the same top row as query_text.
	vec := Embed("single sign-on with SAML")
	byVec, err := vsQueryRaw(t, alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_vector": vec, "num_results": 1})
	if err != nil {
		t.Fatal(err)
	}
	byText, _ := vsQueryRaw(t, alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "single sign-on with SAML", "num_results": 1})
	if byVec.Result.DataArray[0][0] != byText.Result.DataArray[0][0] {
		t.Fatalf("query_vector top %v != query_text top %v", byVec.Result.DataArray[0], byText.Result.DataArray[0])
	}
}

func TestVectorSearchPagination(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.VectorSearch.PageSize = 7
	ws := apisWorkspace(t, Options{Config: cfg})
	alice := apisRaw(t, ws, AliceToken)
	body := map[string]any{"columns": []string{"id"}, "query_text": "install configuration", "num_results": 20}
	first, err := vsQueryRaw(t, alice, docsIndex, body)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := vsQueryRaw(t, alice, docsIndex, map[string]any{"columns": []string{"id"}, "query_text": "install configuration", "num_results": 20})
	var ids []any
	page := first
	for pages := 1; ; pages++ {
		if page.Result.RowCount > 7 {
			t.Fatalf("page of %d rows", page.Result.RowCount)
		}
		for _, r := range page.Result.DataArray {
			ids = append(ids, r[0])
		}
		if page.NextPageToken == "" {
			if pages != 3 {
				t.Fatalf("%d pages, want 3", pages)
			}
			break
		}
		var next vsResponse
		err := alice.Do(context.Background(), http.MethodPost, "/api/2.0/vector-search/indexes/"+docsIndex+"/query-next-page",
			nil, nil, map[string]any{"endpoint_name": docsEndpoint, "page_token": page.NextPageToken}, &next)
		if err != nil {
			t.Fatal(err)
		}
		page = &next
	}
	if len(ids) != 20 || ids[0] != all.Result.DataArray[0][0] {
		t.Fatalf("paged ids %v", ids)
	}
	seen := map[any]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %v across pages", id)
		}
		seen[id] = true
	}
	// A token is bound to its index, and bob cannot use alice's token.
	err = apisRaw(t, ws, BobToken).Do(context.Background(), http.MethodPost, "/api/2.0/vector-search/indexes/"+docsIndex+"/query-next-page",
		nil, nil, map[string]any{"page_token": first.NextPageToken}, &vsResponse{})
	if !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("bob next page: %v", err)
	}
	err = alice.Do(context.Background(), http.MethodPost, "/api/2.0/vector-search/indexes/"+docsIndex+"/query-next-page",
		nil, nil, map[string]any{"page_token": "garbage"}, &vsResponse{})
	if !errors.Is(err, databricks.ErrInvalidParameterValue) {
		t.Fatalf("garbage token: %v", err)
	}
}

func TestVectorSearchTypedMetadata(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ctx := context.Background()
	w := apisSDK(t, ws, AliceToken)
	ix, err := w.VectorSearchIndexes.GetIndexByIndexName(ctx, docsIndex)
	if err != nil {
		t.Fatal(err)
	}
	if ix.IndexType != vectorsearch.VectorIndexTypeDeltaSync || ix.PrimaryKey != "id" || ix.EndpointName != docsEndpoint ||
		ix.DeltaSyncIndexSpec == nil || ix.DeltaSyncIndexSpec.SourceTable != docsTable ||
		ix.DeltaSyncIndexSpec.EmbeddingSourceColumns[0].Name != "body" ||
		ix.DeltaSyncIndexSpec.EmbeddingSourceColumns[0].EmbeddingModelEndpointName != "dev-embeddings" ||
		ix.Status == nil || !ix.Status.Ready || ix.Status.IndexedRowCount != int64(len(ProductDocs())) {
		b, _ := json.Marshal(ix)
		t.Fatalf("index = %s", b)
	}
	eps, err := apisSDK(t, ws, "").VectorSearchEndpoints.ListEndpointsAll(ctx, vectorsearch.ListEndpointsRequest{})
	if err != nil || len(eps) != 1 || eps[0].Name != docsEndpoint || eps[0].EndpointStatus.State != vectorsearch.EndpointStatusStateOnline || eps[0].NumIndexes != 1 {
		t.Fatalf("endpoints = %+v, %v", eps, err)
	}
	if _, err := w.VectorSearchEndpoints.GetEndpointByEndpointName(ctx, "nope"); !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("missing endpoint: %v", err)
	}
	idx, err := w.VectorSearchIndexes.ListIndexesAll(ctx, vectorsearch.ListIndexesRequest{EndpointName: docsEndpoint})
	if err != nil || len(idx) != 1 || idx[0].Name != docsIndex {
		t.Fatalf("indexes = %+v, %v", idx, err)
	}
	// UC describes the index like a table (its columns and comments), with
	// the same rights.
	tbl, err := w.Tables.GetByFullName(ctx, docsIndex)
	if err != nil || len(tbl.Columns) != len(docsTableColumns) || tbl.Columns[2].Name != "body" || !strings.Contains(tbl.Comment, docsTable) {
		t.Fatalf("UC table for the index: %+v, %v", tbl, err)
	}
	if _, err := apisSDK(t, ws, BobToken).Tables.GetByFullName(ctx, docsIndex); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("bob UC get index: %v", err)
	}
	// The docs table itself is a real table: SQL sees the same 200 rows.
	rs, err := ws.query(ctx, ws.principal("alice@example.com"), "SELECT count(*) AS n FROM main.docs.product_docs WHERE product = 'Kestrel Vault'", nil)
	if err != nil || len(rs.Rows) != 1 || rs.Rows[0][0] != int64(25) {
		t.Fatalf("SQL over docs: %+v, %v", rs, err)
	}
}

func TestVectorSearchStringCells(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.VectorSearch.StringCells = true
	ws := apisWorkspace(t, Options{Config: cfg})
	res, err := apisSDK(t, ws, AliceToken).VectorSearchIndexes.QueryIndex(context.Background(), vectorsearch.QueryVectorIndexRequest{
		IndexName: docsIndex, Columns: []string{"id", "title"}, QueryText: "webhooks signature", NumResults: 2,
	})
	if err != nil {
		t.Fatalf("typed QueryIndex with string cells: %v", err)
	}
	if len(res.Result.DataArray) != 2 || res.Result.DataArray[0][1] != "Webhooks and events" {
		t.Fatalf("rows = %v", res.Result.DataArray)
	}
}

// BenchmarkVectorSearchQueryHTTP measures a query end to end (SDK ApiClient
// → loopback HTTP → auth, ACL, search, JSON) at the default corpus size and
// with the index swapped for a 100,000-row one built from the same corpus.
func BenchmarkVectorSearchQueryHTTP(b *testing.B) {
	for _, n := range []int{len(ProductDocs()), 100_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			ws := apisWorkspace(b, Options{})
			if n != len(ProductDocs()) {
				ws.apis.indexes[docsIndex] = newDocsIndex(b, syntheticDocRows(n))
			}
			c := apisRaw(b, ws, AliceToken)
			queries := []string{"how do I restore from a backup", "consumer lag alerting", "single sign-on with SAML", "invoice payment retries"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				res, err := vsQueryRaw(b, c, docsIndex, map[string]any{"columns": []string{"id", "title", "url"}, "query_text": queries[i%len(queries)], "num_results": 5})
				if err != nil || res.Result.RowCount != 5 {
					b.Fatalf("%v %+v", err, res.Result)
				}
			}
		})
	}
}

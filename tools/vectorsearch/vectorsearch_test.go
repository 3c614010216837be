package vectorsearch_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/vectorsearch"
)

const index = "main.docs.chunks_idx"

// fakeVS serves one index; "bob-token" is refused, as a caller without
// SELECT on the index would be.
func fakeVS(t *testing.T, lastQuery *map[string]any) *httptest.Server {
	mux := http.NewServeMux()
	deny := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "Bearer bob-token" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error_code":"PERMISSION_DENIED","message":"User bob does not have SELECT on index main.docs.chunks_idx"}`)
			return true
		}
		return false
	}
	mux.HandleFunc("GET /api/2.0/vector-search/indexes/"+index, func(w http.ResponseWriter, r *http.Request) {
		if deny(w, r) {
			return
		}
		io.WriteString(w, `{"name":"main.docs.chunks_idx","endpoint_name":"ep","primary_key":"id","index_type":"DELTA_SYNC",
			"delta_sync_index_spec":{"source_table":"main.docs.chunks","embedding_source_columns":[{"name":"text","embedding_model_endpoint_name":"emb"}]},
			"status":{"ready":true}}`)
	})
	mux.HandleFunc("GET /api/2.1/unity-catalog/tables/"+index, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"full_name":"main.docs.chunks_idx","columns":[
			{"name":"id","type_text":"bigint","type_name":"LONG"},
			{"name":"text","type_text":"string","type_name":"STRING","comment":"chunk text"},
			{"name":"doc_uri","type_text":"string","type_name":"STRING"},
			{"name":"lang","type_text":"string","type_name":"STRING"},
			{"name":"__db_vector","type_text":"array<float>","type_name":"ARRAY"}]}`)
	})
	mux.HandleFunc("POST /api/2.0/vector-search/indexes/"+index+"/query", func(w http.ResponseWriter, r *http.Request) {
		if deny(w, r) {
			return
		}
		var q map[string]any
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			t.Errorf("query body: %v", err)
		}
		*lastQuery = q
		if q["query_text"] == "boom" {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error_code":"INTERNAL_ERROR","message":"index is rebuilding"}`)
			return
		}
		// Typed cells, as the live service sends them: numbers stay numbers.
		io.WriteString(w, `{"manifest":{"column_count":4,"columns":[{"name":"id"},{"name":"text"},{"name":"doc_uri"},{"name":"score"}]},
			"result":{"row_count":2,"data_array":[[42,"Reset your password from settings.","https://docs/x",0.83],[7,"Passwords expire after 90 days.","https://docs/y",0.51]]}}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func prepare(t *testing.T, o vectorsearch.Options, w *databricks.WorkspaceClient) ([]byte, error) {
	p, err := vectorsearch.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := p.Prepare(context.Background(), w)
	if err != nil {
		return nil, err
	}
	if len(ts) != 1 {
		t.Fatalf("tools = %d", len(ts))
	}
	def, _ := json.Marshal(ts[0].Definition())
	return def, nil
}

func TestRetriever(t *testing.T) {
	var last map[string]any
	srv := fakeVS(t, &last)
	alice := testws.PAT(t, srv.URL, "alice-token")
	p, err := vectorsearch.New(vectorsearch.Options{Index: index, IncludeScore: true, Filters: map[string]any{"lang": "en"},
		DynamicFilter: true, NumResults: 3, ScoreThreshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := p.Prepare(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	def := ts[0].Definition()
	if def.Name != "main__docs__chunks_idx" {
		t.Errorf("name = %q", def.Name)
	}
	for _, want := range []string{"source table main.docs.chunks", "text (STRING): chunk text", "doc_uri (STRING)"} {
		if !strings.Contains(def.Description, want) {
			t.Errorf("description lacks %q:\n%s", want, def.Description)
		}
	}
	if strings.Contains(def.Description, "__db_vector") {
		t.Error("description lists a __ column")
	}
	if !strings.Contains(string(def.Parameters), `"filters"`) {
		t.Errorf("dynamic filters missing from schema: %s", def.Parameters)
	}
	out, err := ts[0].Call(context.Background(), `{"query":"reset password","filters":[{"key":"lang","value":"fr"},{"key":"id >","value":5}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var docs []vectorsearch.Document
	if err := json.Unmarshal([]byte(out), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].PageContent != "Reset your password from settings." ||
		docs[0].Metadata["chunk_id"] != float64(42) || docs[0].Metadata["doc_uri"] != "https://docs/x" || docs[0].Metadata["score"] != 0.83 {
		t.Errorf("docs = %+v", docs)
	}
	var filters map[string]any
	_ = json.Unmarshal([]byte(last["filters_json"].(string)), &filters)
	if filters["lang"] != "en" || filters["id >"] != float64(5) {
		t.Errorf("filters = %v (fixed filters must win)", filters)
	}
	if last["num_results"] != float64(3) || last["query_type"] != "ANN" || last["score_threshold"] != 0.5 {
		t.Errorf("query = %v", last)
	}
	if cols := last["columns"].([]any); len(cols) != 3 {
		t.Errorf("columns = %v", cols)
	}

	// A failing query is a tool error, not a panic or an empty result.
	if _, err := ts[0].Call(context.Background(), `{"query":"boom"}`); err == nil || !strings.Contains(err.Error(), "rebuilding") {
		t.Errorf("err = %v", err)
	}
	for _, bad := range []string{`{}`, `not json`, `{"query":"x","filters":[{"key":"","value":1}]}`} {
		var ae *vectorsearch.ArgumentError
		if _, err := ts[0].Call(context.Background(), bad); !errors.As(err, &ae) {
			t.Errorf("%s: err = %v, want *ArgumentError", bad, err)
		}
	}
}

func TestRetrieverDenied(t *testing.T) {
	var last map[string]any
	srv := fakeVS(t, &last)
	_, err := prepare(t, vectorsearch.Options{Index: index}, testws.PAT(t, srv.URL, "bob-token"))
	if !errors.Is(err, databricks.ErrPermissionDenied) || !tools.IsPermission(err) {
		t.Fatalf("err = %v, want permission denied", err)
	}
}

func TestOptions(t *testing.T) {
	long := "c." + strings.Repeat("s", 40) + "." + strings.Repeat("i", 40)
	if n := vectorsearch.ToolName(long); len(n) != 64 || !strings.HasSuffix(n, "iiii") {
		t.Errorf("ToolName = %q", n)
	}
	for _, o := range []vectorsearch.Options{
		{Index: "nodots"}, {Index: "a.b.c", QueryType: "FUZZY"}, {Index: "a.b.c", NumResults: -1},
		{Index: "a.b.c", ToolName: "bad name"}, {Index: "a.b.c", ScoreThreshold: -1},
	} {
		if _, err := vectorsearch.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	p, _ := vectorsearch.New(vectorsearch.Options{Index: "a.b.c"})
	r := p.Requirements()
	if r.Resources[0].Name != "a.b.c" || r.UserScopes[0] != vectorsearch.Scope {
		t.Errorf("requirements = %+v", r)
	}
}

// TestMetadataIsPerCaller: the description's column list comes from Unity
// Catalog, read as the caller. bob may query the index but not read its
// table metadata, so he must never get the columns (and their comments)
// that alice's probe fetched, whichever of them comes first. (The dev
// workspace cannot express this split: there SELECT on an index is SELECT
// on its table.)
func TestMetadataIsPerCaller(t *testing.T) {
	mux := http.NewServeMux()
	var ucReads atomic.Int32
	mux.HandleFunc("GET /api/2.0/vector-search/indexes/"+index, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"name":"main.docs.chunks_idx","endpoint_name":"ep","primary_key":"id","index_type":"DELTA_SYNC",
			"delta_sync_index_spec":{"source_table":"main.docs.chunks","embedding_source_columns":[{"name":"text"}]}}`)
	})
	mux.HandleFunc("GET /api/2.1/unity-catalog/tables/{name}", func(w http.ResponseWriter, r *http.Request) {
		ucReads.Add(1)
		if r.Header.Get("Authorization") != "Bearer alice-token" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error_code":"PERMISSION_DENIED","message":"no SELECT on `+r.PathValue("name")+`"}`)
			return
		}
		io.WriteString(w, `{"full_name":"main.docs.chunks_idx","columns":[
			{"name":"id","type_text":"bigint"},{"name":"text","type_text":"string","comment":"alice-visible comment"},
			{"name":"doc_uri","type_text":"string"}]}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := vectorsearch.New(vectorsearch.Options{Index: index})
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*databricks.WorkspaceClient{
		"alice": testws.PAT(t, srv.URL, "alice-token"), "bob": testws.PAT(t, srv.URL, "bob-token"),
	}
	for _, order := range [][]string{{"alice", "bob"}, {"bob", "alice"}, {"alice", "bob", "alice", "bob"}} {
		for _, name := range order {
			ts, err := p.Prepare(context.Background(), clients[name])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			d := ts[0].Definition().Description
			if got, want := strings.Contains(d, "alice-visible comment"), name == "alice"; got != want {
				t.Errorf("order %v: %s's description shows alice's columns: %v, want %v\n%s", order, name, got, want, d)
			}
		}
	}
	if ucReads.Load() == 0 {
		t.Fatal("no Unity Catalog read")
	}
}

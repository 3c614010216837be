package scopes

import "testing"

func TestCheck(t *testing.T) {
	tests := []struct {
		granted      []string
		method, path string
		ok           bool
		wantMissing  string
	}{
		{[]string{"all-apis"}, "POST", "/api/2.0/anything/new", true, ""},
		{nil, "GET", "/api/2.0/genie/spaces/s1", false, "dashboards.genie"},
		{[]string{"genie"}, "GET", "/api/2.0/genie/spaces/s1", true, ""},
		{[]string{"dashboards.genie"}, "POST", "/api/2.0/genie/spaces/s1/start-conversation", true, ""},
		{[]string{"dashboards.genie"}, "POST", "/api/2.0/mcp/genie/s1", false, "mcp.genie"},
		{[]string{"vectorsearch.vector-search-indexes"}, "POST", "/api/2.0/vector-search/indexes/main.docs.idx/query", true, ""},
		{[]string{"vectorsearch.vector-search-indexes"}, "GET", "/api/2.0/vector-search/endpoints", false, "vectorsearch.vector-search-endpoints"},
		{[]string{"vector-search"}, "GET", "/api/2.0/vector-search/endpoints/ep", true, ""},
		{[]string{"sql"}, "POST", "/api/2.0/sql/statements", true, ""},
		{[]string{"sql.warehouses"}, "POST", "/api/2.0/sql/statements", false, "sql.statement-execution"},
		{[]string{"serving.serving-endpoints"}, "POST", "/serving-endpoints/chat/completions", true, ""},
		{[]string{"model-serving"}, "POST", "/api/2.0/external-function", true, ""},
		{[]string{"catalog.tables:read"}, "GET", "/api/2.1/unity-catalog/tables/main.sales.orders", true, ""},
		{[]string{"catalog.tables:read"}, "DELETE", "/api/2.1/unity-catalog/tables/main.sales.orders", false, "all-apis"},
		{[]string{"unity-catalog"}, "POST", "/api/2.0/mcp/functions/main/tools", true, ""},
		{[]string{"iam.current-user:read"}, "GET", "/api/2.0/preview/scim/v2/Me", true, ""},
		{[]string{"genie"}, "GET", "/api/2.0/genieX", false, "all-apis"}, // prefix must end at a segment
	}
	for _, tt := range tests {
		ok, missing := Check(tt.granted, tt.method, tt.path)
		if ok != tt.ok || missing != tt.wantMissing {
			t.Errorf("Check(%v, %s %s) = %v, %q; want %v, %q", tt.granted, tt.method, tt.path, ok, missing, tt.ok, tt.wantMissing)
		}
	}
}

func TestKnown(t *testing.T) {
	for _, s := range []string{"all-apis", "sql", "dashboards.genie", "mcp.functions"} {
		if !Known(s) {
			t.Errorf("Known(%q) = false", s)
		}
	}
	if Known("made.up") {
		t.Error(`Known("made.up") = true`)
	}
}

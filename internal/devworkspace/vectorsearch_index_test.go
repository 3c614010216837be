package devworkspace

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestEmbedDeterministicAndNormalised(t *testing.T) {
	a, b := Embed("Backing up Kestrel Vault secrets"), Embed("Backing up Kestrel Vault secrets")
	if !slices.Equal(a, b) {
		t.Fatal("Embed is not deterministic")
	}
	var n float64
	for _, v := range a {
		n += float64(v) * float64(v)
	}
	if math.Abs(n-1) > 1e-5 {
		t.Fatalf("norm² = %v, want 1", n)
	}
	if z := Embed("the and of"); slices.ContainsFunc(z, func(f float32) bool { return f != 0 }) {
		t.Fatal("stopwords-only text should embed to the zero vector")
	}
	near := dot(Embed("how do I back up the vault"), Embed("Backups of the vault are compressed"))
	far := dot(Embed("how do I back up the vault"), Embed("invoice payment methods by card"))
	if near <= far {
		t.Fatalf("related texts score %v, unrelated %v", near, far)
	}
}

func TestTokenizeStems(t *testing.T) {
	got := tokenize("Backups, backing-up and the Policies!")
	want := []string{"backup", "back", "up", "policy"}
	if !slices.Equal(got, want) {
		t.Fatalf("tokenize = %v, want %v", got, want)
	}
}

func newDocsIndex(t testing.TB, rows [][]any) *vsIndex {
	t.Helper()
	ix, err := newVSIndex(vsIndexSpec{
		Name: docsIndex, Endpoint: docsEndpoint, PrimaryKey: "id", TextColumn: "body",
		SourceTable: docsTable, EmbeddingEndpoint: "dev-embeddings", Columns: docsColumns,
	}, rows)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestProductDocsCorpus(t *testing.T) {
	docs := ProductDocs()
	if len(docs) < 180 || len(docs) > 220 {
		t.Fatalf("corpus has %d chunks, want about 200", len(docs))
	}
	seen := map[string]bool{}
	for i, d := range docs {
		if d.ID != int64(i+1) || d.Title == "" || d.URL == "" || strings.Contains(d.Body, "{") {
			t.Fatalf("bad chunk %+v", d)
		}
		if seen[d.Body] {
			t.Fatalf("duplicate body %q", d.Body)
		}
		seen[d.Body] = true
	}
	if !slices.EqualFunc(docs, ProductDocs(), func(a, b DocChunk) bool { return a == b }) {
		t.Fatal("corpus is not deterministic")
	}
}

func TestSearchRanksRelevantDocs(t *testing.T) {
	ix := newDocsIndex(t, docRows(ProductDocs()))
	tests := []struct {
		query, qtype, wantTitle string
	}{
		{"how do I restore Kestrel Vault from a backup archive", queryANN, "Restoring from a backup"},
		{"consumer lag monitoring prometheus stream", queryHybrid, "Monitoring and metrics"},
		{"Twilio SMS", queryFullText, ""},
	}
	for _, tt := range tests {
		hits, err := ix.search(vsQuery{Text: tt.query, NumResults: 3, QueryType: tt.qtype})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) == 0 {
			t.Fatalf("%s %q: no hits", tt.qtype, tt.query)
		}
		top := ix.rows[hits[0].row]
		if tt.wantTitle != "" && top[1] != tt.wantTitle {
			t.Errorf("%s %q: top title %q, want %q", tt.qtype, tt.query, top[1], tt.wantTitle)
		}
		if tt.qtype == queryFullText && top[4] != "Kestrel Relay" {
			t.Errorf("FULL_TEXT Twilio: top product %v", top[4])
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].score > hits[i-1].score {
				t.Fatalf("hits not sorted: %v", hits)
			}
		}
	}
}

func TestHybridBoostsExactKeyword(t *testing.T) {
	// A rare literal (a port number) is weak semantically but strong as a
	// keyword: HYBRID must rank the docs containing it at least as high as ANN does.
	ix := newDocsIndex(t, docRows(ProductDocs()))
	rank := func(qt string) int {
		hits, _ := ix.search(vsQuery{Text: "port 9092", NumResults: 200, QueryType: qt})
		for i, h := range hits {
			if strings.Contains(ix.rows[h.row][2].(string), "9092") {
				return i
			}
		}
		return len(hits)
	}
	ann, hyb := rank(queryANN), rank(queryHybrid)
	if hyb > ann || hyb != 0 {
		t.Fatalf("first doc mentioning 9092: ANN rank %d, HYBRID rank %d (want HYBRID 0)", ann, hyb)
	}
}

func TestFilters(t *testing.T) {
	ix := newDocsIndex(t, docRows(ProductDocs()))
	tests := []struct {
		filter string
		check  func(row []any) bool
		count  int // -1: any non-zero
	}{
		{`{"product": "Kestrel Vault"}`, func(r []any) bool { return r[4] == "Kestrel Vault" }, 25},
		{`{"product": ["Kestrel Vault", "Kestrel Lens"]}`, func(r []any) bool { return r[4] == "Kestrel Vault" || r[4] == "Kestrel Lens" }, 50},
		{`{"product NOT": "Kestrel Vault"}`, func(r []any) bool { return r[4] != "Kestrel Vault" }, 175},
		{`{"id <": 11}`, func(r []any) bool { return r[0].(int64) < 11 }, 10},
		{`{"id <=": 11}`, func(r []any) bool { return r[0].(int64) <= 11 }, 11},
		{`{"id >": 190}`, func(r []any) bool { return r[0].(int64) > 190 }, 10},
		{`{"id >=": 190, "product": "Kestrel Relay"}`, func(r []any) bool { return r[0].(int64) >= 190 }, 11},
		{`{"title LIKE": "backup"}`, func(r []any) bool { return strings.Contains(strings.ToLower(r[1].(string)), "backup") }, -1},
		{`{"url LIKE": "%/vault/%"}`, func(r []any) bool { return strings.Contains(r[3].(string), "/vault/") }, 25},
		{`{"product OR id": ["Kestrel Vault", 1]}`, func(r []any) bool { return r[4] == "Kestrel Vault" || r[0] == int64(1) }, 26},
		{`{"updated_at >=": "2026-03-01"}`, func(r []any) bool { return r[5].(string) >= "2026-03-01" }, -1},
	}
	for _, tt := range tests {
		fs, err := parseFilters(tt.filter, ix.colIndex)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		hits, _ := ix.search(vsQuery{Text: "configuration", NumResults: 1000, QueryType: queryANN, Filters: fs})
		if tt.count >= 0 && len(hits) != tt.count || tt.count < 0 && len(hits) == 0 {
			t.Errorf("%s: %d hits, want %d", tt.filter, len(hits), tt.count)
		}
		for _, h := range hits {
			if !tt.check(ix.rows[h.row]) {
				t.Errorf("%s: row %v should not match", tt.filter, ix.rows[h.row])
			}
		}
	}
	for _, bad := range []string{`{"nope": 1}`, `{"id BETWEEN": 1}`, `[1]`, `{"id <": [1,2]}`, `{"a OR b": [1]}`} {
		if _, err := parseFilters(bad, ix.colIndex); err == nil {
			t.Errorf("parseFilters(%s) succeeded", bad)
		}
	}
}

func TestSQLLike(t *testing.T) {
	for _, tt := range []struct {
		s, p string
		ok   bool
	}{{"hello world", "hello%", true}, {"hello", "h_llo", true}, {"hello", "%x%", false}, {"abc", "%", true}, {"", "", true}, {"ab", "a", false}} {
		if sqlLike(tt.s, tt.p) != tt.ok {
			t.Errorf("sqlLike(%q,%q) != %v", tt.s, tt.p, tt.ok)
		}
	}
}

func TestSearchScaleAndThreshold(t *testing.T) {
	ix := newDocsIndex(t, syntheticDocRows(5000))
	hits, err := ix.search(vsQuery{Text: "rotate database passwords", NumResults: 20, QueryType: queryANN, ScoreThreshold: 0.37})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || len(hits) > 20 {
		t.Fatalf("%d hits", len(hits))
	}
	for _, h := range hits {
		if h.score < 0.37 {
			t.Fatalf("score %v below threshold", h.score)
		}
	}
	if _, err := ix.search(vsQuery{Vector: make([]float32, 3), NumResults: 1, QueryType: queryANN}); err == nil {
		t.Fatal("wrong vector dimension accepted")
	}
}

func benchmarkSearch(b *testing.B, rows int, qt string) {
	ix := newDocsIndex(b, syntheticDocRows(rows))
	queries := []string{"how do I restore from a backup", "consumer lag alerting", "single sign-on with SAML", "invoice payment retries"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := ix.search(vsQuery{Text: queries[i%len(queries)], NumResults: 10, QueryType: qt}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkDenseBaseline is the naive ANN scan the index replaces: full
// 256-float dot products over row-major vectors, same top-k heap.
func benchmarkDenseBaseline(b *testing.B, rows int) {
	ix := newDocsIndex(b, syntheticDocRows(rows))
	n := len(ix.rows)
	rowMajor := make([]float32, n*EmbeddingDim)
	for j := range EmbeddingDim {
		for i := range n {
			rowMajor[i*EmbeddingDim+j] = ix.vecs[j*n+i]
		}
	}
	queries := []string{"how do I restore from a backup", "consumer lag alerting", "single sign-on with SAML", "invoice payment retries"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		qv := Embed(queries[i%len(queries)])
		h := vsHeap{hits: make([]vsHit, 0, 10)}
		for r := range n {
			h.offer(vsHit{int32(r), annScore(dot(qv, rowMajor[r*EmbeddingDim:(r+1)*EmbeddingDim]))}, 10)
		}
	}
}

func BenchmarkVectorSearchIndex(b *testing.B) {
	for _, n := range []int{len(ProductDocs()), 100_000} {
		for _, qt := range []string{queryANN, queryHybrid} {
			b.Run(fmt.Sprintf("rows=%d/%s", n, qt), func(b *testing.B) { benchmarkSearch(b, n, qt) })
		}
		b.Run(fmt.Sprintf("rows=%d/dense-baseline", n), func(b *testing.B) { benchmarkDenseBaseline(b, n) })
	}
}

// BenchmarkVectorSearchBuild measures embedding and indexing 100,000 rows
// (the start-up cost of a large index).
func BenchmarkVectorSearchBuild(b *testing.B) {
	rows := syntheticDocRows(100_000)
	b.ReportAllocs()
	for b.Loop() {
		newDocsIndex(b, rows)
	}
}

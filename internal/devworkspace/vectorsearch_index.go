package devworkspace

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
)

// Vector Search query types.
const (
	queryANN      = "ANN"
	queryHybrid   = "HYBRID"
	queryFullText = "FULL_TEXT"
)

// Limits of the live service: pages of at most 1000 rows, 10,000 results.
const (
	vsMaxResults      = 10000
	vsDefaultPageSize = 1000
	vsDefaultResults  = 10
)

// vsColumn is one column of an index, as the query manifest reports it.
type vsColumn struct {
	Name     string
	TypeText string // "bigint", "string", "double", "timestamp", …
}

// vsIndexSpec describes a Delta Sync index over a source table whose
// embeddings the workspace computes from TextColumn.
type vsIndexSpec struct {
	Name              string // catalog.schema.index
	Endpoint          string
	PrimaryKey        string
	TextColumn        string
	SourceTable       string
	EmbeddingEndpoint string
	Columns           []vsColumn
}

// vsIndex is an immutable in-memory index: typed rows, their embeddings in
// one flat, dimension-major []float32 (component j of row i at j*n+i) and a
// keyword index for BM25. Immutability makes concurrent queries lock-free.
//
// Dimension-major storage makes a query cost proportional to its non-zero
// components: a text query embeds to a handful of hashed terms, so scoring
// 100,000 rows touches a few contiguous columns instead of every vector.
type vsIndex struct {
	spec     vsIndexSpec
	colIndex map[string]int
	textCol  int
	rows     [][]any
	vecs     []float32

	postings map[string][]vsPosting
	docLen   []float32
	avgLen   float32

	scratch sync.Pool // *vsScratch: per-query accumulators, reused
}

// vsScratch holds one query's per-row accumulators.
type vsScratch struct{ sem, kw, qv []float32 }

type vsPosting struct {
	doc int32
	tf  float32
}

// vsHit is a scored row.
type vsHit struct {
	row   int32
	score float32
}

// newVSIndex embeds and indexes rows (cells in spec.Columns order). Cells
// must be int64, float64, string, bool or nil.
func newVSIndex(spec vsIndexSpec, rows [][]any) (*vsIndex, error) {
	ix := &vsIndex{spec: spec, colIndex: map[string]int{}, rows: rows}
	for i, c := range spec.Columns {
		ix.colIndex[c.Name] = i
	}
	tc, ok := ix.colIndex[spec.TextColumn]
	if !ok {
		return nil, fmt.Errorf("index %s: text column %q is not a column", spec.Name, spec.TextColumn)
	}
	if _, ok := ix.colIndex[spec.PrimaryKey]; !ok {
		return nil, fmt.Errorf("index %s: primary key %q is not a column", spec.Name, spec.PrimaryKey)
	}
	ix.textCol = tc
	n := len(rows)
	ix.vecs = make([]float32, n*EmbeddingDim)
	vec := make([]float32, EmbeddingDim)
	ix.docLen = make([]float32, len(rows))
	ix.postings = map[string][]vsPosting{}
	var total float64
	tf := map[string]float32{}
	for i, r := range rows {
		if len(r) != len(spec.Columns) {
			return nil, fmt.Errorf("index %s: row %d has %d cells, want %d", spec.Name, i, len(r), len(spec.Columns))
		}
		text, _ := r[tc].(string)
		toks := tokenize(text)
		embedTokens(toks, vec)
		for j, v := range vec {
			if v != 0 { // vectors are sparse; vecs starts zeroed
				ix.vecs[j*n+i] = v
			}
		}
		clear(tf)
		for _, t := range toks {
			tf[t]++
		}
		for t, n := range tf {
			ix.postings[t] = append(ix.postings[t], vsPosting{doc: int32(i), tf: n})
		}
		ix.docLen[i] = float32(len(toks))
		total += float64(len(toks))
	}
	if len(rows) > 0 {
		ix.avgLen = float32(total / float64(len(rows)))
	}
	ix.scratch.New = func() any {
		return &vsScratch{sem: make([]float32, n), kw: make([]float32, n), qv: make([]float32, EmbeddingDim)}
	}
	return ix, nil
}

// vsQuery is a validated query.
type vsQuery struct {
	Text           string
	Vector         []float32
	NumResults     int
	QueryType      string
	ScoreThreshold float64
	Filters        []vsFilter
}

// bm25 fills acc (len(rows), zeroed on entry) with BM25 scores of the query
// terms and returns the maximum score.
func (ix *vsIndex) bm25(terms []string, acc []float32) float32 {
	const k1, b = 1.2, 0.75
	n := float64(len(ix.rows))
	seen := map[string]bool{}
	var maxScore float32
	for _, t := range terms {
		if seen[t] {
			continue
		}
		seen[t] = true
		ps := ix.postings[t]
		if len(ps) == 0 {
			continue
		}
		df := float64(len(ps))
		idf := float32(math.Log(1 + (n-df+0.5)/(df+0.5)))
		for _, p := range ps {
			norm := k1 * (1 - b + b*ix.docLen[p.doc]/ix.avgLen)
			acc[p.doc] += idf * p.tf * (k1 + 1) / (p.tf + norm)
			if acc[p.doc] > maxScore {
				maxScore = acc[p.doc]
			}
		}
	}
	return maxScore
}

// annScore turns the cosine similarity of unit vectors into the service's
// similarity score 1/(1+d²), d the L2 distance: 1 for identical vectors,
// ordered exactly like cosine similarity.
func annScore(cos float32) float32 { return 1 / (1 + (2 - 2*cos)) }

// search scores every row that passes the filters and returns the best
// q.NumResults hits, best first (ties: lower row first, so results are
// deterministic).
func (ix *vsIndex) search(q vsQuery) ([]vsHit, error) {
	k := q.NumResults
	sc := ix.scratch.Get().(*vsScratch)
	defer func() { clear(sc.sem); clear(sc.kw); ix.scratch.Put(sc) }()
	var qv []float32
	if q.QueryType != queryFullText {
		switch {
		case q.Vector != nil:
			if len(q.Vector) != EmbeddingDim {
				return nil, fmt.Errorf("query_vector has dimension %d, the index's embedding dimension is %d", len(q.Vector), EmbeddingDim)
			}
			qv = q.Vector
		case q.Text != "":
			qv = sc.qv
			embedInto(q.Text, qv)
		}
	}
	n := len(ix.rows)
	if qv != nil {
		// sem[i] = cosine(qv, row i), one contiguous column per non-zero
		// query component.
		sem := sc.sem
		for j, q := range qv {
			if q == 0 {
				continue
			}
			col := ix.vecs[j*n : (j+1)*n]
			for i, v := range col {
				sem[i] += q * v
			}
		}
	}
	var maxKW float32
	if q.QueryType != queryANN {
		maxKW = ix.bm25(tokenize(q.Text), sc.kw)
	}
	acc := sc.kw
	h := vsHeap{hits: make([]vsHit, 0, min(k, len(ix.rows)))}
	// Scores are reported rounded to 6 decimals; a threshold copied from a
	// reported score must keep that row.
	thr := float32(q.ScoreThreshold - 5e-7)
	for i := range ix.rows {
		var s float32
		switch q.QueryType {
		case queryANN:
			s = annScore(sc.sem[i])
		case queryFullText:
			if acc[i] == 0 {
				continue
			}
			s = acc[i] / maxKW
		default: // HYBRID: an even blend of semantic and keyword relevance
			var kw float32
			if maxKW > 0 {
				kw = acc[i] / maxKW
			}
			s = 0.5*annScore(sc.sem[i]) + 0.5*kw
		}
		if s < thr || (h.full(k) && !h.better(vsHit{int32(i), s}, h.hits[0])) {
			continue
		}
		if q.Filters != nil && !matchFilters(q.Filters, ix.rows[i]) {
			continue
		}
		h.offer(vsHit{int32(i), s}, k)
	}
	out := h.hits
	slices.SortFunc(out, func(a, b vsHit) int {
		if h.better(a, b) {
			return -1
		}
		return 1
	})
	return out, nil
}

// vsHeap keeps the k best hits with the worst at hits[0] (a min-heap on
// "better"). Hand-written to avoid container/heap's interface boxing.
type vsHeap struct{ hits []vsHit }

func (vsHeap) better(a, b vsHit) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.row < b.row
}

func (h *vsHeap) full(k int) bool { return len(h.hits) >= k }

func (h *vsHeap) offer(x vsHit, k int) {
	if k <= 0 {
		return
	}
	if len(h.hits) < k {
		h.hits = append(h.hits, x)
		i := len(h.hits) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !h.better(h.hits[p], h.hits[i]) { // parent worse-or-equal: heap ok
				break
			}
			h.hits[p], h.hits[i] = h.hits[i], h.hits[p]
			i = p
		}
		return
	}
	if !h.better(x, h.hits[0]) {
		return
	}
	h.hits[0] = x
	i, n := 0, len(h.hits)
	for {
		l, r, w := 2*i+1, 2*i+2, i
		if l < n && h.better(h.hits[w], h.hits[l]) {
			w = l
		}
		if r < n && h.better(h.hits[w], h.hits[r]) {
			w = r
		}
		if w == i {
			return
		}
		h.hits[i], h.hits[w] = h.hits[w], h.hits[i]
		i = w
	}
}

// project returns the requested columns of hit rows followed by the score,
// as JSON-ready typed cells.
func (ix *vsIndex) project(hits []vsHit, cols []int) [][]any {
	out := make([][]any, len(hits))
	for i, h := range hits {
		row := make([]any, len(cols)+1)
		for j, c := range cols {
			row[j] = ix.rows[h.row][c]
		}
		// Round like the service's float32 scores serialise, without float noise.
		row[len(cols)] = math.Round(float64(h.score)*1e6) / 1e6
		out[i] = row
	}
	return out
}

// resolveColumns maps requested column names to indexes; unknown names and
// an empty list are errors.
func (ix *vsIndex) resolveColumns(names []string) ([]int, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("columns is required: name at least one column of %s", ix.spec.Name)
	}
	out := make([]int, 0, len(names))
	var unknown []string
	for _, n := range names {
		i, ok := ix.colIndex[n]
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		out = append(out, i)
	}
	if len(unknown) > 0 {
		var have []string
		for _, c := range ix.spec.Columns {
			have = append(have, c.Name)
		}
		slices.Sort(have)
		return nil, fmt.Errorf("unknown columns %s (the index has %s)", strings.Join(unknown, ", "), strings.Join(have, ", "))
	}
	return out, nil
}

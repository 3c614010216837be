package devworkspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// vsFilter is one parsed filters_json clause. A row passes the filter when
// every clause matches it. Clause kinds follow the Vector Search key forms:
//
//	"col": v        equality (any-of when v is a list)
//	"col NOT": v    inequality (none-of when v is a list)
//	"col <": v      also <=, >, >= (numbers compare numerically, strings lexically)
//	"col LIKE": v   every word of v appears in the cell; % and _ make it a SQL LIKE pattern
//	"a OR b": [x,y] a matches x or b matches y (each side may carry an operator)
type vsFilter struct {
	alts []vsPredicate // OR of these
}

type vsPredicate struct {
	col    int
	op     string // "=", "NOT", "<", "<=", ">", ">=", "LIKE"
	values []any  // json-decoded: float64, string, bool, nil
	like   []string
}

// parseFilters decodes filters_json against the index columns. An unknown
// column, operator or malformed value is an error naming it.
func parseFilters(filtersJSON string, colIndex map[string]int) ([]vsFilter, error) {
	if strings.TrimSpace(filtersJSON) == "" {
		return nil, nil
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(filtersJSON)))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("filters_json is not a JSON object: %v", err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error messages
	var out []vsFilter
	for _, k := range keys {
		v := raw[k]
		parts := strings.Split(k, " OR ")
		var f vsFilter
		for i, part := range parts {
			pv := v
			if len(parts) > 1 {
				list, ok := v.([]any)
				if !ok {
					pv = v // one value for every side
				} else {
					if len(list) != len(parts) {
						return nil, fmt.Errorf("filter %q: expected %d values (one per OR side), got %d", k, len(parts), len(list))
					}
					pv = list[i]
				}
			}
			p, err := parsePredicate(strings.TrimSpace(part), pv, colIndex)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %v", k, err)
			}
			f.alts = append(f.alts, p)
		}
		out = append(out, f)
	}
	return out, nil
}

func parsePredicate(key string, v any, colIndex map[string]int) (vsPredicate, error) {
	col, op := key, "="
	if i := strings.LastIndexByte(key, ' '); i > 0 {
		switch o := strings.ToUpper(strings.TrimSpace(key[i+1:])); o {
		case "NOT", "<", "<=", ">", ">=", "LIKE":
			col, op = strings.TrimSpace(key[:i]), o
		default:
			return vsPredicate{}, fmt.Errorf("unsupported operator %q (use NOT, <, <=, >, >=, LIKE or OR)", o)
		}
	}
	idx, ok := colIndex[col]
	if !ok {
		return vsPredicate{}, fmt.Errorf("unknown column %q", col)
	}
	p := vsPredicate{col: idx, op: op}
	if list, isList := v.([]any); isList {
		if op != "=" && op != "NOT" {
			return vsPredicate{}, fmt.Errorf("operator %s takes a single value, not a list", op)
		}
		if len(list) == 0 {
			return vsPredicate{}, fmt.Errorf("empty value list")
		}
		p.values = list
	} else {
		p.values = []any{v}
	}
	for _, x := range p.values {
		switch x.(type) {
		case string, float64, bool, nil:
		default:
			return vsPredicate{}, fmt.Errorf("value %v must be a string, number, boolean or null", x)
		}
	}
	switch op {
	case "<", "<=", ">", ">=":
		switch p.values[0].(type) {
		case string, float64:
		default:
			return vsPredicate{}, fmt.Errorf("operator %s needs a number or string", op)
		}
	case "LIKE":
		s, ok := p.values[0].(string)
		if !ok {
			return vsPredicate{}, fmt.Errorf("LIKE needs a string")
		}
		if !strings.ContainsAny(s, "%_") {
			p.like = tokenize(s)
			if len(p.like) == 0 {
				p.like = []string{strings.ToLower(s)}
			}
		}
	}
	return p, nil
}

// matchFilters reports whether row passes every filter.
func matchFilters(fs []vsFilter, row []any) bool {
	for i := range fs {
		if !slices.ContainsFunc(fs[i].alts, func(p vsPredicate) bool { return p.match(row[p.col]) }) {
			return false
		}
	}
	return true
}

func (p vsPredicate) match(cell any) bool {
	switch p.op {
	case "=":
		return slices.ContainsFunc(p.values, func(v any) bool { return cellEqual(cell, v) })
	case "NOT":
		return !slices.ContainsFunc(p.values, func(v any) bool { return cellEqual(cell, v) })
	case "LIKE":
		s, ok := cell.(string)
		if !ok {
			return false
		}
		if p.like == nil {
			return sqlLike(strings.ToLower(s), strings.ToLower(p.values[0].(string)))
		}
		toks := tokenize(s)
		for _, t := range p.like {
			if !slices.Contains(toks, t) {
				return false
			}
		}
		return true
	default:
		c, ok := cellCompare(cell, p.values[0])
		if !ok {
			return false
		}
		switch p.op {
		case "<":
			return c < 0
		case "<=":
			return c <= 0
		case ">":
			return c > 0
		default:
			return c >= 0
		}
	}
}

// cellNumber converts an index cell to float64 when it is numeric.
func cellNumber(c any) (float64, bool) {
	switch x := c.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func cellEqual(cell, v any) bool {
	if n, ok := cellNumber(cell); ok {
		f, ok := v.(float64)
		return ok && f == n
	}
	switch c := cell.(type) {
	case string:
		s, ok := v.(string)
		return ok && s == c
	case bool:
		b, ok := v.(bool)
		return ok && b == c
	case nil:
		return v == nil
	}
	return false
}

func cellCompare(cell, v any) (int, bool) {
	if n, ok := cellNumber(cell); ok {
		f, ok := v.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case n < f:
			return -1, true
		case n > f:
			return 1, true
		}
		return 0, true
	}
	c, ok1 := cell.(string)
	s, ok2 := v.(string)
	if !ok1 || !ok2 {
		return 0, false
	}
	return strings.Compare(c, s), true
}

// sqlLike matches s against a SQL LIKE pattern (% any run, _ one rune).
func sqlLike(s, pat string) bool {
	sr, pr := []rune(s), []rune(pat)
	// Iterative wildcard matching with backtracking on the last %.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pr) && (pr[pi] == '_' || pr[pi] == sr[si]):
			si++
			pi++
		case pi < len(pr) && pr[pi] == '%':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pr) && pr[pi] == '%' {
		pi++
	}
	return pi == len(pr)
}

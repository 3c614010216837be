package devworkspace

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Argument extraction: the dev model fills a tool's parameters from the
// user's words the way a model would, by matching each parameter's name,
// type and description against what the text contains: a number for an
// integer, an identifier with digits for an *_id, a quoted phrase for a
// free string, the whole question for a query. It is deterministic: the
// same text and schema always give the same arguments.

// paramSpec is one property of a tool's JSON-schema parameters.
type paramSpec struct {
	Name, Type, Description string
	Enum                    []string
	Required                bool
}

// parseParams lists a tool's parameters, required ones first in their
// declared order, then the optional ones by name.
func parseParams(raw json.RawMessage) []paramSpec {
	var schema struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Type        any    `json:"type"`
			Description string `json:"description"`
			Enum        []any  `json:"enum"`
		} `json:"properties"`
	}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &schema) // validated earlier
	}
	var out []paramSpec
	seen := map[string]bool{}
	add := func(name string, required bool) {
		p, ok := schema.Properties[name]
		if seen[name] {
			return
		}
		seen[name] = true
		spec := paramSpec{Name: name, Description: p.Description, Required: required, Type: "string"}
		if !ok && required {
			out = append(out, spec) // required but undescribed: a string
			return
		}
		switch t := p.Type.(type) {
		case string:
			spec.Type = t
		case []any:
			for _, x := range t {
				if s, _ := x.(string); s != "" && s != "null" {
					spec.Type = s
					break
				}
			}
		}
		for _, e := range p.Enum {
			if s, ok := e.(string); ok {
				spec.Enum = append(spec.Enum, s)
			}
		}
		out = append(out, spec)
	}
	for _, n := range schema.Required {
		add(n, true)
	}
	rest := make([]string, 0, len(schema.Properties))
	for n := range schema.Properties {
		rest = append(rest, n)
	}
	sort.Strings(rest)
	for _, n := range rest {
		add(n, false)
	}
	return out
}

// The package's regular expressions are compiled on first use, not at
// init: every serve binary links the dev workspace, and `serve --agent
// echo` should not pay for compiling them (the Unicode classes of reWord
// above all) on its way to listening.
var (
	// "…", “…” and '…' (the latter only as a whole word, not an apostrophe).
	reQuoted = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`"([^"]+)"|“([^”]+)”|(?:^|\s)'([^']+)'(?:$|[\s.,;:!?])`)
	})
	reWord = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`[\p{L}\p{N}][\p{L}\p{N}_.\-]*[\p{L}\p{N}]|[\p{L}\p{N}]`)
	})
	reNumber = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^-?\d+(?:\.\d+)?$`) })
)

// textFacts are the values a user's text offers, in order of appearance.
type textFacts struct {
	text   string
	quoted []string
	words  []string // as written
	ids    []string // words with a digit: 100042, ORD-100042, v2
	nums   []string // words that are numbers
}

func factsOf(text string) textFacts {
	f := textFacts{text: strings.TrimSpace(text)}
	for _, m := range reQuoted().FindAllStringSubmatch(text, -1) {
		for _, g := range m[1:] {
			if g = strings.TrimSpace(g); g != "" {
				f.quoted = append(f.quoted, g)
			}
		}
	}
	for _, w := range reWord().FindAllString(text, -1) {
		f.words = append(f.words, w)
		if strings.ContainsAny(w, "0123456789") {
			f.ids = append(f.ids, w)
			if reNumber().MatchString(w) {
				f.nums = append(f.nums, w)
			}
		}
	}
	return f
}

// idLike reports whether a parameter names an identifier: order_id, id,
// orderId, order_number, sku, code.
func idLike(p paramSpec) bool {
	n := strings.ToLower(p.Name)
	if n == "id" || strings.HasSuffix(n, "_id") || strings.HasSuffix(n, "-id") ||
		strings.HasSuffix(p.Name, "Id") || strings.HasSuffix(p.Name, "ID") {
		return true
	}
	for _, w := range []string{"number", "code", "sku", "key", "ref"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// freeText reports whether a parameter takes the request in words: a
// search query, a question, a prompt.
func freeText(p paramSpec) bool {
	switch strings.ToLower(p.Name) {
	case "query", "question", "text", "prompt", "q", "input", "message", "search", "search_query", "content", "keywords", "request", "topic":
		return true
	}
	d := strings.ToLower(p.Description)
	return strings.Contains(d, "question") || strings.Contains(d, "text to search") || strings.Contains(d, "search for") ||
		strings.Contains(d, "query text") || strings.Contains(d, "natural language")
}

// sizeLike reports whether a number parameter is a result count.
func sizeLike(p paramSpec) bool {
	switch strings.ToLower(p.Name) {
	case "limit", "k", "top_k", "num_results", "max_results", "page_size", "count":
		return true
	}
	return strings.Contains(strings.ToLower(p.Description), "how many")
}

// nameWords are the words of a parameter's name (num_results → num, results).
func nameWords(p paramSpec) []string {
	return tokenize(strings.NewReplacer("_", " ", "-", " ").Replace(p.Name))
}

// argFiller fills parameters from one text, never using a value twice.
type argFiller struct {
	f    textFacts
	used map[string]bool
}

// fill returns the value for p and whether the text offers one.
func (a *argFiller) fill(p paramSpec) (any, bool) {
	take := func(vals []string) (string, bool) {
		for _, v := range vals {
			if !a.used[v] {
				a.used[v] = true
				return v, true
			}
		}
		return "", false
	}
	if len(p.Enum) > 0 {
		for _, w := range a.f.words {
			for _, e := range p.Enum {
				if strings.EqualFold(w, e) && len(e) > 1 {
					return e, true
				}
			}
		}
		return nil, false
	}
	switch p.Type {
	case "integer", "number":
		// An optional number only when the text puts it next to one of the
		// parameter's words ("3 results", "top 5" does not fill num_results).
		if !p.Required && !a.nearNameWord(p) {
			return nil, false
		}
		v, ok := take(a.numbersFor(p))
		if !ok && p.Required && sizeLike(p) {
			v, ok = "5", true // what a model picks for a result count it was not given
		}
		if !ok {
			return nil, false
		}
		if p.Type == "integer" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n, true
			}
			return nil, false
		}
		n, _ := strconv.ParseFloat(v, 64)
		return n, true
	case "boolean":
		return nil, false
	case "string":
		switch {
		case idLike(p):
			if v, ok := take(a.f.ids); ok {
				return v, true
			}
			return nil, false
		case freeText(p):
			if len(a.f.quoted) == 1 {
				return a.f.quoted[0], true
			}
			return a.f.text, a.f.text != ""
		case !p.Required:
			return nil, false
		}
		if v, ok := take(a.f.quoted); ok {
			return v, true
		}
		return a.f.text, a.f.text != ""
	}
	return nil, false
}

// numbersFor lists the numbers the text offers p: the one right after or
// before a word of p's name first.
func (a *argFiller) numbersFor(p paramSpec) []string {
	var near, rest []string
	names := nameWords(p)
	for i, w := range a.f.words {
		if !reNumber().MatchString(w) {
			continue
		}
		if adjacentTo(a.f.words, i, names) {
			near = append(near, w)
		} else {
			rest = append(rest, w)
		}
	}
	return append(near, rest...)
}

func (a *argFiller) nearNameWord(p paramSpec) bool {
	names := nameWords(p)
	for i, w := range a.f.words {
		if reNumber().MatchString(w) && adjacentTo(a.f.words, i, names) {
			return true
		}
	}
	return false
}

func adjacentTo(words []string, i int, names []string) bool {
	for _, j := range []int{i - 1, i + 1} {
		if j < 0 || j >= len(words) {
			continue
		}
		for _, t := range tokenize(words[j]) {
			if slices.Contains(names, t) && t != "num" {
				return true
			}
		}
	}
	return false
}

// toolArguments fills params from text. ok is false when a required
// parameter finds no value; missing names it. A forced call (force) puts
// the whole text in any unfilled required string parameter instead.
func toolArguments(params json.RawMessage, text string, force bool) (args string, missing *paramSpec, ok bool) {
	a := &argFiller{f: factsOf(text), used: map[string]bool{}}
	out := map[string]any{}
	specs := parseParams(params)
	for i, p := range specs {
		v, got := a.fill(p)
		if !got && p.Required && force && p.Type == "string" && a.f.text != "" {
			v, got = a.f.text, true
		}
		if got {
			out[p.Name] = v
		} else if p.Required {
			return "", &specs[i], false
		}
	}
	b, _ := json.Marshal(out) // sorted keys: deterministic
	return string(b), nil, true
}

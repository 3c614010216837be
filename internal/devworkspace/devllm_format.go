package devworkspace

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// responseFormat is OpenAI's response_format: "text", "json_object", or
// "json_schema" with the schema the reply must match.
type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict,omitempty"`
	} `json:"json_schema,omitempty"`
}

// validateFormat checks response_format the way the real endpoint does.
func validateFormat(f *responseFormat) error {
	if f == nil {
		return nil
	}
	switch f.Type {
	case "text", "json_object":
		return nil
	case "json_schema":
		if f.JSONSchema == nil || f.JSONSchema.Name == "" {
			return fmt.Errorf("response_format.json_schema: name is required")
		}
		var v map[string]any
		if err := json.Unmarshal(f.JSONSchema.Schema, &v); err != nil {
			return fmt.Errorf("response_format.json_schema.schema must be a JSON schema object: %v", err)
		}
		return nil
	}
	return fmt.Errorf("response_format.type %q: want text, json_object or json_schema", f.Type)
}

// formatReply shapes the dev model's answer text for response_format: as
// {"answer": text} for json_object, and as the simplest instance of the
// schema for json_schema, with the text in its first string field. A
// schema the dev model cannot fill yields the plain text, as a model that
// ignored the format would; the caller is expected to check.
func formatReply(f *responseFormat, text string) string {
	if f == nil {
		return text
	}
	switch f.Type {
	case "json_object":
		b, _ := json.Marshal(map[string]string{"answer": text})
		return string(b)
	case "json_schema":
		var root map[string]any
		if json.Unmarshal(f.JSONSchema.Schema, &root) != nil {
			return text
		}
		g := instanceGen{root: root, text: text}
		v, ok := g.instance(root, 0)
		if !ok {
			return text
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	return text
}

// instanceGen builds a small JSON value that satisfies a JSON schema: const
// and enum first values, every property of an object, one item of an
// array (or minItems), minimums for numbers, and the answer text for the
// first string (other strings get short placeholders or their format's
// example).
type instanceGen struct {
	root     map[string]any
	text     string
	usedText bool
}

func (g *instanceGen) instance(s map[string]any, depth int) (any, bool) {
	if depth > 32 {
		return nil, false
	}
	if ref, ok := s["$ref"].(string); ok {
		target, ok := g.resolve(ref)
		if !ok {
			return nil, false
		}
		return g.instance(target, depth+1)
	}
	if c, ok := s["const"]; ok {
		return c, true
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0], true
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if alts, ok := s[k].([]any); ok && len(alts) > 0 {
			if k == "allOf" && len(alts) > 1 {
				return nil, false // merging schemas is beyond the dev model
			}
			first, _ := alts[0].(map[string]any)
			return g.instance(first, depth+1)
		}
	}
	switch typeOf(s) {
	case "object":
		props, _ := s["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		sort.Strings(names)
		obj := make(map[string]any, len(props))
		for _, n := range names {
			ps, _ := props[n].(map[string]any)
			v, ok := g.instance(ps, depth+1)
			if !ok {
				return nil, false
			}
			obj[n] = v
		}
		return obj, true
	case "array":
		n := 1
		if m, ok := s["minItems"].(float64); ok {
			n = int(m)
		}
		if m, ok := s["maxItems"].(float64); ok && int(m) < n {
			n = int(m)
		}
		items, _ := s["items"].(map[string]any)
		arr := make([]any, 0, n)
		for range n {
			v, ok := g.instance(items, depth+1)
			if !ok {
				return nil, false
			}
			arr = append(arr, v)
		}
		return arr, true
	case "string":
		return g.str(s), true
	case "integer", "number":
		if m, ok := s["minimum"].(float64); ok {
			return m, true
		}
		if m, ok := s["exclusiveMinimum"].(float64); ok {
			return m + 1, true
		}
		return 0, true
	case "boolean":
		return true, true
	case "null":
		return nil, true
	}
	return nil, false
}

func (g *instanceGen) str(s map[string]any) string {
	switch s["format"] {
	case "date-time":
		return "2026-01-01T00:00:00Z"
	case "date":
		return "2026-01-01"
	case "email":
		return "dev@example.com"
	case "uri", "url":
		return "https://example.com/"
	case "uuid":
		return "00000000-0000-4000-8000-000000000000"
	}
	v := "dev-llm"
	if !g.usedText && g.text != "" {
		v, g.usedText = g.text, true
	}
	if m, ok := s["maxLength"].(float64); ok && len([]rune(v)) > int(m) {
		v = string([]rune(v)[:int(m)])
	}
	if m, ok := s["minLength"].(float64); ok && len([]rune(v)) < int(m) {
		v += strings.Repeat(".", int(m)-len([]rune(v)))
	}
	return v
}

// typeOf is the schema's type, the first non-null one of a type list, or
// what its keywords imply.
func typeOf(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if x != "null" {
				if str, ok := x.(string); ok {
					return str
				}
			}
		}
		return "null"
	}
	if _, ok := s["properties"]; ok {
		return "object"
	}
	if _, ok := s["items"]; ok {
		return "array"
	}
	return ""
}

// resolve follows a local $ref (#/$defs/X, #/definitions/X, #).
func (g *instanceGen) resolve(ref string) (map[string]any, bool) {
	if ref == "#" {
		return g.root, true
	}
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = g.root
	for _, seg := range strings.Split(path, "/") {
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = m[seg]
	}
	m, ok := cur.(map[string]any)
	return m, ok
}

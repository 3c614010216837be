// Package conformance checks agentrt's wire format against OpenAI's
// published OpenAPI document (openai/openai-openapi, vendored with its source
// commit in testdata/): a JSON body against a named component schema such as
// Response or ErrorResponse, and one SSE event against the
// ResponseStreamEvent branch its type names. It is test support: the
// conformance test in this directory drives the real host with it, and tests
// of routes to come (conversation state, chat completions) can use the same
// Spec (CreateChatCompletionResponse, CreateChatCompletionStreamResponse, …).
//
// The document is OpenAPI 3.1, whose schemas are JSON Schema 2020-12 plus a
// few OpenAPI keywords; Load compiles it with a JSON Schema validator after
// turning those keywords into plain JSON Schema:
//
//   - discriminator: a oneOf/anyOf union that names a discriminating
//     property (type) is checked against the branch that property's value
//     names, and an unknown value is an error. A plain oneOf would instead
//     report "valid against several branches" for the loose ones, or
//     bury the real failure among one error per branch.
//   - nullable: true (OpenAPI 3.0, still on a few schemas) allows null,
//     also where an enum lists the other values.
//   - $recursiveAnchor/$recursiveRef (draft 2019-09, on the compound file
//     search filters): a $ref to the enclosing component.
//
// x-* extensions, example and format annotations need nothing: JSON Schema
// ignores unknown keywords, and formats are not asserted.
package conformance

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"
)

// The vendored document; testdata/SOURCE says where it comes from.
//
//go:embed testdata/openapi.yaml
var specYAML []byte

// SpecCommit is the openai/openai-openapi commit of the vendored document.
const SpecCommit = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"

const specURL = "https://agentrt.invalid/openai-openapi/openapi.json"

// Spec validates JSON against the vendored document's component schemas.
// It is safe for concurrent use.
type Spec struct {
	// Version is the document's info.version.
	Version string
	// Unions is how many discriminated unions were turned into
	// per-branch checks. Unresolved lists (as JSON pointers) those left as
	// plain oneOf/anyOf because a branch does not pin the discriminating
	// property to a value: in the vendored document only the request-side
	// InputItem unions, where a message or an item reference may omit
	// its type.
	Unions     int
	Unresolved []string

	events map[string]string // stream event type → ResponseStreamEvent branch

	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

var (
	loadOnce sync.Once
	loaded   *Spec
	loadErr  error
)

// Load parses and prepares the vendored document once per process.
func Load() (*Spec, error) {
	loadOnce.Do(func() { loaded, loadErr = parse(specYAML) })
	return loaded, loadErr
}

func parse(src []byte) (*Spec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, fmt.Errorf("conformance: parsing the OpenAPI document: %w", err)
	}
	v, err := nodeValue(&root)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("conformance: the OpenAPI document is not an object")
	}
	schemas, _ := dig(doc, "components", "schemas").(map[string]any)
	if schemas == nil {
		return nil, errors.New("conformance: the OpenAPI document has no components.schemas")
	}
	s := &Spec{schemas: map[string]*jsonschema.Schema{}}
	s.Version, _ = dig(doc, "info", "version").(string)

	// Branches of the stream event union, by the event type they carry,
	// read before the rewrite below replaces the union.
	s.events = map[string]string{}
	evUnion, _ := schemas["ResponseStreamEvent"].(map[string]any)
	for _, br := range branches(evUnion) {
		name := strings.TrimPrefix(refOf(br), "#/components/schemas/")
		for _, t := range discriminatorValues(doc, br, "type", 0) {
			if prev, dup := s.events[t]; dup {
				return nil, fmt.Errorf("conformance: event type %q names two branches, %s and %s", t, prev, name)
			}
			s.events[t] = name
		}
	}
	if len(s.events) == 0 {
		return nil, errors.New("conformance: no ResponseStreamEvent branches found")
	}

	recursiveRefs(schemas)
	s.rewrite(doc, doc, "#")

	// doc is already in the form jsonschema.UnmarshalJSON gives (maps,
	// slices, json.Number), which the compiler takes as is.
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(specURL, doc); err != nil {
		return nil, err
	}
	s.compiler = c
	return s, nil
}

// Schema returns the compiled component schema name (Response,
// ErrorResponse, …).
func (s *Spec) Schema(name string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch := s.schemas[name]; sch != nil {
		return sch, nil
	}
	sch, err := s.compiler.Compile(specURL + "#/components/schemas/" + name)
	if err != nil {
		return nil, fmt.Errorf("conformance: compiling %s: %w", name, err)
	}
	s.schemas[name] = sch
	return sch, nil
}

// Validate checks one JSON document against the component schema name.
func (s *Spec) Validate(name string, body []byte) error {
	sch, err := s.Schema(name)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// EventSchema is the ResponseStreamEvent branch for an event type, or ""
// when the spec has no such event.
func (s *Spec) EventSchema(eventType string) string { return s.events[eventType] }

// ValidateEvent checks the data of one SSE event against the
// ResponseStreamEvent branch its type names, and returns that branch. An
// event whose type the spec does not know is an error.
func (s *Spec) ValidateEvent(data []byte) (string, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("event is not a JSON object: %w", err)
	}
	if head.Type == nil {
		return "", errors.New("event has no type")
	}
	name := s.events[*head.Type]
	if name == "" {
		return "", fmt.Errorf("event type %q is not a ResponseStreamEvent", *head.Type)
	}
	return name, s.Validate(name, data)
}

// nodeValue converts a YAML node to the JSON value it denotes, keeping
// scalars as the document wrote them: a date-like string stays a string,
// numbers stay exact (json.Number).
func nodeValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, errors.New("conformance: expected one YAML document")
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, err
			}
			return json.Number(n.Value), nil
		default: // !!str, !!timestamp, !!binary: the text as written
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("conformance: YAML node kind %d at line %d", n.Kind, n.Line)
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func refOf(v any) string {
	s, _ := dig(v, "$ref").(string)
	return s
}

// branches returns the members of a oneOf or anyOf union.
func branches(m map[string]any) []any {
	if l, ok := m["oneOf"].([]any); ok {
		return l
	}
	l, _ := m["anyOf"].([]any)
	return l
}

func resolve(doc map[string]any, v any) any {
	for range 16 {
		ref := refOf(v)
		if ref == "" || !strings.HasPrefix(ref, "#/") {
			return v
		}
		v = dig(doc, strings.Split(ref[2:], "/")...)
	}
	return v
}

// discriminatorValues finds the values a branch allows for property prop:
// its const or enum, through $ref, allOf and nested unions.
func discriminatorValues(doc map[string]any, v any, prop string, depth int) []string {
	if depth > 8 {
		return nil
	}
	m, _ := resolve(doc, v).(map[string]any)
	if m == nil {
		return nil
	}
	if p, ok := dig(m, "properties", prop).(map[string]any); ok {
		p, _ = resolve(doc, p).(map[string]any)
		if c, ok := p["const"].(string); ok {
			return []string{c}
		}
		if e, ok := p["enum"].([]any); ok {
			var out []string
			for _, x := range e {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
	}
	if all, ok := m["allOf"].([]any); ok {
		for _, sub := range all {
			if vals := discriminatorValues(doc, sub, prop, depth+1); len(vals) > 0 {
				return vals
			}
		}
	}
	// A branch that is itself a union (InputItem's Item) allows what its
	// branches allow.
	var out []string
	for _, sub := range branches(m) {
		vals := discriminatorValues(doc, sub, prop, depth+1)
		if len(vals) == 0 {
			return nil
		}
		out = append(out, vals...)
	}
	return out
}

// recursiveRefs replaces draft 2019-09's $recursiveRef "#" inside a
// component marked $recursiveAnchor, which 2020-12 does not have, with a
// $ref to that component (what it means there: the component recurses).
func recursiveRefs(schemas map[string]any) {
	for name, v := range schemas {
		m, ok := v.(map[string]any)
		if !ok || m["$recursiveAnchor"] == nil {
			continue
		}
		delete(m, "$recursiveAnchor")
		ref := "#/components/schemas/" + name
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				if r, ok := x["$recursiveRef"]; ok && r == "#" {
					delete(x, "$recursiveRef")
					x["$ref"] = ref
				}
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(m)
	}
}

// rewrite walks the document and turns discriminator unions and nullable
// into plain JSON Schema (see the package doc).
func (s *Spec) rewrite(doc map[string]any, v any, at string) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			s.rewrite(doc, e, at+"/"+strconv.Itoa(i))
		}
	case map[string]any:
		for k, e := range x {
			s.rewrite(doc, e, at+"/"+k)
		}
		if d, ok := x["discriminator"].(map[string]any); ok {
			s.discriminate(doc, x, d, at)
		}
		if nb, _ := x["nullable"].(bool); nb {
			delete(x, "nullable")
			// A nullable enum (chunk finish_reason) must admit null too.
			if e, ok := x["enum"].([]any); ok && !slices.Contains(e, nil) {
				x["enum"] = append(e, nil)
			}
			switch t := x["type"].(type) {
			case string:
				x["type"] = []any{t, "null"}
			case []any:
				if !slices.Contains(t, any("null")) {
					x["type"] = append(t, "null")
				}
			default:
				inner := make(map[string]any, len(x))
				for k, e := range x {
					inner[k] = e
					delete(x, k)
				}
				x["anyOf"] = []any{inner, map[string]any{"type": "null"}}
			}
		}
	}
}

// discriminate replaces the union in m with: an object whose discriminating
// property is one of the branches' values, and, per value, an if/then that
// applies the branch (or branches) naming it.
func (s *Spec) discriminate(doc, m, d map[string]any, at string) {
	prop, _ := d["propertyName"].(string)
	key := "oneOf"
	if _, ok := m[key]; !ok {
		key = "anyOf"
	}
	brs, _ := m[key].([]any)
	if prop == "" || len(brs) == 0 {
		return // a discriminator with nothing to choose between (annotation only)
	}
	byValue := map[string][]any{}
	var order []string
	add := func(val string, br any) {
		if _, seen := byValue[val]; !seen {
			order = append(order, val)
		}
		byValue[val] = append(byValue[val], br)
	}
	if mapping, ok := d["mapping"].(map[string]any); ok && len(mapping) > 0 {
		for val, ref := range mapping {
			add(val, map[string]any{"$ref": ref})
		}
	} else {
		for _, br := range brs {
			vals := discriminatorValues(doc, br, prop, 0)
			if len(vals) == 0 {
				s.Unresolved = append(s.Unresolved, at)
				return
			}
			for _, val := range vals {
				add(val, br)
			}
		}
	}
	slices.Sort(order)
	enum := make([]any, len(order))
	checks := []any{map[string]any{
		"type":       "object",
		"required":   []any{prop},
		"properties": map[string]any{prop: map[string]any{"enum": enum}},
	}}
	for i, val := range order {
		enum[i] = val
		then := byValue[val][0]
		if len(byValue[val]) > 1 {
			then = map[string]any{"anyOf": byValue[val]}
		}
		checks = append(checks, map[string]any{
			"if":   map[string]any{"properties": map[string]any{prop: map[string]any{"const": val}}},
			"then": then,
		})
	}
	delete(m, key)
	if all, ok := m["allOf"].([]any); ok {
		checks = append(all, checks...)
	}
	m["allOf"] = checks
	s.Unions++
}

package devworkspace

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schemas clients send for structured output: a zod object as the AI
// SDK converts it (draft-07, $ref to a definition, nullable, enum, nested
// array), and OpenAI's strict form.
var formatSchemas = map[string]string{
	"zod": `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
	  "properties":{"recipe":{"$ref":"#/definitions/recipe"},"rating":{"type":"integer","minimum":1,"maximum":5},
	    "diet":{"type":"string","enum":["vegan","any"]},"note":{"type":["string","null"]}},
	  "required":["recipe","rating","diet","note"],"additionalProperties":false,
	  "definitions":{"recipe":{"type":"object","properties":{"name":{"type":"string","minLength":3},
	    "steps":{"type":"array","items":{"type":"string"},"minItems":2},"when":{"type":"string","format":"date-time"}},
	    "required":["name","steps","when"],"additionalProperties":false}}}`,
	"strict": `{"type":"object","properties":{"answer":{"type":"string","maxLength":10},"sources":{"type":"array","items":{"anyOf":[{"type":"string"},{"type":"null"}]}}},"required":["answer","sources"],"additionalProperties":false}`,
}

func TestDevLLMStructuredOutput(t *testing.T) {
	for name, src := range formatSchemas {
		t.Run(name, func(t *testing.T) {
			f := &responseFormat{Type: "json_schema"}
			f.JSONSchema = &struct {
				Name   string          `json:"name"`
				Schema json.RawMessage `json:"schema"`
				Strict *bool           `json:"strict,omitempty"`
			}{Name: "out", Schema: json.RawMessage(src)}
			req := &chatRequest{Messages: []chatMessage{userMsg("a soup for tonight")}, ResponseFormat: f}
			if err := validateChat(req); err != nil {
				t.Fatal(err)
			}
			reply := devLLM(req)
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(reply.Content))
			if err != nil {
				t.Fatalf("reply is not JSON: %q", reply.Content)
			}
			c := jsonschema.NewCompiler()
			sch, _ := jsonschema.UnmarshalJSON(strings.NewReader(src))
			if err := c.AddResource("mem://s.json", sch); err != nil {
				t.Fatal(err)
			}
			s, err := c.Compile("mem://s.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(doc); err != nil {
				t.Fatalf("reply %s does not match the schema: %v", reply.Content, err)
			}
			if !strings.Contains(reply.Content, "You asked") && !strings.Contains(reply.Content, "You aske") {
				t.Errorf("the answer text is not in the reply: %s", reply.Content)
			}
		})
	}
}

func TestDevLLMJSONObject(t *testing.T) {
	reply := devLLM(&chatRequest{Messages: []chatMessage{userMsg("hi")}, ResponseFormat: &responseFormat{Type: "json_object"}})
	var v map[string]string
	if err := json.Unmarshal([]byte(reply.Content), &v); err != nil || !strings.Contains(v["answer"], "hi") {
		t.Fatalf("json_object reply %q", reply.Content)
	}
}

func TestValidateFormat(t *testing.T) {
	for _, bad := range []*responseFormat{{Type: "yaml"}, {Type: "json_schema"}} {
		if validateFormat(bad) == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

package devworkspace

import (
	"strings"
	"testing"
)

func TestAPIsConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"unknown endpoint", func(c *Config) { c.VectorSearch.Indexes[0].EndpointName = "nope" }, "unknown endpoint"},
		{"bad index name", func(c *Config) { c.VectorSearch.Indexes[0].Name = "idx" }, "catalog.schema.index"},
		{"missing source table", func(c *Config) { c.VectorSearch.Indexes[0].SourceTable = "main.docs.nope" }, "main.docs.nope"},
		{"text column not a column", func(c *Config) { c.VectorSearch.Indexes[0].EmbeddingSourceColumn = "text" }, `"text"`},
		{"embedding endpoint", func(c *Config) { c.VectorSearch.Indexes[0].EmbeddingEndpoint = "dev-llm" }, "not a dev-embeddings"},
		{"bad model", func(c *Config) { c.Serving.Endpoints[0].Model = "gpt" }, "model must be"},
		{"duplicate endpoint", func(c *Config) { c.Serving.Endpoints[1].Name = c.Serving.Endpoints[0].Name }, "unique"},
		{"bad docs table", func(c *Config) { c.VectorSearch.DocsTable = "docs" }, "docs_table"},
	}
	for _, tt := range tests {
		cfg, err := DefaultConfig()
		if err != nil {
			t.Fatal(err)
		}
		tt.mutate(cfg)
		ws, err := New(Options{Config: cfg})
		if err == nil {
			ws.Close()
			t.Errorf("%s: New succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q does not mention %q", tt.name, err, tt.want)
		}
	}
}

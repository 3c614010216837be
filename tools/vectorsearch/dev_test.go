package vectorsearch_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/vectorsearch"
)

const devIndex = "main.docs.product_docs_index"

// TestDevWorkspace runs the retriever as each dev user against the dev
// workspace: alice can read the index, bob and carol cannot, and a user
// client whose scopes leave out vector search never reaches the server.
func TestDevWorkspace(t *testing.T) {
	ws := testws.Dev(t)
	user := testws.User(t, ws.URL(), vectorsearch.Scope, vectorsearch.TablesScope)
	p, err := vectorsearch.New(vectorsearch.Options{Index: devIndex, DocURIColumn: "url", Columns: []string{"id", "title", "body", "url", "product"},
		IncludeScore: true, DynamicFilter: true, NumResults: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user   string
		denied bool
	}{{"alice", false}, {"bob", true}, {"carol", true}} {
		t.Run(tc.user, func(t *testing.T) {
			ctx := testws.As(tc.user)
			ts, err := p.Prepare(ctx, user)
			if tc.denied {
				if !errors.Is(err, databricks.ErrPermissionDenied) || !tools.IsPermission(err) {
					t.Fatalf("err = %v, want permission denied", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			def := ts[0].Definition()
			if def.Name != "main__docs__product_docs_index" || !strings.Contains(def.Description, "main.docs.product_docs") ||
				!strings.Contains(def.Description, "body (") {
				t.Errorf("definition = %s\n%s", def.Name, def.Description)
			}
			out, err := ts[0].Call(ctx, `{"query":"How do I install Kestrel Vault on Linux?","filters":[{"key":"product","value":"Kestrel Vault"}]}`)
			if err != nil {
				t.Fatal(err)
			}
			var docs []vectorsearch.Document
			if err := json.Unmarshal([]byte(out), &docs); err != nil {
				t.Fatal(err)
			}
			if len(docs) == 0 || len(docs) > 3 {
				t.Fatalf("docs = %d", len(docs))
			}
			d := docs[0]
			if !strings.Contains(strings.ToLower(d.PageContent), "vault") || d.Metadata["doc_uri"] == nil || d.Metadata["chunk_id"] == nil ||
				d.Metadata["score"] == nil || d.Metadata["title"] == nil {
				t.Errorf("first doc = %+v", d)
			}
			for _, d := range docs {
				if d.Metadata["product"] != "Kestrel Vault" {
					t.Errorf("filter ignored: %+v", d.Metadata)
				}
			}
			// A call that the service rejects surfaces as a tool error.
			if _, err := ts[0].Call(ctx, `{"query":"x","filters":[{"key":"no_such_column","value":1}]}`); err == nil {
				t.Error("bad filter accepted")
			}
		})
	}
	t.Run("scope refusal", func(t *testing.T) {
		narrow := testws.User(t, ws.URL(), "dashboards.genie")
		_, err := p.Prepare(testws.As("alice"), narrow)
		if !tools.IsPermission(err) || !strings.Contains(err.Error(), "scope") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("set skips bob", func(t *testing.T) {
		set := tools.NewSet(tools.SetOptions{}).Add(p, tools.Options{Binding: tools.User, OnError: tools.Fail})
		env := agentEnv("bob", user)
		if err := set.Prepare(testws.As("bob"), env); err != nil {
			t.Fatal(err)
		}
		if len(env.Tools) != 0 || len(env.Skipped) != 1 || env.Skipped[0].Tool != "main__docs__product_docs_index" {
			t.Errorf("tools %d skipped %+v", len(env.Tools), env.Skipped)
		}
	})
}

package assistant_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/assistant"
	"github.com/agentrt/agentrt/internal/devtest"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/registry"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// serve starts the dev workspace and the assistant behind the real host, as
// `serve --dev` does: the host prepares the assistant's tools per caller
// (it implements tools.Declarer) and reports skips in custom_outputs.
func serve(t *testing.T) *httptest.Server {
	t.Helper()
	srv, _ := serveDev(t)
	return srv
}

// serveDev is serve that also returns the dev workspace, for its audit log.
func serveDev(t *testing.T) (*httptest.Server, *devworkspace.Workspace) {
	t.Helper()
	return devtest.Assistant(t)
}

type result struct {
	calls   []string // function_call names
	outputs []string // function_call_output texts
	text    string
	skipped []string // custom_outputs.skipped_tools[].tool
	reasons []string // custom_outputs.skipped_tools[].reason
}

func ask(t *testing.T, srv *httptest.Server, user, question string, stream bool) result {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"input":   []any{map[string]any{"role": "user", "content": question}},
		"stream":  stream,
		"context": map[string]any{"conversation_id": "conv-" + user},
	})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/invocations", strings.NewReader(string(body))) // MLflow dialect: function_call + function_call_output
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dev-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: status %d: %s", user, resp.StatusCode, b)
	}
	var r agent.Response
	if !stream {
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
	} else {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var deltas strings.Builder
		done := false
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if line == "[DONE]" {
				done = true
				break
			}
			var ev agent.StreamEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("event %s: %v", line, err)
			}
			if ev.Type == agent.EventOutputTextDelta {
				deltas.WriteString(ev.Delta)
			}
			if ev.Type == wireproto.EventCompleted { // the host's fold of the whole stream
				r = *ev.Response
			}
		}
		if !done {
			t.Fatal("stream did not end with [DONE]")
		}
		if deltas.Len() == 0 {
			t.Error("no text deltas streamed")
		}
	}
	var out result
	for _, it := range r.Output {
		switch it.Type {
		case agent.TypeFunctionCall:
			out.calls = append(out.calls, it.Name)
		case agent.TypeFunctionCallOutput:
			out.outputs = append(out.outputs, it.Output.String())
		}
	}
	out.text = r.OutputText()
	if sk, ok := r.CustomOutputs["skipped_tools"].([]any); ok {
		for _, s := range sk {
			out.skipped = append(out.skipped, s.(map[string]any)["tool"].(string))
			out.reasons = append(out.reasons, s.(map[string]any)["reason"].(string))
		}
	}
	return out
}

const (
	docsQ  = "How do I install and configure Kestrel Vault?"
	salesQ = "What was the total revenue by region?"
)

func TestAliceAndBob(t *testing.T) {
	srv := serve(t)
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "predict", true: "stream"}[stream]
		t.Run(name+"/alice docs", func(t *testing.T) {
			r := ask(t, srv, "alice", docsQ, stream)
			if len(r.calls) != 1 || r.calls[0] != "main__docs__product_docs_index" || len(r.skipped) != 0 {
				t.Fatalf("calls %v skipped %v", r.calls, r.skipped)
			}
			if !strings.Contains(r.outputs[0], `"page_content"`) || !strings.Contains(r.outputs[0], "docs.kestrel.example/vault/") {
				t.Errorf("output = %.300s", r.outputs[0])
			}
			// A readable answer: titles, citations, no raw JSON.
			if !strings.HasPrefix(r.text, "I found 4 passages in main.docs.product_docs_index") || !strings.Contains(r.text, "- **") ||
				!strings.Contains(r.text, "\nSources:\n[1] ") || !strings.Contains(r.text, "— https://docs.kestrel.example/vault/") ||
				strings.Contains(r.text, "page_content") {
				t.Errorf("answer = %s", r.text)
			}
		})
		t.Run(name+"/alice sales", func(t *testing.T) {
			r := ask(t, srv, "alice", salesQ, stream)
			if len(r.calls) != 1 || r.calls[0] != "ask_sales_genie" {
				t.Fatalf("calls %v", r.calls)
			}
			if !strings.Contains(r.outputs[0], "## SQL") || !strings.Contains(r.outputs[0], "| ") {
				t.Errorf("output = %.500s", r.outputs[0])
			}
			if !strings.Contains(r.text, "from the Genie space (4 rows):") || !strings.Contains(r.text, "- APAC: revenue ") ||
				!strings.Contains(r.text, "[1] Genie space query (") || strings.Contains(r.text, "SELECT") {
				t.Errorf("answer = %s", r.text)
			}
		})
		for _, q := range []string{docsQ, salesQ} {
			t.Run(name+"/bob "+q[:12], func(t *testing.T) {
				r := ask(t, srv, "bob", q, stream)
				want := "main__docs__product_docs_index,ask_sales_genie"
				if strings.Join(r.skipped, ",") != want {
					t.Errorf("skipped = %v, want %s", r.skipped, want)
				}
				for _, c := range r.calls {
					if c == "main__docs__product_docs_index" || c == "ask_sales_genie" {
						t.Errorf("bob called skipped tool %s", c)
					}
				}
				if r.text == "" {
					t.Error("no answer for bob")
				}
			})
		}
	}
}

func TestManifest(t *testing.T) {
	a, err := assistant.New(assistant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The assistant declares only its model; the host adds what the tools
	// need, on behalf of the user.
	if own := a.Manifest(); len(own.Resources) != 1 {
		t.Errorf("own manifest = %+v", own)
	}
	m := server.EffectiveManifest(a, agent.Manifest{})
	var res []string
	for _, r := range m.Resources {
		obo := r.OnBehalfOfUser != nil && *r.OnBehalfOfUser
		res = append(res, string(r.Type)+":"+r.Name+map[bool]string{true: "(user)", false: ""}[obo])
	}
	want := []string{
		"serving_endpoint:dev-llm",
		"vector_search_index:main.docs.product_docs_index(user)",
		"genie_space:01dev0genie0sales(user)",
		"function:main.tools.lookup_order(user)",
		"function:main.tools.top_products(user)",
	}
	if strings.Join(res, ",") != strings.Join(want, ",") {
		t.Errorf("resources:\n%s\nwant\n%s", strings.Join(res, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range []string{"serving.serving-endpoints", "vectorsearch.vector-search-indexes", "dashboards.genie", "mcp.functions"} {
		if !strings.Contains(strings.Join(m.UserAPIScopes, ","), s) {
			t.Errorf("scopes %v lack %s", m.UserAPIScopes, s)
		}
	}
	if _, ok := registry.Lookup(assistant.Name); !ok {
		t.Error("assistant is not registered")
	}
}

// TestCarolIsSkippedAtPrepare: carol may use no tool's data. The managed
// functions server would still list the order lookup to her, but its probe
// reads each function as her, so it is skipped at prepare time with the
// missing right, like the index and the Genie space; nothing fails mid-call.
func TestCarolIsSkippedAtPrepare(t *testing.T) {
	srv := serve(t)
	r := ask(t, srv, "carol", "Look up order ORD-100042", false)
	if len(r.calls) != 0 {
		t.Fatalf("calls = %v outputs %v", r.calls, r.outputs)
	}
	if strings.Join(r.skipped, ",") != "main__docs__product_docs_index,ask_sales_genie,/api/2.0/mcp/functions/main/tools" {
		t.Fatalf("skipped %v", r.skipped)
	}
	if !strings.Contains(r.reasons[2], "function main.tools.") || !strings.Contains(r.reasons[2], "carol@example.com does not have USE_CATALOG on catalog main") {
		t.Errorf("reason = %q", r.reasons[2])
	}
	if !strings.Contains(r.text, "You asked") {
		t.Errorf("text %q", r.text)
	}
}

// TestOrderLookupArguments: the dev model passes the order number, not the
// sentence, and answers with the order's status and amount.
func TestOrderLookupArguments(t *testing.T) {
	srv := serve(t)
	r := ask(t, srv, "alice", "look up order 100042", false)
	if len(r.calls) != 1 || r.calls[0] != "main__tools__lookup_order" || !strings.HasPrefix(r.outputs[0], "Order ORD-100042 ") {
		t.Fatalf("calls %v outputs %v", r.calls, r.outputs)
	}
	if !strings.Contains(r.text, "- Status: shipped") || !strings.Contains(r.text, "- Amount: 445.04 USD") || !strings.Contains(r.text, "[1] main.tools.lookup_order") {
		t.Errorf("answer = %s", r.text)
	}
}

// TestProvisionNeedsSystemClient: the model client is built once at
// start-up from the system client; without one, start-up fails (rather
// than every request), and an assistant that was never provisioned says so.
func TestProvisionNeedsSystemClient(t *testing.T) {
	a, err := assistant.New(assistant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Provision(context.Background(), &agent.Env{}); err == nil || !strings.Contains(err.Error(), "no workspace") {
		t.Errorf("Provision without a system client = %v", err)
	}
	req := new(agent.Request)
	err = json.Unmarshal([]byte(`{"input":"hi"}`), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Predict(context.Background(), req); err == nil || !strings.Contains(err.Error(), "not provisioned") {
		t.Errorf("Predict before Provision = %v", err)
	}
}

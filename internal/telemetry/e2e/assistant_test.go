package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/assistant"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/telemetry/telemetrytest"
	"github.com/agentrt/agentrt/internal/workspace"
)

// startAssistant serves examples/assistant against the dev workspace, wired
// like `serve --dev`: both workspace clients over telemetry.Transport (with
// the sniffer under it) and the identity preparer; the host prepares tools.
func startAssistant(t *testing.T) (*devmode.Dev, *tokenSniffer, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, err := devmode.Start(ctx, devmode.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	a, err := assistant.New(assistant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sniff := &tokenSniffer{}
	wo := workspace.Options{Manifest: server.EffectiveManifest(a, agent.Manifest{}), Logger: log, SkipPreflight: true, Transport: telemetry.Transport(sniff)}
	dev.Configure(&wo)
	ws, err := workspace.Open(ctx, wo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.System.Close() })
	// The host adds the tools preparer itself (the assistant is a tools.Declarer).
	srv := startHost(t, server.Options{Agent: a, AgentName: assistant.Name, Dev: true, Logger: log,
		Preparers: []server.Preparer{ws.Identity}, System: ws.System.Client(), User: ws.User.Client()})
	return dev, sniff, srv.URL
}

func childrenOf(spans tracetest.SpanStubs, parent tracetest.SpanStub) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() {
			out = append(out, s)
		}
	}
	return out
}

func names(spans []tracetest.SpanStub) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestAssistantTraceAliceAndBob traces the same question
// as alice (who may use every tool) and as bob (who may not use the docs
// index or the Genie space), streamed and not.
func TestAssistantTraceAliceAndBob(t *testing.T) {
	dev, sniff, url := startAssistant(t)
	metricsURL := url + "/metrics"
	before := scrapeURL(t, metricsURL)
	const question = "How do I install and configure Kestrel Vault?"
	for _, stream := range []bool{false, true} {
		for _, who := range []string{"alice", "bob"} {
			name := who + map[bool]string{false: "/predict", true: "/stream"}[stream]
			t.Run(name, func(t *testing.T) {
				mem.Reset()
				console.Reset()
				defaultLog.Reset()
				body, _ := json.Marshal(map[string]any{"input": question, "stream": stream})
				req, _ := http.NewRequest(http.MethodPost, url+"/responses", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Dev-User", who)
				req.Header.Set(telemetry.ReturnTraceHeader, "true")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				out, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, out)
				}

				spans := mem.GetSpans()
				server := one(t, spans, "POST /responses")
				if !strings.Contains(string(out), `"trace_id":"tr-`+server.SpanContext.TraceID().String()+`"`) {
					t.Errorf("answer does not carry the trace id %s", server.SpanContext.TraceID())
				}
				for _, s := range spans {
					if s.SpanContext.TraceID() != server.SpanContext.TraceID() {
						t.Errorf("span %s is in another trace: one request, one trace", s.Name)
					}
				}
				top := names(childrenOf(spans, server))
				if !slices.Equal(top, []string{"identity.resolve", "predict", "tools.prepare"}) {
					t.Errorf("server span children %v", top)
				}
				principal := attrs(one(t, spans, "identity.resolve"))["enduser.id"]
				predict := one(t, spans, "predict")
				if principal == "" || attrs(predict)["enduser.id"] != principal || attrs(server)["enduser.id"] != principal {
					t.Errorf("enduser.id %q on identity.resolve, %q on predict, %q on the server span",
						principal, attrs(predict)["enduser.id"], attrs(server)["enduser.id"])
				}
				if n := len(server.Attributes); n > 8 {
					t.Errorf("server span has %d attributes, want at most 8 (cost): %v", n, attrs(server))
				}

				// Tool preparation: probes are outgoing HTTP under tools.prepare;
				// bob's dropped tools are events with tool, resource and reason.
				prep := one(t, spans, "tools.prepare")
				probes := len(byName(childrenOf(spans, prep), "HTTP GET")) + len(byName(childrenOf(spans, prep), "HTTP POST"))
				if !stream && probes == 0 { // later requests use the per-caller probe cache
					t.Errorf("no workspace probes under tools.prepare: %v", names(childrenOf(spans, prep)))
				}
				var skipped []string
				for _, e := range prep.Events {
					if e.Name != "tool.skipped" {
						continue
					}
					ea := map[string]string{}
					for _, kv := range e.Attributes {
						ea[string(kv.Key)] = kv.Value.Emit()
					}
					if ea["tool"] == "" || ea["resource"] == "" || ea["reason"] == "" {
						t.Errorf("tool.skipped event lacks tool/resource/reason: %v", ea)
					}
					skipped = append(skipped, ea["tool"])
				}
				slices.Sort(skipped)
				wantSkipped := map[string][]string{"alice": nil, "bob": {"ask_sales_genie", "main__docs__product_docs_index"}}[who]
				if !slices.Equal(skipped, wantSkipped) {
					t.Errorf("skipped %v, want %v", skipped, wantSkipped)
				}

				// The agent's own work: LLM calls with GenAI attributes, and
				// (for alice) the docs tool call, each over instrumented HTTP.
				chats := byName(childrenOf(spans, predict), "chat dev-llm")
				if len(chats) == 0 {
					t.Fatalf("no chat span under predict: %v", names(childrenOf(spans, predict)))
				}
				for _, c := range chats {
					ca := attrs(c)
					if ca["gen_ai.operation.name"] != "chat" || ca["gen_ai.request.model"] != "dev-llm" || c.SpanKind != trace.SpanKindClient {
						t.Errorf("chat span attributes %v", ca)
					}
					if len(byName(childrenOf(spans, c), "HTTP POST")) != 1 {
						t.Errorf("chat span without its HTTP call: %v", names(childrenOf(spans, c)))
					}
				}
				if ca := attrs(chats[0]); ca["gen_ai.usage.input_tokens"] == "" || ca["gen_ai.usage.output_tokens"] == "" {
					t.Errorf("no token usage on the chat span: %v", ca)
				}
				calls := byName(childrenOf(spans, predict), "tool.call")
				if who == "alice" {
					if len(calls) != 1 || attrs(calls[0])["gen_ai.tool.name"] != "main__docs__product_docs_index" {
						t.Errorf("alice's tool calls %v", calls)
					} else if len(childrenOf(spans, calls[0])) == 0 {
						t.Error("the tool call made no instrumented HTTP call")
					}
				} else if len(calls) != 0 {
					t.Errorf("bob called %d tools", len(calls))
				}
				if attrs(predict)[telemetry.AttrStream] != map[bool]string{false: "false", true: "true"}[stream] {
					t.Errorf("predict stream attribute %v", attrs(predict))
				}

				secrets := append(append([]string{}, devSecrets...), sniff.seen()...)
				for _, tok := range dev.Users() {
					secrets = append(secrets, tok)
				}
				telemetrytest.AssertNoSecrets(t, spans, secrets...)
				tree := console.String()
				for _, sec := range secrets {
					if strings.Contains(tree, sec) {
						t.Error("the dev console tree shows a secret")
					}
				}
				if who == "bob" && !strings.Contains(tree, "· tool.skipped") {
					t.Errorf("dev tree lacks the skip events:\n%s", tree)
				}
				// The tools library logs each skip with the request's ctx; the
				// host's logger stamps the line with request and trace ids.
				if who == "bob" {
					reqID, traceID := attrs(server)[telemetry.AttrRequestID], server.SpanContext.TraceID().String()
					n := 0
					for _, line := range strings.Split(strings.TrimSpace(defaultLog.String()), "\n") {
						var rec map[string]any
						if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "tool skipped" && rec["request_id"] == reqID {
							n++
							if rec["trace_id"] != traceID {
								t.Errorf("skip log line %v lacks trace id %s", rec, traceID)
							}
						}
					}
					if n != 2 {
						t.Errorf("%d skip log lines for request %s, want 2", n, reqID)
					}
				}
				t.Logf("dev console:\n%s", tree)
			})
		}
	}
	if len(sniff.seen()) < 3 {
		t.Errorf("sniffer saw only %d credentials", len(sniff.seen()))
	}

	// The libraries' instruments reach /metrics through the global provider.
	after := scrapeURL(t, metricsURL)
	delta := func(name string, l map[string]string) float64 {
		b := value(before, name, l)
		if b < 0 {
			b = 0
		}
		return value(after, name, l) - b
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"http_server_request_duration_seconds", map[string]string{"http_route": "/responses", "http_response_status_code": "200"}, 4},
		{"agentrt_tools_skipped_total", map[string]string{"tool": "ask_sales_genie", "reason": "permission_denied"}, 2},
		{"agentrt_tools_skipped_total", map[string]string{"tool": "main__docs__product_docs_index", "reason": "permission_denied"}, 2},
		{"agentrt_tools_prepared_total", map[string]string{"tool": "ask_sales_genie", "outcome": "ok"}, 2},
		{"agentrt_tool_call_duration_seconds", map[string]string{"tool": "main__docs__product_docs_index"}, 2},
		{"gen_ai_client_operation_duration_seconds", map[string]string{"gen_ai_request_model": "dev-llm", "gen_ai_operation_name": "chat"}, 6},
	}
	for _, c := range checks {
		if got := delta(c.name, c.labels); got != c.want {
			t.Errorf("%s%v rose by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := value(after, "agentrt_token_refreshes_total", map[string]string{"outcome": "ok"}); v < 1 {
		t.Errorf("agentrt_token_refreshes_total{outcome=ok} = %v; the system client fetched a token", v)
	}
	if v := value(after, "agentrt_streams_active", nil); v != 0 {
		t.Errorf("agentrt_streams_active = %v after the streams ended", v)
	}
}

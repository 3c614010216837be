package e2e_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/sql"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/telemetry/telemetrytest"
	"github.com/agentrt/agentrt/internal/workspace"
)

// tokenSniffer remembers every credential that leaves the process, so the
// tests can look for each of them in the spans (service-principal and
// exchanged tokens are minted at run time; their values are not known ahead).
type tokenSniffer struct {
	mu     sync.Mutex
	tokens map[string]bool
}

func (s *tokenSniffer) RoundTrip(r *http.Request) (*http.Response, error) {
	if a := r.Header.Get("Authorization"); a != "" {
		_, tok, _ := strings.Cut(a, " ")
		s.mu.Lock()
		if s.tokens == nil {
			s.tokens = map[string]bool{}
		}
		s.tokens[tok] = true
		s.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (s *tokenSniffer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.tokens {
		out = append(out, t)
	}
	return out
}

// warehouseAgent reads a warehouse as the caller and as itself, so a request
// makes workspace calls with both clients.
type warehouseAgent struct{}

func (warehouseAgent) Predict(ctx context.Context, _ *agent.Request) (*agent.Response, error) {
	env := agent.FromContext(ctx)
	if _, err := env.User.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "dev-warehouse"}); err != nil {
		return nil, err
	}
	if _, err := env.System.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "dev-warehouse"}); err != nil {
		return nil, err
	}
	return &agent.Response{Output: []agent.Item{agent.TextItem(agent.NewID("msg"), "ok")}}, nil
}

// startDevHost wires the host the way `serve --dev` does: the embedded dev
// workspace, both workspace clients over the instrumented transport, the
// identity preparer.
func startDevHost(t *testing.T, a agent.Agent, m agent.Manifest, extra ...server.Preparer) (*devmode.Dev, *tokenSniffer, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, err := devmode.Start(ctx, devmode.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	sniff := &tokenSniffer{}
	wo := workspace.Options{Manifest: m, Logger: log, Transport: telemetry.Transport(sniff)}
	dev.Configure(&wo)
	ws, err := workspace.Open(ctx, wo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.System.Close() })
	srv := startHost(t, server.Options{Agent: a, AgentName: "dev-e2e", Manifest: m, Dev: true, Logger: log,
		Preparers: append([]server.Preparer{ws.Identity}, extra...)})
	return dev, sniff, srv.URL
}

func TestDevWorkspaceTrace(t *testing.T) {
	m := agent.Manifest{UserAPIScopes: []string{"sql.warehouses"}}
	dev, sniff, url := startDevHost(t, warehouseAgent{}, m)
	users := dev.Users()
	for _, who := range []string{"alice", "bob"} {
		t.Run(who, func(t *testing.T) {
			mem.Reset()
			console.Reset()
			req, _ := http.NewRequest(http.MethodPost, url+"/responses", strings.NewReader(`{"input":"hi"}`))
			req.Header.Set("Content-Type", "application/json")
			if who == "alice" {
				req.Header.Set("X-Dev-User", who) // dev mode's mock identity
			} else {
				req.Header.Set("Authorization", "Bearer "+users[who])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			spans := mem.GetSpans()
			server := one(t, spans, "POST /responses")
			resolve := one(t, spans, "identity.resolve")
			predict := one(t, spans, "predict")
			if resolve.Parent.SpanID() != server.SpanContext.SpanID() || predict.Parent.SpanID() != server.SpanContext.SpanID() {
				t.Error("identity.resolve and predict must be children of the server span")
			}
			principal := attrs(resolve)["enduser.id"]
			if principal == "" || attrs(predict)["enduser.id"] != principal || attrs(server)["enduser.id"] != principal {
				t.Errorf("enduser.id: resolve %q, predict %q, server %q", principal, attrs(predict)["enduser.id"], attrs(server)["enduser.id"])
			}
			// Both workspace calls are client spans under predict, in this trace.
			var calls []tracetest.SpanStub
			for _, s := range byName(spans, "HTTP GET") {
				if s.Parent.SpanID() == predict.SpanContext.SpanID() {
					calls = append(calls, s)
				}
			}
			if len(calls) != 2 {
				t.Errorf("%d workspace calls under predict, want 2 (user and system)", len(calls))
			}
			for _, s := range spans {
				if s.SpanContext.TraceID() != server.SpanContext.TraceID() {
					t.Errorf("span %s is in another trace", s.Name)
				}
			}
			secrets := append(append([]string{}, devSecrets...), dev.System().ClientSecret)
			for _, tok := range users {
				secrets = append(secrets, tok)
			}
			telemetrytest.AssertNoSecrets(t, spans, append(secrets, sniff.seen()...)...)

			tree := console.String()
			t.Logf("dev console:\n%s", tree)
			for _, want := range []string{"POST /responses", "├─ identity.resolve", "└─ predict", "   ├─ HTTP GET", "   └─ HTTP GET", "enduser.id=" + principal} {
				if !strings.Contains(tree, want) {
					t.Errorf("console tree lacks %q", want)
				}
			}
			for _, sec := range secrets {
				if strings.Contains(tree, sec) {
					t.Errorf("console tree shows a secret")
				}
			}
		})
	}
	if len(sniff.seen()) < 2 {
		t.Errorf("sniffer saw %d credentials; the secret search would prove nothing", len(sniff.seen()))
	}
}

package identity_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/identity"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

var spans = tracetest.NewSpanRecorder()

func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	os.Exit(m.Run())
}

func TestResolveSpan(t *testing.T) {
	ws := newSCIM(t)
	const token = "secret-user-token-42"
	ws.users[token] = `{"id":"1001","userName":"alice@example.com"}`
	r, err := identity.New(identity.Options{Manifest: oboManifest, User: ws.client(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := otel.Tracer("test").Start(context.Background(), "request")
	req := httptest.NewRequest("POST", "/responses", nil)
	req.Header.Set("X-Forwarded-Access-Token", token)
	env := &agent.Env{}
	if _, err := r.Prepare(ctx, req, env); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var found bool
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() == parent.SpanContext().TraceID() {
			for _, kv := range s.Attributes() {
				if strings.Contains(kv.Value.Emit(), token) {
					t.Fatalf("span %s attribute %s carries the token", s.Name(), kv.Key)
				}
			}
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.Name() != "identity.resolve" {
			continue
		}
		found = true
		sawID := false
		defer func() {
			if !sawID {
				t.Error("identity.resolve has no enduser.id")
			}
		}()
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), token) {
				t.Fatalf("span attribute %s carries the token", kv.Key)
			}
			sawID = sawID || kv.Key == "enduser.id"
			if kv.Key == "enduser.id" && kv.Value.AsString() != env.Caller.PrincipalID {
				t.Fatalf("enduser.id = %q, want %q", kv.Value.AsString(), env.Caller.PrincipalID)
			}
		}
	}
	if !found {
		t.Fatal("no identity.resolve span under the request span")
	}
}

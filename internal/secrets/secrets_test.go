package secrets_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/secrets"
	"github.com/databricks/databricks-sdk-go"
)

func devSystem(t *testing.T, env map[string]string) *credentials.System {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ws, err := devworkspace.Start(ctx, devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	sys, err := credentials.NewSystem(ctx, credentials.SystemOptions{Host: ws.URL(),
		ClientID: env["DATABRICKS_CLIENT_ID"], ClientSecret: env["DATABRICKS_CLIENT_SECRET"], Token: env["DATABRICKS_TOKEN"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	return sys
}

var agentSP = map[string]string{"DATABRICKS_CLIENT_ID": devworkspace.SPClientID, "DATABRICKS_CLIENT_SECRET": devworkspace.SPClientSecret}

func TestResolveMap(t *testing.T) {
	sys := devSystem(t, agentSP)
	m := map[string]string{
		"OPENAI_API_KEY": "{{secrets/agent/openai_api_key}}",
		"HEADER":         "Bearer {{ secrets/agent/external_api_token }}",
		"PLAIN":          "no reference",
	}
	if err := secrets.ResolveMap(context.Background(), sys.Client(), m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"OPENAI_API_KEY": "sk-dev-not-a-real-key", "HEADER": "Bearer dev-external-token", "PLAIN": "no reference"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
}

func TestUnresolvable(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		value    string
		sentinel error
	}{
		{"missing key", agentSP, "{{secrets/agent/nope}}", databricks.ErrNotFound},
		{"missing scope", agentSP, "{{secrets/nope/key}}", databricks.ErrNotFound},
		{"no READ acl", map[string]string{"DATABRICKS_TOKEN": devworkspace.BobToken}, "{{secrets/agent/openai_api_key}}", databricks.ErrPermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := devSystem(t, tt.env)
			m := map[string]string{"GOOD": "{{secrets/agent/external_api_token}}", "BAD": tt.value}
			err := secrets.ResolveMap(context.Background(), sys.Client(), m)
			var se *secrets.Error
			if !errors.As(err, &se) || !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want a *secrets.Error matching %v", err, tt.sentinel)
			}
			if se.Name != "BAD" || !strings.Contains(err.Error(), tt.value) || !strings.Contains(err.Error(), "BAD") {
				t.Fatalf("error does not name the reference and key: %v", err)
			}
			for _, secret := range []string{"sk-dev-not-a-real-key", "dev-external-token"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks a secret value: %v", err)
				}
			}
		})
	}
}

func TestRefs(t *testing.T) {
	got := secrets.Refs("a {{secrets/s1/k1}} b {{secrets/s-2/k.2}} {{secrets/bad}}")
	if len(got) != 2 || got[0] != (secrets.Ref{Scope: "s1", Key: "k1"}) || got[1].String() != "{{secrets/s-2/k.2}}" {
		t.Fatalf("Refs = %v", got)
	}
	if secrets.Contains("{{secrets/only-scope}}") {
		t.Fatal("an incomplete reference matched")
	}
}

func TestEnviron(t *testing.T) {
	sys := devSystem(t, agentSP)
	got, err := secrets.NewResolver(sys.Client()).Environ(context.Background(), []string{"A={{secrets/agent/openai_api_key}}", "B=plain", "C"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["A"] != "sk-dev-not-a-real-key" {
		t.Fatalf("Environ = %v", got)
	}
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/preflight"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestServeCheckDev(t *testing.T) {
	m := agent.Manifest{Resources: []agent.Resource{
		{Type: agent.ServingEndpoint, Name: "dev-llm"},
		{Type: agent.ServingEndpoint, Name: "no-such-endpoint"},
	}}
	var out bytes.Buffer
	_, closeWS, err := openWorkspace(context.Background(), workspaceFlags{dev: true, devWorkspaceAddr: "127.0.0.1:0"}, "127.0.0.1:0", m, true, nil, quietLog, &out)
	defer closeWS()
	var fe *preflight.FailureError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	for _, s := range []string{"dev workspace: http://127.0.0.1:", "dev-llm", "ok", "no-such-endpoint", "missing"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestServeDevRefusesRemoteAddr(t *testing.T) {
	_, closeWS, err := openWorkspace(context.Background(), workspaceFlags{dev: true}, "0.0.0.0:8080", agent.Manifest{}, false, nil, quietLog, io.Discard)
	defer closeWS()
	var ae *devmode.AddrError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
}

func TestServeNeedsWorkspace(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "")
	m := agent.Manifest{UserAPIScopes: []string{"sql"}}
	_, closeWS, err := openWorkspace(context.Background(), workspaceFlags{}, "127.0.0.1:0", m, false, nil, quietLog, io.Discard)
	defer closeWS()
	if err == nil || !strings.Contains(err.Error(), "--dev") {
		t.Fatalf("err = %v", err)
	}
	prep, closeWS2, err := openWorkspace(context.Background(), workspaceFlags{}, "127.0.0.1:0", agent.Manifest{}, false, nil, quietLog, io.Discard)
	defer closeWS2()
	if err != nil || prep != nil {
		t.Fatalf("no-workspace agent: %v, %v", prep, err)
	}
}

func TestWorkspaceFlagsAndEnv(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net")
	t.Setenv("AGENTRT_DEV", "true")
	t.Setenv("AGENTRT_ALLOW_MISSING_RESOURCES", "1")
	c, err := parseFlags([]string{"check", "--agent", "echo", "--token-exchange", "--dev-workspace-addr", "127.0.0.1:9001"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w := c.ws
	if !c.check || w.host != "https://adb-1.azuredatabricks.net" || !w.dev || !w.allowMissing || !w.tokenExchange || w.devWorkspaceAddr != "127.0.0.1:9001" || w.devAllowRemote != "" {
		t.Fatalf("config %+v", c)
	}
}

// `serve check --dev` for an agent without resources prints an empty table
// and succeeds; `serve --dev` refuses a non-loopback --addr.
func TestRunCheckAndDevAddr(t *testing.T) {
	t.Setenv("DATABRICKS_HOST", "")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"check", "--agent", "echo", "--dev", "--log-format", "text"}, &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "RESOURCE") || !strings.Contains(out.String(), "dev workspace: http://127.0.0.1:") {
		t.Fatalf("check output:\n%s", out.String())
	}
	err := Run(context.Background(), []string{"--agent", "echo", "--dev", "--addr", "0.0.0.0:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--dev-allow-remote") {
		t.Fatalf("err = %v", err)
	}
}

// TestSystemFromEnv: the system credential comes from the same variables as
// before the libraries stopped reading the environment, trimmed.
func TestSystemFromEnv(t *testing.T) {
	env := map[string]string{
		"DATABRICKS_CLIENT_ID": " sp ", "DATABRICKS_CLIENT_SECRET": "secret\n", "AGENTRT_TOKEN_FILE": "/run/tok",
		"DATABRICKS_OIDC_TOKEN_FILEPATH": "/run/oidc", "DATABRICKS_TOKEN_AUDIENCE": "aud", "DATABRICKS_TOKEN": "pat",
		"DATABRICKS_WORKSPACE_ID": "42",
	}
	o := systemFromEnv(func(k string) string { return env[k] })
	if o.ClientID != "sp" || o.ClientSecret != "secret" || o.TokenFile != "/run/tok" || o.OIDCTokenFile != "/run/oidc" ||
		o.TokenAudience != "aud" || o.Token != "pat" || o.WorkspaceID != "42" {
		t.Fatalf("%+v", o)
	}
	// --dev uses the dev service principal whatever the environment says.
	t.Setenv("DATABRICKS_TOKEN", "not-the-dev-sp")
	c, err := parseFlags([]string{"--agent", "echo", "--dev"}, io.Discard)
	if err != nil || c.ws.system.Token != "not-the-dev-sp" {
		t.Fatalf("parse: %v, %+v", err, c.ws.system)
	}
	ws, closeWS, err := openWorkspace(context.Background(), c.ws, "127.0.0.1:0", agent.Manifest{}, false, nil, quietLog, io.Discard)
	defer closeWS()
	if err != nil {
		t.Fatal(err)
	}
	if ws.System.Source() != credentials.SourceM2M {
		t.Fatalf("dev system source = %s, want %s", ws.System.Source(), credentials.SourceM2M)
	}
}

// TestServeExportsResolvedSecrets: a variable holding a {{secrets/…}}
// reference holds the secret once the workspace is open; the workspace
// library resolves it, the cli exports it.
func TestServeExportsResolvedSecrets(t *testing.T) {
	t.Setenv("AGENTRT_TEST_EXTERNAL_TOKEN", "Bearer {{secrets/agent/external_api_token}}")
	_, closeWS, err := openWorkspace(context.Background(), workspaceFlags{dev: true, devWorkspaceAddr: "127.0.0.1:0"}, "127.0.0.1:0", agent.Manifest{}, false, nil, quietLog, io.Discard)
	defer closeWS()
	if err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("AGENTRT_TEST_EXTERNAL_TOKEN"); got != "Bearer dev-external-token" {
		t.Fatalf("exported %q", got)
	}
}

package workspace_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/preflight"
	"github.com/agentrt/agentrt/internal/workspace"
	"github.com/databricks/databricks-sdk-go/service/iam"
)

func startDev(t *testing.T) *devmode.Dev {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d, err := devmode.Start(ctx, devmode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func devOptions(d *devmode.Dev, m agent.Manifest) workspace.Options {
	o := workspace.Options{Manifest: m, Logger: quiet}
	d.Configure(&o)
	return o
}

func TestOpenDev(t *testing.T) {
	d := startDev(t)
	m := agent.Manifest{
		Resources:     []agent.Resource{{Type: agent.ServingEndpoint, Name: "dev-llm"}, {Type: agent.SQLWarehouse, Name: "dev-warehouse"}},
		UserAPIScopes: []string{"sql"},
	}
	o := devOptions(d, m)
	o.Config = map[string]string{"OPENAI_API_KEY": "{{secrets/agent/openai_api_key}}"}
	o.Environ = []string{"EXTERNAL_TOKEN=Bearer {{secrets/agent/external_api_token}}", "PATH=/bin"}
	var table bytes.Buffer
	o.PreflightOut = &table
	o.TokenExchange = true
	ws, err := workspace.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if o.Config["OPENAI_API_KEY"] != "sk-dev-not-a-real-key" {
		t.Fatalf("secret not resolved: %q", o.Config["OPENAI_API_KEY"])
	}
	if len(ws.Environ) != 1 || ws.Environ["EXTERNAL_TOKEN"] != "Bearer dev-external-token" {
		t.Fatalf("environment: %v", ws.Environ)
	}
	if _, set := os.LookupEnv("EXTERNAL_TOKEN"); set {
		t.Fatal("Open exported a secret to the process environment")
	}
	if !ws.Preflight.OK() || !strings.Contains(table.String(), "dev-llm") {
		t.Fatalf("preflight:\n%s", table.String())
	}

	req := httptest.NewRequest("POST", "/responses", nil)
	req.Header.Set("X-Dev-User", "carol")
	env := &agent.Env{RequestID: "r-1"}
	ctx, err := ws.Prepare(agent.NewContext(context.Background(), env), req, env)
	if err != nil {
		t.Fatal(err)
	}
	id, err := env.Caller.Resolve(ctx)
	if err != nil || id.UserName != "carol@example.com" {
		t.Fatalf("caller = %+v, %v", id, err)
	}
	sysMe, err := env.System.CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil || sysMe.UserName != devworkspace.SPClientID {
		t.Fatalf("system = %+v, %v", sysMe, err)
	}
	// With token exchange the caller's calls use an exchanged token.
	var exchanged bool
	for _, e := range d.Workspace().Audit() {
		if e.RequestID == "r-1" && e.Principal == "carol@example.com" {
			exchanged = e.AuthMethod == devworkspace.MethodTokenExchange
		}
	}
	if !exchanged {
		t.Fatal("caller's call did not use an exchanged token")
	}
}

func TestOpenFailsOnMissingResource(t *testing.T) {
	d := startDev(t)
	m := agent.Manifest{Resources: []agent.Resource{{Type: agent.ServingEndpoint, Name: "no-such-endpoint"}}}
	_, err := workspace.Open(context.Background(), devOptions(d, m))
	var fe *preflight.FailureError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--allow-missing-resources") {
		t.Fatalf("err = %v", err)
	}
	o := devOptions(d, m)
	o.AllowMissingResources = true
	ws, err := workspace.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()

	rep, err := workspace.Check(context.Background(), devOptions(d, m))
	if err != nil || rep.OK() {
		t.Fatalf("Check = %v, %v", rep, err)
	}
}

func TestOpenRejects(t *testing.T) {
	d := startDev(t)
	for name, o := range map[string]workspace.Options{
		"unresolvable secret": func() workspace.Options {
			o := devOptions(d, agent.Manifest{})
			o.Config = map[string]string{"K": "{{secrets/agent/missing}}"}
			return o
		}(),
		"exchange without scopes": func() workspace.Options {
			o := devOptions(d, agent.Manifest{})
			o.TokenExchange = true
			return o
		}(),
		"no credentials": {Host: d.URL(), Logger: quiet},
	} {
		if ws, err := workspace.Open(context.Background(), o); err == nil {
			ws.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if strings.Contains(err.Error(), "not-a-real-key") {
			t.Errorf("%s: error leaks a secret: %v", name, err)
		}
	}
	_ = credentials.SourceM2M
}

func TestRunCheckOutput(t *testing.T) {
	d := startDev(t)
	m := agent.Manifest{Resources: []agent.Resource{
		{Type: agent.ServingEndpoint, Name: "dev-llm"},
		{Type: agent.Table, Name: "main.sales.orders"},
		{Type: agent.Table, Name: "main.sales.nope"},
		{Type: agent.GenieSpace, Name: "01dev0genie0sales"},
	}}
	var out bytes.Buffer
	err := workspace.RunCheck(context.Background(), devOptions(d, m), &out)
	var fe *preflight.FailureError
	if !errors.As(err, &fe) || len(fe.Failed) != 1 || fe.Failed[0].Resource.Name != "main.sales.nope" {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "RESOURCE") || !strings.Contains(lines[3], "missing") ||
		!strings.Contains(lines[5], "warning: genie_space 01dev0genie0sales depends on sql_warehouse dev-warehouse") {
		t.Fatalf("output:\n%s", out.String())
	}
	// Columns are aligned: STATUS starts at the same offset on every row.
	col := strings.Index(lines[0], "STATUS")
	for _, l := range lines[1:5] {
		if st := l[col:]; !strings.HasPrefix(st, "ok") && !strings.HasPrefix(st, "missing") {
			t.Fatalf("misaligned row %q", l)
		}
	}
}

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	_ "github.com/agentrt/agentrt/examples/assistant" // the agent the App tests deploy
	"github.com/agentrt/agentrt/internal/apps"
	"github.com/agentrt/agentrt/internal/devworkspace"
	sdkapps "github.com/databricks/databricks-sdk-go/service/apps"
)

// clearEnv unsets, for the test, every variable serve or the SDK would read
// besides the ones the test sets.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range []string{"DATABRICKS_", "AGENTRT_", "OTEL_", "ARM_", "AZURE_", "GOOGLE_"} {
			if strings.HasPrefix(k, p) {
				t.Setenv(k, "") // restores the value after the test
				os.Unsetenv(k)
			}
		}
	}
	t.Setenv("HOME", t.TempDir()) // no ~/.databrickscfg
}

func TestAppsPlatformDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		args      []string
		wantAddr  string
		wantTrust bool
		wantApp   string
		wantErr   string
	}{
		{name: "not an app", wantAddr: "127.0.0.1:8080"},
		{name: "app", env: map[string]string{"DATABRICKS_APP_PORT": "8000", "DATABRICKS_APP_NAME": "kestrel"}, wantAddr: "0.0.0.0:8000", wantTrust: true, wantApp: "kestrel"},
		{name: "--addr wins", env: map[string]string{"DATABRICKS_APP_PORT": "8000"}, args: []string{"--addr", "127.0.0.1:9"}, wantAddr: "127.0.0.1:9", wantTrust: true, wantApp: "(unnamed)"},
		{name: "AGENTRT_ADDR wins", env: map[string]string{"DATABRICKS_APP_PORT": "8000", "AGENTRT_ADDR": "127.0.0.1:9"}, wantAddr: "127.0.0.1:9", wantTrust: true, wantApp: "(unnamed)"},
		{name: "trust turned off", env: map[string]string{"DATABRICKS_APP_PORT": "8000"}, args: []string{"--trust-forwarded-identity=false"}, wantAddr: "0.0.0.0:8000", wantApp: "(unnamed)"},
		{name: "trust off by env", env: map[string]string{"DATABRICKS_APP_PORT": "8000", "AGENTRT_TRUST_FORWARDED_IDENTITY": "false"}, wantAddr: "0.0.0.0:8000", wantApp: "(unnamed)"},
		{name: "bad port", env: map[string]string{"DATABRICKS_APP_PORT": "http"}, wantErr: "DATABRICKS_APP_PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFlags = %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.addr != tc.wantAddr || c.ws.trustForwarded != tc.wantTrust || c.appName != tc.wantApp {
				t.Errorf("addr %q trust %v app %q, want %q %v %q", c.addr, c.ws.trustForwarded, c.appName, tc.wantAddr, tc.wantTrust, tc.wantApp)
			}
		})
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// TestServeAsApp runs serve the way Databricks Apps does: the command from
// the generated app.yaml, and only the platform's environment. It must
// listen on all interfaces at DATABRICKS_APP_PORT, act as the app's service
// principal (the dev workspace's audit log says who called), and take the
// caller from X-Forwarded-Access-Token. Fails on code that ignores the
// platform's environment (serve listens on 127.0.0.1:8080).
func TestServeAsApp(t *testing.T) {
	ws, err := devworkspace.Start(t.Context(), devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })

	// The app's command, as generated for the assistant.
	out := t.TempDir()
	if err := Run(t.Context(), []string{"apps-config", "--agent", "assistant", "--out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, apps.AppYAMLFile))
	if err != nil {
		t.Fatal(err)
	}
	ay, err := apps.ParseAppYAML(raw)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(out, apps.BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	defs, err := apps.ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}

	clearEnv(t)
	port := freePort(t)
	for k, v := range map[string]string{
		"DATABRICKS_APP_PORT":      port,
		"DATABRICKS_APP_NAME":      "assistant",
		"DATABRICKS_HOST":          ws.URL(),
		"DATABRICKS_CLIENT_ID":     devworkspace.SPClientID,
		"DATABRICKS_CLIENT_SECRET": devworkspace.SPClientSecret,
	} {
		t.Setenv(k, v)
	}

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ay.Command[1:], pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after shutdown", err)
		}
	})
	addrRE := regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)
	var listen string
	var logs strings.Builder
	sc := bufio.NewScanner(pr)
	for listen == "" && sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			listen = m[1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	// Go reports a 0.0.0.0 listener as [::] (dual stack).
	if host, p, _ := net.SplitHostPort(listen); p != port || !net.ParseIP(host).IsUnspecified() {
		t.Fatalf("serve listens on %q, want all interfaces at port %s; logs:\n%s", listen, port, logs.String())
	}

	// The service principal signed in and checked the declared resources.
	asSP := false
	for _, e := range ws.Audit() {
		if e.Principal == devworkspace.SPClientID && e.AuthMethod == devworkspace.MethodOAuthM2M && strings.HasPrefix(e.Path, "/api/") {
			asSP = true
		}
	}
	if !asSP {
		t.Errorf("no API call as the app's service principal (%s, OAuth M2M) in the audit log: %+v", devworkspace.SPClientID, ws.Audit())
	}

	// A caller behind the front door: alice's token down-scoped to the
	// app's user_api_scopes, in X-Forwarded-Access-Token.
	tok := exchange(t, ws.URL(), devworkspace.AliceToken, defs["assistant"].UserApiScopes)
	seq := int64(0)
	if a := ws.Audit(); len(a) > 0 {
		seq = a[len(a)-1].Seq
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+port+"/responses",
		strings.NewReader(`{"input":[{"role":"user","content":"How do I install the Kestrel hub?"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-Access-Token", tok)
	req.Header.Set("X-Forwarded-Email", "alice@example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /responses: %d %s", resp.StatusCode, body)
	}
	var alice, model bool
	for _, e := range ws.AuditSince(seq) {
		if e.Principal == "alice@example.com" && e.AuthMethod == devworkspace.MethodTokenExchange {
			alice = true
		}
		if e.Principal == devworkspace.SPClientID && strings.HasPrefix(e.Path, "/serving-endpoints/") {
			model = true
		}
	}
	if !alice || !model {
		t.Errorf("want alice's down-scoped calls (%v) and the model called as the service principal (%v); audit: %+v", alice, model, ws.AuditSince(seq))
	}
}

// exchange mints a token for subject limited to scopes (RFC 8693), as the
// Apps front door does for a user.
func exchange(t *testing.T, wsURL, subject string, scopes []string) string {
	t.Helper()
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"scope":              {strings.Join(scopes, " ")},
	}
	resp, err := http.PostForm(wsURL+"/oidc/v1/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token exchange: %d %s", resp.StatusCode, b)
	}
	if got := strings.Fields(tr.Scope); !slices.Equal(got, scopes) {
		t.Fatalf("exchanged scopes %q, want %q", got, scopes)
	}
	return tr.AccessToken
}

// serveBehindDoor runs `serve --dev --dev-apps bundle` and returns the
// front door's address.
func serveBehindDoor(t *testing.T, bundle string) string {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--agent", "assistant", "--dev", "--addr", "127.0.0.1:0", "--log-format", "json", "--dev-apps", bundle}, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after shutdown", err)
		}
	})
	doorRE := regexp.MustCompile(`"msg":"apps front door listening".*"addr":"([^"]+)"`)
	var door string
	var logs strings.Builder
	sc := bufio.NewScanner(pr)
	ready := false
	for !ready && sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if m := doorRE.FindStringSubmatch(sc.Text()); m != nil {
			door = m[1]
		}
		ready = strings.Contains(sc.Text(), `"msg":"listening"`)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if door == "" || !ready {
		t.Fatalf("no front door or agent listening; logs:\n%s", logs.String())
	}
	return door
}

// TestDevAppsMissingScopeSkipsTool: a scope removed from the app's
// configuration is missing from the token the front door mints, so the tool
// that needs it skips, with a reason naming the scope; with the generated
// configuration nothing skips for alice.
func TestDevAppsMissingScopeSkipsTool(t *testing.T) {
	clearEnv(t)
	out := t.TempDir()
	if err := Run(t.Context(), []string{"apps-config", "--agent", "assistant", "--out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(filepath.Join(out, apps.BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	const line = "        - dashboards.genie\n"
	if !bytes.Contains(full, []byte(line)) {
		t.Fatalf("generated bundle has no %q:\n%s", line, full)
	}
	cut := filepath.Join(out, "cut.yml")
	if err := os.WriteFile(cut, bytes.Replace(full, []byte(line), nil, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	ask := func(door string) (skipped []map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+door+"/responses",
			strings.NewReader(`{"input":[{"role":"user","content":"What was revenue by region?"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Dev-User", "alice")
		req.Header.Set("X-Forwarded-User", "bob") // forged: must not matter
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /responses through the front door: %d %s", resp.StatusCode, body)
		}
		var r struct {
			CustomOutputs struct {
				SkippedTools []map[string]any `json:"skipped_tools"`
			} `json:"custom_outputs"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		return r.CustomOutputs.SkippedTools
	}
	if s := ask(serveBehindDoor(t, filepath.Join(out, apps.BundleFile))); len(s) != 0 {
		t.Errorf("with the generated scopes alice lost tools: %v", s)
	}
	s := ask(serveBehindDoor(t, cut))
	if len(s) == 0 || !strings.Contains(fmt.Sprint(s), "dashboards.genie") {
		t.Errorf("without dashboards.genie, skipped tools = %v, want a skip naming the scope", s)
	}
	t.Logf("skipped: %v", s)
}

// TestAppsConfigDeploy runs the deploy path end to end against the dev
// workspace's Apps API: the app is created with the generated resources and
// user_api_scopes, deployed from the workspace folder, and a second run
// updates it and deploys again.
func TestAppsConfigDeploy(t *testing.T) {
	ws, err := devworkspace.Start(t.Context(), devworkspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	clearEnv(t)
	t.Setenv("DATABRICKS_HOST", ws.URL())
	t.Setenv("DATABRICKS_TOKEN", devworkspace.AliceToken)
	out := t.TempDir()
	const folder = "/Workspace/Users/alice@example.com/assistant"
	for range 2 {
		var log bytes.Buffer
		if err := Run(t.Context(), []string{"apps-config", "--agent", "assistant", "--out", out, "--deploy", folder}, &log); err != nil {
			t.Fatalf("apps-config --deploy: %v\n%s", err, log.String())
		}
		if !strings.Contains(log.String(), "SUCCEEDED") {
			t.Errorf("no successful deployment reported:\n%s", log.String())
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, apps.BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	want := mustParseBundle(t, raw)["assistant"]
	get := func(path string, v any) {
		req, _ := http.NewRequest(http.MethodGet, ws.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+devworkspace.AliceToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
	}
	var got struct {
		Name             string            `json:"name"`
		Resources        []json.RawMessage `json:"resources"`
		UserAPIScopes    []string          `json:"user_api_scopes"`
		ActiveDeployment struct {
			SourceCodePath string `json:"source_code_path"`
		} `json:"active_deployment"`
	}
	get("/api/2.0/apps/assistant", &got)
	if got.Name != "assistant" || !slices.Equal(got.UserAPIScopes, want.UserApiScopes) ||
		len(got.Resources) != len(want.Resources) || got.ActiveDeployment.SourceCodePath != folder {
		t.Errorf("deployed app = %+v, want the generated definition deployed from %s", got, folder)
	}
	var deps struct {
		AppDeployments []json.RawMessage `json:"app_deployments"`
	}
	get("/api/2.0/apps/assistant/deployments", &deps)
	if len(deps.AppDeployments) != 2 {
		t.Errorf("%d deployments, want 2", len(deps.AppDeployments))
	}
}

func mustParseBundle(t *testing.T, raw []byte) map[string]*sdkapps.App {
	t.Helper()
	m, err := apps.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

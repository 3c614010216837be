package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const prog = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	fmt.Println("VERSION")
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	<-c
}
`

// TestRebuildOnSave: a change restarts the program with the new code; a
// change that does not compile prints the compiler's error and keeps the
// loop going; the next good change runs again.
func TestRebuildOnSave(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module wmod\n\ngo 1.26\n")
	write("main.go", strings.Replace(prog, "VERSION", "version one", 1))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--root", dir, "--pkg", "."}, pw, pw); pw.Close() }()
	defer func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	sc := bufio.NewScanner(pr)
	await := func(want string) {
		t.Helper()
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				return
			}
		}
		t.Fatalf("output ended before %q", want)
	}
	await("version one")
	write("main.go", strings.Replace(prog, "VERSION", "version two", 1))
	await("version two")
	write("main.go", prog+"func broken( {\n")
	await("build failed")
	await("syntax error")
	write("main.go", strings.Replace(prog, "VERSION", "version three", 1))
	await("version three")
}

// TestRebuildKeepsDevWorkspace is `make dev` across a rebuild: state made
// through serve before the rebuild (alice's Genie conversation, the dev
// workspace's audit entries, a stored response) is still there after it,
// because devwatch keeps one dev workspace and restarts only serve.
func TestRebuildKeepsDevWorkspace(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := serveModule(t, repo)
	// Everything the build needs is in the module cache already: no
	// network, and no state outside the test's directory. Built as vet and
	// `make build-dev` build (static, -trimpath), so the build cache they
	// filled serves every dependency and only the main package compiles.
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=readonly -trimpath")
	t.Setenv("CGO_ENABLED", "0")
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	for _, k := range []string{"AGENTRT_DEV_WORKSPACE_URL", "AGENTRT_DEV_LLM_URL", "AGENTRT_DEV_CONFIG", "AGENTRT_DEV_ALLOW_REMOTE", "DATABRICKS_HOST"} {
		t.Setenv(k, "")
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	done := make(chan error, 1)
	args := []string{"--root", dir, "--pkg", ".", "--", "--dev", "--agent", "assistant", "--addr", "127.0.0.1:0",
		"--dev-workspace-addr", "127.0.0.1:0", "--store", "sqlite:" + filepath.Join(dir, "state.db"), "--log-format", "json"}
	go func() { done <- run(ctx, args, pw, pw); pw.Close() }()
	defer func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	lines := bufio.NewScanner(pr)
	lines.Buffer(nil, 1<<20)
	// started reads the output up to serve's "listening" line and returns
	// serve's address and the dev workspace serve uses.
	wsRE := regexp.MustCompile(`dev workspace: (http://\S+)`)
	addrRE := regexp.MustCompile(`"addr":"([^"]+)"`)
	started := func() (addr, wsURL string) {
		t.Helper()
		for lines.Scan() {
			l := lines.Text()
			if m := wsRE.FindStringSubmatch(l); m != nil {
				wsURL = m[1]
			}
			if m := addrRE.FindStringSubmatch(l); m != nil && strings.Contains(l, `"listening"`) {
				if wsURL == "" {
					t.Fatal("serve listens but named no dev workspace")
				}
				return m[1], wsURL
			}
			if strings.Contains(l, "build failed") || strings.Contains(l, "server exited") {
				t.Fatalf("devwatch: %s", l)
			}
		}
		t.Fatalf("output ended before serve listened: %v", lines.Err())
		return "", ""
	}
	addr, wsURL := started()

	// Before: a sales question (a Genie conversation, as alice) whose
	// response is stored.
	first := respond(t, addr, "before-rebuild", `{"input":"What is the total revenue by region?"}`)
	convs := conversations(t, wsURL)
	if len(convs) == 0 {
		t.Fatal("the sales question started no Genie conversation")
	}
	if !audited(t, wsURL, "before-rebuild") {
		t.Fatal("the dev workspace audited nothing for the first request")
	}

	// A save: devwatch rebuilds and restarts serve.
	src, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), append(src, "\n// saved\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	addr2, wsURL2 := started()
	if wsURL2 != wsURL {
		t.Errorf("serve uses the dev workspace %s after the rebuild, %s before", wsURL2, wsURL)
	}

	// After: the same dev workspace, with its state.
	if !audited(t, wsURL2, "before-rebuild") {
		t.Error("the audit entries from before the rebuild are gone")
	}
	if after := conversations(t, wsURL2); !slices.Equal(after, convs) {
		t.Errorf("alice's Genie conversations %v before the rebuild, %v after", convs, after)
	}
	// The stored response still continues.
	respond(t, addr2, "after-rebuild", `{"input":"And which region grew most?","previous_response_id":"`+first+`"}`)
	if !audited(t, wsURL2, "after-rebuild") {
		t.Error("the dev workspace audited nothing for the request after the rebuild")
	}
}

// serveModule writes a module whose main is cmd/serve's, built against the
// repository at repo (a replace directive) with its exact dependencies.
func serveModule(t *testing.T, repo string) string {
	t.Helper()
	dir := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod := regexp.MustCompile(`(?m)^module .*$`).ReplaceAllString(string(gomod), "module devwatchtest")
	mod += "\nrequire github.com/agentrt/agentrt v0.0.0\n\nreplace github.com/agentrt/agentrt => " + repo + "\n"
	main, err := os.ReadFile(filepath.Join(repo, "cmd", "serve", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sum, "main.go": main} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// respond sends alice's request with the given X-Request-Id and returns the
// response's id.
func respond(t *testing.T, addr, reqID, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/responses", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dev-User", "alice")
	req.Header.Set("X-Request-Id", reqID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != http.StatusOK || r.ID == "" || r.Status != "completed" {
		t.Fatalf("%s: %d %s", reqID, resp.StatusCode, b)
	}
	return r.ID
}

// audited reports whether the dev workspace's audit log has an entry for
// the request with that X-Request-Id.
func audited(t *testing.T, wsURL, reqID string) bool {
	t.Helper()
	var a struct {
		Entries []struct {
			RequestID string `json:"request_id"`
		} `json:"entries"`
	}
	getJSON(t, wsURL+"/dev/audit", "", &a)
	return slices.ContainsFunc(a.Entries, func(e struct {
		RequestID string `json:"request_id"`
	}) bool {
		return e.RequestID == reqID
	})
}

// conversations lists alice's conversations in the sales Genie space.
func conversations(t *testing.T, wsURL string) []string {
	t.Helper()
	var c struct {
		Conversations []struct {
			ID string `json:"conversation_id"`
		} `json:"conversations"`
	}
	getJSON(t, wsURL+"/api/2.0/genie/spaces/01dev0genie0sales/conversations", "dev-alice-token", &c)
	var ids []string
	for _, x := range c.Conversations {
		ids = append(ids, x.ID)
	}
	return ids
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// serve's flags as the flag package reads them: devwatch takes the dev
// workspace's from them and gives serve the rest.
func TestServeFlags(t *testing.T) {
	t.Setenv("AGENTRT_DEV", "")
	t.Setenv("AGENTRT_DEV_WORKSPACE_URL", "")
	for _, c := range []struct {
		args []string
		dev  bool
	}{
		{[]string{"--dev", "--agent", "assistant"}, true},
		{[]string{"-dev=true"}, true},
		{[]string{"--dev=false"}, false},
		{[]string{"--agent", "assistant"}, false},
		{[]string{"--dev", "--dev-workspace-url", "http://127.0.0.1:1"}, false},
		{[]string{"--dev", "--dev-workspace-url="}, true},
	} {
		if got := devRequested(c.args); got != c.dev {
			t.Errorf("devRequested(%q) = %v", c.args, got)
		}
	}
	args := []string{"--dev", "--dev-workspace-addr", "127.0.0.1:0", "--agent", "a", "-dev-llm-url=http://x", "--addr", ":1"}
	if v, ok := flagValue(args, "dev-workspace-addr"); !ok || v != "127.0.0.1:0" {
		t.Errorf("flagValue = %q, %v", v, ok)
	}
	if v, ok := flagValue(args, "dev-llm-url"); !ok || v != "http://x" {
		t.Errorf("flagValue = %q, %v", v, ok)
	}
	if got := dropFlag(dropFlag(args, "dev-workspace-addr"), "dev-llm-url"); !slices.Equal(got, []string{"--dev", "--agent", "a", "--addr", ":1"}) {
		t.Errorf("dropFlag = %q", got)
	}
	t.Setenv("AGENTRT_DEV", "1")
	if !devRequested(nil) {
		t.Error("AGENTRT_DEV=1 is not --dev")
	}
}

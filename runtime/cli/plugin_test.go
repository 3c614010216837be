package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/loader"
	"github.com/agentrt/agentrt/internal/plugintest"
)

// TestServePlugin runs serve --agent ./plugin.so in process: the plugin is
// examples/plugin built with this test binary's flags, with its agent.yaml
// beside it, and the log must say which manifest was used.
func TestServePlugin(t *testing.T) {
	host, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	so := filepath.Join(dir, "plugin.so")
	args := append([]string{"build"}, loader.PluginBuildFlags(host)...)
	if out, err := plugintest.Build(root, append(args, "-o", so, "./examples/plugin"), append(os.Environ(), "CGO_ENABLED=1")); err != nil {
		t.Fatalf("go build plugin: %v\n%s", err, out)
	}
	yaml, err := os.ReadFile(filepath.Join(root, "examples/plugin/agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--agent", so, "--addr", "127.0.0.1:0", "--log-format", "json"}, pw)
		pw.Close()
	}()
	var addr, source string
	sc := bufio.NewScanner(pr)
	for addr == "" && sc.Scan() {
		var l struct {
			Msg            string `json:"msg"`
			Addr           string `json:"addr"`
			ManifestSource string `json:"manifest_source"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if l.ManifestSource != "" {
			source = l.ManifestSource
		}
		if l.Msg == "listening" {
			addr = l.Addr
		}
	}
	if addr == "" {
		t.Fatalf("serve did not start: %v", <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if want := "file " + filepath.Join(dir, "agent.yaml") + " (beside plugin)"; source != want {
		t.Errorf("logged manifest source %q, want %q", source, want)
	}

	resp, err := http.Post("http://"+addr+"/responses", "application/json",
		strings.NewReader(`{"input":[{"role":"user","content":"plugins load at startup"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `words: 4\ncharacters: 23`) {
		t.Errorf("POST /responses = %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after shutdown: %v", err)
	}
}

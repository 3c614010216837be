package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildCustomServe builds this command as a user would for a container
// image: static, -trimpath. That is also how `make vet` and the image test
// compile the module graph, so on a fresh CI machine this build links what
// is already compiled instead of compiling the graph once more.
func buildCustomServe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "customserve")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCustomServeServesItsAgent builds the binary, runs it with the agent
// its blank import registered, asks it something, and stops it with
// SIGTERM as an orchestrator would.
func TestCustomServeServesItsAgent(t *testing.T) {
	bin := buildCustomServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("unknown agents are refused with the registered ones", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, bin, "--agent", "echo", "--addr", "127.0.0.1:0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), `unknown agent "echo"`) || !strings.Contains(string(out), "greeter") {
			t.Fatalf("--agent echo: err %v, output:\n%s", err, out)
		}
	})

	cmd := exec.CommandContext(ctx, bin, "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), "AGENTRT_AGENT=greeter") // configured by environment, like a container
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	var addr, source string
	sc := bufio.NewScanner(stderr)
	for addr == "" && sc.Scan() {
		var raw map[string]any
		if json.Unmarshal(sc.Bytes(), &raw) != nil {
			continue
		}
		if s, ok := raw["manifest_source"].(string); ok {
			source = s
		}
		if raw["msg"] == "listening" {
			addr, _ = raw["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("customserve did not start (%v)", cmd.Wait())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if source != "none (empty manifest)" {
		t.Errorf("manifest source %q", source)
	}

	resp, err := http.Post("http://"+addr+"/responses", "application/json",
		strings.NewReader(`{"input":[{"role":"user","content":"is this my own serve?"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello, there! You said: is this my own serve?") {
		t.Errorf("POST /responses = %d %s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

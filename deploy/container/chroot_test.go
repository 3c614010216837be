package container

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
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

// nonroot is the uid and gid of distroless's nonroot user, the image's USER.
const nonroot = 65532

// buildStatic builds cmd/serve the way the Dockerfile's static stage does.
func buildStatic(t *testing.T, out string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/serve")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// assertStatic fails unless the ELF file needs no dynamic loader or
// shared library, which is what lets it run on distroless/static.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s is dynamically linked (program header %v)", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("%s needs shared libraries %v", path, libs)
	}
}

// logLine is the part of serve's JSON log this test reads.
type logLine struct {
	Msg   string `json:"msg"`
	Addr  string `json:"addr"`
	Level string `json:"level"`
}

func TestStaticBinaryServesFromEmptyRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root: it chroots into a directory holding only the serve binary, " +
			"as the distroless image does (CI runs as root; run it with sudo go test ./deploy/container)")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil { // the nonroot user must traverse it
		t.Fatal(err)
	}
	bin := filepath.Join(root, "serve")
	buildStatic(t, bin)
	assertStatic(t, bin)
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Fatalf("root holds %d entries, want only the binary", len(entries))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/serve")
	cmd.Dir = "/"
	// Configuration by environment only, as the image and the Kubernetes
	// manifests pass it; nothing of the test's own environment leaks in.
	cmd.Env = []string{
		"AGENTRT_AGENT=echo",
		"AGENTRT_ADDR=127.0.0.1:0",
		"AGENTRT_LOG_FORMAT=json",
		"AGENTRT_DRAIN_TIMEOUT=10s",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot},
		Setpgid:    true,
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve in chroot: %v", err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	// Read the log until serve says where it listens; keep every line for
	// the failure message.
	var logs bytes.Buffer
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(sc.Bytes())
			logs.WriteByte('\n')
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" && l.Addr != "" {
				select {
				case addrc <- l.Addr:
				default:
				}
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-done:
		_ = cmd.Wait()
		t.Fatalf("serve exited before listening (%v):\n%s", cmd.ProcessState, logs.String())
	case <-ctx.Done():
		t.Fatal("serve did not start listening in time")
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != http.StatusOK {
		t.Errorf("GET /health = %d %s", code, body)
	}
	if code, body := get("/ready"); code != http.StatusOK {
		t.Errorf("GET /ready = %d %s", code, body)
	}

	resp, err := client.Post(base+"/responses", "application/json",
		strings.NewReader(`{"input":[{"role":"user","content":"hello from an empty root"}]}`))
	if err != nil {
		t.Fatalf("POST /responses: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("echo: hello from an empty root")) {
		t.Errorf("POST /responses = %d %s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { <-done; werr <- cmd.Wait() }()
	select {
	case err := <-werr:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-ctx.Done():
		t.Fatal("serve did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"drained"`) {
		t.Errorf("no drain in the log:\n%s", logs.String())
	}
	if t.Failed() {
		fmt.Fprintf(os.Stderr, "serve log:\n%s", logs.String())
	}
}

package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunPrintsURLAndCredentialsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var banner []string
	var url string
	for sc.Scan() {
		line := sc.Text()
		banner = append(banner, line)
		if u, ok := strings.CutPrefix(line, "dev workspace listening on "); ok {
			url = u
		}
		if strings.HasPrefix(line, "audit log:") {
			break
		}
	}
	text := strings.Join(banner, "\n")
	for _, want := range []string{"dev-alice-token", "dev-bob-token", "dev-carol-token", "DATABRICKS_CLIENT_ID=agent-sp", "DATABRICKS_CLIENT_SECRET=agent-sp-secret"} {
		if !strings.Contains(text, want) {
			t.Fatalf("banner lacks %q:\n%s", want, text)
		}
	}
	go io.Copy(io.Discard, pr)
	resp, err := http.Get(url + "/.well-known/databricks-config")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("host metadata: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if _, err := http.Get(url + "/.well-known/databricks-config"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	err := run(context.Background(), []string{"--config", "/nonexistent/ws.yaml"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "read config") {
		t.Fatalf("err = %v", err)
	}
}

// TestSIGTERMExitsCleanly runs the real main in a child process (this test
// binary re-executed) and stops it with SIGTERM.
func TestSIGTERMExitsCleanly(t *testing.T) {
	if os.Getenv("DEVWORKSPACE_TEST_MAIN") == "1" {
		os.Args = []string{"devworkspace", "--addr", "127.0.0.1:0"}
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGTERMExitsCleanly$")
	cmd.Env = append(os.Environ(), "DEVWORKSPACE_TEST_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var url string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "dev workspace listening on "); ok {
			url = u
			break
		}
	}
	go io.Copy(io.Discard, out)
	if url == "" {
		cmd.Process.Kill()
		t.Fatal("child printed no URL")
	}
	if resp, err := http.Get(url + "/.well-known/databricks-config"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	}
}

// startRun runs the command with args and returns its URL from the banner;
// it stops when the test ends.
func startRun(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	sc := bufio.NewScanner(pr)
	var url string
	for url == "" && sc.Scan() {
		url, _ = strings.CutPrefix(sc.Text(), "dev workspace listening on ")
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		t.Fatal("no URL printed")
	}
	return url
}

func getWithHost(t *testing.T, url, host, origin string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/api/2.0/preview/scim/v2/Me", nil)
	req.Host = host
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Authorization", "Bearer dev-alice-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// --allow-remote is the command's --dev-allow-remote: loopback Host and
// Origin values only, unless named.
func TestAllowRemote(t *testing.T) {
	url := startRun(t, "--addr", "127.0.0.1:0")
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{"evil.example.com", "", 403},
		{"localhost", "http://evil.example.com", 403},
		{"devbox.test", "", 403},
		{"localhost:1", "http://localhost:3000", 200},
	} {
		if got := getWithHost(t, url, c.host, c.origin); got != c.want {
			t.Errorf("Host %q Origin %q: %d, want %d", c.host, c.origin, got, c.want)
		}
	}
	url = startRun(t, "--addr", "127.0.0.1:0", "--allow-remote", "devbox.test")
	if got := getWithHost(t, url, "devbox.test:8765", "http://devbox.test:8765"); got != 200 {
		t.Errorf("allowed host: %d", got)
	}
	if got := getWithHost(t, url, "evil.example.com", ""); got != 403 {
		t.Errorf("evil.example.com with an allow-list: %d", got)
	}
	for _, args := range [][]string{
		{"--addr", "0.0.0.0:0"},
		{"--addr", "127.0.0.1:0", "--allow-remote", "true"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--allow-remote") {
			t.Errorf("run(%q) = %v, want an error naming --allow-remote", args, err)
		}
	}
}

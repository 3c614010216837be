package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	_ "github.com/agentrt/agentrt/examples/echo" // the agent the tests serve
)

// TestServeEcho runs the command as a user would (flags, real listener on
// port 0), reads the logged address, asks the echo agent, then stops it as
// SIGTERM would and expects a clean exit.
func TestServeEcho(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--agent", "echo", "--addr", "127.0.0.1:0", "--log-format", "json"}, pw)
		pw.Close()
	}()
	addrRE := regexp.MustCompile(`"addr":"([^"]+)"`)
	sc := bufio.NewScanner(pr)
	var addr string
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
			addr = m[1]
			break
		}
	}
	if addr == "" {
		t.Fatalf("no listening address logged (run: %v)", <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	resp, err := http.Post("http://"+addr+"/invocations", "application/json",
		strings.NewReader(`{"input":[{"role":"user","content":"ping"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Output []struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"output"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || len(body.Output) != 1 || body.Output[0].Content[0].Text != "echo: ping" {
		t.Fatalf("answer %+v, %v", body, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v after shutdown", err)
	}
}

func TestFlagsAndEnv(t *testing.T) {
	t.Setenv("AGENTRT_ADDR", "127.0.0.1:9999")
	t.Setenv("AGENTRT_MAX_CONCURRENCY", "7")
	c, err := parseFlags([]string{"--agent", "echo", "--max-body-bytes", "100"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:9999" || c.maxConcurrency != 7 || c.maxBodyBytes != 100 || c.agentName != "echo" {
		t.Errorf("config %+v", c)
	}
	for _, args := range [][]string{
		{"--agent", "nope"},
		{},
		{"--agent", "echo", "--log-level", "loud"},
		{"--agent", "echo", "--log-format", "xml"},
		{"--agent", "echo", "extra"},
	} {
		if err := Run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("Run(%q) succeeded", args)
		}
	}
}

// A bad --cors-origins is refused while parsing, naming the flag and the
// value, before anything starts.
func TestCORSOriginsFlag(t *testing.T) {
	c, err := parseFlags([]string{"--cors-origins", " https://app.example.com, http://localhost:3000 ,"}, io.Discard)
	if err != nil || c.corsOrigins == "" {
		t.Fatalf("parseFlags: %+v, %v", c, err)
	}
	t.Setenv("AGENTRT_CORS_ORIGINS", "app.example.com")
	if _, err := parseFlags(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "--cors-origins") || !strings.Contains(err.Error(), `"app.example.com"`) {
		t.Errorf("AGENTRT_CORS_ORIGINS=app.example.com: %v", err)
	}
}

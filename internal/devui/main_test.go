package devui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/agentrt/agentrt/examples/assistant"
	_ "github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/runtime/cli"
)

// base is the URL of the `serve --dev --agent assistant` that every test of
// the package shares, started by TestMain as a developer starts it;
// prodBase is a serve without --dev. Both run for the whole package:
// serve installs the process's OpenTelemetry globals, so the dev one,
// whose spans the UI shows, starts last.
var base, prodBase string

func TestMain(m *testing.M) {
	ctx, cancel := context.WithCancel(context.Background())
	var dones []<-chan error
	for _, args := range [][]string{{"--agent", "echo"}, {"--dev", "--agent", "assistant"}} {
		addr, done, err := serve(ctx, args...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "devui tests: serve %v: %v\n", args, err)
			cancel()
			os.Exit(1)
		}
		dones = append(dones, done)
		prodBase, base = base, "http://"+addr
	}
	code := m.Run()
	closeBrowser()
	cancel()
	for _, done := range dones {
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "devui tests: serve returned", err)
			code = 1
		}
	}
	os.Exit(code)
}

// serve runs cli.Run with args on a free loopback port until ctx ends and
// returns the address it listens on once it does.
func serve(ctx context.Context, args ...string) (string, <-chan error, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "info"}, args...)
	go func() {
		done <- cli.Run(ctx, args, pw)
		pw.Close()
	}()
	addrRE := regexp.MustCompile(`"addr":"([^"]+)"`)
	sc := bufio.NewScanner(pr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), `"msg":"listening"`) {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return m[1], done, nil
		}
	}
	return "", nil, fmt.Errorf("it logged no listening address (run: %v)", <-done)
}

// getJSON GETs path from the shared server with the given header pairs.
func getJSON(t *testing.T, path string, want int, v any, header ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
}

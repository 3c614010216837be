package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/agentrt/agentrt/examples/assistant" // registers "assistant"
	"github.com/agentrt/agentrt/runtime/cli"
)

// runDev is the -serve dev child: `serve --dev --agent assistant`, exactly
// as cmd/serve runs it.
func runDev() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := cli.Run(ctx, []string{"--dev", "--agent", "assistant", "--addr", "127.0.0.1:0", "--log-format", "json"}, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startDev starts the -serve dev child and returns once it listens.
func startDev() (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve", "dev")
	errOut, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addrRE := regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)
	sc := bufio.NewScanner(errOut)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, errOut) // keep the child's logs flowing
			return &proc{cmd: cmd, addr: m[1]}, nil
		}
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("serve --dev did not start")
}

// garbageScenario measures what hostile identities cost `serve --dev`:
// warm it with valid callers, then send n requests, half with a distinct
// garbage token each, half with a valid token and a 1 MB X-Forwarded-User,
// and report the server's RSS against the warm baseline until it settles.
func garbageScenario(n, conc int, settle time.Duration) error {
	srv, err := startDev()
	if err != nil {
		return err
	}
	defer srv.stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: time.Minute}
	do := func(headers map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+srv.addr+"/responses",
			strings.NewReader(`{"input":[{"role":"user","content":"What is the revenue by region?"}]}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return -1
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	run := func(count int, headersOf func(i int) map[string]string) map[int]int {
		statuses := map[int]int{}
		var mu sync.Mutex
		sem := make(chan struct{}, conc)
		var wg sync.WaitGroup
		for i := range count {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				st := do(headersOf(i))
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return statuses
	}
	users := []string{"alice", "bob", "carol"}
	warm := run(600, func(i int) map[string]string { return map[string]string{"X-Dev-User": users[i%3]} })
	base := srv.rss()
	big := strings.Repeat("u", 1<<20)
	start := time.Now()
	attack := run(n, func(i int) map[string]string {
		if i%2 == 0 {
			b := make([]byte, 32)
			rand.Read(b)
			return map[string]string{"Authorization": "Bearer garbage-" + hex.EncodeToString(b)}
		}
		return map[string]string{"X-Dev-User": users[i%3], "X-Forwarded-User": big}
	})
	took := time.Since(start)
	after, peak := srv.rss(), srv.peakRSS()
	fmt.Printf("warm-up statuses %v; warm RSS %.1f MiB\n", warm, base)
	fmt.Printf("attack: %d requests in %v, statuses %v; RSS right after %.1f MiB (%.2fx warm), peak %.1f MiB\n",
		n, took.Round(time.Millisecond), attack, after, after/base, peak)
	// Valid callers still work, and the RSS settles.
	check := run(30, func(i int) map[string]string { return map[string]string{"X-Dev-User": users[i%3]} })
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) && srv.rss() > 1.2*base {
		time.Sleep(time.Second)
	}
	final := srv.rss()
	fmt.Printf("after: valid statuses %v; RSS %.1f MiB (%.2fx warm) within %v\n", check, final, final/base, settle)
	if check[200] != 30 {
		return fmt.Errorf("valid callers failed after the attack: %v", check)
	}
	return nil
}

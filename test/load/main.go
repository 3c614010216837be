// Command load measures agentrt's streaming under load and its drain on
// SIGTERM, against a bare net/http SSE handler as the baseline. It is a
// program, not a test, so `make test` never runs it. See BENCHMARKS.md:
//
//	ulimit -n 20000; go run ./test/load -scenario sse -streams 2000 -hold 30s
//	ulimit -n 20000; go run ./test/load -scenario drain -streams 500 -hold 10s
//	go run ./test/load -scenario garbage -requests 10000
//	go run ./test/load -scenario echo [-caller verified] [-profile DIR] [-- more serve flags]
//	go run ./test/load -scenario firstdelta -bin bin/serve
//	go run ./test/load -scenario start -bin bin/serve
//
// Each server runs in its own process (this binary, re-executed with
// -serve), so the peak RSS reported (VmHWM) is the server's alone.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/wireproto"
)

func main() {
	scenario := flag.String("scenario", "sse", "sse (streams held open), drain (SIGTERM during streams), garbage (hostile identities against serve --dev) or echo (serve --agent echo against bare gin, req/s)")
	requests := flag.Int("requests", 10000, "garbage: hostile requests")
	conc := flag.Int("concurrency", 64, "garbage: concurrent requests")
	settle := flag.Duration("settle", time.Minute, "garbage: how long to wait for RSS to return near the warm baseline")
	streams := flag.Int("streams", 2000, "concurrent streams")
	hold := flag.Duration("hold", 30*time.Second, "how long each stream lasts")
	gap := flag.Duration("gap", 100*time.Millisecond, "time between tokens")
	conns := flag.Int("conns", 32, "echo: keep-alive connections")
	rounds := flag.Int("rounds", 3, "echo: alternating rounds")
	round := flag.Duration("round", 4*time.Second, "echo: length of one round")
	warmup := flag.Duration("warmup", time.Second, "echo: warm-up of each server")
	caller := flag.String("caller", "anonymous", "echo: anonymous, or verified (a bearer token serve verifies against a workspace)")
	profile := flag.String("profile", "", "echo: write CPU and allocation profiles of one more round of each server to this directory")
	bin := flag.String("bin", "bin/serve", "firstdelta, start: the serve binary (make build); start: several, comma-separated, are measured alternately in one run (before,after)")
	samples := flag.Int("samples", 20, "firstdelta, start: measurements of each")
	serve := flag.String("serve", "", "internal: run a server (agentrt, bare, dev, cli, gin or workspace) and print its address")
	pprof := flag.Bool("pprof", false, "internal: serve net/http/pprof on a loopback listener (cli, gin)")
	answer := flag.String("answer", "", "internal: the file the gin baseline answers")
	flag.Parse()
	switch *serve {
	case "dev":
		os.Exit(runDev())
	case "cli":
		os.Exit(runCLI(flag.Args(), *pprof))
	case "gin":
		os.Exit(runGin(*answer, *pprof))
	case "workspace":
		os.Exit(runWorkspace())
	}
	if *serve != "" {
		os.Exit(runServer(*serve, *hold, *gap))
	}
	var err error
	switch *scenario {
	case "sse":
		err = sseScenario(*streams, *hold, *gap)
	case "drain":
		err = drainScenario(*streams, *hold, *gap)
	case "garbage":
		err = garbageScenario(*requests, *conc, *settle)
	case "firstdelta":
		err = firstDeltaScenario(*bin, *samples, *gap)
	case "start":
		err = startScenario(strings.Split(*bin, ","), *samples)
	case "echo":
		err = echoScenario(echoOptions{conns: *conns, rounds: *rounds, round: *round, warmup: *warmup,
			caller: *caller, profileDir: *profile, serveArgs: flag.Args()})
	default:
		err = fmt.Errorf("unknown scenario %q", *scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// ticker streams one token per gap for hold: a model answering slowly.
type ticker struct{ hold, gap time.Duration }

func (a ticker) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	t := time.NewTicker(a.gap)
	defer t.Stop()
	for range int(a.hold / a.gap) {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := emit(agent.TextDelta("tok ", "msg_1")); err != nil {
			return err
		}
	}
	return nil
}

func runServer(kind string, hold, gap time.Duration) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch kind {
	case "agentrt":
		// As cmd/serve configures it (default timeouts, 5 min request timeout).
		h, err := server.New(server.Options{Agent: agent.FromStream(ticker{hold, gap}), AgentName: "load",
			Logger: log, Limits: server.Limits{RequestTimeout: 5 * time.Minute}})
		if err == nil {
			err = h.Serve(ctx, ln)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "bare":
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { bareSSE(w, r, hold, gap) })}
		go func() { _ = srv.Serve(ln) }()
		<-ctx.Done()
		dctx, cancel := context.WithTimeout(context.Background(), server.DefaultDrainTimeout)
		defer cancel()
		if err := srv.Shutdown(dctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown server", kind)
	return 2
}

// bareSSE is the baseline: the smallest handler that streams the same
// tokens as OpenAI-style delta frames.
func bareSSE(w http.ResponseWriter, r *http.Request, hold, gap time.Duration) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	t := time.NewTicker(gap)
	defer t.Stop()
	buf := make([]byte, 0, 256)
	for i := range int(hold / gap) {
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		buf = append(buf[:0], `data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"tok ","sequence_number":`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, "}\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		f.Flush()
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}

// server is a child process serving one kind.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(kind string, hold, gap time.Duration) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve", kind, "-hold", hold.String(), "-gap", gap.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("server %s did not start: %q %v", kind, line, err)
	}
	return &proc{cmd: cmd, addr: addr}, nil
}

// peakRSS is the server's high-water resident set (VmHWM), in MiB.
func (s *proc) peakRSS() float64 { return s.status("VmHWM:") }

// rss is the server's current resident set (VmRSS), in MiB.
func (s *proc) rss() float64 { return s.status("VmRSS:") }

// status reads one kB field of the server's /proc status, in MiB.
func (s *proc) status(field string) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// stop sends SIGTERM and waits for the exit.
func (s *proc) stop() (exitCode int, took time.Duration) {
	start := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	return s.cmd.ProcessState.ExitCode(), time.Since(start)
}

// streamResult is what one client stream saw.
type streamResult struct {
	gaps   []time.Duration // between consecutive token (delta) events
	tokens int
	err    error
}

// stream posts one streaming request and reads it to the end. first is
// signalled at the first token.
func stream(client *http.Client, addr string, first chan<- struct{}) (res streamResult) {
	signalled := false
	defer func() {
		if !signalled {
			first <- struct{}{}
		}
	}()
	resp, err := client.Post("http://"+addr+"/responses", "application/json",
		strings.NewReader(`{"input":"hello","stream":true}`))
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		res.err = fmt.Errorf("status %d", resp.StatusCode)
		return res
	}
	rd := bufio.NewReaderSize(resp.Body, 4096)
	var last time.Time
	lastType, done := "", false
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				res.err = err
			}
			break
		}
		payload, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("data: "))
		if !ok {
			continue
		}
		if string(payload) == "[DONE]" {
			done = true
			break
		}
		var ev struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(payload, &ev)
		lastType = ev.Type
		if ev.Type == agent.EventOutputTextDelta {
			now := time.Now()
			if !last.IsZero() {
				res.gaps = append(res.gaps, now.Sub(last))
			}
			last = now
			res.tokens++
			if !signalled {
				signalled = true
				first <- struct{}{}
			}
		}
	}
	if res.err == nil && (!done || lastType == wireproto.EventError) {
		res.err = fmt.Errorf("stream cut after %d tokens (last event %q, [DONE] %v)", res.tokens, lastType, done)
	}
	return res
}

type loadResult struct {
	failed, tokens int
	p50, p99, max  time.Duration
	firstErr       error
	elapsed        time.Duration
}

// load runs n concurrent streams; midway (once every stream has its first
// token) it calls during, if set.
func load(addr string, n int, wantTokens int, during func()) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	first := make(chan struct{}, n)
	results := make(chan streamResult, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { results <- stream(client, addr, first) })
	}
	for range n {
		<-first
	}
	if during != nil {
		during()
	}
	wg.Wait()
	close(results)
	var r loadResult
	r.elapsed = time.Since(start)
	var gaps []time.Duration
	for s := range results {
		r.tokens += s.tokens
		if s.err == nil && s.tokens != wantTokens {
			s.err = fmt.Errorf("%d tokens, want %d", s.tokens, wantTokens)
		}
		if s.err != nil {
			r.failed++
			if r.firstErr == nil {
				r.firstErr = s.err
			}
		}
		gaps = append(gaps, s.gaps...)
	}
	slices.Sort(gaps)
	if len(gaps) > 0 {
		r.p50, r.p99, r.max = gaps[len(gaps)/2], gaps[len(gaps)*99/100], gaps[len(gaps)-1]
	}
	return r
}

func sseScenario(n int, hold, gap time.Duration) error {
	fmt.Printf("%d concurrent SSE streams, one token per %s for %s\n", n, gap, hold)
	fmt.Printf("%-8s %12s %10s %10s %10s %8s %10s %5s\n", "server", "peak RSS", "p50 gap", "p99 gap", "max gap", "failed", "elapsed", "exit")
	for _, kind := range []string{"bare", "agentrt"} {
		s, err := startServer(kind, hold, gap)
		if err != nil {
			return err
		}
		r := load(s.addr, n, int(hold/gap), nil)
		rss := s.peakRSS()
		code, _ := s.stop()
		fmt.Printf("%-8s %9.1f MiB %10s %10s %10s %8d %10s %5d\n", kind, rss, r.p50.Round(time.Microsecond),
			r.p99.Round(time.Microsecond), r.max.Round(time.Microsecond), r.failed, r.elapsed.Round(time.Millisecond), code)
		if r.firstErr != nil {
			fmt.Printf("         first failure: %v\n", r.firstErr)
		}
	}
	return nil
}

func drainScenario(n int, hold, gap time.Duration) error {
	fmt.Printf("SIGTERM during %d in-flight streams (each %s long), drain timeout %s\n", n, hold, server.DefaultDrainTimeout)
	fmt.Printf("%-8s %8s %10s %14s %5s\n", "server", "cut", "tokens", "SIGTERM→exit", "exit")
	for _, kind := range []string{"bare", "agentrt"} {
		s, err := startServer(kind, hold, gap)
		if err != nil {
			return err
		}
		var code int
		var took time.Duration
		exited := make(chan struct{})
		r := load(s.addr, n, int(hold/gap), func() {
			go func() { code, took = s.stop(); close(exited) }()
		})
		<-exited
		fmt.Printf("%-8s %8d %10d %14s %5d\n", kind, r.failed, r.tokens, took.Round(time.Millisecond), code)
		if r.firstErr != nil {
			fmt.Printf("         first failure: %v\n", r.firstErr)
		}
	}
	return nil
}

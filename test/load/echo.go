package main

// The echo scenario (issue 17): requests per second of `serve --agent echo`
// (runtime/cli, in its own process) against a bare gin handler from the
// same module (same gin) that decodes the same body with encoding/json and
// writes the same answer bytes, driven by the same keep-alive connections in
// alternating rounds, so that only the ratio is read, never a single figure
// of this shared machine.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // the -pprof debug listener of the serve children only
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/runtime/cli"

	_ "github.com/agentrt/agentrt/examples/echo" // registers "echo"
)

// echoBody is the request of the measurement.
const echoBody = `{"model":"echo","input":"hello there, how are you today?"}`

// Dev workspace credentials for the verified-caller variant (public dev
// values of internal/devworkspace/default.yaml).
const (
	devSPID     = "agent-sp"
	devSPSecret = "agent-sp-secret"
	aliceToken  = "dev-alice-token"
)

type echoOptions struct {
	conns         int
	rounds        int
	round, warmup time.Duration
	caller        string   // anonymous or verified
	profileDir    string   // with it, CPU and allocation profiles of serve during one more round
	serveArgs     []string // more serve flags (after --)
}

// runCLI is the `-serve cli` child: serve exactly as cmd/serve runs it, with
// args, and (with -pprof) net/http/pprof on a second loopback listener whose
// address it prints first.
func runCLI(args []string, pprof bool) int {
	if pprof {
		if code := startPprof(); code != 0 {
			return code
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := cli.Run(ctx, args, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startPprof serves net/http/pprof's DefaultServeMux on loopback and
// prints "PPROF addr".
func startPprof() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("PPROF %s\n", ln.Addr())
	go func() { _ = http.Serve(ln, nil) }()
	return 0
}

// runGin is the `-serve gin` child: the baseline. It decodes the body into
// a small struct with encoding/json, as a hand-written service would, and
// answers the bytes in the file answer.
func runGin(answerFile string, pprof bool) int {
	answer, err := os.ReadFile(answerFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if pprof {
		if code := startPprof(); code != 0 {
			return code
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.POST("/responses", func(c *gin.Context) {
		var req struct {
			Model string          `json:"model"`
			Input json.RawMessage `json:"input"`
		}
		if err := json.NewDecoder(c.Request.Body).Decode(&req); err != nil || len(req.Input) == 0 {
			c.Data(http.StatusBadRequest, "application/json", []byte(`{"error":{"message":"bad request"}}`))
			return
		}
		c.Data(http.StatusOK, "application/json", answer)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	_ = srv.Close()
	return 0
}

// runWorkspace is the `-serve workspace` child: the dev workspace alone,
// standing in for the Databricks workspace that verifies callers' tokens.
func runWorkspace() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ws, err := devworkspace.Start(ctx, devworkspace.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ADDR %s\n", ws.URL())
	<-ctx.Done()
	_ = ws.Close()
	return 0
}

// child is a started child process: its address, and its pprof address
// when it serves one.
type child struct {
	*proc
	pprof string
}

// startChild re-executes this binary with args and env, and waits for the
// "ADDR" (stdout) or, for serve, the "listening" log line (stderr, JSON).
func startChild(args, env []string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 16)
	var wg sync.WaitGroup
	scan := func(r io.Reader, echo bool) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody is waiting any more: keep the child's pipe flowing
			}
			if echo && !strings.Contains(sc.Text(), `"level":"INFO"`) {
				fmt.Fprintln(os.Stderr, "  child:", sc.Text())
			}
		}
	}
	wg.Add(2)
	go scan(out, false)
	go scan(errOut, true)
	go func() { wg.Wait(); close(lines) }()
	listening := regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)
	c := &child{proc: &proc{cmd: cmd}}
	timeout := time.After(2 * time.Minute)
	for c.addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				return nil, fmt.Errorf("child %v exited before it listened", args)
			}
			if v, ok := strings.CutPrefix(l, "PPROF "); ok {
				c.pprof = v
			} else if v, ok := strings.CutPrefix(l, "ADDR "); ok {
				c.addr = strings.TrimPrefix(v, "http://")
			} else if m := listening.FindStringSubmatch(l); m != nil {
				c.addr = m[1]
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("child %v did not listen within 2m", args)
		}
	}
	return c, nil
}

// cpu is the CPU time (user and system) the child has used so far, from
// /proc/PID/stat (clock ticks of 10 ms).
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// roundResult is one round against one server.
type roundResult struct {
	requests int
	failed   int
	firstErr error
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r roundResult) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// drive sends keep-alive POSTs of echoBody (with headers) to addr on conns
// connections for d, each connection one request at a time, and checks
// that every answer is a 200. It speaks HTTP/1.1 on raw connections, so the
// load generator costs both servers as little, and the same, CPU.
func drive(addr string, conns int, d time.Duration, headers string) roundResult {
	req := []byte("POST /responses HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" + headers +
		"Content-Length: " + strconv.Itoa(len(echoBody)) + "\r\n\r\n" + echoBody)
	type worker struct {
		lat    []time.Duration
		failed int
		err    error
	}
	ws := make([]worker, conns)
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range ws {
		w := &ws[i]
		w.lat = make([]time.Duration, 0, 1<<14)
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				w.err, w.failed = err, 1
				return
			}
			defer conn.Close()
			rd := bufio.NewReaderSize(conn, 16<<10)
			for time.Now().Before(stop) {
				t0 := time.Now()
				if _, err := conn.Write(req); err != nil {
					w.err, w.failed = err, w.failed+1
					return
				}
				status, err := readResponse(rd)
				if err != nil {
					w.err, w.failed = err, w.failed+1
					return
				}
				if status != http.StatusOK {
					w.failed++
					if w.err == nil {
						w.err = fmt.Errorf("status %d", status)
					}
					continue
				}
				w.lat = append(w.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := roundResult{elapsed: time.Since(start)}
	var all []time.Duration
	for _, w := range ws {
		all = append(all, w.lat...)
		r.failed += w.failed
		if r.firstErr == nil {
			r.firstErr = w.err
		}
	}
	r.requests = len(all)
	slices.Sort(all)
	if n := len(all); n > 0 {
		r.p50, r.p99 = all[n/2], all[n*99/100]
	}
	return r
}

// readResponse reads one HTTP/1.1 response with a Content-Length body and
// returns its status.
func readResponse(rd *bufio.Reader) (int, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err = rd.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && len(k) == len("Content-Length") && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length (chunked answers are not expected here)")
	}
	if _, err := rd.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

// echoScenario runs the alternating rounds and prints the ratio.
func echoScenario(o echoOptions) error {
	headers := ""
	serveArgs := append([]string{"--agent", "echo", "--addr", "127.0.0.1:0", "--log-format", "json"}, o.serveArgs...)
	var env []string
	switch o.caller {
	case "anonymous":
	case "verified":
		// A production caller: a bearer token that serve verifies against
		// its workspace (SCIM Me; the verdict is cached by the token's hash
		// for a minute, so the warm-up leaves it warm). The workspace is the
		// dev workspace in its own process; serve runs without --dev, as in
		// production, with the service principal's M2M credentials.
		ws, err := startChild([]string{"-serve", "workspace"}, nil)
		if err != nil {
			return err
		}
		defer ws.stop()
		env = []string{"DATABRICKS_HOST=http://" + ws.addr, "DATABRICKS_CLIENT_ID=" + devSPID, "DATABRICKS_CLIENT_SECRET=" + devSPSecret}
		headers = "Authorization: Bearer " + aliceToken + "\r\n"
		// A verified caller's response is stored by default (store: true);
		// the store's cost is issue 14's. This measures verification.
		serveArgs = append(serveArgs, "--store", "off")
	default:
		return fmt.Errorf("-caller: want anonymous or verified, got %q", o.caller)
	}
	pprofFlag := []string{}
	if o.profileDir != "" {
		pprofFlag = []string{"-pprof"}
	}
	a, err := startChild(append(append([]string{"-serve", "cli"}, pprofFlag...), append([]string{"--"}, serveArgs...)...), env)
	if err != nil {
		return err
	}
	defer a.stop()

	if o.caller == "verified" { // fail closed: an unknown token is refused, so the known one was verified
		if _, err := sample(a.addr, "Authorization: Bearer not-a-dev-token\r\n"); err == nil || !strings.Contains(err.Error(), "status 401") {
			return fmt.Errorf("serve accepted an unknown token (%v): the caller is not being verified", err)
		}
	}
	// The baseline answers the very bytes serve answers.
	answer, err := sample(a.addr, headers)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	dir, err := os.MkdirTemp("", "agentrt-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	answerFile := filepath.Join(dir, "answer.json")
	if err := os.WriteFile(answerFile, answer, 0o600); err != nil {
		return err
	}
	b, err := startChild(append([]string{"-serve", "gin", "-answer", answerFile}, pprofFlag...), nil)
	if err != nil {
		return err
	}
	defer b.stop()
	if _, err := sample(b.addr, headers); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}

	fmt.Printf("POST /responses %s, %d keep-alive connections, %d alternating rounds of %s after a %s warm-up each; caller %s; %d-byte answer\n",
		echoBody, o.conns, o.rounds, o.round, o.warmup, o.caller, len(answer))
	fmt.Printf("serve %s\n", strings.Join(serveArgs, " "))
	fmt.Printf("load average before: %s\n", loadavg())
	servers := []struct {
		name string
		c    *child
	}{{"agentrt", a}, {"gin", b}}
	for _, s := range servers {
		if r := drive(s.c.addr, o.conns, o.warmup, headers); r.failed > 0 {
			return fmt.Errorf("%s warm-up: %d failed: %v", s.name, r.failed, r.firstErr)
		}
	}
	fmt.Printf("%-6s %-8s %10s %9s %9s %7s %12s\n", "round", "server", "req/s", "p50", "p99", "failed", "CPU µs/req")
	var ratios, rates, cpuPer [2][]float64
	for i := range o.rounds {
		order := []int{0, 1}
		if i%2 == 1 { // ABBA: neither server always runs right after the other's load
			order = []int{1, 0}
		}
		var got [2]roundResult
		for _, k := range order {
			cpu0 := servers[k].c.cpu()
			got[k] = drive(servers[k].c.addr, o.conns, o.round, headers)
			r := got[k]
			per := (servers[k].c.cpu() - cpu0).Seconds() * 1e6 / float64(max(r.requests, 1))
			cpuPer[k] = append(cpuPer[k], per)
			fmt.Printf("%-6d %-8s %10.0f %9s %9s %7d %12.1f\n", i+1, servers[k].name, r.rate(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.failed, per)
			if r.failed > 0 {
				return fmt.Errorf("%s round %d: %d failed: %v", servers[k].name, i+1, r.failed, r.firstErr)
			}
			rates[k] = append(rates[k], r.rate())
		}
		ratios[0] = append(ratios[0], got[0].rate()/got[1].rate())
		ratios[1] = append(ratios[1], cpuPer[1][i]/cpuPer[0][i])
	}
	fmt.Printf("ratio agentrt/gin per round: %s; median %.2f (median req/s %.0f vs %.0f)\n",
		fmtRatios(ratios[0]), median(ratios[0]), median(rates[0]), median(rates[1]))
	// Requests per CPU second of the server process: what each server costs,
	// less sensitive than req/s to what else runs on the machine.
	fmt.Printf("ratio of requests per server CPU second, agentrt/gin: %s; median %.2f (median %.1f vs %.1f CPU µs/req)\n",
		fmtRatios(ratios[1]), median(ratios[1]), median(cpuPer[0]), median(cpuPer[1]))
	fmt.Printf("load average after: %s\n", loadavg())

	if o.profileDir != "" {
		for _, s := range servers {
			if err := profileRound(s.name, s.c, o, headers); err != nil {
				return err
			}
		}
	}
	return nil
}

// profileRound drives c for one more round while it records a CPU profile
// and an allocation profile of that round only (pprof's delta profiles),
// and writes them to o.profileDir.
func profileRound(name string, c *child, o echoOptions, headers string) error {
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return err
	}
	secs := max(1, int(o.round/time.Second))
	done := make(chan error, 2)
	for _, p := range []struct{ path, file string }{
		{"profile", name + ".cpu.pprof"},
		{"allocs", name + ".allocs.pprof"},
	} {
		go func() {
			url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", c.pprof, p.path, secs)
			resp, err := http.Get(url)
			if err != nil {
				done <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				done <- fmt.Errorf("%s: %s", url, resp.Status)
				return
			}
			f, err := os.Create(filepath.Join(o.profileDir, p.file))
			if err == nil {
				_, err = io.Copy(f, resp.Body)
				err = errors.Join(err, f.Close())
			}
			done <- err
		}()
	}
	r := drive(c.addr, o.conns, time.Duration(secs)*time.Second+500*time.Millisecond, headers)
	err := errors.Join(<-done, <-done)
	fmt.Printf("profiled %s: %.0f req/s during the profile; %s/%s.{cpu,allocs}.pprof\n", name, r.rate(), o.profileDir, name)
	return err
}

// sample sends one request and returns the answer's body.
func sample(addr, headers string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/responses", strings.NewReader(echoBody))
	req.Header.Set("Content-Type", "application/json")
	for l := range strings.SplitSeq(strings.TrimSpace(headers), "\r\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return body, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	for i, r := range v {
		parts[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

package main

// Issue 17's "hold it" figures, measured on the real serve binary:
//
//	-scenario firstdelta: the first text delta through `serve --dev --agent
//	  assistant` (dev-llm proxied with --dev-llm-url to a model here that
//	  streams a chunk every -gap) against the model's own first chunk, asked
//	  directly, and against the dev workspace's proxy asked directly,
//	  alternating; -bin may name several binaries (before,after), each
//	  started once and measured in the same rotation;
//	-scenario start: exec to the first 200 of GET /health, for `serve
//	  --agent echo` and `serve --dev --agent assistant`.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// fakeModel is an OpenAI-compatible chat completions endpoint that streams
// n chunks, one per gap (the first after one gap), and never calls a tool.
// It notes when each request arrived and when it wrote its first chunk,
// in at, so the first-delta time splits into the way to the model, the
// model's own wait and the way back.
func fakeModel(gap time.Duration, n int, at *modelTimes) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		f.Flush()
		t := time.NewTicker(gap)
		defer t.Stop()
		for i := range n {
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
			if i == 0 {
				at.set(arrived, time.Now())
			}
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n",
				map[bool]string{true: `"role":"assistant",`}[i == 0], i)
			f.Flush()
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
		f.Flush()
	})
}

// modelTimes is the fake model's record of its last request (the
// measurements are sequential).
type modelTimes struct {
	mu              sync.Mutex
	arrived, copied time.Time // request seen; first chunk about to be written
}

func (m *modelTimes) set(arrived, first time.Time) {
	m.mu.Lock()
	m.arrived, m.copied = arrived, first
	m.mu.Unlock()
}

func (m *modelTimes) take() (arrived, first time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	arrived, first = m.arrived, m.copied
	m.arrived, m.copied = time.Time{}, time.Time{}
	return arrived, first
}

// deltaSample is one first-delta measurement: the whole time, and its split by
// the model's timestamps (same process, same monotonic clock).
type deltaSample struct {
	total time.Duration
	to    time.Duration // client start → the model has the request
	back  time.Duration // the model writes its first chunk → the client has the delta
}

// firstLine posts body to url and returns the time until the first SSE data
// line containing marker; it then reads the stream to its end.
func firstLine(url, body, marker string, headers map[string]string, at *modelTimes) (deltaSample, error) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return deltaSample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return deltaSample{}, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, b)
	}
	rd := bufio.NewReader(resp.Body)
	var got time.Time
	for {
		line, err := rd.ReadSlice('\n')
		if got.IsZero() && bytes.HasPrefix(line, []byte("data: ")) && bytes.Contains(line, []byte(marker)) {
			got = time.Now()
		}
		if err != nil {
			if got.IsZero() {
				return deltaSample{}, fmt.Errorf("%s: no %q in the stream", url, marker)
			}
			break
		}
	}
	arrived, first := at.take()
	if arrived.IsZero() {
		return deltaSample{}, fmt.Errorf("%s: the model saw no request", url)
	}
	return deltaSample{total: got.Sub(start), to: arrived.Sub(start), back: got.Sub(first)}, nil
}

// firstDeltaScenario measures, alternating, the model asked directly, the
// dev workspace's serving endpoint (its proxy to the model) asked directly,
// and serve, for each binary in bins (comma-separated: a before and an after
// build measured in the same run).
func firstDeltaScenario(bins string, samples int, gap time.Duration) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	at := &modelTimes{}
	model := &http.Server{Handler: fakeModel(gap, 5, at)}
	go func() { _ = model.Serve(ln) }()
	defer model.Close()
	modelURL := "http://" + ln.Addr().String() + "/v1"

	type path struct {
		name, url, body, marker string
		headers                 map[string]string
		got                     []deltaSample
	}
	modelBody := `{"model":"m","stream":true,"messages":[{"role":"user","content":"Say hello to the team"}]}`
	paths := []*path{{name: "model directly", url: modelURL + "/chat/completions", body: modelBody, marker: `"content"`}}
	for _, bin := range strings.Split(bins, ",") {
		addr, wsAddr, stop, err := startFirstDeltaServe(bin, modelURL)
		if err != nil {
			return err
		}
		defer stop()
		paths = append(paths,
			&path{name: bin + ": dev workspace proxy", url: "http://" + wsAddr + "/serving-endpoints/chat/completions",
				body: strings.Replace(modelBody, `"model":"m"`, `"model":"dev-llm"`, 1), marker: `"content"`,
				headers: map[string]string{"Authorization": "Bearer dev-alice-token"}},
			&path{name: bin + ": serve", url: "http://" + addr + "/responses", body: `{"stream":true,"input":"Say hello to the team"}`,
				marker: `"response.output_text.delta"`, headers: map[string]string{"X-Dev-User": "alice"}})
	}
	// Warm every path (identity verification, tools prepared, connections).
	for range 3 {
		for _, p := range paths {
			if _, err := firstLine(p.url, p.body, p.marker, p.headers, at); err != nil {
				return err
			}
		}
	}
	for range samples {
		for _, p := range paths {
			s, err := firstLine(p.url, p.body, p.marker, p.headers, at)
			if err != nil {
				return err
			}
			p.got = append(p.got, s)
		}
	}
	med := func(ss []deltaSample, f func(deltaSample) time.Duration) time.Duration {
		v := make([]time.Duration, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	total := func(s deltaSample) time.Duration { return s.total }
	to := func(s deltaSample) time.Duration { return s.to }
	back := func(s deltaSample) time.Duration { return s.back }
	minOf := func(ss []deltaSample) time.Duration {
		return slices.MinFunc(ss, func(a, b deltaSample) int { return int(a.total - b.total) }).total
	}
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	base := paths[0].got
	fmt.Printf("first text delta, %d alternating samples, a model streaming one chunk per %s (load average %s)\n", samples, gap, loadavg())
	fmt.Printf("  %-44s %9s %9s %9s | %9s %9s %9s %9s\n", "path", "median", "min", "max", "added", "min-min", "to model", "back")
	for _, p := range paths {
		fmt.Printf("  %-44s %9s %9s %9s | %9s %9s %9s %9s\n", p.name, r(med(p.got, total)), r(minOf(p.got)), r(slices.MaxFunc(p.got, func(a, b deltaSample) int { return int(a.total - b.total) }).total),
			r(med(p.got, total)-med(base, total)), r(minOf(p.got)-minOf(base)), r(med(p.got, to)), r(med(p.got, back)))
	}
	fmt.Println("  added: median minus the model's median; to model: client start → model has the request; back: model writes its first chunk → client has it (medians)")
	return nil
}

// startFirstDeltaServe starts `serve --dev --agent assistant` with its dev
// workspace on a known port, proxying dev-llm to modelURL.
func startFirstDeltaServe(bin, modelURL string) (addr, wsAddr string, stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return "", "", nil, err
	}
	wsPort, err := freePort()
	if err != nil {
		return "", "", nil, err
	}
	addr, wsAddr = "127.0.0.1:"+port, "127.0.0.1:"+wsPort
	cmd := exec.Command(bin, "--dev", "--agent", "assistant", "--addr", addr, "--dev-workspace-addr", wsAddr,
		"--dev-llm-url", modelURL, "--store", "off")
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	s := &proc{cmd: cmd, addr: addr}
	if _, err := waitHealthy(addr, time.Minute); err != nil {
		s.stop()
		return "", "", nil, err
	}
	return addr, wsAddr, func() { s.stop() }, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}

// waitHealthy polls GET /health every millisecond until a 200 (bounded by
// limit) and returns the time it took.
func waitHealthy(addr string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for time.Since(start) < limit {
		resp, err := client.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("%s: /health not 200 within %s", addr, limit)
}

// startScenario measures exec → first 200 of /health, samples times each
// for the echo agent and for --dev assistant, alternating kinds and bins
// (several binaries compare in one run, under the same machine load).
func startScenario(bins []string, samples int) error {
	state, err := os.MkdirTemp("", "agentrt-start-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	kinds := []struct {
		name string
		args []string
	}{
		{"serve --agent echo", []string{"--agent", "echo"}},
		{"serve --dev --agent assistant", []string{"--dev", "--agent", "assistant"}},
	}
	took := make([][][]time.Duration, len(bins))
	for b := range bins {
		took[b] = make([][]time.Duration, len(kinds))
	}
	for range samples {
		for i, k := range kinds {
			for b, bin := range bins {
				port, err := freePort()
				if err != nil {
					return err
				}
				cmd := exec.Command(bin, append(k.args, "--addr", "127.0.0.1:"+port)...)
				cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
				start := time.Now()
				if err := cmd.Start(); err != nil {
					return err
				}
				_, err = waitHealthy("127.0.0.1:"+port, time.Minute)
				d := time.Since(start)
				(&proc{cmd: cmd}).stop()
				if err != nil {
					return err
				}
				took[b][i] = append(took[b][i], d)
			}
		}
	}
	fmt.Printf("cold start, exec to the first 200 of GET /health, %d samples each, alternating (load average %s)\n", samples, loadavg())
	for b, bin := range bins {
		fmt.Printf("%s\n", bin)
		for i, k := range kinds {
			t := took[b][i]
			slices.Sort(t)
			fmt.Printf("  %-32s median %s, min %s, max %s\n", k.name, t[len(t)/2].Round(100*time.Microsecond),
				t[0].Round(100*time.Microsecond), t[len(t)-1].Round(100*time.Microsecond))
		}
	}
	return nil
}

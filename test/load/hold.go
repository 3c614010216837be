package main

// Issue 17's "hold it" figures, measured on the real serve binary:
//
//	-scenario firstdelta: the first text delta through `serve --dev --agent
//	  assistant` (dev-llm proxied with --dev-llm-url to a model here that
//	  streams a chunk every -gap) against the model's own first chunk, asked
//	  directly, alternating;
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
	"time"
)

// fakeModel is an OpenAI-compatible chat completions endpoint that streams
// n chunks, one per gap (the first after one gap), and never calls a tool.
func fakeModel(gap time.Duration, n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n",
				map[bool]string{true: `"role":"assistant",`}[i == 0], i)
			f.Flush()
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
		f.Flush()
	})
}

// firstLine posts body to url and returns the time until the first SSE data
// line containing marker; it then reads the stream to its end.
func firstLine(url, body, marker string, headers map[string]string) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, b)
	}
	rd := bufio.NewReader(resp.Body)
	var took time.Duration
	for {
		line, err := rd.ReadSlice('\n')
		if took == 0 && bytes.HasPrefix(line, []byte("data: ")) && bytes.Contains(line, []byte(marker)) {
			took = time.Since(start)
		}
		if err != nil {
			if took == 0 {
				return 0, fmt.Errorf("%s: no %q in the stream", url, marker)
			}
			return took, nil
		}
	}
}

func firstDeltaScenario(bin string, samples int, gap time.Duration) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	model := &http.Server{Handler: fakeModel(gap, 5)}
	go func() { _ = model.Serve(ln) }()
	defer model.Close()
	modelURL := "http://" + ln.Addr().String() + "/v1"

	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + port
	cmd := exec.Command(bin, "--dev", "--agent", "assistant", "--addr", addr, "--dev-llm-url", modelURL, "--store", "off")
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return err
	}
	s := &proc{cmd: cmd, addr: addr}
	defer s.stop()
	if _, err := waitHealthy(addr, time.Minute); err != nil {
		return err
	}
	direct := modelURL + "/chat/completions"
	modelBody := `{"model":"m","stream":true,"messages":[{"role":"user","content":"Say hello to the team"}]}`
	serveURL := "http://" + addr + "/responses"
	serveBody := `{"stream":true,"input":"Say hello to the team"}`
	alice := map[string]string{"X-Dev-User": "alice"}
	// Warm both paths (identity verification, tools prepared, connections).
	for range 3 {
		if _, err := firstLine(serveURL, serveBody, `"response.output_text.delta"`, alice); err != nil {
			return err
		}
	}
	var viaServe, viaModel []time.Duration
	for range samples {
		d, err := firstLine(direct, modelBody, `"content"`, nil)
		if err != nil {
			return err
		}
		viaModel = append(viaModel, d)
		d, err = firstLine(serveURL, serveBody, `"response.output_text.delta"`, alice)
		if err != nil {
			return err
		}
		viaServe = append(viaServe, d)
	}
	slices.Sort(viaModel)
	slices.Sort(viaServe)
	med := func(v []time.Duration) time.Duration { return v[len(v)/2] }
	fmt.Printf("first text delta, %d alternating samples, a model streaming one chunk per %s (load average %s)\n", samples, gap, loadavg())
	fmt.Printf("  model directly (first content chunk): median %s, min %s, max %s\n", med(viaModel).Round(10*time.Microsecond), viaModel[0].Round(10*time.Microsecond), viaModel[len(viaModel)-1].Round(10*time.Microsecond))
	fmt.Printf("  serve --dev --agent assistant (first output_text.delta): median %s, min %s, max %s\n", med(viaServe).Round(10*time.Microsecond), viaServe[0].Round(10*time.Microsecond), viaServe[len(viaServe)-1].Round(10*time.Microsecond))
	fmt.Printf("  added by serve: median %s\n", (med(viaServe) - med(viaModel)).Round(10*time.Microsecond))
	return nil
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

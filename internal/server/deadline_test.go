package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// tokens streams n deltas, one per gap: a model that is slower than the
// server's read and write timeouts.
type tokens struct {
	n   int
	gap time.Duration
}

func (s tokens) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	t := time.NewTicker(s.gap)
	defer t.Stop()
	for i := range s.n {
		if i > 0 {
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := emit(agent.TextDelta("t ", "m")); err != nil {
			return err
		}
	}
	return nil
}

// Shutdown (SIGTERM in cmd/serve) while streams are in flight: every stream
// runs to its end, and Serve reports a clean drain.
func TestShutdownDrainsStreams(t *testing.T) {
	const streams = 8
	a := tokens{n: 10, gap: 40 * time.Millisecond} // ~400 ms, past both server timeouts
	addr, cancel, served := start(t, server.Options{
		Agent:        agent.FromStream(a),
		ReadTimeout:  100 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond,
		DrainTimeout: 10 * time.Second,
	})
	started := make(chan struct{}, streams)
	results := make(chan error, streams)
	for range streams {
		go func() { results <- readStream(addr, a.n, started) }()
	}
	for range streams {
		<-started
	}
	cancel() // what SIGTERM does in cmd/serve
	for range streams {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v, want nil after a clean drain", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// readStream posts a streaming request, signals started at its first delta
// and checks that it ends with response.completed (all n deltas) and [DONE].
func readStream(addr string, n int, started chan<- struct{}) error {
	resp, err := http.Post("http://"+addr+"/responses", "application/json", strings.NewReader(`{"input":"x","stream":true}`))
	if err != nil {
		started <- struct{}{}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	deltas, last, done := 0, "", false
	for sc.Scan() {
		payload, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if payload == "[DONE]" {
			done = true
			break
		}
		var ev agent.StreamEvent
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return err
		}
		if ev.Type == agent.EventOutputTextDelta {
			if deltas++; deltas == 1 {
				started <- struct{}{}
			}
		}
		last = ev.Type
	}
	if deltas == 0 {
		started <- struct{}{}
	}
	if !done || last != wireproto.EventCompleted || deltas != n {
		return fmt.Errorf("stream cut: %d/%d deltas, last event %q, [DONE] %v, read error %v", deltas, n, last, done, sc.Err())
	}
	return nil
}

package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/wireproto"
)

type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b blocking) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	close(b.entered)
	<-b.release
	return &agent.Response{Output: []agent.Item{agent.TextItem("", "finished")}}, nil
}

func start(t *testing.T, opts server.Options) (addr string, cancel context.CancelFunc, served <-chan error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Serve(ctx, ln) }()
	t.Cleanup(cancel)
	return ln.Addr().String(), cancel, errc
}

func TestShutdownDrainsInFlight(t *testing.T) {
	a := blocking{entered: make(chan struct{}), release: make(chan struct{})}
	shutdown := make(chan struct{})
	addr, cancel, served := start(t, server.Options{Agent: a, OnShutdown: func() { close(shutdown) }})

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/responses", "application/json", strings.NewReader(`{"input":"x"}`))
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-a.entered
	cancel() // what SIGTERM does in cmd/serve
	<-shutdown
	// The listener is closed: no new connections...
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still accepting connections during drain")
	}
	// ...but the request in flight completes.
	close(a.release)
	r := <-res
	if r.err != nil || r.status != 200 || !strings.Contains(r.body, "finished") {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after a clean drain", err)
	}
}

func TestDrainIsBounded(t *testing.T) {
	a := blocking{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(a.release)
	addr, cancel, served := start(t, server.Options{Agent: a, DrainTimeout: 50 * time.Millisecond})
	go func() {
		if resp, err := http.Post("http://"+addr+"/responses", "application/json", strings.NewReader(`{"input":"x"}`)); err == nil {
			resp.Body.Close()
		}
	}()
	<-a.entered
	cancel()
	select {
	case err := <-served:
		if err == nil {
			t.Error("Serve reported a clean drain while a request was stuck")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain was not bounded")
	}
}

// slowStream emits deltas spaced out so that the whole stream lasts longer
// than the server's WriteTimeout.
type slowStream struct{ gap time.Duration }

func (s slowStream) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	t := time.NewTicker(s.gap)
	defer t.Stop()
	for _, w := range []string{"one ", "two ", "three ", "four ", "five"} {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := emit(agent.TextDelta(w, "m")); err != nil {
			return err
		}
	}
	return emit(agent.ItemDone(agent.TextItem("m", "one two three four five")))
}

func TestLongStreamOutlivesWriteTimeout(t *testing.T) {
	addr, _, _ := start(t, server.Options{
		Agent:        agent.FromStream(slowStream{gap: 60 * time.Millisecond}),
		WriteTimeout: 100 * time.Millisecond, // the whole stream takes ~300ms
		Limits:       server.Limits{WriteTimeout: 5 * time.Second},
	})
	resp, err := http.Post("http://"+addr+"/responses", "application/json", strings.NewReader(`{"input":"x","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("stream cut: %v (got %q)", err, body)
	}
	frames := strings.Split(strings.TrimSpace(string(body)), "\n\n")
	if frames[len(frames)-1] != "data: [DONE]" {
		t.Fatalf("stream did not finish: %q", body)
	}
	var completed agent.StreamEvent
	if err := json.Unmarshal([]byte(strings.TrimPrefix(frames[len(frames)-2], "data: ")), &completed); err != nil {
		t.Fatal(err)
	}
	if completed.Type != wireproto.EventCompleted || completed.Response.OutputText() != "one two three four five" {
		t.Errorf("last event %+v", completed)
	}
}

func TestManifestFromAgent(t *testing.T) {
	h, err := server.New(server.Options{Agent: declaring{}})
	if err != nil {
		t.Fatal(err)
	}
	if m := h.Manifest(); len(m.Resources) != 1 || m.Resources[0].Name != "idx" {
		t.Errorf("manifest %+v", m)
	}
	if _, err := server.New(server.Options{}); err == nil {
		t.Error("New without an agent succeeded")
	}
}

type declaring struct{}

func (declaring) Predict(context.Context, *agent.Request) (*agent.Response, error) {
	return &agent.Response{}, nil
}

func (declaring) Manifest() agent.Manifest {
	return agent.Manifest{Resources: []agent.Resource{{Type: agent.VectorSearchIndex, Name: "idx"}}}
}

package mcp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	toolsmcp "github.com/agentrt/agentrt/tools/mcp"
)

// spyTools prepares a NoAuth provider for s as ctx's caller.
func spyTools(t *testing.T, ctx context.Context, s *spy, o toolsmcp.Options) (*toolsmcp.Provider, map[string]agent.Tool) {
	t.Helper()
	o.URL, o.Auth = s.URL+"/mcp", toolsmcp.NoAuth()
	p, err := toolsmcp.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := p.Prepare(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]agent.Tool{}
	for _, x := range ts {
		m[x.Definition().Name] = x
	}
	return p, m
}

func principal(id string) context.Context {
	return agent.NewContext(context.Background(), &agent.Env{Caller: agent.Caller{Identity: agent.Identity{PrincipalID: id}, Authenticated: true}})
}

// awaitDeletes waits until the server got n DELETEs (sessions closed).
func awaitDeletes(t *testing.T, s *spy, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case <-s.deletes:
		case <-deadline:
			t.Fatalf("%d of %d sessions closed", got, n)
		}
	}
}

// TestSessionPoolCap: many principals calling at once never hold more than
// MaxSessions pooled sessions, and every evicted session is closed.
func TestSessionPoolCap(t *testing.T) {
	s := newSpy(t)
	const max, principals, calls = 4, 32, 3
	p, ts := spyTools(t, principal("p-setup"), s, toolsmcp.Options{MaxSessions: max})
	echo := ts["echo"]
	var wg sync.WaitGroup
	errs := make(chan error, principals*calls)
	for i := range principals {
		wg.Go(func() {
			ctx := principal(fmt.Sprintf("p-%d", i))
			for range calls {
				if out, err := echo.Call(ctx, `{"text":"x"}`); err != nil || out != "echo: x" {
					errs <- fmt.Errorf("call = %q, %v", out, err)
				}
				if n := p.PooledSessions(); n > max {
					errs <- fmt.Errorf("%d pooled sessions, cap %d", n, max)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	opened := s.count("initialize")
	if opened < principals+1 {
		t.Errorf("%d sessions opened for %d principals", opened, principals+1)
	}
	p.Close()
	if n := p.PooledSessions(); n != 0 {
		t.Errorf("%d sessions pooled after Close", n)
	}
	awaitDeletes(t, s, opened)
}

// TestAnonymousNotPooled: callers without a verified principal never share
// a session; each operation has its own.
func TestAnonymousNotPooled(t *testing.T) {
	s := newSpy(t)
	p, ts := spyTools(t, context.Background(), s, toolsmcp.Options{})
	defer p.Close()
	anon := agent.NewContext(context.Background(), &agent.Env{})
	for range 2 {
		if _, err := ts["echo"].Call(anon, `{"text":"x"}`); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.count("initialize"); n != 3 {
		t.Errorf("initialize sent %d times, want 3 (one per operation)", n)
	}
	if n := p.PooledSessions(); n != 0 {
		t.Errorf("%d pooled sessions for anonymous callers", n)
	}
	awaitDeletes(t, s, 3)
}

// TestSessionHeals: after the server restarts, forgetting its sessions, the
// next call succeeds on a fresh session, whether the server answers the old
// session id with 404 (the spec, mcp-go) or with 400 naming the session
// (the reference TypeScript servers).
func TestSessionHeals(t *testing.T) {
	for _, badRequest := range []bool{false, true} {
		t.Run(map[bool]string{false: "404", true: "400"}[badRequest], func(t *testing.T) {
			s := newSpy(t)
			s.mu.Lock()
			s.badRequest = badRequest
			s.mu.Unlock()
			ctx := principal("alice")
			p, ts := spyTools(t, ctx, s, toolsmcp.Options{})
			defer p.Close()
			if _, err := ts["echo"].Call(ctx, `{"text":"1"}`); err != nil {
				t.Fatal(err)
			}
			// A tool-level error is no session failure.
			var te *toolsmcp.ToolError
			if _, err := ts["refuse"].Call(ctx, `{}`); !errors.As(err, &te) {
				t.Fatalf("refuse: err = %v", err)
			}
			if n := s.count("initialize"); n != 1 {
				t.Fatalf("initialize count = %d before the restart", n)
			}
			s.restart()
			out, err := ts["echo"].Call(ctx, `{"text":"2"}`)
			if err != nil || out != "echo: 2" {
				t.Fatalf("call after restart = %q, %v", out, err)
			}
			if n := s.count("initialize"); n != 2 {
				t.Errorf("initialize count = %d, want 2", n)
			}
			if n := s.count("tools/call"); n != 4 {
				t.Errorf("tools/call sent %d times, want 4 (one retried)", n)
			}
			if _, err := ts["echo"].Call(ctx, `{"text":"3"}`); err != nil || s.count("initialize") != 2 {
				t.Errorf("the fresh session is not reused: %v, %d initializes", err, s.count("initialize"))
			}
		})
	}
}

// TestSessionRetriedOnce: a server that rejects every call's session gets
// the call twice, never more.
func TestSessionRetriedOnce(t *testing.T) {
	s := newSpy(t)
	ctx := principal("alice")
	p, ts := spyTools(t, ctx, s, toolsmcp.Options{})
	defer p.Close()
	s.mu.Lock()
	s.rejectCalls = true
	s.mu.Unlock()
	_, err := ts["echo"].Call(ctx, `{"text":"x"}`)
	var se *toolsmcp.SessionError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("err = %v, want *SessionError", err)
	}
	if n := s.count("tools/call"); n != 2 {
		t.Errorf("tools/call sent %d times, want 2", n)
	}
	if n := p.PooledSessions(); n != 0 {
		t.Errorf("%d sessions pooled after session failures", n)
	}
}

// TestFailedCallKeepsTTL: calls that fail do not keep a session alive; it
// expires SessionTTL after its last successful use.
func TestFailedCallKeepsTTL(t *testing.T) {
	s := newSpy(t)
	ctx := principal("alice")
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	o := toolsmcp.Options{URL: s.URL + "/mcp", Auth: toolsmcp.NoAuth(), SessionTTL: time.Minute}
	p, err := toolsmcp.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetClock(clock)
	ts, err := p.Prepare(ctx, nil) // opens the session at 0s
	if err != nil {
		t.Fatal(err)
	}
	var boom, echo agent.Tool
	for _, x := range ts {
		switch x.Definition().Name {
		case "boom":
			boom = x
		case "echo":
			echo = x
		}
	}
	advance(50 * time.Second)
	if _, err := boom.Call(ctx, `{}`); err == nil || !strings.Contains(err.Error(), "crashed") {
		t.Fatalf("boom: err = %v", err)
	}
	if n := s.count("initialize"); n != 1 {
		t.Fatalf("initialize count = %d: a failed call was taken for a session failure", n)
	}
	// 70s after its last success (20s after the failure) it has expired.
	advance(20 * time.Second)
	if _, err := echo.Call(ctx, `{"text":"x"}`); err != nil {
		t.Fatal(err)
	}
	if n := s.count("initialize"); n != 2 {
		t.Errorf("initialize count = %d, want 2 (expired despite the failed calls)", n)
	}
}

// TestHangingServer: a call to a server that never answers returns when the
// ctx ends, abandons the HTTP request, and leaves no goroutine behind.
func TestHangingServer(t *testing.T) {
	s := newSpy(t)
	ctx := principal("alice")
	p, ts := spyTools(t, ctx, s, toolsmcp.Options{})
	if _, err := ts["echo"].Call(ctx, `{"text":"warm-up"}`); err != nil {
		t.Fatal(err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	base := runtime.NumGoroutine()

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := ts["hang"].Call(cctx, `{}`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the ctx's deadline", err)
	}
	select {
	case <-s.hanging: // the server saw the client go away
	case <-time.After(10 * time.Second):
		t.Fatal("the hung request was not abandoned")
	}
	if n := s.count("tools/call"); n != 2 {
		t.Errorf("tools/call sent %d times, want 2 (a timeout is not retried)", n)
	}
	p.Close()
	awaitDeletes(t, s, 1)
	// Goroutine exits have no signal to wait on: poll, bounded.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	for i := 0; runtime.NumGoroutine() > base; i++ {
		if i == 500 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before the call:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}
}

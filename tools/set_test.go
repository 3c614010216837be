package tools_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
)

func echoTool(name string) agent.Tool {
	return tools.NewTool(agent.ToolDefinition{Name: name}, func(_ context.Context, a string) (string, error) { return a, nil })
}

// fake is a provider whose probe outcome is scripted and counted.
type fake struct {
	name  string
	err   error
	calls atomic.Int32
	block chan struct{} // when set, Prepare waits for it
	seen  sync.Map      // *databricks.WorkspaceClient → true
}

func (f *fake) Name() string { return f.name }
func (f *fake) Requirements() tools.Requirements {
	return tools.Requirements{Resources: []agent.Resource{{Type: agent.GenieSpace, Name: f.name}}, UserScopes: []string{"dashboards.genie"}}
}
func (f *fake) Prepare(ctx context.Context, w *databricks.WorkspaceClient) ([]agent.Tool, error) {
	f.calls.Add(1)
	f.seen.Store(w, true)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return []agent.Tool{echoTool(f.name)}, nil
}

var (
	errDenied = &apierr.APIError{ErrorCode: "PERMISSION_DENIED", StatusCode: http.StatusForbidden, Message: "no CAN_RUN on space"}
	errUnauth = &apierr.APIError{ErrorCode: "UNAUTHENTICATED", StatusCode: http.StatusUnauthorized, Message: "token expired"}
	errDown   = &apierr.APIError{ErrorCode: "TEMPORARILY_UNAVAILABLE", StatusCode: http.StatusServiceUnavailable, Message: "down"}
)

func env(t *testing.T, principal string) *agent.Env {
	return &agent.Env{
		Caller: agent.Caller{Identity: agent.Identity{PrincipalID: principal}, Authenticated: true},
		User:   testws.PAT(t, "http://127.0.0.1:1", "user"),
		System: testws.PAT(t, "http://127.0.0.1:1", "system"),
	}
}

func names(ts []agent.Tool) string {
	var n []string
	for _, t := range ts {
		n = append(n, t.Definition().Name)
	}
	return strings.Join(n, ",")
}

func TestPrepareOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		policy  tools.Policy
		want    string // prepared tool names
		skipped string // reason category
		fails   bool
	}{
		{"ok", nil, tools.Skip, "p", "", false},
		{"permission skips even with Fail", errDenied, tools.Fail, "", "permission_denied", false},
		{"caller unauthenticated fails even with Skip", errUnauth, tools.Skip, "", "", true},
		{"other error skips with Skip", errDown, tools.Skip, "", "error", false},
		{"other error fails with Fail", errDown, tools.Fail, "", "", true},
		{"wrapped permission skips", fmt.Errorf("probe: %w", errDenied), tools.Skip, "", "permission_denied", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{name: "p", err: tc.err}
			s := tools.NewSet(tools.SetOptions{CacheTTL: -1}).Add(f, tools.Options{Binding: tools.User, OnError: tc.policy})
			e := env(t, "alice")
			err := s.Prepare(context.Background(), e)
			if tc.fails {
				var pe *tools.PrepareError
				if !errors.As(err, &pe) || pe.Tool != "p" || !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want *PrepareError wrapping the probe error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(e.Tools); got != tc.want {
				t.Errorf("tools = %q, want %q", got, tc.want)
			}
			if tc.skipped == "" {
				if len(e.Skipped) != 0 {
					t.Errorf("skipped = %+v", e.Skipped)
				}
				return
			}
			if len(e.Skipped) != 1 {
				t.Fatalf("skipped = %+v", e.Skipped)
			}
			sk := e.Skipped[0]
			if sk.Tool != "p" || sk.Binding != "user" || sk.Resource != "genie_space:p" || sk.Reason == "" {
				t.Errorf("skip = %+v", sk)
			}
			if got := tools.Classify(tc.err); string(got) != tc.skipped {
				t.Errorf("Classify = %q, want %q", got, tc.skipped)
			}
		})
	}
}

func TestPrepareBindsClients(t *testing.T) {
	u, s := &fake{name: "u"}, &fake{name: "s"}
	set := tools.NewSet(tools.SetOptions{}).Add(u, tools.Options{Binding: tools.User}).Add(s, tools.Options{Binding: tools.System})
	e := env(t, "alice")
	if err := set.Prepare(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if _, ok := u.seen.Load(e.User); !ok {
		t.Error("user-bound provider did not get env.User")
	}
	if _, ok := s.seen.Load(e.System); !ok {
		t.Error("system-bound provider did not get env.System")
	}
	if got := names(e.Tools); got != "u,s" {
		t.Errorf("tools = %q", got)
	}
	// Without a user client the user-bound tool is skipped, the system one kept.
	e2 := env(t, "bob")
	e2.User = nil
	if err := set.Prepare(context.Background(), e2); err != nil {
		t.Fatal(err)
	}
	if names(e2.Tools) != "s" || len(e2.Skipped) != 1 || e2.Skipped[0].Tool != "u" {
		t.Errorf("tools %q skipped %+v", names(e2.Tools), e2.Skipped)
	}
}

func TestPrepareDeadline(t *testing.T) {
	slow := &fake{name: "slow", block: make(chan struct{})}
	defer close(slow.block)
	set := tools.NewSet(tools.SetOptions{ProbeTimeout: 50 * time.Millisecond}).
		Add(slow, tools.Options{Binding: tools.User}).Add(&fake{name: "fast"}, tools.Options{Binding: tools.User})
	e := env(t, "alice")
	start := time.Now()
	if err := set.Prepare(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("prepare took %v", d)
	}
	if names(e.Tools) != "fast" || len(e.Skipped) != 1 || !strings.Contains(e.Skipped[0].Reason, "deadline") {
		t.Errorf("tools %q skipped %+v", names(e.Tools), e.Skipped)
	}
}

func TestPrepareCache(t *testing.T) {
	ok, denied, down := &fake{name: "ok"}, &fake{name: "denied", err: errDenied}, &fake{name: "down", err: errDown}
	set := tools.NewSet(tools.SetOptions{CacheTTL: time.Hour}).
		Add(ok, tools.Options{Binding: tools.User}).
		Add(denied, tools.Options{Binding: tools.User}).
		Add(down, tools.Options{Binding: tools.User})
	alice := env(t, "alice")
	for range 3 {
		if err := set.Prepare(context.Background(), alice); err != nil {
			t.Fatal(err)
		}
	}
	if ok.calls.Load() != 1 || denied.calls.Load() != 1 {
		t.Errorf("probes: ok %d denied %d, want 1 each (cached)", ok.calls.Load(), denied.calls.Load())
	}
	if down.calls.Load() != 1 {
		t.Errorf("transient failure probed %d times, want 1 (kept for FailureTTL)", down.calls.Load())
	}
	bob := env(t, "bob")
	bob.User = alice.User
	if err := set.Prepare(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	if ok.calls.Load() != 2 {
		t.Errorf("another principal must be probed: %d", ok.calls.Load())
	}
	// No principal: never cached.
	anon := env(t, "")
	for range 2 {
		_ = set.Prepare(context.Background(), anon)
	}
	if ok.calls.Load() != 4 {
		t.Errorf("anonymous probes: %d, want 4", ok.calls.Load())
	}
}

// A rejected caller credential is never cached or turned into a skip: each
// request with it fails, and a system-bound provider's 401 (the agent's own
// credential) stays a skip.
func TestPrepareUnauthenticated(t *testing.T) {
	u := &fake{name: "u", err: errUnauth}
	sys := &fake{name: "s", err: errUnauth}
	set := tools.NewSet(tools.SetOptions{CacheTTL: time.Hour}).
		Add(u, tools.Options{Binding: tools.User}).
		Add(sys, tools.Options{Binding: tools.System})
	for range 2 {
		e := env(t, "alice")
		err := set.Prepare(context.Background(), e)
		var pe *tools.PrepareError
		if !errors.As(err, &pe) || pe.Binding != tools.User || !errors.Is(err, databricks.ErrUnauthenticated) {
			t.Fatalf("err = %v, want a user-bound *PrepareError that is ErrUnauthenticated", err)
		}
	}
	if u.calls.Load() != 2 {
		t.Errorf("user probe ran %d times, want 2 (a 401 is never cached)", u.calls.Load())
	}
	set2 := tools.NewSet(tools.SetOptions{}).Add(sys, tools.Options{Binding: tools.System})
	e := env(t, "alice")
	if err := set2.Prepare(context.Background(), e); err != nil || len(e.Skipped) != 1 {
		t.Fatalf("system 401: err %v skipped %+v, want a skip", err, e.Skipped)
	}
}

// A waiter that gives up does not fail the others waiting on the same probe.
func TestPrepareWaiterCancel(t *testing.T) {
	f := &fake{name: "f", block: make(chan struct{})}
	set := tools.NewSet(tools.SetOptions{}).Add(f, tools.Options{Binding: tools.User})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{})
	e1 := env(t, "alice")
	go func() { _ = set.Prepare(ctx, e1); close(first) }()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond) // until the probe is in flight
	}
	cancel()
	<-first
	e := &agent.Env{Caller: e1.Caller, User: e1.User}
	done := make(chan struct{})
	go func() { _ = set.Prepare(context.Background(), e); close(done) }()
	close(f.block)
	<-done
	if names(e.Tools) != "f" || f.calls.Load() != 1 {
		t.Fatalf("tools %q after %d probes; want f after 1", names(e.Tools), f.calls.Load())
	}
}

func TestPrepareCacheExpires(t *testing.T) {
	f := &fake{name: "f"}
	set := tools.NewSet(tools.SetOptions{CacheTTL: time.Millisecond}).Add(f, tools.Options{Binding: tools.User})
	e := env(t, "alice")
	_ = set.Prepare(context.Background(), e)
	time.Sleep(5 * time.Millisecond) // the TTL itself is what is tested
	_ = set.Prepare(context.Background(), e)
	if f.calls.Load() != 2 {
		t.Errorf("probes = %d, want 2 after expiry", f.calls.Load())
	}
}

func TestPrepareSingleFlight(t *testing.T) {
	f := &fake{name: "f", block: make(chan struct{})}
	set := tools.NewSet(tools.SetOptions{}).Add(f, tools.Options{Binding: tools.User})
	e := env(t, "alice")
	var wg sync.WaitGroup
	envs := make([]*agent.Env, 8)
	for i := range envs {
		envs[i] = &agent.Env{Caller: e.Caller, User: e.User}
		wg.Go(func() { _ = set.Prepare(context.Background(), envs[i]) })
	}
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(f.block)
	wg.Wait()
	if f.calls.Load() != 1 {
		t.Errorf("probes = %d, want 1", f.calls.Load())
	}
	for _, x := range envs {
		if names(x.Tools) != "f" {
			t.Errorf("tools = %q", names(x.Tools))
		}
	}
}

func TestDuplicateNamesSkipped(t *testing.T) {
	a := tools.NewProvider("a", tools.Requirements{}, func(context.Context, *databricks.WorkspaceClient) ([]agent.Tool, error) {
		return []agent.Tool{echoTool("same")}, nil
	})
	set := tools.NewSet(tools.SetOptions{}).Add(a, tools.Options{Binding: tools.User}).Add(a, tools.Options{Binding: tools.System})
	e := env(t, "alice")
	if err := set.Prepare(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if names(e.Tools) != "same" || len(e.Skipped) != 1 || e.Skipped[0].Binding != "system" {
		t.Errorf("tools %q skipped %+v", names(e.Tools), e.Skipped)
	}
}

func TestRequirements(t *testing.T) {
	set := tools.NewSet(tools.SetOptions{}).
		Add(&fake{name: "g"}, tools.Options{Binding: tools.User}).
		Add(&fake{name: "g"}, tools.Options{Binding: tools.User}).
		Add(&fake{name: "h"}, tools.Options{Binding: tools.System})
	r := set.Requirements()
	if len(r.Resources) != 2 {
		t.Fatalf("resources = %+v", r.Resources)
	}
	if r.Resources[0].OnBehalfOfUser == nil || !*r.Resources[0].OnBehalfOfUser || r.Resources[1].OnBehalfOfUser != nil {
		t.Errorf("on_behalf_of_user flags wrong: %+v", r.Resources)
	}
	if strings.Join(r.UserScopes, ",") != "dashboards.genie" {
		t.Errorf("scopes = %v", r.UserScopes)
	}
}

func TestAddPanicsWithoutBinding(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	tools.NewSet(tools.SetOptions{}).Add(&fake{name: "x"}, tools.Options{})
}

func TestSkipTelemetry(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)

	set := tools.NewSet(tools.SetOptions{}).Add(&fake{name: "denied", err: errDenied}, tools.Options{Binding: tools.User})
	e := env(t, "alice")
	if err := set.Prepare(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "tools.prepare" {
		t.Fatalf("spans = %v", spans)
	}
	ev := spans[0].Events()
	if len(ev) != 1 || ev[0].Name != "tool.skipped" {
		t.Fatalf("events = %+v", ev)
	}
	got := map[string]string{}
	for _, a := range ev[0].Attributes {
		got[string(a.Key)] = a.Value.Emit()
	}
	if got["tool"] != "denied" || got["resource"] != "genie_space:denied" || !strings.Contains(got["reason"], "CAN_RUN") {
		t.Errorf("event attributes = %v", got)
	}
	if out := tools.DevOutputs(e); out == nil || len(out["skipped_tools"].([]agent.SkippedTool)) != 1 {
		t.Errorf("DevOutputs = %v", out)
	}
}

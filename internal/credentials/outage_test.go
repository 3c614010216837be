package credentials_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/iam"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/faultproxy"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/httperr"
)

const (
	tokenPath = "/oidc/v1/token"
	mePath    = "/api/2.0/preview/scim/v2/Me"
)

// devBehind starts a dev workspace issuing tokens that live ttl, behind a
// fault proxy.
func devBehind(t *testing.T, ttl time.Duration) *faultproxy.Proxy {
	t.Helper()
	cfg, err := devworkspace.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TokenTTL.Duration = ttl
	ws, err := devworkspace.New(devworkspace.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return faultproxy.Start(t, ws.Handler())
}

var quiet = slog.New(slog.DiscardHandler)

// m2m builds the system client of the dev service principal; the first
// refresh event is returned.
func m2m(t *testing.T, url string, o credentials.SystemOptions) (*credentials.System, credentials.RefreshEvent, <-chan credentials.RefreshEvent) {
	t.Helper()
	events := make(chan credentials.RefreshEvent, 1000)
	o.Host = url
	o.ClientID, o.ClientSecret = "agent-sp", "agent-sp-secret"
	o.Logger = quiet
	o.OnRefresh = func(ev credentials.RefreshEvent) {
		select {
		case events <- ev:
		default:
		}
	}
	s, err := credentials.NewSystem(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, <-events, events
}

func spMe(ctx context.Context, s *credentials.System) error {
	_, err := s.Client().CurrentUser.Me(ctx, iam.MeRequest{})
	return err
}

// waitPast blocks until t has passed.
func waitPast(t time.Time) { time.Sleep(time.Until(t) + 20*time.Millisecond) }

// waitCount waits, bounded, until the proxy saw n requests on path.
func waitCount(t *testing.T, p *faultproxy.Proxy, path string, n int) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for range 2500 {
		if p.Count(path) >= n {
			return
		}
		<-tick.C
	}
	t.Fatalf("%s: %d requests, want %d", path, p.Count(path), n)
}

func want503(t *testing.T, err error) *httperr.Error {
	t.Helper()
	e := httperr.From(err)
	if e.Status != http.StatusServiceUnavailable || e.RetryAfter < 1 {
		t.Errorf("httperr.From(%v) = %d Retry-After %d, want 503 with Retry-After", err, e.Status, e.RetryAfter)
	}
	if !errors.Is(err, databricks.ErrTemporarilyUnavailable) {
		t.Errorf("err = %v, want ErrTemporarilyUnavailable", err)
	}
	return e
}

// Without a valid token and with the token endpoint answering 503, calls
// fail at once with a 503-mapped error, and concurrent calls share one
// failed fetch instead of each calling the endpoint.
func TestTokenOutageWithoutValidTokenFailsFast(t *testing.T) {
	p := devBehind(t, 2*time.Second)
	s, first, _ := m2m(t, p.URL, credentials.SystemOptions{RetryMin: time.Second, RetryMax: time.Second, FailureTTL: 2 * time.Second})
	p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusServiceUnavailable)})
	waitPast(first.Expiry)

	before := p.Count(tokenPath)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	took := make([]time.Duration, 20)
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			errs[i] = spMe(ctx, s)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Fatal("call succeeded without a token")
		}
		want503(t, err)
		if took[i] > time.Second {
			t.Errorf("call %d took %s", i, took[i])
		}
		if strings.Contains(err.Error(), "token exchange") {
			t.Errorf("M2M failure worded as a token exchange: %v", err)
		}
	}
	if n := p.Count(tokenPath) - before; n > 3 {
		t.Errorf("%d token endpoint calls for 20 requests", n)
	}
	if p.Count(mePath) != 0 {
		t.Errorf("%d calls reached the workspace without a token", p.Count(mePath))
	}
}

// A hanging token endpoint: a caller with a short deadline returns at its
// deadline even while another caller is waiting for the same fetch, and no
// caller waits longer than TokenWait.
func TestTokenEndpointHangs(t *testing.T) {
	p := devBehind(t, 2*time.Second)
	s, first, _ := m2m(t, p.URL, credentials.SystemOptions{RetryMin: time.Hour, RetryMax: time.Hour, TokenWait: time.Second})
	n := p.Count(tokenPath)
	p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Hang()})
	waitPast(first.Expiry)

	longDone := make(chan error, 1)
	longStart := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		longDone <- spMe(ctx, s)
	}()
	waitCount(t, p, tokenPath, n+1) // a fetch (the background's or this call's) hangs

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := spMe(ctx, s)
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("short-deadline call returned after %s", d)
	}
	want503(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to say the deadline passed", err)
	}
	err = <-longDone
	if d := time.Since(longStart); d > 2*time.Second {
		t.Errorf("long call returned after %s, want about TokenWait (1s)", d)
	}
	want503(t, err)
}

// After the endpoint comes back, calls succeed again within one refresh
// interval (the negative cache and the background retry).
func TestTokenOutageRecovery(t *testing.T) {
	p := devBehind(t, 2*time.Second)
	const retryMax, failTTL = 300 * time.Millisecond, 200 * time.Millisecond
	s, first, _ := m2m(t, p.URL, credentials.SystemOptions{RetryMin: 50 * time.Millisecond, RetryMax: retryMax, FailureTTL: failTTL})
	remove := p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusServiceUnavailable)})
	waitPast(first.Expiry)
	if err := spMe(context.Background(), s); err == nil {
		t.Fatal("call succeeded during the outage")
	}
	remove()
	back := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range 500 {
		if spMe(context.Background(), s) == nil {
			if d := time.Since(back); d > retryMax+failTTL+200*time.Millisecond {
				t.Errorf("recovered %s after the endpoint returned", d)
			}
			return
		}
		<-tick.C
	}
	t.Fatal("no recovery")
}

// With a valid cached token an outage fails no call: the background refresh
// fails, retries, and lands once the endpoint is back.
func TestTokenOutageWithValidTokenFailsNothing(t *testing.T) {
	p := devBehind(t, 3*time.Second) // background refresh from 1.5s
	s, first, events := m2m(t, p.URL, credentials.SystemOptions{RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	remove := p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusServiceUnavailable)})
	var failed int
	call := func() {
		if err := spMe(context.Background(), s); err != nil {
			failed++
			t.Error(err)
		}
	}
	for fails := 0; fails < 3; {
		call()
		select {
		case ev := <-events:
			if ev.Err == nil {
				t.Fatalf("refresh succeeded during the outage: %+v", ev)
			}
			fails++
		default:
		}
	}
	remove()
	for {
		call()
		ev := <-events
		if ev.Err == nil {
			if !time.Now().Before(first.Expiry) {
				t.Errorf("refreshed only after the old token expired")
			}
			break
		}
	}
	call()
	if failed != 0 {
		t.Errorf("%d calls failed", failed)
	}
}

// The M2M failure says what failed (not "token exchange") and a rejection
// still matches ErrUnauthenticated.
func TestM2MErrorWording(t *testing.T) {
	p := devBehind(t, time.Hour)
	p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusServiceUnavailable), Times: 1})
	_, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: p.URL, ClientID: "agent-sp", ClientSecret: "agent-sp-secret", Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "system token request (oauth-m2m) failed: token endpoint answered HTTP 503") || strings.Contains(err.Error(), "exchange") {
		t.Errorf("503: %v", err)
	}
	p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusUnauthorized), Times: 1})
	_, err = credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: p.URL, ClientID: "agent-sp", ClientSecret: "agent-sp-secret", Logger: quiet})
	var te *credentials.TokenEndpointError
	if !errors.As(err, &te) || te.Status != 401 || !strings.Contains(err.Error(), "rejected") || !errors.Is(err, databricks.ErrUnauthenticated) {
		t.Errorf("401: %v", err)
	}
}

// The SDK's workspace calls honour Retry-After and are not retried twice.
func TestWorkspaceCallRetries(t *testing.T) {
	p := devBehind(t, time.Hour)
	s, _, _ := m2m(t, p.URL, credentials.SystemOptions{})

	p.Add(faultproxy.Rule{Prefix: mePath, Fault: faultproxy.RetryAfter(http.StatusTooManyRequests, 1), Times: 1})
	start := time.Now()
	if err := spMe(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || p.Count(mePath) != 2 {
		t.Errorf("429 Retry-After 1: %d calls in %s", p.Count(mePath), d)
	}

	p.Add(faultproxy.Rule{Prefix: mePath, Fault: faultproxy.Status(http.StatusServiceUnavailable), Times: 2})
	if err := spMe(context.Background(), s); err != nil || p.Count(mePath) != 5 {
		t.Errorf("503 twice: %v after %d calls", err, p.Count(mePath))
	}

	// A Retry-After beyond the deadline: one call, an honest error at once.
	p.Add(faultproxy.Rule{Prefix: mePath, Fault: faultproxy.RetryAfter(http.StatusTooManyRequests, 30)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start = time.Now()
	err := spMe(ctx, s)
	if d := time.Since(start); d > time.Second || p.Count(mePath) != 6 {
		t.Errorf("Retry-After 30 with a 3s deadline: %d calls in %s", p.Count(mePath)-5, d)
	}
	if e := httperr.From(err); e.Status != 503 || e.RetryAfter != 30 || !errors.Is(err, databricks.ErrTooManyRequests) {
		t.Errorf("err = %v → %d Retry-After %d", err, e.Status, e.RetryAfter)
	}
}

// failingAgent calls the workspace as the service principal and wraps the
// failure, as an agent's model or tool call would.
type failingAgent struct{ s *credentials.System }

func (a failingAgent) Predict(ctx context.Context, _ *agent.Request) (*agent.Response, error) {
	if err := spMe(ctx, a.s); err != nil {
		return nil, fmt.Errorf("model call failed: %w", err)
	}
	return nil, errors.New("unexpected success")
}

// An agent that returns an error wrapping the unavailable system token gets
// its caller a 503 with Retry-After in the usual body, not a 500.
func TestAgentErrorWrappingUnavailableTokenIs503(t *testing.T) {
	p := devBehind(t, 2*time.Second)
	s, first, _ := m2m(t, p.URL, credentials.SystemOptions{RetryMin: time.Hour, RetryMax: time.Hour})
	p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusServiceUnavailable)})
	waitPast(first.Expiry)

	h, err := httpapi.New(httpapi.Options{Agent: failingAgent{s}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/responses", "application/json", strings.NewReader(`{"input":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 503 || ra < 1 || !strings.Contains(string(body), `"error_code":"TEMPORARILY_UNAVAILABLE"`) {
		t.Errorf("%d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

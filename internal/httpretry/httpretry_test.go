package httpretry_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"

	"github.com/agentrt/agentrt/internal/faultproxy"
	"github.com/agentrt/agentrt/internal/httpretry"
)

// echo answers 200 with the request body, remembering every body it saw.
type echo struct {
	mu     sync.Mutex
	bodies []string
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.bodies = append(e.bodies, string(b))
	e.mu.Unlock()
	_, _ = w.Write(b)
}

func fast() *httpretry.Transport {
	return &httpretry.Transport{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

func post(ctx context.Context, t http.RoundTripper, url, body string, hdr ...string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return (&http.Client{Transport: t}).Do(req)
}

func TestRetriesStatusesAndReplaysBody(t *testing.T) {
	up := &echo{}
	p := faultproxy.Start(t, up)
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Status(503), Times: 2})
	resp, err := post(context.Background(), fast(), p.URL+"/x", "payload")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "payload" || p.Count("/x") != 3 {
		t.Errorf("status %d body %q calls %d", resp.StatusCode, b, p.Count("/x"))
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	p := faultproxy.Start(t, &echo{})
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.RetryAfter(429, 1), Times: 1})
	start := time.Now()
	resp, err := post(context.Background(), fast(), p.URL+"/", "x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if waited := time.Since(start); resp.StatusCode != 200 || waited < time.Second || p.Count("/") != 2 {
		t.Errorf("status %d after %s, %d calls", resp.StatusCode, waited, p.Count("/"))
	}
}

func TestRetryAfterBeyondDeadline(t *testing.T) {
	p := faultproxy.Start(t, &echo{})
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.RetryAfter(429, 30)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()

	// As the response: the caller's library sees the 429.
	rctx, rep := httpretry.WithReport(ctx)
	resp, err := post(rctx, fast(), p.URL+"/", "x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || rep.RetryAfter != 30*time.Second || rep.Attempts != 1 {
		t.Errorf("status %d report %+v", resp.StatusCode, rep)
	}
	// As an error, for the SDK.
	tr := fast()
	tr.ErrorOnGiveUp = true
	_, err = post(ctx, tr, p.URL+"/", "x")
	var he *httpretry.Error
	if !errors.As(err, &he) || he.Status != 429 || he.RetryAfter() != 30*time.Second || !errors.Is(err, apierr.ErrTooManyRequests) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("waited %s for a Retry-After beyond the deadline", d)
	}
	if p.Count("/") != 2 {
		t.Errorf("%d calls", p.Count("/"))
	}
}

func TestNoRetry(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 500} {
		p := faultproxy.Start(t, &echo{})
		p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Status(status)})
		resp, err := post(context.Background(), fast(), p.URL+"/", "x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status || p.Count("/") != 1 {
			t.Errorf("%d: got %d after %d calls", status, resp.StatusCode, p.Count("/"))
		}
	}
}

func TestResetAfterSendIsRetriedOnlyWhenIdempotent(t *testing.T) {
	tests := []struct {
		name   string
		method string
		hdr    []string
		calls  int
	}{
		{"POST", http.MethodPost, nil, 1},
		{"POST with Idempotency-Key", http.MethodPost, []string{"Idempotency-Key", "k1"}, 2},
		{"PUT", http.MethodPut, nil, 2},
		{"GET", http.MethodGet, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := faultproxy.Start(t, &echo{})
			p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Reset(), Times: 1})
			req, _ := http.NewRequest(tc.method, p.URL+"/", strings.NewReader("x"))
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			tr := fast()
			tr.Base = &http.Transport{DisableKeepAlives: true} // no transparent retry by net/http
			tr.ErrorOnGiveUp = true
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if tc.calls == 1 {
				var he *httpretry.Error
				if !errors.As(err, &he) || strings.Contains(err.Error(), "connection reset by peer") {
					t.Errorf("err = %v, want *Error without the SDK's transient text", err)
				}
			} else if err != nil || resp.StatusCode != 200 {
				t.Errorf("err = %v", err)
			}
			if resp != nil {
				resp.Body.Close()
			}
			if p.Count("/") != tc.calls {
				t.Errorf("%d calls, want %d", p.Count("/"), tc.calls)
			}
		})
	}
}

func TestDialFailureIsRetriedForPOST(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: every dial is refused
	ctx, rep := httpretry.WithReport(context.Background())
	tr := fast()
	tr.MaxAttempts = 3
	_, err = post(ctx, tr, "http://"+addr+"/", "x")
	if err == nil || rep.Attempts != 3 {
		t.Errorf("err = %v after %d attempts", err, rep.Attempts)
	}
}

func TestUnreplayableBodyIsSentOnce(t *testing.T) {
	p := faultproxy.Start(t, &echo{})
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Status(503)})
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/", io.NopCloser(strings.NewReader("x")))
	resp, err := (&http.Client{Transport: fast()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p.Count("/") != 1 {
		t.Errorf("%d calls", p.Count("/"))
	}
}

func TestNestedTransportsDoNotMultiply(t *testing.T) {
	p := faultproxy.Start(t, &echo{})
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Status(503)})
	inner := fast()
	outer := fast()
	outer.Base = inner
	resp, err := post(context.Background(), outer, p.URL+"/", "x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p.Count("/") != httpretry.DefaultMaxAttempts {
		t.Errorf("%d calls, want %d", p.Count("/"), httpretry.DefaultMaxAttempts)
	}
}

func TestCtxCancelStopsWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	// The upstream cancels the caller as it answers 503: the retry wait
	// (an hour) must end with the ctx.
	p := faultproxy.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	tr := &httpretry.Transport{MinBackoff: time.Hour, MaxBackoff: time.Hour, MaxWait: 2 * time.Hour}
	_, err := post(ctx, tr, p.URL+"/", "x")
	if !errors.Is(err, context.Canceled) || p.Count("/") != 1 {
		t.Errorf("err = %v after %d calls", err, p.Count("/"))
	}
}

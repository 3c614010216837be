package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/faultproxy"
)

func target() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	})
}

func get(t *testing.T, ctx context.Context, method, u string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, u, strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

func TestStatusForNextN(t *testing.T) {
	p := faultproxy.Start(t, target())
	p.Add(faultproxy.Rule{Prefix: "/a", Method: http.MethodPost, Fault: faultproxy.RetryAfter(429, 7), Times: 2})
	var got []int
	for range 3 {
		resp, _, err := get(t, context.Background(), http.MethodPost, p.URL+"/a/x")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	if got[0] != 429 || got[1] != 429 || got[2] != 200 {
		t.Errorf("statuses %v", got)
	}
	// Other methods and paths pass.
	if resp, body, _ := get(t, context.Background(), http.MethodGet, p.URL+"/b"); resp.StatusCode != 200 || body != "ok /b" {
		t.Errorf("GET /b: %d %q", resp.StatusCode, body)
	}
	if p.Count("/a") != 3 || p.Count("/b") != 1 || p.Count("/") != 4 {
		t.Errorf("counts /a=%d /b=%d /=%d", p.Count("/a"), p.Count("/b"), p.Count("/"))
	}
}

func TestWindowAndRemove(t *testing.T) {
	p := faultproxy.Start(t, target())
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Status(503), For: time.Nanosecond})
	remove := p.Add(faultproxy.Rule{Prefix: "/x", Fault: faultproxy.Status(401)})
	if resp, _, _ := get(t, context.Background(), http.MethodGet, p.URL+"/x"); resp.StatusCode != 401 {
		t.Errorf("status %d", resp.StatusCode)
	}
	remove()
	// The window rule has expired by now: everything passes.
	if resp, _, _ := get(t, context.Background(), http.MethodGet, p.URL+"/x"); resp.StatusCode != 200 {
		t.Errorf("status %d after remove", resp.StatusCode)
	}
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Status(500), For: time.Hour})
	if resp, _, _ := get(t, context.Background(), http.MethodGet, p.URL+"/y"); resp.StatusCode != 500 {
		t.Errorf("status %d in window", resp.StatusCode)
	}
	p.Clear()
	if resp, _, _ := get(t, context.Background(), http.MethodGet, p.URL+"/y"); resp.StatusCode != 200 {
		t.Errorf("status %d after Clear", resp.StatusCode)
	}
}

func TestHangUntilCtx(t *testing.T) {
	p := faultproxy.Start(t, target())
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Hang()})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := get(t, ctx, http.MethodGet, p.URL+"/")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

func TestDelay(t *testing.T) {
	p := faultproxy.Start(t, target())
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Delay(time.Hour), Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := get(t, ctx, http.MethodGet, p.URL+"/"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Delay(time.Millisecond), Times: 1})
	if resp, body, err := get(t, context.Background(), http.MethodGet, p.URL+"/d"); err != nil || resp.StatusCode != 200 || body != "ok /d" {
		t.Errorf("delayed: %v %q", err, body)
	}
}

func TestReset(t *testing.T) {
	p := faultproxy.Start(t, target())
	p.Add(faultproxy.Rule{Prefix: "/", Fault: faultproxy.Reset(), Times: 1})
	_, _, err := get(t, context.Background(), http.MethodPost, p.URL+"/")
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want a reset", err)
	}
	if resp, _, err := get(t, context.Background(), http.MethodPost, p.URL+"/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("after reset: %v", err)
	}
}

func TestForward(t *testing.T) {
	up := httptest.NewServer(target())
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p := faultproxy.Start(t, faultproxy.Forward(u))
	if resp, body, err := get(t, context.Background(), http.MethodGet, p.URL+"/f"); err != nil || resp.StatusCode != 200 || body != "ok /f" {
		t.Errorf("forward: %v %q", err, body)
	}
}

// Package faultproxy is an in-process, fault-injecting HTTP proxy for tests:
// put it in front of a handler (or, with Forward, a URL) and make chosen
// paths hang, slow down, reset the connection or answer an error status, for
// the next N requests or for a while, and count what reached each path.
//
// Rules are matched by path prefix and optional method; the most recently
// added matching rule that still applies wins. Requests no rule matches are
// passed to the target unchanged.
package faultproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is what a Fault does.
type Kind int

const (
	// KindHang holds the request until the client gives up (its ctx ends) or
	// the proxy is closed; nothing is answered.
	KindHang Kind = iota + 1
	// KindDelay waits Fault.Delay (or until the client gives up), then
	// passes the request to the target.
	KindDelay
	// KindReset reads the whole request and then resets the connection
	// (TCP RST) without answering: the request was sent, its outcome is
	// unknown to the client.
	KindReset
	// KindStatus answers Fault.Status with a JSON error body, and
	// Retry-After when Fault.RetryAfter is set.
	KindStatus
)

// Fault is one injected behaviour. Build it with Hang, Delay, Reset or Status.
type Fault struct {
	Kind       Kind
	Delay      time.Duration
	Status     int
	RetryAfter string // Retry-After header value, sent with KindStatus
}

// Hang holds matching requests until the client gives up.
func Hang() Fault { return Fault{Kind: KindHang} }

// Delay delays matching requests by d.
func Delay(d time.Duration) Fault { return Fault{Kind: KindDelay, Delay: d} }

// Reset resets the connection after reading the request.
func Reset() Fault { return Fault{Kind: KindReset} }

// Status answers status (401, 403, 429, 500, 503, …).
func Status(status int) Fault { return Fault{Kind: KindStatus, Status: status} }

// RetryAfter answers status with a Retry-After of seconds.
func RetryAfter(status, seconds int) Fault {
	return Fault{Kind: KindStatus, Status: status, RetryAfter: strconv.Itoa(seconds)}
}

// Rule applies Fault to requests whose path starts with Prefix (and whose
// method is Method, when set).
type Rule struct {
	Prefix string
	Method string // "" matches any method
	Fault  Fault
	// Times limits the rule to the next Times matching requests; 0 means
	// no limit.
	Times int
	// For limits the rule to a window starting when it is added; 0 means
	// until removed.
	For time.Duration
}

type rule struct {
	Rule
	left  int // remaining uses when Times > 0
	until time.Time
	id    uint64
}

// Proxy injects faults in front of a target handler. It is safe for
// concurrent use.
type Proxy struct {
	target http.Handler
	// URL is the proxy's address when it was started with Start.
	URL string

	mu     sync.Mutex
	rules  []*rule
	nextID uint64
	counts map[string]int // by request path
	closed chan struct{}
	once   sync.Once
}

// New returns a proxy in front of target.
func New(target http.Handler) *Proxy {
	return &Proxy{target: target, counts: map[string]int{}, closed: make(chan struct{})}
}

// Forward returns a handler that forwards to base (a reverse proxy that
// streams responses as they arrive), for putting a Proxy in front of a
// server that is already listening.
func Forward(base *url.URL) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(base)
	rp.FlushInterval = -1
	return rp
}

// Start serves a new proxy in front of target on a loopback httptest server
// and closes both when tb ends (the proxy first, so that hanging requests
// let the server close).
func Start(tb testing.TB, target http.Handler) *Proxy {
	tb.Helper()
	p := New(target)
	srv := httptest.NewServer(p)
	p.URL = srv.URL
	tb.Cleanup(srv.Close)
	tb.Cleanup(p.Close)
	return p
}

// Add installs r and returns a function that removes it.
func (p *Proxy) Add(r Rule) (remove func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	nr := &rule{Rule: r, left: r.Times, id: p.nextID}
	if r.For > 0 {
		nr.until = time.Now().Add(r.For)
	}
	p.rules = append(p.rules, nr)
	id := nr.id
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, x := range p.rules {
			if x.id == id {
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
				return
			}
		}
	}
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.rules = nil
	p.mu.Unlock()
}

// Count returns how many requests whose path starts with prefix reached the
// proxy (faulted or not).
func (p *Proxy) Count(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for path, c := range p.counts {
		if strings.HasPrefix(path, prefix) {
			n += c
		}
	}
	return n
}

// Close releases hanging requests; later requests pass through.
func (p *Proxy) Close() { p.once.Do(func() { close(p.closed) }) }

// match counts the request and returns the fault to apply, if any.
func (p *Proxy) match(r *http.Request) (Fault, bool) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[r.URL.Path]++
	for i := len(p.rules) - 1; i >= 0; i-- {
		x := p.rules[i]
		expired := !x.until.IsZero() && !now.Before(x.until)
		if expired {
			p.rules = append(p.rules[:i], p.rules[i+1:]...)
			continue
		}
		if !strings.HasPrefix(r.URL.Path, x.Prefix) || (x.Method != "" && x.Method != r.Method) {
			continue
		}
		if x.Times > 0 {
			x.left--
			if x.left <= 0 {
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
			}
		}
		return x.Fault, true
	}
	return Fault{}, false
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := p.match(r)
	if !ok {
		p.target.ServeHTTP(w, r)
		return
	}
	switch f.Kind {
	case KindHang:
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
	case KindDelay:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return
		case <-p.closed:
		case <-t.C:
		}
		p.target.ServeHTTP(w, r)
	case KindReset:
		_, _ = io.Copy(io.Discard, r.Body)
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("faultproxy: Reset needs a connection that can be hijacked (HTTP/1)")
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST, not FIN
		}
		_ = conn.Close()
	case KindStatus:
		_, _ = io.Copy(io.Discard, r.Body)
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		code := strings.ToUpper(strings.ReplaceAll(http.StatusText(f.Status), " ", "_"))
		msg := "faultproxy: injected " + strconv.Itoa(f.Status)
		_, _ = io.WriteString(w, `{"error_code":"`+code+`","message":"`+msg+`","error":{"message":"`+msg+`","code":"`+code+`"}}`)
	}
}

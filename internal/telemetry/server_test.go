package telemetry

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strconv"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
)

// serve runs one request through s the way the host's middleware does:
// env in the context, Start with the matched route, the handler, End.
func serve(s *Server, r *http.Request, route string, status int, user string) {
	env := &agent.Env{RequestID: "req-7"}
	_, q := s.Start(agent.NewContext(r.Context(), env), r, route)
	env.Caller.PrincipalID = user // identity resolves the caller after Start
	q.End(status)
}

func TestServerSpans(t *testing.T) {
	cleanEnv(t, nil)
	_, mem := setupMem(t, Options{})
	s := NewServer()

	tests := []struct {
		name     string
		method   string
		path     string
		route    string
		status   int
		user     string
		tls      bool
		wantName string
		want     map[string]string
		absent   []string
		failed   bool
	}{
		{
			name: "matched route", method: "POST", path: "/responses", route: "/responses", status: 200, user: "alice-id",
			wantName: "POST /responses",
			want: map[string]string{"http.request.method": "POST", "http.route": "/responses", "url.path": "/responses",
				"url.scheme": "http", "http.response.status_code": "200", "user_agent.original": "test-client/1",
				AttrRequestID: "req-7", AttrEndUserID: "alice-id"},
			absent: []string{"error.type", "http.request.method_original"},
		},
		{
			name: "no route matched", method: "GET", path: "/nope/123", status: 404,
			wantName: "GET",
			want:     map[string]string{"url.path": "/nope/123", "http.response.status_code": "404"},
			absent:   []string{"http.route", AttrEndUserID},
		},
		{
			name: "server error", method: "POST", path: "/invocations", route: "/invocations", status: 503, user: "bob-id",
			wantName: "POST /invocations",
			want:     map[string]string{"http.response.status_code": "503", "error.type": "503", AttrEndUserID: "bob-id"},
			failed:   true,
		},
		{
			name: "unknown method", method: "BREW", path: "/responses", status: 405,
			wantName: "HTTP",
			want:     map[string]string{"http.request.method": "_OTHER", "http.request.method_original": "BREW"},
		},
		{
			name: "tls", method: "POST", path: "/responses", route: "/responses", status: 200, tls: true,
			wantName: "POST /responses",
			want:     map[string]string{"url.scheme": "https"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem.Reset()
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r.Header.Set("User-Agent", "test-client/1")
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			serve(s, r, tc.route, tc.status, tc.user)
			spans := mem.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			sp := spans[0]
			if sp.Name != tc.wantName || sp.SpanKind != trace.SpanKindServer {
				t.Errorf("span %q kind %v, want %q server", sp.Name, sp.SpanKind, tc.wantName)
			}
			got := attrsOf(sp.Attributes)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("unexpected %s in %v", k, got)
				}
			}
			if failed := sp.Status.Code == codes.Error; failed != tc.failed {
				t.Errorf("status %v, want failed=%v", sp.Status, tc.failed)
			}
		})
	}
}

func TestServerMetrics(t *testing.T) {
	cleanEnv(t, nil)
	tel, mem := setupMem(t, Options{})
	s := NewServer()
	for i, status := range []int{200, 200, 400, 500} {
		serve(s, httptest.NewRequest("POST", "/responses", nil), "/responses", status, "u"+strconv.Itoa(i))
	}
	// Clients choose the method: odd ones share one series and one cache entry.
	for _, m := range []string{"BREW", "PROPFIND", "X-1"} {
		serve(s, httptest.NewRequest(m, "/responses", nil), "/responses", 405, "")
	}
	for _, route := range []string{"/health", "/metrics", "/ready", "/ping"} {
		serve(s, httptest.NewRequest("GET", route, nil), route, 200, "")
	}

	fams := scrape(t, tel.MetricsHandler())
	const dur = "http_server_request_duration_seconds"
	checks := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"http_route": "/responses", "http_request_method": "POST", "http_response_status_code": "200", "url_scheme": "http"}, 2},
		{map[string]string{"http_route": "/responses", "http_response_status_code": "400"}, 1},
		{map[string]string{"http_route": "/responses", "http_response_status_code": "500", "error_type": "500"}, 1},
		{map[string]string{"http_request_method": "_OTHER", "http_response_status_code": "405"}, 3},
	}
	for _, c := range checks {
		if got, ok := sample(fams, dur, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", dur, c.labels, got, ok, c.want)
		}
	}
	for _, route := range []string{"/health", "/metrics", "/ready", "/ping"} {
		if _, ok := sample(fams, dur, map[string]string{"http_route": route}); ok {
			t.Errorf("probe route %s counted", route)
		}
	}
	if v, ok := sample(fams, "http_server_active_requests", nil); !ok || v != 0 {
		t.Errorf("http_server_active_requests = %v (found %v), want 0", v, ok)
	}
	// In flight: two POSTs on different routes share one series (active
	// requests carry method and scheme, not the route); a probe is not
	// counted.
	var open []Request
	for _, route := range []string{"/responses", "/invocations", "/health"} {
		r := httptest.NewRequest("POST", route, nil)
		_, q := s.Start(r.Context(), r, route)
		open = append(open, q)
	}
	fams = scrape(t, tel.MetricsHandler())
	if v, ok := sample(fams, "http_server_active_requests", map[string]string{"http_request_method": "POST", "url_scheme": "http"}); !ok || v != 2 {
		t.Errorf("http_server_active_requests in flight = %v (found %v), want 2", v, ok)
	}
	for _, q := range open {
		q.End(200)
	}
	fams = scrape(t, tel.MetricsHandler())
	if v, ok := sample(fams, "http_server_active_requests", map[string]string{"http_request_method": "POST"}); !ok || v != 0 {
		t.Errorf("http_server_active_requests after = %v (found %v), want 0", v, ok)
	}
	if n := len(mem.GetSpans()); n != 9 {
		t.Errorf("%d spans, want 9 (probes are not traced)", n)
	}
	if m := s.routes.m.Load(); m == nil || len(*m) != 8 {
		t.Errorf("route cache %v, want 8 entries (POST and _OTHER on /responses, POST /invocations and /health, four probes)", m)
	}
}

func TestNilServer(t *testing.T) {
	var s *Server
	r := httptest.NewRequest("POST", "/responses", nil)
	ctx := context.WithValue(r.Context(), struct{}{}, 1)
	got, q := s.Start(ctx, r, "/responses")
	if got != ctx {
		t.Error("a nil Server changed the context")
	}
	q.End(200) // must not panic
}

func TestNewServerDisabled(t *testing.T) {
	cleanEnv(t, map[string]string{"OTEL_SDK_DISABLED": "true"})
	setupMem(t, Options{})
	if s := NewServer(); s != nil {
		t.Errorf("NewServer with the SDK disabled = %v, want nil", s)
	}
}

// TestServerConcurrent exercises the route and status caches from many
// goroutines (run with -race).
func TestServerConcurrent(t *testing.T) {
	cleanEnv(t, nil)
	setupMem(t, Options{})
	s := NewServer()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				route := "/r" + strconv.Itoa(i%5)
				serve(s, httptest.NewRequest("POST", route, nil), route, 200+g%3, "")
			}
		})
	}
	wg.Wait()
	if m := s.routes.m.Load(); m == nil || len(*m) != 5 {
		t.Fatalf("route cache has %v entries, want 5", m)
	}
	for _, rt := range *s.routes.m.Load() {
		if m := rt.durations.m.Load(); m == nil || len(*m) != 3 {
			t.Errorf("status cache of %s: %v, want 3 entries", rt.name, m)
		}
	}
}

// TestHeaderCarrier: the allocation-free carrier reads what
// propagation.HeaderCarrier reads, for the propagators' lower-case keys and
// any other, so trace context and baggage still come in.
func TestHeaderCarrier(t *testing.T) {
	h := http.Header{}
	h.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	h.Set("tracestate", "congo=t61rcWkgMzE")
	h.Add("baggage", "user=alice")
	h.Add("baggage", "tenant=7")
	h.Set("x-other", "v")
	for _, k := range []string{"traceparent", "tracestate", "baggage", "x-other", "X-Other", "missing"} {
		if got, want := headerCarrier(h).Get(k), propagation.HeaderCarrier(h).Get(k); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
		if got, want := headerCarrier(h).Values(k), propagation.HeaderCarrier(h).Values(k); !slices.Equal(got, want) {
			t.Errorf("Values(%q) = %q, want %q", k, got, want)
		}
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	ctx := prop.Extract(context.Background(), headerCarrier(h))
	if sc := trace.SpanContextFromContext(ctx); sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || !sc.IsRemote() {
		t.Errorf("span context %v", sc)
	}
	if b := baggage.FromContext(ctx); b.Member("user").Value() != "alice" || b.Member("tenant").Value() != "7" {
		t.Errorf("baggage %v", b)
	}
	if returnTraceKey != textproto.CanonicalMIMEHeaderKey(ReturnTraceHeader) {
		t.Errorf("returnTraceKey %q", returnTraceKey)
	}
	h.Set(ReturnTraceHeader, " TRUE ")
	if !WantsTraceID(h) {
		t.Error("WantsTraceID = false")
	}
}

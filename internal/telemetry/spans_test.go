package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/telemetry/telemetrytest"
)

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
)

func attrsOf(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %v", name, names)
	return tracetest.SpanStub{}
}

// instrument stands in for the host's gin middleware: it starts the server
// instrumentation with the route mux matched and ends it with the status.
func instrument(mux *http.ServeMux) http.Handler {
	srv := NewServer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		_, route, _ := strings.Cut(pattern, " ")
		ctx := agent.NewContext(r.Context(), &agent.Env{RequestID: "req-123"})
		ctx, q := srv.Start(ctx, r, route)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(sw, r.WithContext(ctx))
		q.End(sw.status)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Flush()               { w.ResponseWriter.(http.Flusher).Flush() }

// hostMux stands in for the agent routes: /responses runs a predict span
// that calls upstream through the instrumented transport.
func hostMux(upstream string) *http.ServeMux {
	client := &http.Client{Transport: Transport(nil)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /responses", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		agent.FromContext(ctx).Caller.PrincipalID = "alice-id" // what identity resolution does
		ctx, span := StartPredict(ctx, false, nil)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, upstream, nil)
		req.Header.Set("Authorization", "Bearer dev-alice-token")
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		End(span, err)
		if WantsTraceID(r.Header) {
			w.Header().Set("X-Trace", TraceID(ctx))
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("POST /bad", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	})
	return mux
}

func TestTraceparentInAndOut(t *testing.T) {
	cleanEnv(t, nil)
	_, mem := setupMem(t, Options{})
	var gotParent string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotParent = r.Header.Get("traceparent")
	}))
	defer upstream.Close()
	host := httptest.NewServer(instrument(hostMux(upstream.URL)))
	defer host.Close()

	req, _ := http.NewRequest(http.MethodPost, host.URL+"/responses", strings.NewReader("{}"))
	req.Header.Set("traceparent", "00-"+incomingTraceID+"-"+incomingSpanID+"-01")
	req.Header.Set("Authorization", "Bearer dev-alice-token")
	req.Header.Set(ReturnTraceHeader, "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := resp.Header.Get("X-Trace"); got != incomingTraceID {
		t.Errorf("trace id handed back %q, want the incoming %q", got, incomingTraceID)
	}

	spans := mem.GetSpans()
	server := spanNamed(t, spans, "POST /responses")
	predict := spanNamed(t, spans, "predict")
	client := spanNamed(t, spans, "HTTP GET")
	for _, s := range []tracetest.SpanStub{server, predict, client} {
		if s.SpanContext.TraceID().String() != incomingTraceID {
			t.Errorf("%s: trace id %s, want incoming %s", s.Name, s.SpanContext.TraceID(), incomingTraceID)
		}
	}
	if server.Parent.SpanID().String() != incomingSpanID || !server.Parent.IsRemote() || server.SpanKind != trace.SpanKindServer {
		t.Errorf("server span parent %v remote=%v kind=%v", server.Parent.SpanID(), server.Parent.IsRemote(), server.SpanKind)
	}
	if predict.Parent.SpanID() != server.SpanContext.SpanID() || client.Parent.SpanID() != predict.SpanContext.SpanID() {
		t.Error("want server → predict → client span nesting")
	}
	sa := attrsOf(server.Attributes)
	if sa["http.route"] != "/responses" || sa[AttrEndUserID] != "alice-id" || sa[AttrRequestID] != "req-123" || sa["http.response.status_code"] != "200" {
		t.Errorf("server span attributes %v", sa)
	}
	pa := attrsOf(predict.Attributes)
	if pa[AttrEndUserID] != "alice-id" || pa[AttrStream] != "false" {
		t.Errorf("predict attributes %v", pa)
	}
	want := "00-" + incomingTraceID + "-" + client.SpanContext.SpanID().String() + "-01"
	if gotParent != want {
		t.Errorf("outgoing traceparent %q, want %q", gotParent, want)
	}
	telemetrytest.AssertNoSecrets(t, spans, "dev-alice-token")
}

func TestUntracedRoutes(t *testing.T) {
	cleanEnv(t, nil)
	tel, mem := setupMem(t, Options{})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	mux.HandleFunc("GET /health", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(instrument(mux))
	defer srv.Close()
	for _, p := range []string{"/metrics", "/health"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if n := len(mem.GetSpans()); n != 0 {
		t.Errorf("probe routes produced %d spans", n)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := sample(fams, "http_server_active_requests", nil); v != 0 {
		t.Errorf("a scrape counted itself in flight: %v", v)
	}
	if _, ok := sample(fams, "http_server_request_duration_seconds", nil); ok {
		t.Error("probe requests counted in the HTTP metrics")
	}
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample returns the value of the series of family name whose labels include
// want (a histogram's count), and whether one was found.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsAfterMixedLoad(t *testing.T) {
	cleanEnv(t, nil)
	tel, _ := setupMem(t, Options{})
	upstream := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer upstream.Close()
	mux := hostMux(upstream.URL)
	streaming, release := make(chan struct{}), make(chan struct{})
	mux.HandleFunc("POST /stream", func(w http.ResponseWriter, r *http.Request) {
		done := StreamStarted(r.Context())
		defer done()
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(streaming)
		<-release
	})
	srv := httptest.NewServer(instrument(mux))
	defer srv.Close()

	post := func(path string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	for range 5 {
		post("/responses")
	}
	for range 3 {
		post("/bad")
	}
	streamDone := make(chan struct{})
	go func() { defer close(streamDone); post("/stream") }()
	<-streaming

	fams := scrape(t, tel.MetricsHandler())
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"http_server_request_duration_seconds", map[string]string{"http_route": "/responses", "http_response_status_code": "200"}, 5},
		{"http_server_request_duration_seconds", map[string]string{"http_route": "/bad", "http_response_status_code": "400"}, 3},
		{"http_client_request_duration_seconds", map[string]string{"http_request_method": "GET"}, 5},
		{"agentrt_streams_active", nil, 1},
		{"http_server_active_requests", nil, 1}, // the open stream; scrapes are not counted
	}
	for _, c := range checks {
		if got, ok := sample(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}

	close(release)
	<-streamDone
	fams = scrape(t, tel.MetricsHandler())
	for _, name := range []string{"agentrt_streams_active", "http_server_active_requests"} {
		if got, _ := sample(fams, name, nil); got != 0 {
			t.Errorf("%s = %v after the stream ended", name, got)
		}
	}
	if got, _ := sample(fams, "http_server_request_duration_seconds", map[string]string{"http_route": "/stream"}); got != 1 {
		t.Errorf("stream request count %v", got)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}
}

func TestWantsTraceID(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "TRUE": true, " true ": true, "": false, "false": false, "1": false} {
		h := http.Header{}
		h.Set(ReturnTraceHeader, v)
		if WantsTraceID(h) != want {
			t.Errorf("%q: got %v", v, !want)
		}
	}
}

func TestTraceIDWithoutSpan(t *testing.T) {
	if id := TraceID(context.Background()); id != "" {
		t.Errorf("TraceID = %q", id)
	}
}

var _ sdktrace.SpanProcessor = (*ConsoleProcessor)(nil)

// TestStartPredictWithoutExporter: with no exporter Setup samples no span,
// so StartPredict builds none (the agent call runs under the server span,
// with its trace id); with a span processor the predict span is recorded
// as a child of the server span.
func TestStartPredictWithoutExporter(t *testing.T) {
	cleanEnv(t, nil)
	predict := func() (server, child trace.SpanContext, recording bool) {
		r := httptest.NewRequest(http.MethodPost, "/responses", nil)
		ctx, q := NewServer().Start(agent.NewContext(r.Context(), &agent.Env{}), r, "/responses")
		defer q.End(200)
		pctx, span := StartPredict(ctx, false, nil)
		defer span.End()
		return trace.SpanContextFromContext(ctx), trace.SpanContextFromContext(pctx), span.IsRecording()
	}

	tel, err := Setup(context.Background(), Options{Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	srv, child, rec := predict()
	_ = tel.Shutdown(context.Background())
	if !srv.IsValid() || !child.Equal(srv) || rec {
		t.Errorf("no exporter: server %v, predict %v (recording %v); want the server span's context, unrecorded", srv, child, rec)
	}

	_, mem := setupMem(t, Options{})
	srv, child, rec = predict()
	if !rec || child.TraceID() != srv.TraceID() || child.SpanID() == srv.SpanID() {
		t.Errorf("with a processor: server %v, predict %v (recording %v)", srv, child, rec)
	}
	if names := spanNames(mem.GetSpans()); !slices.Contains(names, "predict") {
		t.Errorf("spans %v, want predict", names)
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

// TestServerIDsWithoutExporter: with no exporter the server records no span
// but gives each request the ids one would have had: the caller's trace
// (from traceparent) with a span id of its own, unsampled, or a new trace.
func TestServerIDsWithoutExporter(t *testing.T) {
	cleanEnv(t, nil)
	tel, err := Setup(context.Background(), Options{Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	srv := NewServer()
	start := func(traceparent string) trace.SpanContext {
		r := httptest.NewRequest(http.MethodPost, "/responses", nil)
		if traceparent != "" {
			r.Header.Set("traceparent", traceparent)
		}
		ctx, q := srv.Start(agent.NewContext(r.Context(), &agent.Env{}), r, "/responses")
		defer q.End(200)
		if trace.SpanFromContext(ctx).IsRecording() {
			t.Error("a span is recorded with no exporter")
		}
		return trace.SpanContextFromContext(ctx)
	}
	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	sc := start(caller)
	if sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || sc.SpanID().String() == "b7ad6b7169203331" ||
		!sc.SpanID().IsValid() || sc.IsSampled() || sc.IsRemote() {
		t.Errorf("continuing %s: got trace %s span %s sampled %v", caller, sc.TraceID(), sc.SpanID(), sc.IsSampled())
	}
	a, b := start(""), start("")
	if !a.TraceID().IsValid() || !a.SpanID().IsValid() || a.TraceID() == b.TraceID() || a.IsSampled() {
		t.Errorf("new traces: %v and %v", a, b)
	}
}

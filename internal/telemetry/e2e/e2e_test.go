// Package e2e_test proves agentrt's observability end to end on the real
// host: one trace per request, propagation in and out, the trace id handed
// back, /metrics after a mixed load, and logs that carry request and trace
// ids. It lives apart from internal/telemetry because it imports the host.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/syncbuf"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/telemetry/telemetrytest"
)

// One telemetry setup per test binary: libraries bind their instruments to
// the first global meter provider, so a second Setup would split metrics.
var (
	tel     *telemetry.Telemetry
	mem     = tracetest.NewInMemoryExporter()
	console = &syncbuf.Buffer{} // the dev span tree, as `serve --dev` prints it
	// defaultLog receives slog.Default's lines (libraries log there), as
	// runtime/cli installs telemetry.NewLogger as the default.
	defaultLog = &syncbuf.Buffer{}
)

func TestMain(m *testing.M) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_SDK_DISABLED",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
		_ = os.Unsetenv(k)
	}
	var err error
	tel, err = telemetry.Setup(context.Background(), telemetry.Options{
		ServiceName:    "agentrt-e2e",
		RecordPayloads: false,
		Getenv:         func(string) string { return "" },
		SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(mem), telemetry.NewConsoleProcessor(console)},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slog.SetDefault(telemetry.NewLogger(telemetry.LogOptions{Writer: defaultLog}))
	code := m.Run()
	_ = tel.Shutdown(context.Background())
	os.Exit(code)
}

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
	traceparent     = "00-" + incomingTraceID + "-" + incomingSpanID + "-01"
)

// devSecrets are every credential the dev setup hands out; none may reach a span.
var devSecrets = []string{"dev-alice-token", "dev-bob-token", "dev-carol-token", "agent-sp-secret"}

// callerAgent calls upstream through the instrumented transport with the
// request's ctx, and logs through log, so that a trace has an outgoing call
// and a log line to correlate.
type callerAgent struct {
	upstream string
	client   *http.Client
	log      *slog.Logger
}

func (a *callerAgent) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, a.upstream, nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "Bearer dev-alice-token") // must not show up in any span
	resp, err := a.client.Do(r)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	a.log.InfoContext(ctx, "upstream answered", "status", resp.StatusCode)
	return &agent.Response{Output: []agent.Item{agent.TextItem(agent.NewID("msg"), "upstream said "+string(body))}}, nil
}

// startHost serves opts on a loopback server built the way cmd/serve builds it.
func startHost(t *testing.T, opts server.Options) *httptest.Server {
	t.Helper()
	opts.Telemetry = tel
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Serve would run the agent's lifecycle; serving Handler, we do.
	if err := h.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv
}

type post struct {
	path    string
	body    string
	headers map[string]string
}

func do(t *testing.T, srv *httptest.Server, p post) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+p.path, strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func attrs(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func byName(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func one(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	got := byName(spans, name)
	if len(got) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("want one %q span, got %d among %v", name, len(got), names)
	}
	return got[0]
}

func TestTraceTreeAndPropagation(t *testing.T) {
	mem.Reset()
	var gotTraceparent string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = r.Header.Get("traceparent")
		_, _ = io.WriteString(w, "hi")
	}))
	defer upstream.Close()
	var logs syncbuf.Buffer
	a := &callerAgent{upstream: upstream.URL, client: &http.Client{Transport: telemetry.Transport(nil)},
		log: telemetry.NewLogger(telemetry.LogOptions{Writer: &logs})}
	srv := startHost(t, server.Options{Agent: a, AgentName: "caller"})

	resp, body := do(t, srv, post{path: "/responses", body: `{"input":"hello"}`, headers: map[string]string{
		"traceparent":               traceparent,
		telemetry.ReturnTraceHeader: "true",
		"Authorization":             "Bearer dev-bob-token",
	}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.Metadata["trace_id"]; got != "tr-"+incomingTraceID {
		t.Errorf("metadata.trace_id = %q, want tr-%s", got, incomingTraceID)
	}

	spans := mem.GetSpans()
	server := one(t, spans, "POST /responses")
	predict := one(t, spans, "predict")
	client := one(t, spans, "HTTP GET")
	for _, s := range []tracetest.SpanStub{server, predict, client} {
		if s.SpanContext.TraceID().String() != incomingTraceID {
			t.Errorf("%s is in trace %s, want the caller's %s", s.Name, s.SpanContext.TraceID(), incomingTraceID)
		}
	}
	if server.Parent.SpanID().String() != incomingSpanID || !server.Parent.IsRemote() {
		t.Errorf("server span parent %s, want the caller's %s", server.Parent.SpanID(), incomingSpanID)
	}
	if predict.Parent.SpanID() != server.SpanContext.SpanID() || client.Parent.SpanID() != predict.SpanContext.SpanID() {
		t.Error("want server → predict → outgoing HTTP")
	}
	reqID := resp.Header.Get("X-Request-Id")
	sa, pa := attrs(server), attrs(predict)
	if sa["http.route"] != "/responses" || sa["http.response.status_code"] != "200" || sa[telemetry.AttrRequestID] != reqID ||
		sa["http.request.method"] != "POST" || sa["url.path"] != "/responses" || sa["url.scheme"] != "http" || sa["user_agent.original"] == "" {
		t.Errorf("server span attributes %v (request id %q)", sa, reqID)
	}
	if len(sa) > 8 {
		t.Errorf("server span has %d attributes, want at most 8 (cost): %v", len(sa), sa)
	}
	if pa[telemetry.AttrStream] != "false" {
		t.Errorf("predict attributes %v", pa)
	}
	if _, ok := pa[telemetry.AttrInput]; ok {
		t.Error("input recorded although payload recording is off")
	}
	if want := "00-" + incomingTraceID + "-" + client.SpanContext.SpanID().String() + "-01"; gotTraceparent != want {
		t.Errorf("upstream got traceparent %q, want %q", gotTraceparent, want)
	}
	telemetrytest.AssertNoSecrets(t, spans, append(devSecrets, "Bearer")...)

	// The agent's log line carries the request and trace ids.
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line["request_id"] != reqID || line["trace_id"] != incomingTraceID {
		t.Errorf("log line %v, want request_id %s and trace_id %s", line, reqID, incomingTraceID)
	}
}

func TestNewTraceWithoutTraceparent(t *testing.T) {
	mem.Reset()
	srv := startHost(t, server.Options{Agent: echo.Agent{}, AgentName: "echo"})
	resp, body := do(t, srv, post{path: "/invocations", body: `{"input":[{"role":"user","content":"hi"}]}`,
		headers: map[string]string{telemetry.ReturnTraceHeader: "true"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	server := one(t, mem.GetSpans(), "POST /invocations")
	if server.Parent.IsValid() {
		t.Errorf("server span has parent %s without a traceparent", server.Parent.SpanID())
	}
	if !bytes.Contains(body, []byte(`"trace_id":"tr-`+server.SpanContext.TraceID().String()+`"`)) {
		t.Errorf("body %s lacks the trace id %s", body, server.SpanContext.TraceID())
	}
	// Without the header, no trace id is added.
	_, body = do(t, srv, post{path: "/invocations", body: `{"input":[{"role":"user","content":"hi"}]}`})
	if bytes.Contains(body, []byte("trace_id")) {
		t.Errorf("trace id returned unasked: %s", body)
	}
}

// sseData returns the data payloads of an SSE body, in order.
func sseData(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestStreamReturnsTraceID(t *testing.T) {
	mem.Reset()
	srv := startHost(t, server.Options{Agent: echo.Agent{}, AgentName: "echo"})
	for _, ask := range []bool{true, false} {
		h := map[string]string{"traceparent": traceparent}
		if ask {
			h[telemetry.ReturnTraceHeader] = "true"
		}
		resp, body := do(t, srv, post{path: "/responses", body: `{"input":"one two","stream":true}`, headers: h})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		frames := sseData(t, body)
		if len(frames) < 3 || frames[len(frames)-1] != "[DONE]" {
			t.Fatalf("frames %q", frames)
		}
		last := frames[len(frames)-2]
		want := `{"trace_id":"tr-` + incomingTraceID + `"}`
		if ask && last != want {
			t.Errorf("frame before [DONE] = %s, want %s", last, want)
		}
		if !ask && strings.Contains(string(body), "trace_id") {
			t.Errorf("trace id sent unasked: %s", last)
		}
	}
	pa := attrs(byName(mem.GetSpans(), "predict")[0])
	if pa[telemetry.AttrStream] != "true" {
		t.Errorf("predict attributes %v", pa)
	}
}

func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeURL(t, srv.URL+"/metrics")
}

func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value sums the series of name whose labels include want (histograms count
// their samples).
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

func TestMetricsAfterMixedLoad(t *testing.T) {
	srv := startHost(t, server.Options{Agent: echo.Agent{}, AgentName: "echo"})
	before := scrape(t, srv)
	route := func(r, code string) map[string]string {
		return map[string]string{"http_route": r, "http_response_status_code": code}
	}
	base := func(name string, l map[string]string) float64 {
		if v := value(before, name, l); v > 0 {
			return v
		}
		return 0
	}
	const dur = "http_server_request_duration_seconds"
	b200, b400, bStream := base(dur, route("/responses", "200")), base(dur, route("/responses", "400")), base(dur, route("/v1/responses", "200"))

	var wg sync.WaitGroup
	for range 7 {
		wg.Go(func() { do(t, srv, post{path: "/responses", body: `{"input":"hi"}`}) })
	}
	for range 4 {
		wg.Go(func() { do(t, srv, post{path: "/responses", body: `{"input":`}) }) // truncated JSON: 400
	}
	for range 2 {
		wg.Go(func() { do(t, srv, post{path: "/v1/responses", body: `{"input":"a b c","stream":true}`}) })
	}
	wg.Wait()

	after := scrape(t, srv)
	checks := []struct {
		what string
		got  float64
		want float64
	}{
		{"200s on /responses", value(after, dur, route("/responses", "200")) - b200, 7},
		{"400s on /responses", value(after, dur, route("/responses", "400")) - b400, 4},
		{"streams on /v1/responses", value(after, dur, route("/v1/responses", "200")) - bStream, 2},
		{"streams still open", value(after, "agentrt_streams_active", nil), 0},
		{"requests in flight", value(after, "http_server_active_requests", nil), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	// Latency histograms have buckets and a plausible sum.
	f := after[dur]
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		if len(h.GetBucket()) == 0 || h.GetSampleSum() < 0 || h.GetSampleSum() > 60*float64(h.GetSampleCount()) {
			t.Errorf("implausible histogram %v", m)
		}
	}
	if _, ok := after["target_info"]; !ok {
		t.Error("no target_info (resource) series")
	}
}

type panicAgent struct{}

func (panicAgent) Predict(context.Context, *agent.Request) (*agent.Response, error) {
	panic("agent bug")
}

// TestFailedRequestSpans: a request that no route matches and one whose
// agent panics still get one server span each, with the id the response
// carries; the 500 marks the span failed.
func TestFailedRequestSpans(t *testing.T) {
	mem.Reset()
	srv := startHost(t, server.Options{Agent: panicAgent{}, AgentName: "panics"})

	resp, _ := do(t, srv, post{path: "/nowhere", body: `{}`})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	notFound := one(t, mem.GetSpans(), "POST")
	na := attrs(notFound)
	if na["url.path"] != "/nowhere" || na["http.response.status_code"] != "404" || na["http.route"] != "" ||
		na[telemetry.AttrRequestID] != resp.Header.Get("X-Request-Id") || notFound.Status.Code == codes.Error {
		t.Errorf("404 span %v status %v (X-Request-Id %q)", na, notFound.Status, resp.Header.Get("X-Request-Id"))
	}

	mem.Reset()
	resp, _ = do(t, srv, post{path: "/responses", body: `{"input":"hi"}`})
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	failed := one(t, mem.GetSpans(), "POST /responses")
	fa := attrs(failed)
	if fa["http.response.status_code"] != "500" || fa["error.type"] != "500" || failed.Status.Code != codes.Error ||
		fa[telemetry.AttrRequestID] != resp.Header.Get("X-Request-Id") {
		t.Errorf("500 span %v status %v", fa, failed.Status)
	}
}

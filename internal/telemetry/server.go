package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/agentrt/agentrt/agent"
)

// Server instruments the requests of an HTTP server whose router has matched
// the route before the handler runs (gin does): one server span per request,
// continuing an incoming W3C traceparent, and the semantic-convention
// metrics http.server.request.duration and http.server.active_requests.
// /metrics, /health, /ready and /ping are neither traced nor counted.
//
// It takes the place of otelhttp's server handler, which cost the host more
// than twice as much per request: everything that depends only on the
// method and the route (span name, attributes, metric attribute sets) is
// built once and reused, and the span carries the attributes a reader needs
// and no more (see BENCHMARKS.md). Outgoing calls still go through otelhttp
// (Transport).
//
// A nil *Server does nothing, so callers need no checks when telemetry is off.
type Server struct {
	tracer   trace.Tracer
	idsOnly  bool // the tracer records nothing (Setup without an exporter)
	prop     propagation.TextMapPropagator
	duration metric.Float64Histogram
	routes   smallMap[routeKey, *route]
}

// NewServer builds the instrumentation from the installed OpenTelemetry
// globals; call it after Setup. With OTEL_SDK_DISABLED it returns nil.
func NewServer() *Server {
	tp, mp := otel.GetTracerProvider(), otel.GetMeterProvider()
	_, noTraces := tp.(tracenoop.TracerProvider)
	_, noMetrics := mp.(metricnoop.MeterProvider)
	if noTraces && noMetrics {
		return nil
	}
	m := mp.Meter(ScopeName)
	s := &Server{tracer: tp.Tracer(ScopeName), prop: otel.GetTextMapPropagator()}
	if sdk, ok := tp.(*sdktrace.TracerProvider); ok && sdk == unrecorded.Load() {
		s.idsOnly = true
	}
	// Errors mean an invalid name or option, a programming error; the SDK
	// still returns a usable instrument.
	s.duration, _ = m.Float64Histogram(httpconv.ServerRequestDuration{}.Name(),
		metric.WithDescription(httpconv.ServerRequestDuration{}.Description()),
		metric.WithUnit(httpconv.ServerRequestDuration{}.Unit()),
		// The semantic conventions' buckets stop at 10 s; agent requests
		// that call models and tools often take longer.
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
			1, 2.5, 5, 7.5, 10, 20, 30, 60, 120, 300))
	// Requests in flight are counted by the route (an atomic add) and
	// reported at collection: two synchronous adds cost each request
	// about 0.9 µs of the SDK's attribute handling under load.
	_, _ = m.Int64ObservableUpDownCounter(httpconv.ServerActiveRequests{}.Name(),
		metric.WithDescription(httpconv.ServerActiveRequests{}.Description()),
		metric.WithUnit(httpconv.ServerActiveRequests{}.Unit()),
		metric.WithInt64Callback(s.observeActive))
	return s
}

// Request is one instrumented request; End it when the response is done.
// The zero Request (from a nil Server or an untraced route) ends as a no-op.
type Request struct {
	s     *Server
	rt    *route
	r     *http.Request
	env   *agent.Env
	ctx   context.Context
	span  trace.Span
	start time.Time
}

// Start begins instrumenting r, served with ctx (r's context or one derived
// from it). route is the matched route template, "" when none matched. The
// request id and the caller's principal come from agent.FromContext(ctx) when
// the request ends, so the server span carries both. The returned context
// carries the server span: serve the request with it.
func (s *Server) Start(ctx context.Context, r *http.Request, route string) (context.Context, Request) {
	if s == nil {
		return ctx, Request{}
	}
	rt := s.route(r.Method, route, r.TLS != nil)
	if rt.skip {
		return ctx, Request{}
	}
	q := Request{s: s, rt: rt, r: r, env: agent.FromContext(ctx), start: time.Now()}
	rt.active.Add(1)
	ctx = s.prop.Extract(ctx, headerCarrier(r.Header))
	if s.idsOnly {
		ctx = withIDs(ctx)
		q.span = trace.SpanFromContext(ctx)
	} else {
		ctx, q.span = s.tracer.Start(ctx, rt.name, serverKind)
	}
	q.ctx = ctx
	return ctx, q
}

// withIDs gives the request what an unsampled server span would have
// given it, without the SDK's span machinery (three allocations and a
// locked ID generator per request): its own span id, in the caller's
// trace or a new one, for logs, MLflow's trace id and outgoing
// traceparent headers, which stay unsampled.
func withIDs(ctx context.Context) context.Context {
	psc := trace.SpanContextFromContext(ctx)
	cfg := trace.SpanContextConfig{TraceID: psc.TraceID(), TraceState: psc.TraceState(),
		TraceFlags: psc.TraceFlags() &^ trace.FlagsSampled}
	for !cfg.TraceID.IsValid() {
		binary.LittleEndian.PutUint64(cfg.TraceID[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(cfg.TraceID[8:], rand.Uint64())
	}
	for !cfg.SpanID.IsValid() {
		binary.LittleEndian.PutUint64(cfg.SpanID[:], rand.Uint64())
	}
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
}

var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// headerCarrier is propagation.HeaderCarrier without its per-request
// allocations: the propagators ask for lower-case keys ("traceparent",
// "baggage"), which http.Header.Get must canonicalize into a new string on
// every call. The W3C keys are mapped to their canonical form here.
type headerCarrier http.Header

func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

func (hc headerCarrier) Get(key string) string {
	if v := hc[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (hc headerCarrier) Values(key string) []string { return hc[canonicalKey(key)] }

func (hc headerCarrier) Set(key, value string) { http.Header(hc).Set(key, value) }

func (hc headerCarrier) Keys() []string { return propagation.HeaderCarrier(hc).Keys() }

// End records the response status on the span and the metrics and ends the
// span. Statuses of 500 and up mark the span as failed, as the HTTP semantic
// conventions ask of server spans.
func (q Request) End(status int) {
	if q.rt == nil {
		return
	}
	if q.span.IsRecording() {
		q.setAttributes(status)
	}
	q.span.End()
	// The context still holds the span: a sampled one becomes the exemplar.
	q.s.duration.Record(q.ctx, time.Since(q.start).Seconds(), q.rt.durationOpts(status)...)
	q.rt.active.Add(-1)
}

// setAttributes gives the span all its attributes in one call, at the end.
// The SDK copies them into a slice sized by the first call and regrows it on
// each later call that does not fit, so one call is cheapest; and the
// samplers OTEL_TRACES_SAMPLER offers do not look at start attributes. There
// are at most eight outside errors: beyond eight entries the cost of the
// SDK's deduplication map jumps (a ninth attribute adds ~0.8 µs to a span).
func (q Request) setAttributes(status int) {
	buf := attrPool.Get().(*[]attribute.KeyValue)
	kv := append((*buf)[:0], q.rt.attrs...) // method, scheme, route
	kv = append(kv, semconv.URLPath(q.r.URL.Path), semconv.HTTPResponseStatusCode(status))
	if q.r.Method != q.rt.method {
		kv = append(kv, semconv.HTTPRequestMethodOriginal(q.r.Method))
	}
	if ua := q.r.Header.Get("User-Agent"); ua != "" {
		kv = append(kv, semconv.UserAgentOriginal(ua))
	}
	if id := q.env.RequestID; id != "" {
		kv = append(kv, attribute.String(AttrRequestID, id))
	}
	if user := q.env.Caller.PrincipalID; user != "" {
		kv = append(kv, attribute.String(AttrEndUserID, user))
	}
	if status >= 500 {
		text := strconv.Itoa(status)
		kv = append(kv, semconv.ErrorTypeKey.String(text))
		q.span.SetStatus(codes.Error, "HTTP "+text)
	}
	q.span.SetAttributes(kv...) // copies kv
	clear(kv)
	*buf = kv[:0]
	attrPool.Put(buf)
}

var attrPool = sync.Pool{New: func() any { s := make([]attribute.KeyValue, 0, 10); return &s }}

// untraced are probe and scrape routes: tracing them would bury requests.
var untraced = map[string]bool{"/metrics": true, "/health": true, "/ping": true, "/ready": true}

type routeKey struct {
	method, route string
	tls           bool
}

// route is what every request to one method and route template shares.
type route struct {
	skip      bool
	method    string // normalized: a known method or "_OTHER"
	name      string
	attrs     []attribute.KeyValue                 // method, scheme, route
	activeSet attribute.Set                        // method, scheme: the conventions' attributes of active requests
	active    atomic.Int64                         // requests in flight
	durations smallMap[int, []metric.RecordOption] // by status code
}

// observeActive reports the requests in flight, summed over the routes that
// share an attribute set (active requests carry no route).
func (s *Server) observeActive(_ context.Context, o metric.Int64Observer) error {
	m := s.routes.m.Load()
	if m == nil {
		return nil
	}
	sums := make(map[attribute.Distinct]int64)
	sets := make(map[attribute.Distinct]attribute.Set)
	for _, rt := range *m {
		if rt.skip {
			continue
		}
		k := rt.activeSet.Equivalent()
		sums[k] += rt.active.Load()
		sets[k] = rt.activeSet
	}
	for k, n := range sums {
		o.Observe(n, metric.WithAttributeSet(sets[k]))
	}
	return nil
}

func (s *Server) route(method, tmpl string, tls bool) *route {
	method = knownMethod(method)
	return s.routes.get(routeKey{method, tmpl, tls}, func() *route {
		rt := &route{skip: untraced[tmpl], method: method, name: method}
		if method == "_OTHER" {
			rt.name = "HTTP" // the conventions' span name for unknown methods
		}
		scheme := "http"
		if tls {
			scheme = "https"
		}
		rt.attrs = []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(method), semconv.URLScheme(scheme)}
		if tmpl != "" {
			rt.name += " " + tmpl
			rt.attrs = append(rt.attrs, semconv.HTTPRoute(tmpl))
		}
		rt.activeSet = attribute.NewSet(rt.attrs[:2]...)
		return rt
	})
}

// durationOpts returns the cached attribute set of the duration histogram
// for status.
func (rt *route) durationOpts(status int) []metric.RecordOption {
	return rt.durations.get(status, func() []metric.RecordOption {
		kv := append(rt.attrs[:len(rt.attrs):len(rt.attrs)], semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			kv = append(kv, semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		}
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	})
}

// knownMethod returns m if it is one of the methods the HTTP semantic
// conventions name, else "_OTHER": clients choose the method, and the
// caches and metric series keyed by it must stay bounded.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead,
		http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace, "QUERY":
		return m
	}
	return "_OTHER"
}

// smallMap is a map for a small key set that every request reads and that
// grows by a key only the first time it is seen: a read is a plain map
// lookup without a lock, a write copies the map.
type smallMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

func (c *smallMap[K, V]) get(k K, build func() V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1)
	if old != nil {
		next = make(map[K]V, len(*old)+1)
		for ok, ov := range *old {
			next[ok] = ov
		}
	}
	v := build()
	next[k] = v
	c.m.Store(&next)
	return v
}

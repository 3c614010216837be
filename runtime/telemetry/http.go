package telemetry

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/agentrt/agentrt/agent"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Attribute keys agentrt adds to spans (the rest are semantic conventions).
const (
	AttrRequestID    = "agentrt.request_id"
	AttrEndUserID    = "enduser.id" // the caller's stable principal id, never a token
	AttrStream       = "agentrt.stream"
	AttrToolsCount   = "agentrt.tools.count"
	AttrSkippedCount = "agentrt.tools.skipped"
	AttrInput        = "agentrt.request.input" // only with payload recording
)

// ReturnTraceHeader is MLflow's request header asking for the trace id in the
// response (metadata.trace_id, or a final {"trace_id": …} stream frame).
const ReturnTraceHeader = "x-mlflow-return-trace-id"

// untraced are probe and scrape routes: tracing them would bury requests.
var untraced = map[string]bool{"/metrics": true, "/health": true, "/ping": true, "/ready": true}

func traced(r *http.Request) bool { return !untraced[r.URL.Path] }

// Handler wraps the host's HTTP handler with the OpenTelemetry server
// instrumentation (otelhttp): a server span per request continuing an
// incoming W3C traceparent, the http.server.* metrics, and
// agentrt.requests.inflight. /metrics, /health, /ready and /ping are not traced.
// Build it after Setup; with OTEL_SDK_DISABLED it returns next unchanged.
func Handler(next http.Handler) http.Handler {
	_, noTraces := otel.GetTracerProvider().(tracenoop.TracerProvider)
	_, noMetrics := otel.GetMeterProvider().(metricnoop.MeterProvider)
	if noTraces && noMetrics {
		return next // OTEL_SDK_DISABLED: not even the wrappers' allocations
	}
	inflight := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !traced(r) { // otelhttp passes filtered requests through to us
			next.ServeHTTP(w, r)
			return
		}
		in := instruments().inflight
		in.Add(r.Context(), 1)
		defer in.Add(context.WithoutCancel(r.Context()), -1)
		next.ServeHTTP(w, r)
	})
	return otelhttp.NewHandler(inflight, "agentrt", otelhttp.WithFilter(traced))
}

// SetRoute names the request's server span and metrics after the matched
// route template (e.g. "/responses"); routers call it once they know the
// route. With gin: engine.Use(func(c *gin.Context) { telemetry.SetRoute(c.Request, c.FullPath()); c.Next() }).
func SetRoute(r *http.Request, route string) {
	if route == "" {
		return
	}
	ctx := r.Context()
	if l, ok := otelhttp.LabelerFromContext(ctx); ok {
		l.Add(semconv.HTTPRoute(route))
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route))
	}
}

// Transport returns base (http.DefaultTransport when nil) wrapped with the
// otelhttp client instrumentation: a client span per call, the
// http.client.* metrics, and the traceparent header on every outgoing
// request. Use it for databricks Config.HTTPTransport, the MCP client and the
// OpenAI client.
func Transport(base http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(base)
}

// StartPredict starts the "predict" span around the agent call. It records
// the request id and caller principal (from agent.EnvFrom(ctx)) on the
// predict span and on the enclosing server span, and input when payload
// recording is on. End it with End.
func StartPredict(ctx context.Context, stream bool, input any) (context.Context, trace.Span) {
	server := trace.SpanFromContext(ctx)
	if !server.IsRecording() && !server.SpanContext().IsValid() {
		if _, noop := otel.GetTracerProvider().(tracenoop.TracerProvider); noop {
			return ctx, server // tracing disabled: no attributes to build
		}
	}
	env := agent.EnvFrom(ctx)
	// All attributes go in at start: SetAttributes later regrows the span's slice.
	attrs := make([]attribute.KeyValue, 0, 6)
	if env.RequestID != "" {
		attrs = append(attrs, attribute.String(AttrRequestID, env.RequestID))
	}
	if env.Caller.PrincipalID != "" {
		attrs = append(attrs, attribute.String(AttrEndUserID, env.Caller.PrincipalID))
	}
	if server.IsRecording() {
		server.SetAttributes(attrs...)
	}
	attrs = append(attrs,
		attribute.Bool(AttrStream, stream),
		attribute.Int(AttrToolsCount, len(env.Tools)),
		attribute.Int(AttrSkippedCount, len(env.Skipped)),
	)
	ctx, span := tracer().Start(ctx, "predict", trace.WithAttributes(attrs...))
	if input != nil && span.IsRecording() {
		RecordPayload(span, AttrInput, input)
	}
	return ctx, span
}

// maxPayload bounds a recorded payload attribute; exporters and backends
// reject or truncate huge attributes anyway.
const maxPayload = 8 << 10

// PayloadsEnabled reports whether the installed telemetry records request
// and tool arguments.
func PayloadsEnabled() bool { return payloadsEnabled.Load() }

// RecordPayload sets key to v as JSON (or v itself if it is a string), at
// most 8 KiB, when payload recording is on; otherwise it does nothing.
func RecordPayload(span trace.Span, key string, v any) {
	if !payloadsEnabled.Load() || !span.IsRecording() {
		return
	}
	s, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		s = string(b)
	}
	if len(s) > maxPayload {
		s = s[:maxPayload] + "…"
	}
	span.SetAttributes(attribute.String(key, s))
}

// End records err (if any) as the span's error status and ends the span.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// RecordError marks the span in ctx as failed with err (no-op for nil).
func RecordError(ctx context.Context, err error) {
	if err == nil {
		return
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// StreamStarted counts an open SSE stream in agentrt.streams.active until
// the returned func is called.
func StreamStarted(ctx context.Context) (done func()) {
	s := instruments().streams
	s.Add(ctx, 1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			s.Add(context.WithoutCancel(ctx), -1)
		}
	}
}

// TraceID returns the hex trace id of the span in ctx, or "" without one.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// MLflowTraceID returns the trace id of ctx in MLflow's form, "tr-" followed
// by the 32 hex digits of the W3C trace id (how MLflow names traces it
// ingests over OTLP), or "" without a span.
func MLflowTraceID(ctx context.Context) string {
	if id := TraceID(ctx); id != "" {
		return "tr-" + id
	}
	return ""
}

// WantsTraceID reports whether the request asked for its trace id back
// (header x-mlflow-return-trace-id: true).
func WantsTraceID(h http.Header) bool {
	return strings.EqualFold(strings.TrimSpace(h.Get(ReturnTraceHeader)), "true")
}

// The globals can be replaced (tests call Setup repeatedly), so tracer and
// instruments are cached per provider rather than once per process.
type hostInstruments struct {
	mp       metric.MeterProvider
	inflight metric.Int64UpDownCounter
	streams  metric.Int64UpDownCounter
}

type cachedTracer struct {
	tp trace.TracerProvider
	t  trace.Tracer
}

var (
	instrCache  atomic.Pointer[hostInstruments]
	tracerCache atomic.Pointer[cachedTracer]
)

func tracer() trace.Tracer {
	tp := otel.GetTracerProvider()
	if c := tracerCache.Load(); c != nil && c.tp == tp {
		return c.t
	}
	c := &cachedTracer{tp: tp, t: tp.Tracer(ScopeName)}
	tracerCache.Store(c)
	return c.t
}

func instruments() *hostInstruments {
	mp := otel.GetMeterProvider()
	if i := instrCache.Load(); i != nil && i.mp == mp {
		return i
	}
	m := mp.Meter(ScopeName)
	i := &hostInstruments{mp: mp}
	// Errors here mean an invalid name, a programming error; the SDK still
	// returns a usable no-op instrument.
	i.inflight, _ = m.Int64UpDownCounter("agentrt.requests.inflight",
		metric.WithDescription("HTTP requests being served."), metric.WithUnit("{request}"))
	i.streams, _ = m.Int64UpDownCounter("agentrt.streams.active",
		metric.WithDescription("SSE response streams open."), metric.WithUnit("{stream}"))
	instrCache.Store(i)
	return i
}

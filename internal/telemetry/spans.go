package telemetry

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/agentrt/agentrt/agent"
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

const returnTraceKey = "X-Mlflow-Return-Trace-Id" // textproto.CanonicalMIMEHeaderKey(ReturnTraceHeader)

// Transport returns base (http.DefaultTransport when nil) wrapped with the
// otelhttp client instrumentation: a client span per call, the
// http.client.* metrics, and the traceparent header on every outgoing
// request. Use it for databricks Config.HTTPTransport, the MCP client and the
// OpenAI client.
func Transport(base http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(base)
}

// StartPredict starts the "predict" span around the agent call, with the
// caller's principal (from agent.FromContext(ctx)) and the input when payload
// recording is on. End it with End.
func StartPredict(ctx context.Context, stream bool, input any) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		switch tp := otel.GetTracerProvider().(type) {
		case tracenoop.TracerProvider:
			if !parent.SpanContext().IsValid() {
				return ctx, parent // tracing disabled: nothing to build
			}
		case *sdktrace.TracerProvider:
			// Setup's provider when no exporter is configured samples no
			// span: a predict span would only be a new span id under the
			// server span, recorded nowhere. The trace id (logs, MLflow's
			// trace id, outgoing traceparent) is the server span's either way.
			if tp == unrecorded.Load() {
				return ctx, parent
			}
		}
	}
	ctx, span := tracer().Start(ctx, "predict")
	if !span.IsRecording() {
		return ctx, span
	}
	// One SetAttributes call: each call that outgrows the span's slice
	// copies it. The request id is on the server span, the parent.
	env := agent.FromContext(ctx)
	kv := make([]attribute.KeyValue, 0, 4)
	if id := env.Caller.PrincipalID; id != "" {
		kv = append(kv, attribute.String(AttrEndUserID, id))
	}
	kv = append(kv, attribute.Bool(AttrStream, stream),
		attribute.Int(AttrToolsCount, len(env.Tools)), attribute.Int(AttrSkippedCount, len(env.Skipped)))
	span.SetAttributes(kv...)
	if input != nil {
		RecordPayload(span, AttrInput, input)
	}
	return ctx, span
}

// unrecorded is the tracer provider Setup installed because nothing would
// receive a span: it samples none (NeverSample, set at construction).
var unrecorded atomic.Pointer[sdktrace.TracerProvider]

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
	// By its canonical key: Get would canonicalize ReturnTraceHeader into a
	// new string on every request.
	v := h[returnTraceKey]
	return len(v) > 0 && strings.EqualFold(strings.TrimSpace(v[0]), "true")
}

// The globals can be replaced (tests call Setup repeatedly), so tracer and
// instruments are cached per provider rather than once per process.
type hostInstruments struct {
	mp      metric.MeterProvider
	streams metric.Int64UpDownCounter
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
	i.streams, _ = m.Int64UpDownCounter("agentrt.streams.active",
		metric.WithDescription("SSE response streams open."), metric.WithUnit("{stream}"))
	instrCache.Store(i)
	return i
}

// Package telemetry installs agentrt's OpenTelemetry tracer and meter
// providers from the standard OTEL_* variables (read through
// Options.Getenv, which runtime/cli sets), and instruments the host:
// HTTP server spans and metrics, the predict span, outgoing HTTP transports,
// a Prometheus /metrics handler, a dev-mode console span tree and slog
// handlers that stamp every request's log lines with its request and trace id.
//
// Libraries (identity, credentials, tools) never import this package: they
// use the global OpenTelemetry API (otel.Tracer, otel.Meter), and Setup makes
// those globals real.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the spans and instruments this
// package creates.
const ScopeName = "github.com/agentrt/agentrt/internal/telemetry"

// EnvTracePayloads names the variable that turns on recording of request and
// tool arguments in spans (any value strconv.ParseBool accepts).
const EnvTracePayloads = "AGENTRT_TRACE_PAYLOADS"

// Options configures Setup. The zero value exports nothing but /metrics:
// configuration comes only through Getenv.
type Options struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME (or service.name
	// in OTEL_RESOURCE_ATTRIBUTES) overrides it. Default "agentrt".
	ServiceName    string
	ServiceVersion string

	// Dev prints a compact span tree per request to ConsoleWriter when
	// OTEL_TRACES_EXPORTER is unset.
	Dev bool
	// ConsoleWriter receives the dev span tree. Default os.Stderr.
	ConsoleWriter io.Writer

	// RecordPayloads records request input and tool arguments in spans.
	// AGENTRT_TRACE_PAYLOADS=true turns it on too.
	RecordPayloads bool

	// Getenv reads the OTEL_* variables and AGENTRT_TRACE_PAYLOADS
	// (runtime/cli passes os.Getenv); nil reads nothing, as if none were
	// set. Getenv decides whether an exporter is used and which; the
	// exporter it selects is built by the OpenTelemetry contrib autoexport
	// package, which reads its own settings (endpoint, headers, protocol,
	// OTEL_BSP_*) from the process environment, so Getenv should see that
	// environment.
	Getenv func(string) string

	// Logger receives OpenTelemetry's own errors (a failed export, a bad
	// attribute). Default slog.Default().
	Logger *slog.Logger

	// SpanProcessors are added to the tracer provider after the configured
	// exporter (tests pass an in-memory exporter here).
	SpanProcessors []sdktrace.SpanProcessor
	// MetricReaders are added to the meter provider next to Prometheus.
	MetricReaders []sdkmetric.Reader
}

// Telemetry holds the installed providers. Call Shutdown before exit so
// batched spans and metrics are flushed.
type Telemetry struct {
	// TracesExporter says where spans go: a comma-separated subset of
	// "otlp", "console", "dev-tree", or "none"; "disabled" with OTEL_SDK_DISABLED.
	TracesExporter string
	// MetricsExporter says where metrics go besides /metrics: "otlp", "console" or "none".
	MetricsExporter string

	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	metrics        http.Handler
	payloads       bool
	shutdown       []func(context.Context) error
}

// payloadsEnabled is the process-wide switch read by RecordPayload.
var payloadsEnabled atomic.Bool

// ConfigError reports an unusable telemetry setting.
type ConfigError struct {
	Variable string
	Value    string
	Err      error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("telemetry: %s=%q: %v", e.Variable, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Setup builds the tracer and meter providers, installs them (and the W3C
// TraceContext+Baggage propagator) as the OpenTelemetry globals and returns
// them for shutdown and the /metrics handler.
//
// Traces: OTEL_TRACES_EXPORTER (none|otlp|console) picks the exporter and
// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL the OTLP transport (via the contrib
// autoexport package); OTEL_TRACES_SAMPLER(_ARG) picks the sampler, where
// only the parentbased_* ones honour a caller's sampled flag (see
// samplerFromEnv); OTEL_BSP_* and the OTLP endpoint/header variables are
// read by the SDK and exporters. When
// OTEL_TRACES_EXPORTER is unset, spans go over OTLP only if an OTLP endpoint
// variable is set (rather than to a collector that is probably not there),
// and in Dev mode also to the console span tree.
//
// Metrics are always served by MetricsHandler (Prometheus format);
// OTEL_METRICS_EXPORTER=otlp|console adds a periodic exporter.
// OTEL_SDK_DISABLED=true installs no-op providers.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	payloads := opts.RecordPayloads
	if v := strings.TrimSpace(getenv(EnvTracePayloads)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, &ConfigError{Variable: EnvTracePayloads, Value: v, Err: errors.New("want true or false")}
		}
		payloads = payloads || b
	}

	t := &Telemetry{payloads: payloads}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", "error", err)
	}))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	if disabled, _ := strconv.ParseBool(getenv("OTEL_SDK_DISABLED")); disabled {
		t.TracesExporter, t.MetricsExporter = "disabled", "disabled"
		t.tracerProvider = tracenoop.NewTracerProvider()
		t.meterProvider = metricnoop.NewMeterProvider()
		t.metrics = promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{})
		t.install()
		return t, nil
	}

	name := opts.ServiceName
	if name == "" {
		name = "agentrt"
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(opts.ServiceVersion))
	}
	fromEnv, err := envResource(getenv)
	if err != nil {
		return nil, &ConfigError{Variable: "OTEL_RESOURCE_ATTRIBUTES", Value: getenv("OTEL_RESOURCE_ATTRIBUTES"), Err: err}
	}
	// Later options win, so the environment overrides the caller's name.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attrs...),
		resource.WithAttributes(fromEnv...),
	)
	if err != nil {
		return nil, &ConfigError{Variable: "OTEL_RESOURCE_ATTRIBUTES", Value: getenv("OTEL_RESOURCE_ATTRIBUTES"), Err: err}
	}

	tp, err := t.tracerProviderFor(ctx, res, opts, getenv)
	if err != nil {
		return nil, err
	}
	mp, err := t.meterProviderFor(ctx, res, opts, getenv)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	t.tracerProvider, t.meterProvider = tp, mp
	t.shutdown = append(t.shutdown, tp.Shutdown, mp.Shutdown)
	t.install()
	return t, nil
}

func (t *Telemetry) install() {
	otel.SetTracerProvider(t.tracerProvider)
	otel.SetMeterProvider(t.meterProvider)
	payloadsEnabled.Store(t.payloads)
}

func otlpEndpointSet(getenv func(string) string, signal string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// envResource reads the resource attributes of OTEL_RESOURCE_ATTRIBUTES
// (key=value pairs, comma-separated, values percent-encoded) and
// OTEL_SERVICE_NAME, which wins over service.name there, as the SDK's
// resource.WithFromEnv does with the process environment.
func envResource(getenv func(string) string) ([]attribute.KeyValue, error) {
	var out []attribute.KeyValue
	if v := strings.TrimSpace(getenv("OTEL_RESOURCE_ATTRIBUTES")); v != "" {
		for _, pair := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("missing value in %q", pair)
			}
			dec, err := url.PathUnescape(strings.TrimSpace(val))
			if err != nil {
				return nil, fmt.Errorf("invalid value in %q: %w", pair, err)
			}
			out = append(out, attribute.String(k, dec))
		}
	}
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" {
		out = append(out, semconv.ServiceName(v))
	}
	return out, nil
}

func (t *Telemetry) tracerProviderFor(ctx context.Context, res *resource.Resource, opts Options, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sampler)}
	var used []string
	choice := getenv("OTEL_TRACES_EXPORTER")
	if choice != "" || otlpEndpointSet(getenv, "TRACES") {
		// autoexport defaults to OTLP when the variable is unset.
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, &ConfigError{Variable: "OTEL_TRACES_EXPORTER", Value: choice, Err: err}
		}
		if autoexport.IsNoneSpanExporter(exp) {
			used = append(used, "none")
		} else {
			tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
			if choice == "" {
				choice = "otlp"
			}
			used = append(used, choice)
		}
	}
	if opts.Dev && getenv("OTEL_TRACES_EXPORTER") == "" {
		w := opts.ConsoleWriter
		if w == nil {
			w = os.Stderr
		}
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(NewConsoleProcessor(w)))
		used = append(used, "dev-tree")
	}
	for _, sp := range opts.SpanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	if len(used) == 0 {
		used = append(used, "none")
	}
	if len(used) == 1 && used[0] == "none" && len(opts.SpanProcessors) == 0 {
		// Nothing would receive a span: record none. Spans keep valid
		// contexts, so trace ids are still made, propagated and returned.
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.NeverSample()))
		t.TracesExporter = strings.Join(used, ",")
		tp := sdktrace.NewTracerProvider(tpOpts...)
		unrecorded.Store(tp)
		return tp, nil
	}
	t.TracesExporter = strings.Join(used, ",")
	return sdktrace.NewTracerProvider(tpOpts...), nil
}

func (t *Telemetry) meterProviderFor(ctx context.Context, res *resource.Resource, opts Options, getenv func(string) string) (*sdkmetric.MeterProvider, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := promexporter.New(promexporter.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})

	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	t.MetricsExporter = "none"
	switch choice := getenv("OTEL_METRICS_EXPORTER"); {
	case choice == "none", choice == "prometheus":
		// Prometheus is served at /metrics by the host; autoexport's
		// "prometheus" would open a second listener.
	case choice != "" || otlpEndpointSet(getenv, "METRICS"):
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, &ConfigError{Variable: "OTEL_METRICS_EXPORTER", Value: choice, Err: err}
		}
		if !autoexport.IsNoneMetricReader(r) {
			mpOpts = append(mpOpts, sdkmetric.WithReader(r))
			if choice == "" {
				choice = "otlp"
			}
			t.MetricsExporter = choice
		}
	}
	for _, r := range opts.MetricReaders {
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	return sdkmetric.NewMeterProvider(mpOpts...), nil
}

// TracerProvider returns the installed tracer provider.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracerProvider }

// MeterProvider returns the installed meter provider.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meterProvider }

// RecordPayloads reports whether request and tool arguments go into spans.
func (t *Telemetry) RecordPayloads() bool { return t.payloads }

// MetricsHandler serves the Prometheus text format: the OpenTelemetry
// instruments plus Go runtime and process metrics.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics }

// Shutdown flushes and stops the providers. The globals keep pointing at
// them, so spans started later are dropped rather than panicking.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	t.shutdown = nil
	return errors.Join(errs...)
}

package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/agentrt/agentrt/internal/syncbuf"
)

// otelVars are cleared for every test so the developer's shell cannot leak in.
var otelVars = []string{
	"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	"OTEL_SDK_DISABLED", EnvTracePayloads,
}

func cleanEnv(t *testing.T, set map[string]string) {
	t.Helper()
	for _, k := range otelVars {
		t.Setenv(k, "")
	}
	for k, v := range set {
		t.Setenv(k, v)
	}
}

// setupMem installs telemetry with an in-memory span exporter.
func setupMem(t *testing.T, opts Options) (*Telemetry, *tracetest.InMemoryExporter) {
	t.Helper()
	mem := tracetest.NewInMemoryExporter()
	opts.SpanProcessors = append(opts.SpanProcessors, sdktrace.NewSimpleSpanProcessor(mem))
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv // cleaned by cleanEnv
	}
	tel, err := Setup(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel, mem
}

func TestSetupExporterChoice(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		dev        bool
		wantTraces string
		wantMetric string
	}{
		{"production default exports nothing", nil, false, "none", "none"},
		{"dev default prints the tree", nil, true, "dev-tree", "none"},
		{"explicit none silences dev", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, true, "none", "none"},
		{"console is the stdout exporter", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, false, "console", "none"},
		{"an OTLP endpoint implies otlp", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false, "otlp", "otlp"},
		{"dev with endpoint keeps the tree", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1"}, true, "otlp,dev-tree", "none"},
		{"grpc protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "otlp", "none"},
		{"prometheus metrics are /metrics", map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}, false, "none", "none"},
		{"console metrics", map[string]string{"OTEL_METRICS_EXPORTER": "console"}, false, "none", "console"},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true"}, true, "disabled", "disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t, tt.env)
			tel, err := Setup(context.Background(), Options{Dev: tt.dev, ConsoleWriter: io.Discard, Getenv: os.Getenv})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tel.Shutdown(context.Background()) }()
			if tel.TracesExporter != tt.wantTraces || tel.MetricsExporter != tt.wantMetric {
				t.Errorf("exporters = %q/%q, want %q/%q", tel.TracesExporter, tel.MetricsExporter, tt.wantTraces, tt.wantMetric)
			}
			if otel.GetTracerProvider() != tel.TracerProvider() {
				t.Error("tracer provider not installed globally")
			}
		})
	}
}

func TestSetupRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		getenv  map[string]string
		wantVar string
	}{
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin-ish"}, nil, "OTEL_TRACES_EXPORTER"},
		{"unknown protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, nil, "OTEL_TRACES_EXPORTER"},
		{"unknown metrics exporter", map[string]string{"OTEL_METRICS_EXPORTER": "statsd"}, nil, "OTEL_METRICS_EXPORTER"},
		{"payload flag not a bool", nil, map[string]string{EnvTracePayloads: "sometimes"}, EnvTracePayloads},
		{"resource attribute without value", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "app.name"}, nil, "OTEL_RESOURCE_ATTRIBUTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t, tt.env)
			_, err := Setup(context.Background(), Options{Getenv: func(k string) string {
				if v, ok := tt.getenv[k]; ok {
					return v
				}
				return os.Getenv(k)
			}})
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Variable != tt.wantVar {
				t.Fatalf("err = %v, want ConfigError for %s", err, tt.wantVar)
			}
		})
	}
}

// TestSetupReadsOnlyGetenv: the library reads no environment of its own;
// without Getenv the process's OTEL_* settings are not seen.
func TestSetupReadsOnlyGetenv(t *testing.T) {
	cleanEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console",
		"OTEL_SDK_DISABLED": "true", EnvTracePayloads: "true"})
	tel, err := Setup(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if tel.TracesExporter != "none" || tel.MetricsExporter != "none" || tel.RecordPayloads() {
		t.Errorf("exporters %q/%q, payloads %v: the process environment was read", tel.TracesExporter, tel.MetricsExporter, tel.RecordPayloads())
	}
}

func TestPayloadSwitch(t *testing.T) {
	for _, v := range []string{"", "false", "true", "1"} {
		cleanEnv(t, nil)
		tel, mem := setupMem(t, Options{Getenv: func(k string) string {
			if k == EnvTracePayloads {
				return v
			}
			return ""
		}})
		want := v == "true" || v == "1"
		if tel.RecordPayloads() != want || PayloadsEnabled() != want {
			t.Errorf("%s=%q: RecordPayloads=%v, want %v", EnvTracePayloads, v, tel.RecordPayloads(), want)
		}
		_, span := StartPredict(context.Background(), false, map[string]string{"q": "hello"})
		span.End()
		got := attrsOf(mem.GetSpans()[0].Attributes)[AttrInput]
		if (got != "") != want || (want && got != `{"q":"hello"}`) {
			t.Errorf("%s=%q: input attribute %q", EnvTracePayloads, v, got)
		}
	}
}

// TestOTLPHTTPToMLflowShape exports over OTLP/HTTP to a server standing in
// for an MLflow tracking server: POST /v1/traces, protobuf body, the
// experiment header from OTEL_EXPORTER_OTLP_HEADERS, resource attributes.
func TestOTLPHTTPToMLflowShape(t *testing.T) {
	var (
		mu       sync.Mutex
		got      []*coltracepb.ExportTraceServiceRequest
		headers  []http.Header
		pathSeen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		headers = append(headers, r.Header.Clone())
		pathSeen = append(pathSeen, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	cleanEnv(t, map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-mlflow-experiment-id=42",
		"OTEL_SERVICE_NAME":           "support-agent",
		"OTEL_RESOURCE_ATTRIBUTES":    "app.name=support,workspace.id=1234",
	})
	tel, err := Setup(context.Background(), Options{ServiceName: "ignored-when-env-set", Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "predict")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil { // flushes the batch
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no OTLP export received")
	}
	if pathSeen[0] != "/v1/traces" || headers[0].Get("x-mlflow-experiment-id") != "42" ||
		headers[0].Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("path %q, headers %v", pathSeen[0], headers[0])
	}
	rs := got[0].ResourceSpans[0]
	res := map[string]string{}
	for _, kv := range rs.Resource.Attributes {
		res[kv.Key] = kv.Value.GetStringValue()
	}
	if res["service.name"] != "support-agent" || res["app.name"] != "support" || res["workspace.id"] != "1234" {
		t.Errorf("resource = %v", res)
	}
	if name := rs.ScopeSpans[0].Spans[0].Name; name != "predict" {
		t.Errorf("span name %q", name)
	}
}

func TestSamplerFromEnv(t *testing.T) {
	cleanEnv(t, map[string]string{"OTEL_TRACES_SAMPLER": "always_off"})
	_, mem := setupMem(t, Options{})
	ctx, span := otel.Tracer("test").Start(context.Background(), "x")
	span.End()
	if len(mem.GetSpans()) != 0 {
		t.Errorf("always_off exported %d spans", len(mem.GetSpans()))
	}
	if TraceID(ctx) == "" {
		t.Error("unsampled spans still need a trace id for log correlation")
	}
}

func TestDevTreeGoesToConsoleWriter(t *testing.T) {
	cleanEnv(t, nil)
	var buf syncbuf.Buffer
	tel, err := Setup(context.Background(), Options{Dev: true, ConsoleWriter: &buf, Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	ctx, root := otel.Tracer("test").Start(context.Background(), "POST /responses")
	_, child := otel.Tracer("test").Start(ctx, "predict")
	child.End()
	root.End()
	out := buf.String()
	if !strings.Contains(out, "POST /responses") || !strings.Contains(out, "└─ predict") {
		t.Errorf("console output:\n%s", out)
	}
}

type traceCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu   sync.Mutex
	got  []*coltracepb.ExportTraceServiceRequest
	meta []metadata.MD
}

func (c *traceCollector) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, req)
	c.meta = append(c.meta, md)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestOTLPGRPC is the Databricks Apps shape: OTEL_EXPORTER_OTLP_PROTOCOL=grpc
// and a plain-text local collector.
func TestOTLPGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &traceCollector{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, col)
	mcol := &metricsCollector{}
	colmetricpb.RegisterMetricsServiceServer(gs, mcol)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	cleanEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + ln.Addr().String(),
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-team=agents",
		"OTEL_RESOURCE_ATTRIBUTES":    "app.name=support",
	})
	tel, err := Setup(context.Background(), Options{Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	if tel.TracesExporter != "otlp" || tel.MetricsExporter != "otlp" {
		t.Fatalf("exporters %q/%q", tel.TracesExporter, tel.MetricsExporter)
	}
	done := StreamStarted(context.Background())
	done()
	_, span := otel.Tracer("test").Start(context.Background(), "predict")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.got) == 0 {
		t.Fatal("collector received nothing")
	}
	if got := col.meta[0].Get("x-team"); len(got) != 1 || got[0] != "agents" {
		t.Errorf("metadata %v", col.meta[0])
	}
	if name := col.got[0].ResourceSpans[0].ScopeSpans[0].Spans[0].Name; name != "predict" {
		t.Errorf("span %q", name)
	}
	mcol.mu.Lock()
	defer mcol.mu.Unlock()
	var names []string
	for _, rm := range mcol.got {
		for _, sm := range rm.ResourceMetrics {
			for _, ss := range sm.ScopeMetrics {
				for _, m := range ss.Metrics {
					names = append(names, m.Name)
				}
			}
		}
	}
	if !slices.Contains(names, "agentrt.streams.active") {
		t.Errorf("metrics exported: %v", names)
	}
}

type metricsCollector struct {
	colmetricpb.UnimplementedMetricsServiceServer
	mu  sync.Mutex
	got []*colmetricpb.ExportMetricsServiceRequest
}

func (c *metricsCollector) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, req)
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// Export failures reach the configured logger instead of stderr.
func TestExportErrorsAreLogged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusBadRequest) // not retryable: one attempt
	}))
	defer srv.Close()
	cleanEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	var buf syncbuf.Buffer
	tel, err := Setup(context.Background(), Options{Getenv: os.Getenv,
		Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "x")
	span.End()
	_ = tel.Shutdown(context.Background())
	if !strings.Contains(buf.String(), "msg=opentelemetry") || !strings.Contains(buf.String(), "400") {
		t.Errorf("log: %q", buf.String())
	}
}

// With no exporter and no processor, spans are not recorded (that work would
// be thrown away), yet each still has a trace id to propagate and return.
func TestNoExporterRecordsNothingButKeepsTraceIDs(t *testing.T) {
	cleanEnv(t, nil)
	tel, err := Setup(context.Background(), Options{Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	if tel.TracesExporter != "none" {
		t.Fatalf("TracesExporter = %q, want none", tel.TracesExporter)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	if span.IsRecording() {
		t.Error("span is recording with nothing to export it to")
	}
	if !span.SpanContext().TraceID().IsValid() {
		t.Error("span has no trace id")
	}
}

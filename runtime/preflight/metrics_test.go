package preflight_test

import (
	"context"
	"os"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/runtime/preflight"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var reader = sdkmetric.NewManualReader()

func TestMain(m *testing.M) {
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	os.Exit(m.Run())
}

func checkCount(t *testing.T, typ, status string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "agentrt.preflight.checks" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				ty, _ := dp.Attributes.Value("type")
				st, _ := dp.Attributes.Value("status")
				if ty.AsString() == typ && st.AsString() == status {
					return dp.Value
				}
			}
		}
	}
	return 0
}

func TestChecksMetric(t *testing.T) {
	sys := systemClient(t)
	okBefore := checkCount(t, "serving_endpoint", "ok")
	missingBefore := checkCount(t, "serving_endpoint", "missing")
	preflight.Run(context.Background(), sys.Client(), agent.Manifest{Resources: []agent.Resource{
		{Type: agent.ServingEndpoint, Name: "dev-llm"},
		{Type: agent.ServingEndpoint, Name: "nope"},
	}}, preflight.Options{})
	if d := checkCount(t, "serving_endpoint", "ok") - okBefore; d != 1 {
		t.Errorf("ok checks = %d, want 1", d)
	}
	if d := checkCount(t, "serving_endpoint", "missing") - missingBefore; d != 1 {
		t.Errorf("missing checks = %d, want 1", d)
	}
}

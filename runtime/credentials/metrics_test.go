package credentials_test

import (
	"context"
	"os"
	"testing"

	"github.com/agentrt/agentrt/runtime/credentials"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var reader = sdkmetric.NewManualReader()

func TestMain(m *testing.M) {
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	os.Exit(m.Run())
}

// refreshCount reads agentrt.token.refreshes{source,outcome}.
func refreshCount(t *testing.T, source, outcome string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "agentrt.token.refreshes" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				s, _ := dp.Attributes.Value("source")
				o, _ := dp.Attributes.Value("outcome")
				if s.AsString() == source && o.AsString() == outcome {
					return dp.Value
				}
			}
		}
	}
	return 0
}

func TestRefreshMetric(t *testing.T) {
	f := newFakeWorkspace(t)
	before := refreshCount(t, credentials.SourceM2M, "ok")
	beforeErr := refreshCount(t, credentials.SourceM2M, "error")
	s, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: f.URL,
		Lookup: envMap(map[string]string{"DATABRICKS_CLIENT_ID": "agent-sp", "DATABRICKS_CLIENT_SECRET": "agent-sp-secret"})})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: f.URL,
		Lookup: envMap(map[string]string{"DATABRICKS_CLIENT_ID": "agent-sp", "DATABRICKS_CLIENT_SECRET": "bad"})})
	if got := refreshCount(t, credentials.SourceM2M, "ok") - before; got != 1 {
		t.Errorf("ok refreshes = %d, want 1", got)
	}
	if got := refreshCount(t, credentials.SourceM2M, "error") - beforeErr; got != 1 {
		t.Errorf("error refreshes = %d, want 1", got)
	}
}

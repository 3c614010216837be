// Package metrictest reads OpenTelemetry counters in tests: install a manual
// reader once, then ask for a counter's value by name and attributes, so a
// test can assert how much a metric rose.
package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Install makes a manual reader the global meter provider's and returns it.
// Call it from TestMain, before anything creates instruments.
func Install() *sdkmetric.ManualReader {
	r := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)))
	return r
}

// Counter is the value of the int64 counter name whose data point has every
// attribute in attrs (0 when there is none yet).
func Counter(t testing.TB, r *sdkmetric.ManualReader, name string, attrs map[string]string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("metric %s is %T, not an int64 counter", name, m.Data)
			}
		points:
			for _, dp := range sum.DataPoints {
				for k, want := range attrs {
					if v, _ := dp.Attributes.Value(attribute.Key(k)); v.AsString() != want {
						continue points
					}
				}
				return dp.Value
			}
		}
	}
	return 0
}

package preflight_test

import (
	"context"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/metrictest"
	"github.com/agentrt/agentrt/internal/preflight"
)

var reader = metrictest.Install() // before any instrument is made

func checkCount(t *testing.T, typ, status string) int64 {
	t.Helper()
	return metrictest.Counter(t, reader, "agentrt.preflight.checks", map[string]string{"type": typ, "status": status})
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

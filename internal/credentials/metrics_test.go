package credentials_test

import (
	"context"
	"testing"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/metrictest"
)

var reader = metrictest.Install() // before any instrument is made

// refreshCount reads agentrt.token.refreshes{source,outcome}.
func refreshCount(t *testing.T, source, outcome string) int64 {
	t.Helper()
	return metrictest.Counter(t, reader, "agentrt.token.refreshes", map[string]string{"source": source, "outcome": outcome})
}

func TestRefreshMetric(t *testing.T) {
	f := newFakeWorkspace(t)
	before := refreshCount(t, credentials.SourceM2M, "ok")
	beforeErr := refreshCount(t, credentials.SourceM2M, "error")
	s, err := credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: f.URL,
		ClientID: "agent-sp", ClientSecret: "agent-sp-secret"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	credentials.NewSystem(context.Background(), credentials.SystemOptions{Host: f.URL,
		ClientID: "agent-sp", ClientSecret: "bad"})
	if got := refreshCount(t, credentials.SourceM2M, "ok") - before; got != 1 {
		t.Errorf("ok refreshes = %d, want 1", got)
	}
	if got := refreshCount(t, credentials.SourceM2M, "error") - beforeErr; got != 1 {
		t.Errorf("error refreshes = %d, want 1", got)
	}
}

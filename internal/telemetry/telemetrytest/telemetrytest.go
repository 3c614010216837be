// Package telemetrytest holds checks shared by the telemetry tests.
package telemetrytest

import (
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// AssertNoSecrets fails t if any secret appears in anything an exporter
// would send of spans: names, status, attributes, events, links, resource.
// It fails too when there are no spans, which would prove nothing.
func AssertNoSecrets(t testing.TB, spans tracetest.SpanStubs, secrets ...string) {
	t.Helper()
	if len(spans) == 0 {
		t.Fatal("no spans to search")
	}
	for _, s := range spans {
		txt := spanText(s)
		for _, sec := range secrets {
			if sec != "" && strings.Contains(txt, sec) {
				t.Errorf("span %q carries a secret %q", s.Name, sec)
			}
		}
	}
}

// spanText is everything a span carries that an exporter would send.
func spanText(s tracetest.SpanStub) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|", s.Name, s.Status.Description)
	for _, kv := range s.Attributes {
		fmt.Fprintf(&b, "%s=%s|", kv.Key, kv.Value.Emit())
	}
	for _, e := range s.Events {
		fmt.Fprintf(&b, "%s|", e.Name)
		for _, kv := range e.Attributes {
			fmt.Fprintf(&b, "%s=%s|", kv.Key, kv.Value.Emit())
		}
	}
	for _, l := range s.Links {
		for _, kv := range l.Attributes {
			fmt.Fprintf(&b, "%s=%s|", kv.Key, kv.Value.Emit())
		}
	}
	for _, kv := range s.Resource.Attributes() {
		fmt.Fprintf(&b, "%s=%s|", kv.Key, kv.Value.Emit())
	}
	return b.String()
}

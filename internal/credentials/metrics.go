package credentials

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

var (
	refreshOnce    sync.Once
	refreshCounter metric.Int64Counter
)

// recordRefresh counts one token acquisition in agentrt.token.refreshes.
// The global meter delegates to whatever provider the host installs later.
func recordRefresh(ctx context.Context, source string, err error) {
	refreshOnce.Do(func() {
		refreshCounter, _ = otel.Meter(tracerName).Int64Counter("agentrt.token.refreshes",
			metric.WithDescription("System and exchanged token acquisitions by source and outcome."))
	})
	if refreshCounter == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	refreshCounter.Add(ctx, 1, metric.WithAttributes(attribute.String("source", source), attribute.String("outcome", outcome)))
}

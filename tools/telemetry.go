package tools

import (
	"context"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
)

const instrumentation = "github.com/agentrt/agentrt/tools"

func (s *Set) reportSkip(ctx context.Context, log *slog.Logger, span trace.Span, inst *telemetry, sk agent.SkippedTool, reason Reason) {
	span.AddEvent("tool.skipped", trace.WithAttributes(
		attribute.String("tool", sk.Tool), attribute.String("resource", sk.Resource),
		attribute.String("reason", sk.Reason), attribute.String("tool.binding", sk.Binding)))
	inst.skipped.Add(ctx, 1, metric.WithAttributes(attribute.String("tool", sk.Tool), attribute.String("reason", string(reason))))
	log.InfoContext(ctx, "tool skipped", "tool", sk.Tool, "resource", sk.Resource, "binding", sk.Binding,
		"reason", string(reason), "detail", sk.Reason)
}

type telemetry struct {
	prepared metric.Int64Counter
	skipped  metric.Int64Counter
}

var (
	instOnce sync.Once
	inst     *telemetry
)

// instruments are created once from the global meter; the global API
// forwards them to whatever provider the host installs later.
func instruments() *telemetry {
	instOnce.Do(func() {
		m := otel.Meter(instrumentation)
		t := &telemetry{}
		t.prepared, _ = m.Int64Counter("agentrt.tools.prepared",
			metric.WithDescription("Tool providers prepared per request, by outcome (ok, skipped, failed)."))
		t.skipped, _ = m.Int64Counter("agentrt.tools.skipped",
			metric.WithDescription("Tools dropped for a request, by reason."))
		inst = t
	})
	return inst
}

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/internal/syncbuf"
)

func TestConsoleTree(t *testing.T) {
	var buf syncbuf.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(NewConsoleProcessor(&buf)))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("test")

	ctx, root := tr.Start(context.Background(), "POST /responses",
		trace.WithAttributes(attribute.Int("http.response.status_code", 200), attribute.String("url.scheme", "http")))
	_, id := tr.Start(ctx, "identity.resolve", trace.WithAttributes(attribute.String("enduser.id", "bob")))
	id.End()
	pctx, prep := tr.Start(ctx, "tools.prepare")
	prep.AddEvent("tool.skipped", trace.WithAttributes(
		attribute.String("tool", "genie"), attribute.String("resource", "space-1"), attribute.String("reason", "permission denied")))
	_, probe := tr.Start(pctx, "HTTP GET")
	probe.End()
	prep.End()
	_, pred := tr.Start(ctx, "predict")
	pred.RecordError(errors.New("boom"))
	pred.SetStatus(codes.Error, "model said\nno")
	pred.End()
	if buf.String() != "" {
		t.Fatal("tree printed before the root ended")
	}
	root.End()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		"trace " + root.SpanContext().TraceID().String(),
		"POST /responses  ",
		"├─ identity.resolve  ",
		"├─ tools.prepare  ",
		"│  · tool.skipped  tool=genie  resource=space-1  reason=permission denied",
		"│  └─ HTTP GET  ",
		"└─ predict  ",
		"   · exception  exception.type=*errors.errorString  exception.message=boom",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	for _, s := range []string{"http.response.status_code=200", "enduser.id=bob", `ERROR model said\nno`} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, buf.String())
		}
	}
	if strings.Contains(buf.String(), "url.scheme") {
		t.Error("noisy attribute printed")
	}
}

func TestConsoleConcurrentTraces(t *testing.T) {
	var buf syncbuf.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(NewConsoleProcessor(&buf)))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("test")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ctx, root := tr.Start(context.Background(), fmt.Sprintf("root-%d", i))
			for j := range 3 {
				_, c := tr.Start(ctx, fmt.Sprintf("child-%d-%d", i, j))
				c.End()
			}
			root.End()
		})
	}
	wg.Wait()
	out := buf.String()
	if got := strings.Count(out, "trace "); got != 20 {
		t.Fatalf("%d trees printed, want 20", got)
	}
	// Each tree is written whole: its children follow its root line.
	for i := range 20 {
		at := strings.Index(out, fmt.Sprintf("root-%d  ", i))
		block := out[at:]
		if end := strings.Index(block, "trace "); end > 0 {
			block = block[:end]
		}
		if strings.Count(block, fmt.Sprintf("child-%d-", i)) != 3 {
			t.Errorf("tree %d interleaved or incomplete:\n%s", i, block)
		}
	}
}

func TestConsoleBoundsOrphans(t *testing.T) {
	p := NewConsoleProcessor(&syncbuf.Buffer{})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("test")
	// Children whose roots never end must not accumulate without limit.
	for range consoleMaxTraces + 50 {
		ctx, root := tr.Start(context.Background(), "never-ends")
		_, c := tr.Start(ctx, "child")
		c.End()
		_ = root
	}
	p.mu.Lock()
	n, o := len(p.traces), len(p.order)
	p.mu.Unlock()
	if n > consoleMaxTraces || n != o {
		t.Errorf("buffered %d traces (order %d), limit %d", n, o, consoleMaxTraces)
	}
}

package devui

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// request records one request's spans: the server span with its request id
// (set at the end, as telemetry.Server does) and a child.
func request(tp *sdktrace.TracerProvider, id string, beforeEnd func()) {
	tr := tp.Tracer("test")
	ctx, root := tr.Start(context.Background(), "POST /responses")
	_, child := tr.Start(ctx, "predict")
	child.End()
	if beforeEnd != nil {
		beforeEnd()
	}
	root.SetAttributes(attribute.String(attrRequestID, id))
	root.End()
}

// Trace waits for a request whose server span has not ended yet, and
// returns its spans with the server span first.
func TestRecorderWaitsForTheRequest(t *testing.T) {
	rec := NewRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	got := make(chan []Span, 1)
	request(tp, "req_1", func() {
		go func() {
			spans, ok := rec.Trace(context.Background(), "req_1")
			if !ok {
				spans = nil
			}
			got <- spans
		}()
		// End the root only once Trace waits for it.
		for i := 0; ; i++ {
			rec.mu.Lock()
			waiting := rec.wait["req_1"] != nil
			rec.mu.Unlock()
			if waiting {
				break
			}
			if i == 1e6 {
				t.Fatal("Trace never waited")
			}
			runtime.Gosched()
		}
	})
	select {
	case spans := <-got:
		if len(spans) != 2 || spans[0].Name != "POST /responses" || spans[1].Name != "predict" || spans[1].ParentID != spans[0].ID {
			t.Fatalf("spans = %+v", spans)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Trace did not return after the request ended")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := rec.Trace(ctx, "req_unknown"); ok {
		t.Error("an unknown request has a trace")
	}
}

// The recorder keeps the last maxTraces requests only.
func TestRecorderIsBounded(t *testing.T) {
	rec := NewRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	for i := range maxTraces + 10 {
		request(tp, fmt.Sprintf("req_%d", i), nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := rec.Trace(ctx, "req_0"); ok {
		t.Error("the oldest request was kept")
	}
	if _, ok := rec.Trace(ctx, fmt.Sprintf("req_%d", maxTraces+9)); !ok {
		t.Error("the newest request was dropped")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.done) != maxTraces || len(rec.byID) != maxTraces || len(rec.open) != 0 {
		t.Errorf("kept %d requests, %d trace ids, %d open traces", len(rec.done), len(rec.byID), len(rec.open))
	}
}

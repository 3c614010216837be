package devui

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Bounds on what a Recorder keeps: the UI shows recent requests, and a
// leaked span or a long session must not grow memory without limit.
const (
	maxTraces   = 200 // finished requests kept, oldest dropped first
	maxOpen     = 256 // traces whose server span has not ended yet
	maxSpans    = 512 // spans kept per trace
	maxAttrText = 2048
)

// attrRequestID is the server span's request id (telemetry.AttrRequestID);
// written out so that this package does not link the telemetry setup.
const attrRequestID = "agentrt.request_id"

// Span is one recorded span as the UI draws it: times are milliseconds
// from the start of the request's server span.
type Span struct {
	ID         string            `json:"span_id"`
	ParentID   string            `json:"parent_id,omitempty"`
	Name       string            `json:"name"`
	StartMS    float64           `json:"start_ms"`
	DurationMS float64           `json:"duration_ms"`
	Error      string            `json:"error,omitempty"` // set when the span's status is Error
	Attributes map[string]string `json:"attributes,omitempty"`
	Events     []Event           `json:"events,omitempty"`

	start, end time.Time
}

// Event is a span event (a tool skipped while tools were prepared, an error).
type Event struct {
	Name       string            `json:"name"`
	AtMS       float64           `json:"at_ms"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Recorder is an OpenTelemetry SpanProcessor that keeps the spans of the
// most recent requests, indexed by the request id of their server span, for
// the dev UI's trace timeline. It is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	open   map[trace.TraceID][]sdktrace.ReadOnlySpan
	order  []trace.TraceID          // open traces in insertion order, for eviction
	done   map[string][]Span        // request id → spans, oldest span first
	byID   map[trace.TraceID]string // finished trace → request id (late spans)
	recent []string                 // finished request ids, oldest first
	wait   map[string]chan struct{}
}

// NewRecorder returns an empty Recorder; add it to the tracer provider
// (telemetry.Options.SpanProcessors).
func NewRecorder() *Recorder {
	return &Recorder{
		open: map[trace.TraceID][]sdktrace.ReadOnlySpan{},
		done: map[string][]Span{},
		byID: map[trace.TraceID]string{},
		wait: map[string]chan struct{}{},
	}
}

// OnStart does nothing: spans are recorded when they end.
func (*Recorder) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd buffers s with its trace; when s is a server span with a request
// id (the local root of a request), the trace becomes that request's.
func (r *Recorder) OnEnd(s sdktrace.ReadOnlySpan) {
	tid := s.SpanContext().TraceID()
	root := !s.Parent().IsValid() || s.Parent().IsRemote()
	var reqID string
	if root {
		for _, kv := range s.Attributes() {
			if kv.Key == attrRequestID {
				reqID = kv.Value.AsString()
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.byID[tid]; ok { // a span that ended after its request
		if spans := r.done[id]; len(spans) < maxSpans && len(spans) > 0 {
			r.done[id] = append(spans, convert(s, spans[0].start))
		}
		return
	}
	spans, seen := r.open[tid]
	if root {
		delete(r.open, tid)
		if seen {
			r.order = slices.DeleteFunc(r.order, func(t trace.TraceID) bool { return t == tid })
		}
		if reqID == "" {
			return // not a request (start-up calls, probes)
		}
		r.finish(reqID, tid, s, spans)
		return
	}
	if !seen {
		if len(r.order) >= maxOpen {
			delete(r.open, r.order[0])
			r.order = r.order[1:]
		}
		r.order = append(r.order, tid)
	}
	if len(spans) < maxSpans {
		r.open[tid] = append(spans, s)
	}
}

// finish converts a request's spans and wakes those waiting for them.
// r.mu is held.
func (r *Recorder) finish(reqID string, tid trace.TraceID, root sdktrace.ReadOnlySpan, spans []sdktrace.ReadOnlySpan) {
	t0 := root.StartTime()
	out := make([]Span, 0, len(spans)+1)
	out = append(out, convert(root, t0))
	for _, s := range spans {
		out = append(out, convert(s, t0))
	}
	slices.SortStableFunc(out[1:], func(a, b Span) int { return a.start.Compare(b.start) })
	if _, dup := r.done[reqID]; !dup {
		if len(r.recent) >= maxTraces {
			old := r.recent[0]
			r.recent = r.recent[1:]
			delete(r.done, old)
			for t, id := range r.byID {
				if id == old {
					delete(r.byID, t)
				}
			}
		}
		r.recent = append(r.recent, reqID)
	}
	r.done[reqID] = out
	r.byID[tid] = reqID
	if ch, ok := r.wait[reqID]; ok {
		close(ch)
		delete(r.wait, reqID)
	}
}

// Shutdown drops everything recorded.
func (r *Recorder) Shutdown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.open)
	clear(r.done)
	clear(r.byID)
	r.order, r.recent = nil, nil
	return nil
}

// ForceFlush has nothing to flush.
func (*Recorder) ForceFlush(context.Context) error { return nil }

// Trace returns the spans of the request with id reqID, the server span
// first. The server span ends only after the response is written, so a
// client that asks as soon as it has read the response may be early: Trace
// waits for the request to finish until ctx is done, then reports false.
func (r *Recorder) Trace(ctx context.Context, reqID string) ([]Span, bool) {
	r.mu.Lock()
	if spans, ok := r.done[reqID]; ok {
		spans = slices.Clone(spans)
		r.mu.Unlock()
		return spans, true
	}
	ch, ok := r.wait[reqID]
	if !ok {
		if len(r.wait) >= maxOpen { // ids nobody will ever finish
			clear(r.wait)
		}
		ch = make(chan struct{})
		r.wait[reqID] = ch
	}
	r.mu.Unlock()
	select {
	case <-ch:
		r.mu.Lock()
		defer r.mu.Unlock()
		spans, ok := r.done[reqID]
		return slices.Clone(spans), ok
	case <-ctx.Done():
		return nil, false
	}
}

func convert(s sdktrace.ReadOnlySpan, t0 time.Time) Span {
	sp := Span{
		ID:         s.SpanContext().SpanID().String(),
		Name:       s.Name(),
		StartMS:    ms(s.StartTime().Sub(t0)),
		DurationMS: ms(s.EndTime().Sub(s.StartTime())),
		Attributes: attrs(s.Attributes()),
		start:      s.StartTime(),
		end:        s.EndTime(),
	}
	if p := s.Parent(); p.IsValid() && !p.IsRemote() {
		sp.ParentID = p.SpanID().String()
	}
	if st := s.Status(); st.Code == codes.Error {
		sp.Error = st.Description
		if sp.Error == "" {
			sp.Error = "error"
		}
	}
	for _, e := range s.Events() {
		sp.Events = append(sp.Events, Event{Name: e.Name, AtMS: ms(e.Time.Sub(t0)), Attributes: attrs(e.Attributes)})
	}
	return sp
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// attrs renders attributes as text, leaving out stack traces.
func attrs(kvs []attribute.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if kv.Key == "exception.stacktrace" {
			continue
		}
		v := kv.Value.Emit()
		if len(v) > maxAttrText {
			v = strings.ToValidUTF8(v[:maxAttrText], "") + "…"
		}
		m[string(kv.Key)] = v
	}
	return m
}

package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Bounds on what the console processor buffers for traces whose local root
// has not ended yet (a leaked span must not grow memory without limit).
const (
	consoleMaxTraces = 256
	consoleMaxSpans  = 512
)

// ConsoleProcessor is a SpanProcessor for development: it buffers the spans
// of each trace and, when the trace's local root span ends, writes the trace
// as a compact tree (name, duration, key attributes, events, errors).
type ConsoleProcessor struct {
	mu     sync.Mutex
	w      io.Writer
	traces map[trace.TraceID][]sdktrace.ReadOnlySpan
	order  []trace.TraceID // insertion order, for eviction
}

// NewConsoleProcessor returns a ConsoleProcessor writing to w.
func NewConsoleProcessor(w io.Writer) *ConsoleProcessor {
	return &ConsoleProcessor{w: w, traces: make(map[trace.TraceID][]sdktrace.ReadOnlySpan)}
}

// OnStart does nothing: spans are printed when they end.
func (*ConsoleProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd buffers s, and prints its trace when s is the local root.
func (p *ConsoleProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	id := s.SpanContext().TraceID()
	root := !s.Parent().IsValid() || s.Parent().IsRemote()

	p.mu.Lock()
	spans, seen := p.traces[id]
	if root {
		delete(p.traces, id)
		if seen {
			p.order = slices.DeleteFunc(p.order, func(t trace.TraceID) bool { return t == id })
		}
	} else {
		if !seen {
			if len(p.order) >= consoleMaxTraces {
				delete(p.traces, p.order[0])
				p.order = p.order[1:]
			}
			p.order = append(p.order, id)
		}
		if len(spans) < consoleMaxSpans {
			p.traces[id] = append(spans, s)
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()

	var buf bytes.Buffer
	writeTree(&buf, s, spans)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.w.Write(buf.Bytes())
}

// Shutdown drops traces whose root never ended.
func (p *ConsoleProcessor) Shutdown(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.traces)
	p.order = nil
	return nil
}

// ForceFlush has nothing to flush: trees are written when their root ends.
func (*ConsoleProcessor) ForceFlush(context.Context) error { return nil }

func writeTree(b *bytes.Buffer, root sdktrace.ReadOnlySpan, spans []sdktrace.ReadOnlySpan) {
	children := make(map[trace.SpanID][]sdktrace.ReadOnlySpan, len(spans))
	known := make(map[trace.SpanID]bool, len(spans)+1)
	known[root.SpanContext().SpanID()] = true
	for _, s := range spans {
		known[s.SpanContext().SpanID()] = true
	}
	for _, s := range spans {
		parent := s.Parent().SpanID()
		if !known[parent] {
			parent = root.SpanContext().SpanID() // orphan: show under the root
		}
		children[parent] = append(children[parent], s)
	}
	for _, c := range children {
		slices.SortFunc(c, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	}
	fmt.Fprintf(b, "trace %s\n", root.SpanContext().TraceID())
	writeSpan(b, root, children, "", "")
}

func writeSpan(b *bytes.Buffer, s sdktrace.ReadOnlySpan, children map[trace.SpanID][]sdktrace.ReadOnlySpan, first, rest string) {
	b.WriteString(first)
	b.WriteString(s.Name())
	b.WriteString("  ")
	b.WriteString(fmtDuration(s.EndTime().Sub(s.StartTime())))
	writeAttrs(b, s.Attributes())
	if st := s.Status(); st.Code == codes.Error {
		b.WriteString("  ERROR")
		if st.Description != "" {
			b.WriteString(" " + clip(st.Description))
		}
	}
	b.WriteByte('\n')

	kids := children[s.SpanContext().SpanID()]
	for _, e := range s.Events() {
		b.WriteString(rest)
		b.WriteString("· ")
		b.WriteString(e.Name)
		writeAttrs(b, e.Attributes)
		b.WriteByte('\n')
	}
	for i, k := range kids {
		if i == len(kids)-1 {
			writeSpan(b, k, children, rest+"└─ ", rest+"   ")
		} else {
			writeSpan(b, k, children, rest+"├─ ", rest+"│  ")
		}
	}
}

// noisyAttr are attributes that say little when reading a request's tree.
func noisyAttr(k attribute.Key) bool {
	switch k {
	case "http.request.method", "url.scheme", "url.path", "server.port", "client.address",
		"http.response.body.size", "http.request.body.size", "user_agent.original",
		"http.route", "network.protocol.version", "network.protocol.name",
		"exception.stacktrace":
		return true
	}
	return strings.HasPrefix(string(k), "network.peer.")
}

func writeAttrs(b *bytes.Buffer, attrs []attribute.KeyValue) {
	for _, kv := range attrs {
		if noisyAttr(kv.Key) {
			continue
		}
		b.WriteString("  ")
		b.WriteString(string(kv.Key))
		b.WriteByte('=')
		b.WriteString(clip(kv.Value.Emit()))
	}
}

func clip(s string) string {
	const max = 120
	s = strings.ReplaceAll(s, "\n", `\n`)
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/telemetry"
)

// errStreamClosed is what emit returns once the stream is over (the client
// went away, the request timed out, or the agent already returned).
var errStreamClosed = errors.New("httpapi: stream closed")

// sse writes data-only Server-Sent Events frames. Each flush gets a fresh
// write deadline, so a long stream is not cut by the server's WriteTimeout.
type sse struct {
	w       gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
	err     error // write error: the client is gone
	encErr  error // an event that could not be encoded
}

func (s *sse) frame(ev *agent.StreamEvent) {
	start := len(s.buf)
	b, err := ev.AppendJSON(append(s.buf, "data: "...))
	if err != nil {
		// Drop the broken frame; the agent hears about it from emit.
		s.buf = s.buf[:start]
		if s.encErr == nil {
			s.encErr = fmt.Errorf("encoding a %s event: %w", ev.Type, err)
		}
		return
	}
	s.buf = append(b, '\n', '\n')
}

func (s *sse) done() { s.buf = append(s.buf, "data: [DONE]\n\n"...) }

// flush writes the buffered frames. A write error means the client is gone
// (and sticks); an encoding error is returned once, after the good frames.
func (s *sse) flush() error {
	if s.err != nil {
		return s.err
	}
	if len(s.buf) > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) // unsupported on recorders: ignore
		_, err := s.w.Write(s.buf)
		s.buf = s.buf[:0]
		if err != nil {
			s.err = err
			return err
		}
		s.w.Flush()
	}
	if err := s.encErr; err != nil {
		s.encErr = nil
		return err
	}
	return nil
}

// openItem is a message being streamed as deltas.
type openItem struct {
	index       int
	text        strings.Builder
	annotations []agent.Annotation
}

// synth turns what an agent emits into the OpenAI event sequence: it adds
// sequence numbers and indexes, opens items before their first delta,
// closes them around their output_item.done, and keeps the response that
// response.completed carries.
type synth struct {
	out     *sse
	seq     int
	resp    *agent.Response
	slots   []*agent.Item // output items by output_index; nil while open
	open    map[string]*openItem
	anonID  string // item id given to deltas that came without one
	usage   *agent.Usage
	emitted bool
}

func (y *synth) send(ev *agent.StreamEvent) {
	ev.SequenceNumber = y.seq
	y.seq++
	y.out.frame(ev)
}

func (y *synth) mergeOutputs(co map[string]any) {
	if len(co) == 0 {
		return
	}
	if y.resp.CustomOutputs == nil {
		y.resp.CustomOutputs = make(map[string]any, len(co))
	}
	maps.Copy(y.resp.CustomOutputs, co)
}

func (y *synth) start() {
	y.resp.Status = agent.StatusInProgress
	y.send(&agent.StreamEvent{Type: agent.EventCreated, Response: y.resp})
	y.send(&agent.StreamEvent{Type: agent.EventInProgress, Response: y.resp})
}

// openMessage allocates an output slot for a message streamed as deltas.
func (y *synth) openMessage(id string) *openItem {
	if o := y.open[id]; o != nil {
		return o
	}
	o := &openItem{index: len(y.slots)}
	y.slots = append(y.slots, nil)
	if y.open == nil {
		y.open = make(map[string]*openItem)
	}
	y.open[id] = o
	y.send(&agent.StreamEvent{Type: agent.EventOutputItemAdded, OutputIndex: o.index, Item: &agent.Item{
		Type: agent.TypeMessage, ID: id, Status: agent.StatusInProgress, Role: "assistant",
		Content: agent.PartsContent(),
	}})
	y.send(&agent.StreamEvent{Type: agent.EventContentPartAdded, ItemID: id, OutputIndex: o.index,
		Part: &agent.Part{Type: agent.PartOutputText}})
	return o
}

// handle processes one event from the agent.
func (y *synth) handle(ev *agent.StreamEvent) error {
	if ev == nil {
		return errors.New("httpapi: nil stream event")
	}
	y.mergeOutputs(ev.CustomOutputs)
	switch ev.Type {
	case agent.EventOutputTextDelta:
		id := ev.ItemID
		if id == "" {
			if y.anonID == "" {
				y.anonID = agent.NewID("msg")
			}
			id = y.anonID
		}
		o := y.openMessage(id)
		o.text.WriteString(ev.Delta)
		out := *ev
		out.ItemID, out.OutputIndex, out.ContentIndex = id, o.index, 0
		y.send(&out)
	case agent.EventAnnotationAdded:
		if ev.ItemID == "" || ev.Annotation == nil {
			return errors.New("httpapi: annotation.added needs item_id and annotation")
		}
		o := y.openMessage(ev.ItemID)
		o.annotations = append(o.annotations, *ev.Annotation)
		out := *ev
		out.OutputIndex, out.ContentIndex = o.index, 0
		y.send(&out)
	case agent.EventOutputItemDone:
		if ev.Item == nil {
			return errors.New("httpapi: output_item.done without an item")
		}
		item := *ev.Item
		if item.Kind() == agent.TypeMessage && item.ID == "" && y.anonID != "" {
			item.ID = y.anonID
		}
		if item.ID != "" && item.ID == y.anonID {
			y.anonID = ""
		}
		y.itemDone(&item, ev.CustomOutputs)
	case agent.EventCreated, agent.EventInProgress:
		// The host owns the envelope.
	case agent.EventCompleted, agent.EventFailed, agent.EventIncomplete:
		// Keep what the agent knows about the whole response; the host
		// sends the terminal event itself.
		if r := ev.Response; r != nil {
			if r.Usage != nil {
				y.usage = r.Usage
			}
			y.mergeOutputs(r.CustomOutputs)
		}
	default:
		out := *ev
		if o := y.open[ev.ItemID]; o != nil && ev.ItemID != "" {
			out.OutputIndex = o.index
		}
		y.send(&out)
	}
	return nil
}

// itemDone completes an item: closes it if deltas opened it, or sends the
// whole added/content/done sequence for an item that arrives complete.
func (y *synth) itemDone(item *agent.Item, co map[string]any) {
	normalizeItem(item)
	o, wasOpen := y.open[item.ID]
	isMsg := item.Kind() == agent.TypeMessage
	if wasOpen {
		delete(y.open, item.ID)
		if isMsg && len(item.Content.Parts) == 0 {
			item.Content = agent.PartsContent(agent.Part{Type: agent.PartOutputText, Text: o.text.String(), Annotations: o.annotations})
		}
	} else {
		o = &openItem{index: len(y.slots)}
		y.slots = append(y.slots, nil)
		added := *item
		added.Status = agent.StatusInProgress
		if isMsg {
			added.Content = agent.PartsContent()
		}
		y.send(&agent.StreamEvent{Type: agent.EventOutputItemAdded, OutputIndex: o.index, Item: &added})
	}
	if isMsg {
		for i := range item.Content.Parts {
			p := &item.Content.Parts[i]
			// Part 0 of an item opened by deltas was already added and streamed.
			if i > 0 || !wasOpen {
				y.send(&agent.StreamEvent{Type: agent.EventContentPartAdded, ItemID: item.ID, OutputIndex: o.index,
					ContentIndex: i, Part: &agent.Part{Type: p.Type}})
				if p.Type == agent.PartOutputText && p.Text != "" {
					y.send(&agent.StreamEvent{Type: agent.EventOutputTextDelta, ItemID: item.ID, OutputIndex: o.index,
						ContentIndex: i, Delta: p.Text})
				}
			}
			if p.Type == agent.PartOutputText {
				y.send(&agent.StreamEvent{Type: agent.EventOutputTextDone, ItemID: item.ID, OutputIndex: o.index,
					ContentIndex: i, Text: p.Text})
			}
			y.send(&agent.StreamEvent{Type: agent.EventContentPartDone, ItemID: item.ID, OutputIndex: o.index,
				ContentIndex: i, Part: p})
		}
	}
	y.slots[o.index] = item
	y.send(&agent.StreamEvent{Type: agent.EventOutputItemDone, OutputIndex: o.index, Item: item, CustomOutputs: co})
}

// finish closes items left open and sends response.completed.
func (y *synth) finish() {
	ids := slices.Collect(maps.Keys(y.open))
	slices.SortFunc(ids, func(a, b string) int { return y.open[a].index - y.open[b].index })
	for _, id := range ids {
		y.itemDone(&agent.Item{Type: agent.TypeMessage, ID: id}, nil)
	}
	y.resp.Output = make([]agent.Item, 0, len(y.slots))
	for _, it := range y.slots {
		if it != nil {
			y.resp.Output = append(y.resp.Output, *it)
		}
	}
	y.resp.Status = agent.StatusCompleted
	if y.usage != nil {
		y.resp.Usage = y.usage
	}
	y.send(&agent.StreamEvent{Type: agent.EventCompleted, Response: y.resp})
}

// serveStream answers with an SSE stream. Preparers have run; from here on
// the status is 200 and failures become an error event.
func (s *Server) serveStream(ctx context.Context, c *gin.Context, req *agent.Request, reqID string, release func()) {
	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	defer telemetry.StreamStarted(ctx)() // telemetry: agentrt.streams.active

	out := &sse{w: w, rc: http.NewResponseController(w), timeout: s.limits.WriteTimeout, buf: make([]byte, 0, 2048)}
	resp := &agent.Response{}
	s.envelope(resp, req)
	if s.dev { // known before the agent runs: response.created carries it too
		resp.CustomOutputs = withDevOutputs(nil, agent.EnvFrom(ctx))
	}
	y := &synth{out: out, resp: resp}

	var mu sync.Mutex
	closed := false
	y.start()
	_ = out.flush()

	emit := func(ev *agent.StreamEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return errStreamClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := y.handle(ev); err != nil {
			return err
		}
		return out.flush()
	}

	err := s.run(ctx, reqID, "predict_stream", release, func() error {
		if s.streamer != nil {
			return s.streamer.PredictStream(ctx, req, emit)
		}
		r, err := s.agent.Predict(ctx, req)
		if err != nil {
			return err
		}
		if r == nil {
			return errors.New("agent returned neither a response nor an error")
		}
		for i := range r.Output {
			if err := emit(agent.ItemDone(r.Output[i])); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		y.mergeOutputs(r.CustomOutputs)
		if r.Usage != nil {
			y.usage = r.Usage
		}
		return nil
	})

	mu.Lock()
	defer mu.Unlock()
	closed = true
	if err != nil {
		telemetry.RecordError(ctx, err)
		if c.Request.Context().Err() != nil || out.err != nil {
			s.log.InfoContext(ctx, "stream ended: client went away", "request_id", reqID)
			return
		}
		e := s.agentError(ctx, c.Request, reqID, "predict_stream", err)
		code := strings.ToLower(e.Code)
		if e.Status == http.StatusGatewayTimeout {
			code = "timeout"
		} else if e.Status >= 500 {
			code = "server_error"
		}
		out.buf, out.encErr = out.buf[:0], nil
		y.send(&agent.StreamEvent{Type: agent.EventError, Code: code, Message: e.Message, Param: e.Param})
		traceFrame(ctx, c.Request, out)
		out.done()
		_ = out.flush()
		return
	}
	y.finish()
	traceFrame(ctx, c.Request, out)
	out.done()
	if err := out.flush(); err != nil {
		s.log.InfoContext(ctx, "stream ended: client went away", "request_id", reqID)
	}
}

// traceFrame adds MLflow's {"trace_id": …} frame before [DONE] when the
// request asked for it (x-mlflow-return-trace-id: true).
func traceFrame(ctx context.Context, r *http.Request, out *sse) {
	if !telemetry.WantsTraceID(r.Header) {
		return
	}
	if id := telemetry.MLflowTraceID(ctx); id != "" { // hex: no JSON escaping needed
		out.buf = append(out.buf, `data: {"trace_id":"`...)
		out.buf = append(out.buf, id...)
		out.buf = append(out.buf, "\"}\n\n"...)
	}
}

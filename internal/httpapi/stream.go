package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/dialect"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
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
	sent    bool  // frames have gone out
	err     error // write error: the client is gone
	encErr  error // an event that could not be encoded
}

// openSSE sends the status and headers of an event stream (not yet
// flushed) and returns its writer: from here on the status is 200.
func (s *Server) openSSE(w gin.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not buffer the stream
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: http.NewResponseController(w), timeout: s.limits.WriteTimeout, buf: make([]byte, 0, 2048)}
}

func (s *sse) frame(ev *agent.StreamEvent) {
	start := len(s.buf)
	b, err := wire.AppendEvent(append(s.buf, "data: "...), ev)
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

// unsent drops the frames buffered since the stream's opening ones, which
// end at opening: those go out first even when what follows them is
// replaced by an error, unless they are out already.
func (s *sse) unsent(opening int) {
	if s.sent {
		opening = 0
	}
	s.buf, s.encErr = s.buf[:opening], nil
}

// openingDelay is how long a stream's opening events (response.created
// and in_progress) wait for the agent's first event to go out with it. An
// agent that answers at once then costs one write, not two; one that calls
// a model first sends its request without a write and its system call
// ahead of it (on the critical path to the first token), and the opening
// events go out while the model thinks.
const openingDelay = 5 * time.Millisecond

// sendOpening sends what the stream has buffered once openingDelay has
// passed, under mu, the lock of the stream's emit, unless the handler has
// closed the stream by then (*closed, under mu). Stop the returned timer
// when the stream ends.
func (s *sse) sendOpening(mu *sync.Mutex, closed *bool) *time.Timer {
	return time.AfterFunc(openingDelay, func() {
		mu.Lock()
		defer mu.Unlock()
		if !*closed {
			_ = s.flush()
		}
	})
}

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
		s.sent = true
		s.w.Flush()
	}
	if err := s.encErr; err != nil {
		s.encErr = nil
		return err
	}
	return nil
}

// synth turns what an agent emits into the OpenAI event sequence. The
// aggregator (wire.Fold, the one behind agent.FromStream) decides what the
// output is; synth writes the frames around it: sequence numbers, the
// envelope, and the added/content/done events of each item as the fold
// opens and completes it.
type synth struct {
	out  framer
	seq  int
	resp *agent.Response
	fold wire.Fold
	cur  agent.StreamEvent // the frame being written: events passed by value stay off the heap
}

// framer takes the synthesised events: the SSE writer, or a background
// run's event log (background.go).
type framer interface{ frame(ev *agent.StreamEvent) }

func newSynth(out framer, resp *agent.Response) *synth {
	y := &synth{out: out, resp: resp}
	y.fold = wire.NewFold(resp, y)
	return y
}

func (y *synth) send(ev agent.StreamEvent) {
	y.cur = ev
	y.cur.SequenceNumber = y.seq
	y.seq++
	y.out.frame(&y.cur)
}

func (y *synth) start() {
	y.resp.Status = wireproto.StatusInProgress
	y.send(agent.StreamEvent{Type: wireproto.EventCreated, Response: y.resp})
	y.send(agent.StreamEvent{Type: wireproto.EventInProgress, Response: y.resp})
}

// handle processes one event from the agent.
func (y *synth) handle(ev *agent.StreamEvent) error {
	out, pass, err := y.fold.Add(ev)
	if err != nil {
		return err
	}
	if pass {
		y.send(out)
	}
	return nil
}

// Prepare gives an output item what OpenAI clients require (wire.Framer).
func (y *synth) Prepare(it *agent.Item) { normalizeItem(it) }

// Opened announces a message that deltas started (wire.Framer).
func (y *synth) Opened(id string, index int) {
	y.send(agent.StreamEvent{Type: wireproto.EventOutputItemAdded, OutputIndex: index, Item: &agent.Item{
		Type: agent.TypeMessage, ID: id, Status: wireproto.StatusInProgress, Role: "assistant",
		Content: agent.PartsContent(),
	}})
	y.send(agent.StreamEvent{Type: wireproto.EventContentPartAdded, ItemID: id, OutputIndex: index,
		Part: &agent.Part{Type: wireproto.PartOutputText}})
}

// Done completes an item (wire.Framer): it closes one that deltas opened,
// or sends the whole added/content/done sequence for an item that arrives
// complete.
func (y *synth) Done(item *agent.Item, index int, wasOpen bool, co map[string]any) {
	isMsg := item.Kind() == agent.TypeMessage
	if !wasOpen {
		added := *item
		added.Status = wireproto.StatusInProgress
		if isMsg {
			added.Content = agent.PartsContent()
		}
		y.send(agent.StreamEvent{Type: wireproto.EventOutputItemAdded, OutputIndex: index, Item: &added})
	}
	if isMsg {
		for i := range item.Content.Parts {
			p := &item.Content.Parts[i]
			// Part 0 of an item opened by deltas was already added and streamed.
			if i > 0 || !wasOpen {
				y.send(agent.StreamEvent{Type: wireproto.EventContentPartAdded, ItemID: item.ID, OutputIndex: index,
					ContentIndex: i, Part: &agent.Part{Type: p.Type}})
				if p.Type == wireproto.PartOutputText && p.Text != "" {
					y.send(agent.StreamEvent{Type: wireproto.EventOutputTextDelta, ItemID: item.ID, OutputIndex: index,
						ContentIndex: i, Delta: p.Text})
				}
			}
			if p.Type == wireproto.PartOutputText {
				y.send(agent.StreamEvent{Type: wireproto.EventOutputTextDone, ItemID: item.ID, OutputIndex: index,
					ContentIndex: i, Text: p.Text})
			}
			y.send(agent.StreamEvent{Type: wireproto.EventContentPartDone, ItemID: item.ID, OutputIndex: index,
				ContentIndex: i, Part: p})
		}
	}
	y.send(agent.StreamEvent{Type: wireproto.EventOutputItemDone, OutputIndex: index, Item: item, CustomOutputs: co})
}

// finish closes items left open and sends response.completed.
func (y *synth) finish() {
	y.fold.Finish()
	y.resp.Status = wireproto.StatusCompleted
	y.send(agent.StreamEvent{Type: wireproto.EventCompleted, Response: y.resp})
}

// serveStream answers with an SSE stream. Preparers have run; from here on
// the status is 200 and failures become an error event.
func (s *Server) serveStream(ctx context.Context, c *gin.Context, req *agent.Request, d dialect.Dialect, st *stateReq, reqID string, release func()) {
	out := s.openSSE(c.Writer)
	defer telemetry.StreamStarted(ctx)() // telemetry: agentrt.streams.active

	resp := &agent.Response{}
	s.envelope(resp, req)
	st.annotate(resp) // state.go
	if s.dev {        // known before the agent runs: response.created carries it too
		resp.CustomOutputs = withDevOutputs(nil, agent.FromContext(ctx))
	}
	y := newSynth(out, resp)

	var mu sync.Mutex
	closed := false
	y.start() // response.created and in_progress: sent with the agent's first event, or by sendOpening
	opening := len(out.buf)

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

	// The agent emits its one shape; the dialect's filter rewrites it on
	// the way to the fold, and releases what it held once the agent is done.
	agentEmit, rewrite := dialect.NewStream(d, s.name, emit)
	defer out.sendOpening(&mu, &closed).Stop()
	err := s.run(ctx, reqID, "predict_stream", release, func() error {
		if err := s.stream(ctx, req, agentEmit); err != nil {
			return err
		}
		return rewrite.Flush()
	})

	mu.Lock()
	defer mu.Unlock()
	closed = true
	if err != nil {
		e := s.streamError(ctx, c, out, reqID, err)
		if e == nil {
			return
		}
		code := strings.ToLower(e.Code)
		if e.Status == http.StatusGatewayTimeout {
			code = "timeout"
		} else if e.Status >= 500 {
			code = "server_error"
		}
		out.unsent(opening)
		y.send(agent.StreamEvent{Type: wireproto.EventError, Code: code, Message: e.Message, Param: e.Param})
		traceFrame(ctx, c.Request, out)
		out.done()
		_ = out.flush()
		return
	}
	y.finish()
	if e := s.saveResponse(ctx, st, resp); e != nil { // state.go: store: true
		out.unsent(opening) // not response.completed: an error instead
		y.send(agent.StreamEvent{Type: wireproto.EventError, Code: strings.ToLower(e.Code), Message: e.Message})
	}
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

// stream runs the agent, streaming: its own PredictStream, or for a
// predict-only agent its answer as one output_item.done per item (every
// streaming route and background runs call it).
func (s *Server) stream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
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
	if err := failedResponse(r); err != nil { // a stream cannot carry it: an error event instead
		return err
	}
	for i := range r.Output {
		if err := emit(agent.ItemDone(r.Output[i])); err != nil {
			return err
		}
	}
	// What the agent says about the whole answer, folded like a streaming
	// agent's own response.completed.
	return emit(&agent.StreamEvent{Type: wireproto.EventCompleted,
		Response: &agent.Response{Usage: r.Usage, CustomOutputs: r.CustomOutputs}})
}

// streamError is what to send as a failed stream's last frame, or nil when
// the client is gone and there is nobody to tell.
func (s *Server) streamError(ctx context.Context, c *gin.Context, out *sse, reqID string, err error) *httperr.Error {
	telemetry.RecordError(ctx, err)
	if c.Request.Context().Err() != nil || out.err != nil {
		s.log.InfoContext(ctx, "stream ended: client went away", "request_id", reqID)
		return nil
	}
	return s.agentError(ctx, c.Request, reqID, "predict_stream", err)
}

package httpapi

// background.go: background runs (background: true). The POST returns at
// once; the run goes on under the caller's identity — the request's context
// values, the credential among them, kept in memory for the run only — and
// appends every event, with its sequence number, to the store, where any
// replica sharing it can poll, stream (tail in stateroutes.go) or cancel it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/dialect"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/store"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// Why a run's context ended early (context.Cause).
var (
	errCancelRequested = errors.New("httpapi: cancel requested")
	errRunDeleted      = errors.New("httpapi: response deleted")
	errShutdown        = errors.New("httpapi: server shutting down")
	errLeaseLost       = errors.New("httpapi: the run's lease lapsed; another replica ended it")
)

// runs tracks the background runs of this process, for the drain.
type runs struct {
	mu      sync.Mutex
	active  map[*bgRun]struct{}
	closing bool
	idle    chan struct{} // closed when active empties while closing
}

// add registers r, or reports false once the drain has begun.
func (rs *runs) add(r *bgRun) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closing {
		return false
	}
	if rs.active == nil {
		rs.active = make(map[*bgRun]struct{})
	}
	rs.active[r] = struct{}{}
	return true
}

func (rs *runs) remove(r *bgRun) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.active, r)
	if rs.closing && len(rs.active) == 0 && rs.idle != nil {
		close(rs.idle)
		rs.idle = nil
	}
}

// DrainBackground stops new background runs and waits for those in flight
// until ctx ends; runs still going then stop and are recorded "incomplete"
// (reason "server_shutdown"), and it waits at most grace more for that. It
// returns an error naming how many runs it had to stop. The host calls it
// on shutdown, alongside the HTTP drain, before closing the store.
func (s *Server) DrainBackground(ctx context.Context, grace time.Duration) error {
	rs := &s.bg
	rs.mu.Lock()
	rs.closing = true
	if len(rs.active) == 0 {
		rs.mu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	rs.idle = idle
	rs.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	rs.mu.Lock()
	n := len(rs.active)
	for r := range rs.active {
		r.stop(errShutdown)
	}
	rs.mu.Unlock()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-idle:
		return fmt.Errorf("httpapi: %d background run(s) did not finish within the drain timeout; recorded as incomplete", n)
	case <-t.C:
		return fmt.Errorf("httpapi: %d background run(s) did not finish within the drain timeout, and not all could be recorded", n)
	}
}

// bgRun is one background run.
type bgRun struct {
	s     *Server
	owner string
	id    string
	reqID string
	stop  context.CancelCauseFunc

	dialect dialect.Dialect
	// renewEvery is the heartbeat that renews the run's lease: a third of
	// the lease, so two missed beats still leave it alive.
	renewEvery time.Duration

	mu     sync.Mutex
	closed bool
	y      *synth
	sink   *eventSink
}

// eventSink appends the synthesised events to the store (the synth's
// framer). The first failure sticks and stops the run.
type eventSink struct {
	ctx   context.Context // not cancelled by the run's end: the last events are still written
	st    store.Store
	owner string
	id    string
	buf   []byte
	err   error
}

func (k *eventSink) frame(ev *agent.StreamEvent) {
	if k.err != nil {
		return
	}
	b, err := wire.AppendEvent(k.buf[:0], ev)
	if err != nil {
		k.err = fmt.Errorf("encoding a %s event: %w", ev.Type, err)
		return
	}
	k.buf = b
	ctx, cancel := context.WithTimeout(k.ctx, storeTimeout)
	k.err = k.st.AppendEvent(ctx, k.owner, k.id, int64(ev.SequenceNumber), b)
	cancel()
}

// startBackground stores the response as in_progress, starts the run and
// answers: the response object, or with stream: true the run's events as
// they are stored (the run goes on if that client leaves).
func (s *Server) startBackground(ctx context.Context, c *gin.Context, req *agent.Request, d dialect.Dialect, st *stateReq, reqID string, release func()) {
	resp := &agent.Response{}
	s.envelope(resp, req)
	st.annotate(resp)
	resp.Status = string(store.StatusInProgress)
	if s.dev {
		resp.CustomOutputs = withDevOutputs(nil, agent.FromContext(ctx))
	}
	obj, _, err := storedForm(resp)
	if err != nil {
		release()
		s.fail(c, s.storeError(ctx, "encode", resp.ID, err))
		return
	}
	// The run keeps the request's values (the caller's Env and credential)
	// but not its cancellation; RequestTimeout bounds it instead.
	base := context.WithoutCancel(ctx)
	rctx, stop := context.WithCancelCause(base)
	var cancelTimeout context.CancelFunc = func() {}
	if d := s.limits.RequestTimeout; d > 0 {
		rctx, cancelTimeout = context.WithTimeout(rctx, d)
	}
	r := &bgRun{s: s, owner: st.owner, id: resp.ID, reqID: reqID, stop: stop, dialect: d}
	r.sink = &eventSink{ctx: base, st: s.store, owner: st.owner, id: resp.ID, buf: make([]byte, 0, 1024)}
	r.y = newSynth(r.sink, resp)
	if !s.bg.add(r) {
		stop(nil)
		cancelTimeout()
		release()
		s.fail(c, httperr.Unavailable("the server is shutting down; retry on another replica", 1))
		return
	}
	stored := &store.Response{
		ID: resp.ID, Owner: st.owner, Status: store.StatusInProgress, Model: resp.Model,
		PreviousResponseID: st.prev, ConversationID: st.conv, Object: obj, Input: st.input,
	}
	err = s.store.Create(ctx, stored)
	if err != nil {
		s.bg.remove(r)
		stop(nil)
		cancelTimeout()
		release()
		s.fail(c, s.storeError(ctx, "create", resp.ID, err))
		return
	}
	// response.created and response.in_progress are the log's first
	// events, written before the answer so a poller finds them.
	r.y.start()
	if r.sink.err != nil {
		s.bg.remove(r)
		stop(nil)
		cancelTimeout()
		release()
		s.fail(c, s.storeError(ctx, "append_event", resp.ID, r.sink.err))
		return
	}
	body, err := wire.AppendResponse(nil, resp)
	r.renewEvery = stored.LeaseExpiresAt.Sub(stored.CreatedAt) / 3
	go func() {
		defer s.bg.remove(r)
		defer cancelTimeout()
		defer stop(nil)
		r.run(rctx, req, release)
	}()
	if req.Stream {
		s.tail(ctx, c, st.owner, resp.ID, -1, stored.LeaseExpiresAt)
		return
	}
	if err != nil {
		s.fail(c, s.storeError(ctx, "encode", resp.ID, err))
		return
	}
	s.extendWrite(c.Writer)
	writeJSON(c.Writer, http.StatusOK, body)
}

// run calls the agent, then records how the run ended.
func (r *bgRun) run(ctx context.Context, req *agent.Request, release func()) {
	s := r.s
	// Cancel requests (from any replica) and deletion stop the run.
	wctx, endWatch := context.WithCancel(ctx)
	defer endWatch()
	go func() {
		switch err := s.store.WaitCancel(wctx, r.owner, r.id); {
		case err == nil:
			r.stop(errCancelRequested)
		case errors.Is(err, store.ErrNotFound):
			r.stop(errRunDeleted)
		}
	}()
	go r.heartbeat(wctx)

	ctx, span := telemetry.StartPredict(ctx, true, req.Input)
	defer span.End()
	emit := func(ev *agent.StreamEvent) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed {
			return errStreamClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.y.handle(ev); err != nil {
			return err
		}
		return r.sink.err
	}
	agentEmit, rewrite := dialect.NewStream(r.dialect, s.name, emit)
	err := s.run(ctx, r.reqID, "background", release, func() error {
		if err := s.stream(ctx, req, agentEmit); err != nil {
			return err
		}
		return rewrite.Flush()
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.record(ctx, err)
}

// record writes the run's last event and final state: completed, failed,
// cancelled or incomplete (shutdown). Nothing is left in_progress unless
// the store itself fails.
func (r *bgRun) record(ctx context.Context, err error) {
	s, y := r.s, r.y
	resp := y.resp
	cause := context.Cause(ctx)
	if r.sink.err != nil && err == nil {
		err = r.sink.err
	}
	var status store.Status
	switch {
	case errors.Is(cause, errRunDeleted):
		return // nothing left to record
	case errors.Is(cause, errLeaseLost):
		s.log.WarnContext(ctx, "background run: its lease lapsed (the store was unreachable or the process stalled); another replica recorded it incomplete", "request_id", r.reqID, "response_id", r.id)
		return
	case err == nil:
		y.finish()
		status = store.StatusCompleted
	case errors.Is(cause, errCancelRequested):
		y.fold.Finish()
		status = store.StatusCancelled
		resp.Status = string(status)
	case errors.Is(cause, errShutdown):
		y.fold.Finish()
		status = store.StatusIncomplete
		resp.Status = string(status)
		resp.IncompleteDetails = json.RawMessage(`{"reason":"server_shutdown"}`)
		y.send(agent.StreamEvent{Type: wireproto.EventIncomplete, Response: resp})
	default:
		y.fold.Finish()
		status = store.StatusFailed
		resp.Status = string(status)
		resp.Error = r.failure(ctx, err)
		y.send(agent.StreamEvent{Type: wireproto.EventFailed, Response: resp})
	}
	obj, out, oerr := storedForm(resp)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if oerr == nil {
		oerr = s.store.Update(sctx, r.owner, r.id, store.Update{Status: &status, Output: out, Object: obj})
	}
	if oerr != nil && r.sink.err == nil {
		// The events are there but not the final state: at least end it.
		oerr = errors.Join(oerr, s.store.Update(sctx, r.owner, r.id, store.Update{Status: &status}))
	}
	if oerr != nil && !errors.Is(oerr, store.ErrNotFound) {
		s.log.ErrorContext(sctx, "background run: recording its end failed", "request_id", r.reqID, "response_id", r.id, "status", status, "error", oerr)
	}
}

// heartbeat renews the run's lease until ctx ends: one store write per
// beat, whatever the run emits. A run another replica has ended as lapsed
// (the store answers ErrFinished) stops; a failed renewal is retried at the
// next beat — if the store stays unreachable past the lease, the run is
// lost and its first reader ends it.
func (r *bgRun) heartbeat(ctx context.Context) {
	if r.renewEvery <= 0 {
		return
	}
	t := time.NewTicker(r.renewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, r.renewEvery)
		_, err := r.s.store.RenewLease(sctx, r.owner, r.id)
		cancel()
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, store.ErrFinished):
			r.stop(errLeaseLost)
			return
		case errors.Is(err, store.ErrNotFound):
			r.stop(errRunDeleted)
			return
		default:
			r.s.log.WarnContext(ctx, "background run: renewing its lease failed", "response_id", r.id, "error", err)
		}
	}
}

// lapseReason is incomplete_details.reason of a run whose process was
// lost (killed, out of memory, node gone) before it could record its end.
const lapseReason = "server_lost"

// lapsed is the store.LapseFunc of this host: the stored object marked
// incomplete (reason lapseReason) and its response.incomplete event. The
// output the run had streamed is in its event log, not in the object.
func lapsed(r *store.Response) (json.RawMessage, json.RawMessage, error) {
	resp, err := loadResponse(r)
	if err != nil {
		return nil, nil, err
	}
	resp.Status = string(store.StatusIncomplete)
	resp.IncompleteDetails = json.RawMessage(`{"reason":"` + lapseReason + `"}`)
	obj, _, err := storedForm(resp)
	if err != nil {
		return nil, nil, err
	}
	ev, err := wire.AppendEvent(nil, &agent.StreamEvent{Type: wireproto.EventIncomplete, SequenceNumber: int(r.LastSeq + 1), Response: resp})
	return obj, ev, err
}

// endLapsed ends the run of response id if its lease has lapsed, and
// reports whether it did. Readers call it when what they read says the
// run is presumed dead; a store failure is logged and reported as false
// (the reader answers with what it read).
func (s *Server) endLapsed(ctx context.Context, owner, id string) bool {
	ended, err := s.store.EndLapsed(ctx, owner, id, lapsed)
	if err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "response store failed", "op", "end_lapsed", "error", err)
	}
	return ended
}

// LeaseJanitor ends, every interval until ctx ends, the background runs
// whose process died (their lease lapsed) that no reader has come across:
// they become incomplete with reason "server_lost". The host runs it
// beside the store's purge; zero means every 10 seconds.
func (s *Server) LeaseJanitor(ctx context.Context, interval time.Duration) {
	if !s.stateOn() {
		return
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.store.ExpireLeases(ctx, lapsed); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "response store: ending lapsed background runs", "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "ended background runs whose process was lost", "runs", n, "reason", lapseReason)
		}
	}
}

// failure is the error member of a failed run, without internals.
func (r *bgRun) failure(ctx context.Context, err error) *agent.ResponseError {
	s := r.s
	var pe *panicError
	switch he, isHTTP := httperr.As(err); {
	case errors.Is(err, r.sink.err) && r.sink.err != nil:
		var tl *store.TooLargeError
		if errors.As(err, &tl) {
			return &agent.ResponseError{Code: "response_too_large", Message: s.storeError(ctx, "append_event", r.id, err).Message}
		}
		s.log.ErrorContext(ctx, "background run: the store failed", "request_id", r.reqID, "error", err)
		return &agent.ResponseError{Code: "server_error", Message: "the response store failed during the run"}
	case isHTTP:
		return &agent.ResponseError{Code: "server_error", Message: he.Message}
	case errors.As(err, &pe):
		s.log.ErrorContext(ctx, "background run panicked", "request_id", r.reqID, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		return &agent.ResponseError{Code: "server_error", Message: "internal error (request " + r.reqID + ")"}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &agent.ResponseError{Code: "timeout", Message: "the run did not complete within " + s.limits.RequestTimeout.String()}
	default:
		s.log.ErrorContext(ctx, "background run failed", "request_id", r.reqID, "error", err)
		return &agent.ResponseError{Code: "server_error", Message: "the agent failed (request " + r.reqID + ")"}
	}
}

var _ = strconv.Itoa

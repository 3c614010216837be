package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/telemetry"
)

// acquire takes a concurrency slot, or reports that none is free. The
// returned release frees it; it must be called exactly once, and only once
// the agent call it admitted has returned (see run).
func (s *Server) acquire() (release func(), ok bool) {
	if s.sem == nil {
		return func() {}, true
	}
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem }, true
	default:
		return nil, false
	}
}

func (s *Server) unavailable() *httperr.Error {
	return httperr.Unavailable("the server is at its concurrency limit; retry later",
		int((s.limits.RetryAfter+time.Second-1)/time.Second))
}

// agentMetrics count agent calls the handler stopped waiting for.
type agentMetrics struct {
	abandoned metric.Int64Counter       // agentrt.agents.abandoned
	running   metric.Int64UpDownCounter // agentrt.agents.abandoned.active
}

// newAgentMetrics builds the instruments on the global meter provider as it
// is when the server is built (after telemetry.Setup), like telemetry.Server.
func newAgentMetrics() agentMetrics {
	m := otel.GetMeterProvider().Meter(telemetry.ScopeName)
	// Errors mean an invalid name (a programming error); the SDK still
	// returns usable no-op instruments.
	var am agentMetrics
	am.abandoned, _ = m.Int64Counter("agentrt.agents.abandoned",
		metric.WithDescription("Agent calls still running when their request ended (timeout or client gone), because the agent did not return on ctx cancellation."),
		metric.WithUnit("{call}"))
	am.running, _ = m.Int64UpDownCounter("agentrt.agents.abandoned.active",
		metric.WithDescription("Abandoned agent calls still running; each holds its concurrency slot."),
		metric.WithUnit("{call}"))
	return am
}

// run calls fn and returns its error. Without a deadline on ctx it calls fn
// on the handler's goroutine. With one, it stops waiting when ctx ends, so
// that the handler answers (504) on time even if fn ignores ctx; fn is then
// abandoned: counted, logged, and it keeps its concurrency slot until it
// returns. release is called exactly once, when fn has returned.
//
// The handler waits as soon as it has handed fn over, so that fn starts
// on the handler's thread at once, not once another thread has woken up
// to take it (on a virtual machine that can take 100 µs).
func (s *Server) run(ctx context.Context, reqID, stage string, release func(), fn func() error) error {
	return s.runCall(&runCall{s: s, ctx: ctx, reqID: reqID, stage: stage, release: release, fn: fn})
}

// predict calls the agent's Predict on the handler's goroutine and
// returns its response; when ok is false the answer (an error) has been
// sent, or the client is gone, and the caller has nothing more to do.
//
// Unlike run, it does not hand the call to another goroutine: that handoff
// (a wake-up of another thread and two goroutine switches) cost more than
// the rest of an echo request. Under the request timeout (call is not nil)
// a watchdog answers for the call instead if it is still running at the
// deadline: it sends the 504 (complete, with Content-Length and
// Connection: close, so that the client neither waits for nor reuses the
// connection the call still holds), and the call is abandoned as run
// describes. release is called once Predict has returned.
func (s *Server) predict(ctx context.Context, call *callCtx, c *gin.Context, reqID string, release func(), req *agent.Request) (resp *agent.Response, ok bool) {
	var err error
	switch {
	case call == nil:
		resp, err = s.invokePredict(ctx, req)
		release()
	case ctx.Err() != nil: // the preparers used up the time, or the client left
		release()
		err = ctx.Err()
	default:
		w := watchdogs.Get().(*watchdog)
		w.s, w.c, w.call, w.reqID = s, c, call, reqID
		w.timer.Reset(time.Until(call.deadline))
		resp, err = s.invokePredict(ctx, req)
		stopped := w.timer.Stop()
		abandoned := !stopped && w.finish()
		if stopped { // fire will not run: w is free again
			w.s, w.c, w.call, w.reqID = nil, nil, nil, ""
			watchdogs.Put(w)
		}
		release()
		if abandoned {
			s.returnedLate(ctx, reqID, "predict", w.abandoned)
			return nil, false
		}
	}
	if err == nil && resp == nil {
		err = errors.New("agent returned neither a response nor an error")
	}
	if err != nil {
		s.answerError(ctx, c, reqID, "predict", err)
		return nil, false
	}
	return resp, true
}

// invokePredict calls Predict, turning a panic into a *panicError.
func (s *Server) invokePredict(ctx context.Context, req *agent.Request) (resp *agent.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return s.agent.Predict(ctx, req)
}

// answerError answers a failed agent call (or stage) with its error, or
// with nothing when the client is gone.
func (s *Server) answerError(ctx context.Context, c *gin.Context, reqID, stage string, err error) {
	telemetry.RecordError(ctx, err)
	if e := s.agentError(ctx, c.Request, reqID, stage, err); e.Status != 499 {
		s.fail(c, e)
	}
}

// watchdog answers for a Predict call still running at its deadline
// (predict). Watchdogs whose timer was stopped before it fired are reused,
// timer and all: a timer and its callback are two allocations a request.
type watchdog struct {
	s     *Server
	c     *gin.Context
	call  *callCtx // what the call's context derives from, whatever preparers added
	reqID string
	timer *time.Timer

	mu        sync.Mutex
	finished  bool      // Predict returned first
	abandoned time.Time // or the watchdog answered first
}

var watchdogs = sync.Pool{New: func() any {
	w := new(watchdog)
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop() // predict sets it
	return w
}}

// fire runs at the deadline. The handler's goroutine is in Predict, so the
// response writer is the watchdog's until finish.
func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return
	}
	w.abandoned = time.Now()
	s, ctx := w.s, w.call
	<-ctx.Done() // the deadline has passed: at once
	s.abandon(ctx, w.reqID, "predict")
	e := s.agentError(ctx, w.c.Request, w.reqID, "predict", ctx.Err())
	if e.Status == 499 {
		return
	}
	telemetry.RecordError(ctx, ctx.Err())
	h := w.c.Writer.Header()
	h.Set("Connection", "close")
	h.Set("Content-Length", strconv.Itoa(len(e.Body())))
	s.fail(w.c, e)
	w.c.Writer.Flush()
}

// finish reports whether the watchdog answered for the call; from here on
// it will not.
func (w *watchdog) finish() (abandoned bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished = true
	return !w.abandoned.IsZero()
}

// runCall makes rc's call as run describes.
func (s *Server) runCall(rc *runCall) error {
	ctx, release := rc.ctx, rc.release
	if _, ok := ctx.Deadline(); !ok {
		defer release()
		return call(rc.fn)
	}
	// One allocation for the state the handler and the call's goroutine
	// share (plus the channel), not one per variable.
	rc.done = make(chan error, 1)
	select {
	case s.callers <- rc: // a caller goroutine is idle: its stack is already grown
	default:
		go s.caller(rc)
	}
	select {
	case err := <-rc.done:
		release()
		return err
	case <-ctx.Done():
	}
	rc.mu.Lock()
	if rc.finished { // fn returned as ctx ended: not abandoned
		rc.mu.Unlock()
		release()
		return <-rc.done
	}
	rc.abandoned = time.Now()
	rc.mu.Unlock()
	s.abandon(ctx, rc.reqID, rc.stage)
	return ctx.Err()
}

// abandon counts and logs an agent call the handler stops waiting for, as
// ctx ends; returnedLate does when it returns.
func (s *Server) abandon(ctx context.Context, reqID, stage string) {
	lctx := context.WithoutCancel(ctx)
	s.agents.abandoned.Add(lctx, 1)
	s.agents.running.Add(lctx, 1)
	s.log.LogAttrs(lctx, slog.LevelWarn, "agent did not return on cancellation; abandoned, its concurrency slot stays taken until it returns",
		slog.String("request_id", reqID), slog.String("stage", stage), slog.String("cause", context.Cause(ctx).Error()))
}

// returnedLate counts and logs the return of a call abandoned at since;
// its concurrency slot has been freed.
func (s *Server) returnedLate(ctx context.Context, reqID, stage string, since time.Time) {
	lctx := context.WithoutCancel(ctx)
	s.agents.running.Add(lctx, -1)
	s.log.LogAttrs(lctx, slog.LevelWarn, "abandoned agent returned; concurrency slot freed",
		slog.String("request_id", reqID), slog.String("stage", stage),
		slog.Duration("late_by", time.Since(since)))
}

// runCall is one agent call run under a deadline (run).
type runCall struct {
	s            *Server
	ctx          context.Context
	reqID, stage string
	release      func()
	fn           func() error
	done         chan error

	mu        sync.Mutex
	finished  bool
	abandoned time.Time // set when the handler gave up on fn
}

// callerIdle is how long a caller goroutine waits for the next agent call
// before it exits. A new goroutine starts with a small stack that every
// agent call grows again by copying (runtime.newstack was 9% of the host's
// CPU in BenchmarkServeEcho); under load, calls reuse waiting goroutines.
// It is short, so that an idle server keeps none (goleak's checks wait less
// than half a second).
const callerIdle = 50 * time.Millisecond

// caller runs rc, then the calls run hands it while it is idle, until none
// comes for callerIdle.
func (s *Server) caller(rc *runCall) {
	t := time.NewTimer(callerIdle)
	defer t.Stop()
	for {
		rc.exec()
		rc = nil            // nothing of the finished call stays reachable
		t.Reset(callerIdle) // Go 1.23 timers: no stale tick after Reset
		select {
		case rc = <-s.callers:
		case <-t.C:
			return
		}
	}
}

// exec runs fn on a goroutine of its own; if the handler has abandoned it by the
// time it returns, it frees the concurrency slot itself.
func (rc *runCall) exec() {
	err := call(rc.fn)
	rc.mu.Lock()
	rc.finished = true
	since := rc.abandoned
	rc.mu.Unlock()
	rc.done <- err
	if !since.IsZero() {
		rc.release()
		rc.s.returnedLate(rc.ctx, rc.reqID, rc.stage, since)
	}
}

// admit does, for a decoded request of any route, what comes between
// decoding and the agent call, in this order: a concurrency slot (503 when
// none is free), the request timeout, and the preparers (identity,
// clients, tools), whose errors are answered like the agent's. When ok is false the answer has been sent and
// nothing is held; otherwise the caller must call call.end (call is nil
// without a request timeout), and release exactly once (run and predict
// do).
//
// The body is in by then (the server's ReadTimeout bounded it; net/http
// lifts the read deadline at its end), and only decoded, valid requests
// compete for a slot. The server's WriteTimeout, counted from the
// request's start, must not cut the answer: whatever writes after the
// agent call or the preparers gives its write a deadline of its own
// (extendWrite, sse.flush).
func (s *Server) admit(c *gin.Context, req *agent.Request) (ctx context.Context, call *callCtx, release func(), ok bool) {
	r := c.Request
	ctx = r.Context()
	env := agent.FromContext(ctx)
	release, ok = s.acquire()
	if !ok {
		s.fail(c, s.unavailable())
		return nil, nil, nil, false
	}
	if d := s.limits.RequestTimeout; d > 0 {
		call = newCallCtx(ctx, d)
		ctx = call
	}
	for _, p := range s.preparers {
		next, err := p.Prepare(ctx, r, env)
		if err != nil {
			s.fail(c, s.stateAuthError(req, s.agentError(ctx, r, env.RequestID, "prepare", err))) // state.go: 404 on a continue
			call.end()
			release()
			return nil, nil, nil, false
		}
		if next != nil {
			ctx = next
		}
	}
	return ctx, call, release, true
}

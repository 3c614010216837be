package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/internal/httperr"
)

// recoverer turns a panic outside the agent call (which has its own
// recovery) into a 500, keeping the server up.
func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				s.fail(c, httperr.Internal("internal error"))
			}
		}
	}()
	c.Next()
}

func (s *Server) fail(c *gin.Context, e *httperr.Error) {
	s.extendWrite(c.Writer)
	e.Write(c.Writer)
	c.Abort()
}

// extendWrite gives the next write its own deadline, however long the
// request has taken, so that a late answer or error is delivered rather
// than cut into an empty reply by an earlier deadline.
func (s *Server) extendWrite(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
}

// extendWriteSince is extendWrite for the answer of a handler that
// started at start, just after net/http set the request's write deadline
// (Limits.ServerWriteTimeout): while that deadline, less a second for the
// middleware between the two, is later than the one extendWrite would set,
// it stands.
func (s *Server) extendWriteSince(w http.ResponseWriter, start time.Time) {
	if sw := s.limits.ServerWriteTimeout; sw > 0 && time.Since(start) < sw-time.Second-s.limits.WriteTimeout {
		return
	}
	s.extendWrite(w)
}

// panicError is an agent panic turned into an error.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// call runs fn, turning a panic into a *panicError.
func call(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return fn()
}

// agentError maps an error from a preparer or the agent to what the client
// gets, logging the details the client must not see.
func (s *Server) agentError(ctx context.Context, r *http.Request, reqID, stage string, err error) *httperr.Error {
	he, isHTTP := httperr.As(err) // an *httperr.Error, or a 503 for an httperr.Retryable
	var pe *panicError
	switch {
	case isHTTP:
		if he.Status >= 500 {
			s.log.ErrorContext(ctx, stage+" failed", "request_id", reqID, "error", err)
		}
		return he
	case errors.As(err, &pe):
		s.log.ErrorContext(ctx, stage+" panicked", "request_id", reqID, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		return httperr.Internal("internal error (request " + reqID + ")")
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil:
		s.log.WarnContext(ctx, stage+" timed out", "request_id", reqID, "timeout", s.limits.RequestTimeout)
		return httperr.Timeout("the request did not complete within " + s.limits.RequestTimeout.String())
	case r.Context().Err() != nil:
		s.log.InfoContext(ctx, "client went away", "request_id", reqID, "stage", stage)
		return httperr.New(499, "client closed the request")
	default:
		s.log.ErrorContext(ctx, stage+" failed", "request_id", reqID, "error", err)
		return httperr.Internal("the agent failed (request " + reqID + ")")
	}
}

package httpapi

// stateroutes.go: the routes that read and change stored responses —
// GET /v1/responses/{id} (JSON, or its event stream from starting_after),
// DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items and
// POST /v1/responses/{id}/cancel — each also without the /v1 prefix, like
// the POST routes.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/store"
	"github.com/agentrt/agentrt/internal/wire"
)

// registerState adds the stored-response routes (routes.go calls it).
func (s *Server) registerState(e *gin.Engine) {
	for _, p := range []string{"/responses", "/v1/responses"} {
		e.GET(p+"/:id", s.getResponse)
		e.DELETE(p+"/:id", s.deleteResponse)
		e.GET(p+"/:id/input_items", s.listInputItems)
		e.POST(p+"/:id/cancel", s.cancelResponse)
	}
}

// stateCaller starts a stored-response route: it answers 400 with the
// store off, runs the preparers that establish the caller, and returns the
// caller's principal id. A caller who owns nothing — anonymous, or one
// whose credential the preparers refused — gets the same 404 as anyone
// asking for an id they do not have.
func (s *Server) stateCaller(c *gin.Context) (ctx context.Context, owner, id string, ok bool) {
	id = c.Param("id")
	if !s.stateOn() {
		s.fail(c, errStoreOff(""))
		return nil, "", id, false
	}
	r := c.Request
	ctx = r.Context()
	env := agent.FromContext(ctx)
	for _, p := range s.statePreparers {
		next, err := p.Prepare(ctx, r, env)
		if err != nil {
			if he, isHTTP := httperr.As(err); isHTTP && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
				s.fail(c, notFound(id))
			} else {
				s.fail(c, s.agentError(ctx, r, env.RequestID, "prepare", err))
			}
			return nil, "", id, false
		}
		if next != nil {
			ctx = next
		}
	}
	owner = env.Caller.PrincipalID
	if owner == "" {
		s.fail(c, notFound(id))
		return nil, "", id, false
	}
	return ctx, owner, id, true
}

// getResponse is GET /v1/responses/{id}: the stored response, or with
// stream=true (a query parameter, or the JSON body openai-go's GetStreaming
// sends) its event stream after starting_after.
func (s *Server) getResponse(c *gin.Context) {
	stream, after, e := streamParams(c)
	if e != nil {
		s.fail(c, e)
		return
	}
	ctx, owner, id, ok := s.stateCaller(c)
	if !ok {
		return
	}
	r, err := s.getLive(ctx, owner, id)
	if err != nil {
		s.fail(c, s.storeError(ctx, "get", id, err))
		return
	}
	if !stream {
		s.writeStored(ctx, c, r)
		return
	}
	if r.LastSeq < 0 && r.Status.Terminal() {
		s.fail(c, httperr.BadRequest("stream", "response "+strconv.Quote(id)+" was not created with background: true; only a background response has an event stream"))
		return
	}
	s.tail(ctx, c, owner, id, after, r.LeaseExpiresAt)
}

// getLive is store.Get that first ends a run whose process was lost (its
// lease lapsed), so no reader sees it in_progress forever.
func (s *Server) getLive(ctx context.Context, owner, id string) (*store.Response, error) {
	r, err := s.store.Get(ctx, owner, id)
	if err == nil && r.Lapsed(time.Now()) && s.endLapsed(ctx, owner, id) {
		r, err = s.store.Get(ctx, owner, id)
	}
	return r, err
}

// streamParams reads stream and starting_after.
func streamParams(c *gin.Context) (stream bool, after int64, e *httperr.Error) {
	q := c.Request.URL.Query()
	if v := q.Get("stream"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, 0, httperr.BadRequest("stream", "stream: want true or false, got "+strconv.Quote(v))
		}
		stream = b
	} else if c.Request.Body != nil && c.Request.ContentLength != 0 {
		// openai-go's GetStreaming sends {"stream": true} as a GET body.
		body, err := io.ReadAll(io.LimitReader(c.Request.Body, 4<<10))
		if err == nil && len(body) > 0 {
			var v struct {
				Stream *bool `json:"stream"`
			}
			if json.Unmarshal(body, &v) == nil && v.Stream != nil {
				stream = *v.Stream
			}
		}
	}
	after = -1
	if v := q.Get("starting_after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < -1 {
			return false, 0, httperr.BadRequest("starting_after", "starting_after: want an event sequence number, got "+strconv.Quote(v))
		}
		if !stream {
			return false, 0, httperr.BadRequest("starting_after", "starting_after needs stream=true")
		}
		after = n
	}
	return stream, after, nil
}

// writeStored answers with a stored response's object.
func (s *Server) writeStored(ctx context.Context, c *gin.Context, r *store.Response) {
	resp, err := loadResponse(r)
	var body []byte
	if err == nil {
		body, err = wire.AppendResponse(nil, resp)
	}
	if err != nil {
		s.fail(c, s.storeError(ctx, "decode", r.ID, err))
		return
	}
	writeJSON(c.Writer, http.StatusOK, body)
}

// deleteResponse is DELETE /v1/responses/{id}; a background run still going
// stops when it notices.
func (s *Server) deleteResponse(c *gin.Context) {
	ctx, owner, id, ok := s.stateCaller(c)
	if !ok {
		return
	}
	if err := s.store.Delete(ctx, owner, id); err != nil {
		s.fail(c, s.storeError(ctx, "delete", id, err))
		return
	}
	body, _ := json.Marshal(struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Deleted bool   `json:"deleted"`
	}{id, "response", true})
	writeJSON(c.Writer, http.StatusOK, body)
}

// listInputItems is GET /v1/responses/{id}/input_items: OpenAI's list
// object, paged with after, limit (1–100, default 20) and order (asc or
// desc, the default).
func (s *Server) listInputItems(c *gin.Context) {
	q := c.Request.URL.Query()
	o := store.ListOptions{After: q.Get("after"), Order: store.Order(q.Get("order"))}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.fail(c, httperr.BadRequest("limit", "limit: want an integer from 1 to 100, got "+strconv.Quote(v)))
			return
		}
		o.Limit = n
	}
	if o.Order != "" && o.Order != store.Asc && o.Order != store.Desc {
		s.fail(c, httperr.BadRequest("order", "order: want asc or desc, got "+strconv.Quote(string(o.Order))))
		return
	}
	ctx, owner, id, ok := s.stateCaller(c)
	if !ok {
		return
	}
	p, err := s.store.InputItems(ctx, owner, id, o)
	if err != nil {
		s.fail(c, s.storeError(ctx, "input_items", id, err))
		return
	}
	b := append(make([]byte, 0, 256), `{"object":"list","data":[`...)
	for i, it := range p.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.Data...)
	}
	b = append(b, `],"first_id":`...)
	b = appendIDOrNull(b, p.FirstID)
	b = append(b, `,"last_id":`...)
	b = appendIDOrNull(b, p.LastID)
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, p.HasMore)
	b = append(b, '}')
	writeJSON(c.Writer, http.StatusOK, b)
}

func appendIDOrNull(b []byte, id string) []byte {
	if id == "" {
		return append(b, "null"...)
	}
	q, _ := json.Marshal(id)
	return append(b, q...)
}

// cancelWait bounds how long cancel waits for a run to stop before it
// answers with the response as it is (still in_progress).
const cancelWait = 5 * time.Second

// cancelResponse is POST /v1/responses/{id}/cancel: it asks the run to stop
// (on whichever replica runs it), waits briefly for it to record
// "cancelled", and answers with the response. A finished response is
// answered as it is.
func (s *Server) cancelResponse(c *gin.Context) {
	ctx, owner, id, ok := s.stateCaller(c)
	if !ok {
		return
	}
	status, err := s.store.RequestCancel(ctx, owner, id)
	if err != nil {
		s.fail(c, s.storeError(ctx, "request_cancel", id, err))
		return
	}
	if !status.Terminal() && !s.endLapsed(ctx, owner, id) {
		wctx, cancel := context.WithTimeout(ctx, cancelWait)
		for after := int64(-1); ; {
			p, err := s.store.WaitEvents(wctx, owner, id, after)
			if err != nil || p.Status.Terminal() {
				break
			}
			after = p.LastSeq
		}
		cancel()
	}
	r, err := s.store.Get(ctx, owner, id)
	if err != nil {
		s.fail(c, s.storeError(ctx, "get", id, err))
		return
	}
	s.writeStored(ctx, c, r)
}

// waitEvents is store.WaitEvents until the run's lease expires: then, if
// the run is presumed dead, it ends it (the wait returns with the terminal
// event written); if its process renewed the lease, it reads the new one
// into *lease and waits on.
func (s *Server) waitEvents(ctx context.Context, owner, id string, after int64, lease *time.Time) (store.Progress, error) {
	for {
		if lease.IsZero() {
			return s.store.WaitEvents(ctx, owner, id, after)
		}
		// A little after the expiry, so the store's clock agrees it passed.
		wctx, cancel := context.WithDeadline(ctx, lease.Add(leaseSlack))
		p, err := s.store.WaitEvents(wctx, owner, id, after)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			if err == nil {
				*lease = p.LeaseExpiresAt
			}
			return p, err
		}
		if s.endLapsed(ctx, owner, id) {
			continue // the next wait sees the terminal event
		}
		r, err := s.store.Get(ctx, owner, id)
		if err != nil {
			return store.Progress{}, err
		}
		next := r.LeaseExpiresAt
		if r.Status.Terminal() || !next.After(*lease) {
			// Ended meanwhile, or not renewed and yet not lapsed (a store
			// failure, logged by endLapsed): wait without the lease check
			// for a bit rather than spin.
			next = time.Now().Add(leaseRetry)
		}
		*lease = next
	}
}

// leaseSlack and leaseRetry tune waitEvents' lease checks.
const (
	leaseSlack = 5 * time.Millisecond
	leaseRetry = time.Second
)

// tailBatch is how many events one read of the log returns.
const tailBatch = 256

// tail streams a response's event log after `after` as SSE, in the POST
// stream's framing, waiting for new events until the response is final;
// then [DONE]. A client that loses the connection comes back with
// starting_after set to the last sequence number it saw.
//
// lease is the run's lease as last read: while it waits, the tail checks
// again when it expires, and ends a run whose process was lost (its
// response.incomplete event then ends the stream like any other).
func (s *Server) tail(ctx context.Context, c *gin.Context, owner, id string, after int64, lease time.Time) {
	out := s.openSSE(c.Writer)
	_ = out.flush() // the headers
	for {
		evs, err := s.store.Events(ctx, owner, id, after, tailBatch)
		if err == nil && len(evs) == 0 {
			var p store.Progress
			p, err = s.waitEvents(ctx, owner, id, after, &lease)
			if err == nil {
				if p.LastSeq <= after && p.Status.Terminal() {
					out.done()
					_ = out.flush()
					return
				}
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return // the client went away
			}
			msg := "the response store is unavailable; re-attach with starting_after=" + strconv.FormatInt(after, 10)
			if errors.Is(err, store.ErrNotFound) {
				msg = "the response was deleted"
			} else {
				s.log.ErrorContext(ctx, "response store failed", "op", "events", "error", err)
			}
			ev := agent.StreamEvent{Type: "error", SequenceNumber: int(after + 1), Code: "server_error", Message: msg}
			out.frame(&ev)
			out.done()
			_ = out.flush()
			return
		}
		for _, ev := range evs {
			out.buf = append(out.buf, "data: "...)
			out.buf = append(out.buf, ev.Data...)
			out.buf = append(out.buf, '\n', '\n')
			after = ev.Seq
		}
		if out.flush() != nil {
			return
		}
	}
}

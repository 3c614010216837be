package httpapi

// OpenAI's Chat Completions API over the same agent as the Responses routes:
// POST /v1/chat/completions (JSON and SSE) and GET /v1/models. A chat
// request runs exactly like a Responses request (same limits, admission,
// preparers, deadlines, predict span and error bodies); only the decoding
// of the request and the encoding of the answer differ, and both live in
// internal/chat.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/chat"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/wireproto"
)

// registerChat adds the Chat Completions and model routes, with and without
// the /v1 prefix like the Responses routes (OpenAI clients take a base URL
// either way).
func (s *Server) registerChat(e *gin.Engine) {
	for _, p := range []string{"/chat/completions", "/v1/chat/completions"} {
		e.POST(p, s.handleChat)
	}
	// The one model is the served agent; its created time is the host's
	// start. Like /agent/info these need no credential: they say only
	// what the host serves.
	created := time.Now().Unix()
	list := chat.AppendModelList(nil, s.name, created)
	model := chat.AppendModel(nil, s.name, created)
	for _, p := range []string{"/models", "/v1/models"} {
		e.GET(p, func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, list) })
		e.GET(p+"/:model", func(c *gin.Context) {
			if id := c.Param("model"); id != s.name {
				s.fail(c, httperr.NotFound("no model "+strconv.Quote(id)+"; this host serves "+strconv.Quote(s.name)))
				return
			}
			writeJSON(c.Writer, http.StatusOK, model)
		})
	}
}

// handleChat serves POST /chat/completions and /v1/chat/completions.
//
// The request's model is not checked, as on the Responses routes: the host
// serves one agent, whatever name the client knows it by, and the answer
// echoes the name the client sent (the agent's when it sent none).
func (s *Server) handleChat(c *gin.Context) {
	r, w := c.Request, c.Writer
	start := time.Now()
	reqID := agent.FromContext(r.Context()).RequestID // from begin

	body, bp, ok := s.body(c)
	if !ok {
		return
	}
	defer putBuf(bp)
	creq, err := chat.DecodeRequest(body) // copies what it keeps: bp is free again
	if err != nil {
		s.fail(c, badRequest(err))
		return
	}
	req := creq.Agent
	meta := chat.NewMeta(creq.Model)
	if meta.Model == "" {
		meta.Model = s.name
	}

	ctx, call, release, ok := s.admit(c, req)
	if !ok {
		return
	}
	defer call.end()
	held := true // until run takes over release
	defer func() {
		if held {
			release()
		}
	}()

	ctx, span := telemetry.StartPredict(ctx, req.Stream, req.Input)
	defer span.End()

	held = false
	if creq.Stream {
		s.serveChatStream(ctx, c, creq, meta, reqID, release)
	} else {
		s.serveChatJSON(ctx, call, c, req, meta, reqID, release, bp, start)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "request",
			slog.String("request_id", reqID), slog.String("path", r.URL.Path),
			slog.Bool("stream", creq.Stream), slog.Int("status", w.Status()),
			slog.Duration("duration", time.Since(start)))
	}
}

// errFailedResponse is an agent answer with status failed: a chat
// completion cannot carry it, so the client gets the agent's 500.
var errFailedResponse = errors.New("agent answered with a failed response")

func failedResponse(resp *agent.Response) error {
	if resp.Status != wireproto.StatusFailed && resp.Error == nil {
		return nil
	}
	if resp.Error != nil {
		return errors.Join(errFailedResponse, errors.New(resp.Error.Message))
	}
	return errFailedResponse
}

func (s *Server) serveChatJSON(ctx context.Context, call *callCtx, c *gin.Context, req *agent.Request, meta chat.Meta, reqID string, release func(), bp *[]byte, start time.Time) {
	resp, ok := s.predict(ctx, call, c, reqID, release, req)
	if !ok {
		return
	}
	if err := failedResponse(resp); err != nil {
		s.answerError(ctx, c, reqID, "predict", err)
		return
	}
	body := chat.AppendCompletion((*bp)[:0], meta, resp)
	*bp = body[:0]
	s.extendWriteSince(c.Writer, start)
	setContentLength(c.Writer, len(body))
	writeJSON(c.Writer, http.StatusOK, body)
}

// serveChatStream answers with chat.completion.chunk frames. Preparers have
// run; from here on the status is 200, and a failure is an error frame
// carrying the error body the JSON answer would have had, then [DONE].
func (s *Server) serveChatStream(ctx context.Context, c *gin.Context, creq *chat.Request, meta chat.Meta, reqID string, release func()) {
	req := creq.Agent
	out := s.openSSE(c.Writer)
	defer telemetry.StreamStarted(ctx)() // telemetry: agentrt.streams.active

	cs := chat.NewStream(meta, creq.IncludeUsage)
	out.buf = cs.Start(out.buf) // sent with the agent's first event, or by sendOpening
	opening := len(out.buf)

	var mu sync.Mutex
	closed := false
	emit := func(ev *agent.StreamEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return errStreamClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if ev == nil {
			return errors.New("httpapi: nil stream event")
		}
		out.buf = cs.Event(out.buf, ev)
		return out.flush()
	}

	defer out.sendOpening(&mu, &closed).Stop()
	err := s.run(ctx, reqID, "predict_stream", release, func() error { return s.stream(ctx, req, emit) })

	mu.Lock()
	defer mu.Unlock()
	closed = true
	if err != nil {
		e := s.streamError(ctx, c, out, reqID, err)
		if e == nil {
			return
		}
		out.unsent(opening)
		out.buf = chat.AppendError(out.buf, e.Body())
		_ = out.flush()
		return
	}
	out.buf = cs.Finish(out.buf)
	if err := out.flush(); err != nil {
		s.log.InfoContext(ctx, "stream ended: client went away", "request_id", reqID)
	}
}

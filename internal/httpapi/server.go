// Package httpapi is the HTTP surface of the agentrt host: the gin engine
// that answers the Responses API (OpenAI and MLflow dialects, JSON and SSE)
// for one agent, with the limits, error bodies and panic recovery around it.
// It prepares each request's agent.Env through Preparers, then runs the agent.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/tools"
)

// Preparer fills fields of the request environment before the agent runs
// (caller identity, clients, tools) and may return a derived context (for
// example one carrying the caller's credential). An error that is an
// *httperr.Error is answered with its status; any other error is a 500.
type Preparer interface {
	Prepare(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error)
}

// PreparerFunc adapts a function to Preparer.
type PreparerFunc func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error)

// Prepare calls f.
func (f PreparerFunc) Prepare(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
	return f(ctx, r, env)
}

// Defaults for Limits.
const (
	DefaultMaxBodyBytes = 10 << 20
	DefaultWriteTimeout = 30 * time.Second
	DefaultRetryAfter   = time.Second
)

// Limits bound what one request may use. Zero values take the defaults.
type Limits struct {
	// MaxBodyBytes caps the request body (413 above it). Default 10 MiB.
	MaxBodyBytes int64
	// MaxConcurrency caps agent requests in flight (503 with Retry-After
	// above it). Zero means no cap.
	MaxConcurrency int
	// RequestTimeout bounds one agent call (504, or an error event once a
	// stream has started). Zero means no bound.
	RequestTimeout time.Duration
	// WriteTimeout bounds each write of an agent request's answer: every
	// stream flush, the JSON answer and any error body get a deadline of
	// now+WriteTimeout, and the agent call itself runs under a deadline of
	// RequestTimeout+WriteTimeout, so answers (including a 504) outlive
	// the net/http server's own WriteTimeout. Default 30s.
	WriteTimeout time.Duration
	// RetryAfter is the Retry-After sent with a 503. Default 1s.
	RetryAfter time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = DefaultRetryAfter
	}
	return l
}

// Options configure a Server.
type Options struct {
	Agent     agent.Agent // required; if it is also an agent.StreamAgent it streams natively
	AgentName string      // reported by /agent/info and used as the response model by default
	Manifest  agent.Manifest
	Preparers []Preparer // run in order before every agent call
	Limits    Limits
	Logger    *slog.Logger // default slog.Default()
	Dev       bool         // copied into every agent.Env
	// Telemetry, when set (telemetry.NewServer, after telemetry.Setup),
	// gives every request a server span and the HTTP server metrics.
	Telemetry *telemetry.Server
	CORS      *CORS // cross-origin browser access (cors.go); nil: none
}

// Server serves one agent.
type Server struct {
	agent     agent.Agent
	streamer  agent.StreamAgent
	name      string
	preparers []Preparer
	limits    Limits
	log       *slog.Logger
	dev       bool
	sem       chan struct{}
	agents    agentMetrics
	info      []byte
	engine    *gin.Engine
	tel       *telemetry.Server
}

// New builds the server and its gin engine (in release mode).
func New(opts Options) (*Server, error) {
	if opts.Agent == nil {
		return nil, errors.New("httpapi: Options.Agent is required")
	}
	if err := opts.Manifest.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		agent:     opts.Agent,
		name:      opts.AgentName,
		preparers: append([]Preparer(nil), opts.Preparers...),
		limits:    opts.Limits.withDefaults(),
		log:       opts.Logger,
		dev:       opts.Dev,
		tel:       opts.Telemetry,
		agents:    newAgentMetrics(),
	}
	if s.name == "" {
		s.name = "agent"
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.streamer, _ = opts.Agent.(agent.StreamAgent)
	if n := s.limits.MaxConcurrency; n > 0 {
		s.sem = make(chan struct{}, n)
	}
	info, err := json.Marshal(map[string]any{
		"name":      s.name,
		"use_case":  "agent",
		"agent_api": "responses",
		"streaming": true,
		"manifest":  opts.Manifest.MLflow(),
	})
	if err != nil {
		return nil, err
	}
	s.info = info

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.begin, s.recoverer, opts.CORS.Handler())
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, httperr.NotFound("no route for "+c.Request.Method+" "+c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, httperr.MethodNotAllowed("method "+c.Request.Method+" is not allowed on "+c.Request.URL.Path))
	})
	for _, p := range []string{"/responses", "/v1/responses", "/invocations"} {
		e.POST(p, s.handle)
	}
	s.registerChat(e) // chat.go: /v1/chat/completions, /v1/models
	e.GET("/health", func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, healthBody) })
	e.GET("/ping", func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, pingBody) })
	e.GET("/agent/info", func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, s.info) })
	s.engine = e
	return s, nil
}

var (
	healthBody = []byte(`{"status":"healthy"}`)
	pingBody   = []byte("\n") // what MLflow's scoring server answers
)

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Engine exposes the gin engine so that the host can mount more routes
// (metrics, dev console) next to the agent's.
func (s *Server) Engine() *gin.Engine { return s.engine }

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// begin starts every request: its agent.Env with the request id (echoed in
// X-Request-Id, so a client can quote it for any failure) and, with
// telemetry, its server span and metrics, named after the matched route.
func (s *Server) begin(c *gin.Context) {
	r := c.Request
	env := &agent.Env{RequestID: requestID(r.Header.Get("X-Request-Id")), Dev: s.dev, TracePayloads: telemetry.PayloadsEnabled()}
	c.Writer.Header().Set("X-Request-Id", env.RequestID)
	ctx, q := s.tel.Start(agent.NewContext(r.Context(), env), r, c.FullPath())
	c.Request = r.WithContext(ctx)
	// Deferred, so a request whose handler panics past the recoverer
	// (http.ErrAbortHandler) still ends its span.
	defer func() { q.End(c.Writer.Status()) }()
	c.Next()
}

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

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) {
	if cap(*b) <= 1<<20 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// handle serves POST /responses, /v1/responses and /invocations.
func (s *Server) handle(c *gin.Context) {
	r, w := c.Request, c.Writer
	start := time.Now()

	ctx := r.Context()
	env := agent.EnvFrom(ctx) // from begin
	reqID := env.RequestID

	if e := checkContentType(r.Header.Get("Content-Type")); e != nil {
		s.fail(c, e)
		return
	}

	bp := getBuf()
	defer putBuf(bp)
	body, e := s.readBody(w, r, *bp)
	*bp = body[:0]
	if e != nil {
		s.fail(c, e)
		return
	}
	req, err := agent.DecodeRequest(body)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		s.fail(c, badRequest(err))
		return
	}

	// The body is in (the server's ReadTimeout bounded it; net/http lifts
	// the read deadline at its end). The server's WriteTimeout, counted
	// from the request's start, must not cut the answer: the write
	// deadline now covers the whole agent call plus one write.
	rc := http.NewResponseController(w)
	if d := s.limits.RequestTimeout; d > 0 {
		_ = rc.SetWriteDeadline(time.Now().Add(d + s.limits.WriteTimeout)) // unsupported on recorders: ignore
	} else {
		_ = rc.SetWriteDeadline(time.Time{}) // each write sets its own
	}

	// Admission after the body: only decoded, valid requests compete for
	// a slot, and the slot is freed when the agent call has returned.
	release, ok := s.acquire()
	if !ok {
		s.fail(c, s.unavailable())
		return
	}
	held := true // until run takes over release
	defer func() {
		if held {
			release()
		}
	}()

	if d := s.limits.RequestTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	for _, p := range s.preparers {
		next, err := p.Prepare(ctx, r, env)
		if err != nil {
			s.fail(c, s.agentError(ctx, r, reqID, "prepare", err))
			return
		}
		if next != nil {
			ctx = next
		}
	}

	// telemetry: the predict span around the agent call (preparers' spans are its siblings).
	ctx, span := telemetry.StartPredict(ctx, req.Stream, req.Input)
	defer span.End()

	held = false
	if req.Stream {
		s.serveStream(ctx, c, req, reqID, release)
	} else {
		s.serveJSON(ctx, c, req, reqID, release, bp)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "request",
			slog.String("request_id", reqID), slog.String("path", r.URL.Path),
			slog.Bool("stream", req.Stream), slog.Int("status", w.Status()),
			slog.Duration("duration", time.Since(start)))
	}
}

// requestID keeps a caller's id if it is short printable ASCII (it is
// echoed in headers and logs), else makes one.
func requestID(h string) string {
	if h == "" || len(h) > 128 {
		return agent.NewID("req")
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x21 || h[i] > 0x7e {
			return agent.NewID("req")
		}
	}
	return h
}

func checkContentType(ct string) *httperr.Error {
	if ct == "" || ct == "application/json" {
		return nil // clients that send no type get the benefit of the doubt
	}
	mt, params, _ := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return httperr.UnsupportedMediaType("content type " + strconv.Quote(ct) + " is not supported; send application/json")
	}
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "charset") {
			v = strings.Trim(v, `"`)
			if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") {
				return httperr.UnsupportedMediaType("charset " + strconv.Quote(v) + " is not supported; send utf-8")
			}
		}
	}
	return nil
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, *httperr.Error) {
	limit := s.limits.MaxBodyBytes
	if r.ContentLength > limit {
		return buf, tooLarge(limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > 0 && int64(cap(buf)) < n+1 {
		buf = make([]byte, 0, n+1)
	}
	b := bytes.NewBuffer(buf)
	if _, err := b.ReadFrom(body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return b.Bytes(), tooLarge(limit)
		}
		return b.Bytes(), httperr.BadRequest("", "could not read the request body")
	}
	if b.Len() == 0 {
		return b.Bytes(), httperr.BadRequest("", "empty request body; send a JSON object with an input")
	}
	return b.Bytes(), nil
}

func tooLarge(limit int64) *httperr.Error {
	return httperr.TooLarge("request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes")
}

func badRequest(err error) *httperr.Error {
	var fe *agent.FieldError
	if errors.As(err, &fe) {
		msg := "invalid request: " + fe.Error()
		return httperr.BadRequest(fe.Field, msg)
	}
	return httperr.BadRequest("", "invalid request: "+err.Error())
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

func (s *Server) serveJSON(ctx context.Context, c *gin.Context, req *agent.Request, reqID string, release func(), bp *[]byte) {
	var resp *agent.Response
	err := s.run(ctx, reqID, "predict", release, func() error {
		var err error
		resp, err = s.agent.Predict(ctx, req)
		if err == nil && resp == nil {
			err = errors.New("agent returned neither a response nor an error")
		}
		return err
	})
	if err != nil {
		telemetry.RecordError(ctx, err)
		e := s.agentError(ctx, c.Request, reqID, "predict", err)
		if e.Status != 499 {
			s.fail(c, e)
		}
		return
	}
	s.completeResponse(resp, req)
	if s.dev {
		resp.CustomOutputs = withDevOutputs(resp.CustomOutputs, agent.EnvFrom(ctx))
	}
	if telemetry.WantsTraceID(c.Request.Header) { // MLflow's x-mlflow-return-trace-id
		resp.Metadata = maps.Clone(resp.Metadata) // may be the request's map
		if resp.Metadata == nil {
			resp.Metadata = map[string]string{}
		}
		resp.Metadata["trace_id"] = telemetry.MLflowTraceID(ctx)
	}
	body, err := resp.AppendJSON((*bp)[:0])
	if err != nil {
		s.fail(c, s.agentError(ctx, c.Request, reqID, "encode", err))
		return
	}
	*bp = body[:0]
	s.extendWrite(c.Writer)
	c.Writer.Header().Set("Content-Length", strconv.Itoa(len(body)))
	writeJSON(c.Writer, http.StatusOK, body)
}

// withDevOutputs adds, in dev mode, what a developer wants to see in every
// answer (the tools dropped for this caller, and why) to the agent's own
// custom_outputs, which win on a clash.
func withDevOutputs(co map[string]any, env *agent.Env) map[string]any {
	dev := tools.DevOutputs(env)
	if len(dev) == 0 {
		return co
	}
	out := make(map[string]any, len(co)+len(dev))
	maps.Copy(out, dev)
	maps.Copy(out, co)
	return out
}

// envelope fills the OpenAI response fields from the request.
func (s *Server) envelope(resp *agent.Response, req *agent.Request) {
	if resp.ID == "" {
		resp.ID = agent.NewID("resp")
	}
	if resp.Object == "" {
		resp.Object = "response"
	}
	if resp.CreatedAt == 0 {
		resp.CreatedAt = float64(time.Now().Unix())
	}
	if resp.Model == "" {
		resp.Model = req.Model
		if resp.Model == "" {
			resp.Model = s.name
		}
	}
	if resp.ParallelToolCalls == nil {
		ptc := true
		if req.ParallelToolCalls != nil {
			ptc = *req.ParallelToolCalls
		}
		resp.ParallelToolCalls = &ptc
	}
	if resp.ToolChoice == nil {
		resp.ToolChoice = req.ToolChoice
		if resp.ToolChoice == nil {
			resp.ToolChoice = autoChoice
		}
	}
	if resp.Tools == nil {
		resp.Tools = req.Tools
		if resp.Tools == nil {
			resp.Tools = []agent.ToolSpec{}
		}
	}
	if resp.Instructions == "" {
		resp.Instructions = req.Instructions
	}
	if resp.Metadata == nil {
		resp.Metadata = req.Metadata
	}
	if resp.Temperature == nil {
		resp.Temperature = req.Temperature
	}
	if resp.TopP == nil {
		resp.TopP = req.TopP
	}
	if resp.MaxOutputTokens == nil {
		resp.MaxOutputTokens = req.MaxOutputTokens
	}
	if resp.PreviousResponseID == "" {
		resp.PreviousResponseID = req.PreviousResponseID
	}
	if resp.Truncation == "" {
		resp.Truncation = req.Truncation
	}
	if resp.User == "" {
		resp.User = req.User
	}
	if resp.Output == nil {
		resp.Output = []agent.Item{}
	}
}

var autoChoice = json.RawMessage(`"auto"`)

func (s *Server) completeResponse(resp *agent.Response, req *agent.Request) {
	s.envelope(resp, req)
	if resp.Status == "" {
		resp.Status = agent.StatusCompleted
	}
	for i := range resp.Output {
		normalizeItem(&resp.Output[i])
	}
}

// normalizeItem gives an output item what OpenAI clients require: an id
// (on the types whose output schema requires one), a status, a role on
// messages.
func normalizeItem(it *agent.Item) {
	switch it.Kind() {
	case agent.TypeMessage:
		if it.Type == "" {
			it.Type = agent.TypeMessage
		}
		if it.Role == "" {
			it.Role = "assistant"
		}
		if it.ID == "" {
			it.ID = agent.NewID("msg")
		}
		if it.Content.Parts == nil {
			// A message answered as a plain string becomes one output_text part.
			it.Content = agent.PartsContent(agent.Part{Type: agent.PartOutputText, Text: it.Content.Text})
		}
	case agent.TypeFunctionCall:
		if it.ID == "" {
			it.ID = agent.NewID("fc")
		}
	case agent.TypeReasoning:
		if it.ID == "" {
			it.ID = agent.NewID("rs")
		}
	case agent.TypeFunctionCallOutput:
		// An output item (FunctionToolCallOutputResource) needs an id;
		// input items may go without, so agents often leave it out.
		if it.ID == "" {
			it.ID = agent.NewID("fco")
		}
	}
	if it.Status == "" {
		it.Status = agent.StatusCompleted
	}
}

var _ io.Writer = (gin.ResponseWriter)(nil)

package httpapi

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/dialect"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/wire"
	"github.com/agentrt/agentrt/internal/wireproto"
	"github.com/agentrt/agentrt/tools"
)

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
	env := agent.FromContext(ctx) // from begin
	reqID := env.RequestID

	body, bp, ok := s.body(c)
	if !ok {
		return
	}
	defer putBuf(bp)
	req, err := wire.DecodeRequest(body)
	if err == nil {
		markReferences(req) // state.go: an input item that is only an id is an item_reference
		err = wire.Validate(req)
	}
	if err != nil {
		s.fail(c, badRequest(err))
		return
	}
	background, e := s.checkState(req) // state.go: state fields with the store off; background
	var d dialect.Dialect
	if e == nil {
		d, e = dialectOf(r, c.FullPath())
	}
	if e == nil {
		e = s.unhonoured(req)
	}
	if e != nil {
		s.fail(c, e)
		return
	}

	// The body is in, decoded and valid: only such requests compete for a
	// slot (admit.go).
	ctx, call, release, ok := s.admit(c, req)
	if !ok {
		return
	}
	defer call.end()

	// state.go: store, previous_response_id, item_reference, conversation.
	st, e := s.beginState(ctx, req, background)
	if e != nil {
		release()
		s.fail(c, e)
		return
	}
	if st.background { // background.go: the run outlives this request
		s.startBackground(ctx, c, req, d, st, reqID, release)
		return
	}

	// telemetry: the predict span around the agent call (preparers' spans are its siblings).
	ctx, span := telemetry.StartPredict(ctx, req.Stream, req.Input)
	defer span.End()

	if req.Stream {
		s.serveStream(ctx, c, req, d, st, reqID, release)
	} else {
		s.serveJSON(ctx, call, c, req, d, st, reqID, release, bp, start)
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
		return newRequestID()
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x21 || h[i] > 0x7e {
			return newRequestID()
		}
	}
	return h
}

// newRequestID is "req_" and 32 hex digits, like agent.NewID("req"), from
// math/rand/v2's per-thread ChaCha8 generator instead of crypto/rand: a
// request id must be unique, not secret (it is echoed to the client and
// logged), and this one costs no system call.
func newRequestID() string {
	var b [4 + 32]byte
	copy(b[:], "req_")
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	hex.Encode(b[4:], raw[:])
	return string(b[:])
}

func (s *Server) serveJSON(ctx context.Context, call *callCtx, c *gin.Context, req *agent.Request, d dialect.Dialect, st *stateReq, reqID string, release func(), bp *[]byte, start time.Time) {
	resp, ok := s.predict(ctx, call, c, reqID, release, req)
	if !ok {
		return
	}
	resp.Output = dialect.Output(d, s.name, resp.Output)
	s.completeResponse(resp, req)
	st.annotate(resp) // state.go
	if s.dev {
		resp.CustomOutputs = withDevOutputs(resp.CustomOutputs, agent.FromContext(ctx))
	}
	if telemetry.WantsTraceID(c.Request.Header) { // MLflow's x-mlflow-return-trace-id
		resp.Metadata = maps.Clone(resp.Metadata) // may be the request's map
		if resp.Metadata == nil {
			resp.Metadata = map[string]string{}
		}
		resp.Metadata["trace_id"] = telemetry.MLflowTraceID(ctx)
	}
	if e := s.saveResponse(ctx, st, resp); e != nil { // state.go: store: true
		s.fail(c, e)
		return
	}
	body, err := wire.AppendResponse((*bp)[:0], resp)
	if err != nil {
		s.fail(c, s.agentError(ctx, c.Request, reqID, "encode", err))
		return
	}
	*bp = body[:0]
	s.extendWriteSince(c.Writer, start)
	setContentLength(c.Writer, len(body))
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
		resp.Status = wireproto.StatusCompleted
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
			it.Content = agent.PartsContent(agent.Part{Type: wireproto.PartOutputText, Text: it.Content.Text})
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
		it.Status = wireproto.StatusCompleted
	}
}

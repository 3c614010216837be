package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/payloads"
	"github.com/agentrt/agentrt/internal/telemetry"
)

// routes builds the gin engine: the one place where middleware and routes
// are registered. Middleware runs in the order given to Use: begin (request
// id, agent.Env, telemetry span) first, so that everything after it, error
// answers included, carries the request id; then the panic recoverer; then
// CORS (cors.go), which must see every route, NoRoute and NoMethod included.
func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.begin, s.recoverer, s.cors.Handler())
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, httperr.NotFound("no route for "+c.Request.Method+" "+c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, httperr.MethodNotAllowed("method "+c.Request.Method+" is not allowed on "+c.Request.URL.Path))
	})
	for _, p := range []string{"/responses", "/v1/responses", "/invocations"} {
		e.POST(p, s.handle)
	}
	s.registerState(e) // stateroutes.go: GET/DELETE /v1/responses/{id}, input_items, cancel
	s.registerChat(e)  // chat.go: /v1/chat/completions, /v1/models
	e.GET("/health", func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, healthBody) })
	e.GET("/ping", func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, pingBody) })
	e.GET("/agent/info", func(c *gin.Context) { writeJSON(c.Writer, http.StatusOK, s.info) })
	return e
}

var (
	healthBody = []byte(`{"status":"healthy"}`)
	pingBody   = []byte("\n") // what MLflow's scoring server answers
)

// jsonContentType is shared by every answer and never modified (gin's
// renderers do the same): Header().Set would allocate a slice per request.
var jsonContentType = []string{"application/json"}

// setContentLength declares the length of a body written in one Write.
// net/http declares it by itself for a body that fits its 2 KiB buffer
// (and allocates nothing for that); a larger one would go out chunked.
func setContentLength(w http.ResponseWriter, n int) {
	if n > 2048 {
		w.Header()["Content-Length"] = []string{strconv.Itoa(n)}
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// begun is what begin allocates per request.
type begun struct {
	env agent.Env
	id  [1]string // the X-Request-Id header's value
}

// begin starts every request: its agent.Env with the request id (echoed in
// X-Request-Id, so a client can quote it for any failure) and, with
// telemetry, its server span and metrics, named after the matched route.
func (s *Server) begin(c *gin.Context) {
	r := c.Request
	// The env and the X-Request-Id header value in one allocation.
	st := &begun{env: agent.Env{RequestID: requestID(r.Header.Get("X-Request-Id")), Dev: s.dev}}
	env := &st.env
	st.id[0] = env.RequestID
	c.Writer.Header()["X-Request-Id"] = st.id[:]
	ctx := agent.NewContext(r.Context(), env)
	if telemetry.PayloadsEnabled() { // off by default: no context value, no allocation
		ctx = payloads.NewContext(ctx, true)
	}
	ctx, q := s.tel.Start(ctx, r, c.FullPath())
	c.Request = r.WithContext(ctx)
	// Deferred, so a request whose handler panics past the recoverer
	// (http.ErrAbortHandler) still ends its span.
	defer func() { q.End(c.Writer.Status()) }()
	c.Next()
}

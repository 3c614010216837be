package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httpapi"
)

const benchBody = `{"model":"echo","input":[{"role":"user","content":"hello, how are you today?"}]}`

// discard is a ResponseWriter that keeps only the status, so the benchmark
// measures the handler, not a recorder's buffer.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.status = code }
func (d *discard) Flush()                      {}

func benchHandler(b *testing.B, h http.Handler) { benchBodyHandler(b, h, benchBody) }

func benchBodyHandler(b *testing.B, h http.Handler, reqBody string) {
	b.ReportAllocs()
	body := []byte(reqBody)
	w := &discard{h: make(http.Header)}
	r := httptest.NewRequest(http.MethodPost, "/responses", nil)
	r.Header.Set("Content-Type", "application/json")
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkHandler measures one non-streaming request through the whole
// stack (limits, decode, validate, env, agent, envelope, encode); the bare
// sub-benchmark is a gin handler that returns the same bytes, so the ratio
// between the two is the cost the host adds.
func BenchmarkHandler(b *testing.B) {
	srv, err := httpapi.New(httpapi.Options{Agent: echo.Agent{}, AgentName: "echo", Logger: quietLogger(),
		Limits: httpapi.Limits{MaxConcurrency: 64}})
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/responses", bytes.NewReader([]byte(benchBody)))
	req.Header.Set("Content-Type", "application/json")
	srv.Handler().ServeHTTP(rec, req)
	answer := rec.Body.Bytes()

	b.Run("full", func(b *testing.B) { benchHandler(b, srv.Handler()) })
	// stream: the same request streamed (echo streams one delta per word),
	// through the SSE framing and the stream aggregator.
	b.Run("stream", func(b *testing.B) {
		benchBodyHandler(b, srv.Handler(), `{"model":"echo","stream":true,"input":[{"role":"user","content":"hello, how are you today?"}]}`)
	})
	b.Run("bare-gin", func(b *testing.B) {
		gin.SetMode(gin.ReleaseMode)
		e := gin.New()
		e.POST("/responses", func(c *gin.Context) {
			_, _ = io.Copy(io.Discard, c.Request.Body)
			c.Data(http.StatusOK, "application/json", answer)
		})
		benchHandler(b, e)
	})
}

package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httpapi"
)

// BenchmarkChatHandler measures one non-streaming request through the whole
// stack on the chat route, next to the same conversation on the Responses
// route, so that the ratio is what the chat codec costs or saves.
func BenchmarkChatHandler(b *testing.B) {
	srv, err := httpapi.New(httpapi.Options{Agent: echo.Agent{}, AgentName: "echo", Logger: quietLogger(),
		Limits: httpapi.Limits{MaxConcurrency: 64}})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, path, body string }{
		{"chat", "/v1/chat/completions", `{"model":"echo","messages":[{"role":"user","content":"hello, how are you today?"}]}`},
		{"responses", "/v1/responses", benchBody},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			body := []byte(tc.body)
			w := &discard{h: make(http.Header)}
			r := httptest.NewRequest(http.MethodPost, tc.path, nil)
			r.Header.Set("Content-Type", "application/json")
			for b.Loop() {
				clear(w.h)
				w.status = 0
				r.Body = io.NopCloser(bytes.NewReader(body))
				r.ContentLength = int64(len(body))
				srv.Handler().ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

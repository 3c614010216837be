package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/runtime/httpapi"
)

// FuzzDecodeRequest feeds arbitrary bodies through the whole handler: it
// must never panic, and every failure must be a 4xx (the echo agent itself
// cannot fail).
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"input":"hi"}`,
		`{"input":[{"role":"user","content":"x"}],"stream":true}`,
		`{"input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}],"custom_inputs":{"a":[1,{"b":null}]},"context":{"conversation_id":"c"}}`,
		`{"input":[{"type":"function_call","call_id":"c","name":"n","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"o"}]}`,
		`{"input":[{"type":"reasoning","id":"r","summary":[]}],"tools":[{"type":"function","name":"f","parameters":{}}],"tool_choice":{"type":"function","name":"f"}}`,
		`{"input":[{"type":"mcp_approval_response","approval_request_id":"a","approve":true}],"metadata":{"k":"v"},"temperature":1}`,
		`{"input": [`, `[]`, `null`, `"x"`, `{"input":"\ud800"}`, `{"input":null}`,
	} {
		f.Add([]byte(seed))
	}
	srv, err := httpapi.New(httpapi.Options{Agent: echo.Agent{}, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		// The decoder alone: an error is always a FieldError.
		if req, err := agent.DecodeRequest(body); err == nil {
			_ = req.Validate()
		} else if _, ok := err.(*agent.FieldError); !ok {
			t.Fatalf("decode error %T %v is not a *FieldError", err, err)
		}
		for _, path := range []string{"/responses", "/invocations"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 || (rec.Code != 200 && rec.Code < 400) {
				t.Fatalf("%s %q: status %d: %s", path, body, rec.Code, rec.Body.String())
			}
		}
	})
}

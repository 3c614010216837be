package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/wire"
)

// FuzzDecodeRequest feeds arbitrary bodies through the whole handler: it
// must never panic, every failure must be a 4xx (the echo agent itself
// cannot fail), and every 200 must be valid JSON (each SSE data frame, for a
// stream), since the decoder echoes members it does not know verbatim.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"input":"hi"}`,
		`{"input":[{"role":"user","content":"x"}],"stream":true}`,
		`{"input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}],"custom_inputs":{"a":[1,{"b":null}]},"context":{"conversation_id":"c"}}`,
		`{"input":[{"type":"function_call","call_id":"c","name":"n","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"o"}]}`,
		`{"input":[{"type":"reasoning","id":"r","summary":[]}],"tools":[{"type":"function","name":"f","parameters":{}}],"tool_choice":{"type":"function","name":"f"}}`,
		`{"input":[{"type":"mcp_approval_response","approval_request_id":"a","approve":true}],"metadata":{"k":"v"},"temperature":1}`,
		`{"input": [`, `[]`, `null`, `"x"`, `{"input":"\ud800"}`, `{"input":null}`,
		// Issue 11, finding 8: invalid JSON inside an unknown member, and trailing data.
		`{"input":"hi","tools":[{"type":"function","name":"f","x":{"a":]}]}`, `{"input":"hi"} trailing`,
		`{"input":"hi","stream":true,"vendor":{"k":[1,{"x":"y"}]}}`, `{"input":"hi","input":[]}`,
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
		if req, err := wire.DecodeRequest(body); err == nil {
			_ = wire.Validate(req)
		} else if _, ok := err.(*wire.FieldError); !ok {
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
			if rec.Code == 200 {
				checkJSONBody(t, rec, path, body)
			} else if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s %q: error body is not JSON: %s", path, body, rec.Body.String())
			}
		}
	})
}

// checkJSONBody fails unless a 200 body is valid JSON: the whole body, or
// each data frame of an SSE stream (the last one being [DONE]).
func checkJSONBody(t *testing.T, rec *httptest.ResponseRecorder, path string, reqBody []byte) {
	t.Helper()
	out := rec.Body.Bytes()
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream") {
		if !json.Valid(out) {
			t.Fatalf("%s %q: 200 with invalid JSON: %s", path, reqBody, out)
		}
		return
	}
	frames := 0
	for line := range strings.Lines(string(out)) {
		data, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		frames++
		if !json.Valid([]byte(data)) {
			t.Fatalf("%s %q: stream frame is not JSON: %s", path, reqBody, data)
		}
	}
	if frames == 0 {
		t.Fatalf("%s %q: 200 stream without data frames: %s", path, reqBody, out)
	}
}

// Package servingtest is a scripted OpenAI-compatible chat server for tests: it
// answers each chat completion with the next scripted reply, streamed or
// not, and records the requests it got.
package servingtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Call is a scripted tool call.
type Call struct{ Name, Args string }

// Reply is one scripted answer: text (sent in Chunks pieces when streamed),
// tool calls, or an HTTP error status.
type Reply struct {
	Text   string
	Calls  []Call
	Status int // non-zero: fail with this status
}

// Server is the fake model.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	script   []Reply
	Requests []Request
	Auth     []string
}

// Request is what the model was sent.
type Request struct {
	Model    string           `json:"model"`
	Stream   bool             `json:"stream"`
	Messages []map[string]any `json:"messages"`
	Tools    []map[string]any `json:"tools"`
}

// New starts a server that plays script in order; past its end it repeats
// the last reply.
func New(t testing.TB, script ...Reply) *Server {
	s := &Server{script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Snapshot returns the recorded requests.
func (s *Server) Snapshot() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.Requests...)
}

// AuthHeaders returns the Authorization header of each request.
func (s *Server) AuthHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.Auth...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	n := len(s.Requests)
	s.Requests = append(s.Requests, req)
	s.Auth = append(s.Auth, r.Header.Get("Authorization"))
	rep := Reply{Text: "(script ended)"}
	if len(s.script) > 0 {
		rep = s.script[min(n, len(s.script)-1)]
	}
	s.mu.Unlock()
	if rep.Status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.Status)
		fmt.Fprintf(w, `{"error_code":"PERMISSION_DENIED","message":"scripted failure %d"}`, rep.Status)
		return
	}
	id := fmt.Sprintf("chatcmpl-%d", n)
	var calls []map[string]any
	for i, c := range rep.Calls {
		calls = append(calls, map[string]any{"index": i, "id": fmt.Sprintf("call_%d_%d", n, i), "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": c.Args}})
	}
	finish := "stop"
	if len(calls) > 0 {
		finish = "tool_calls"
	}
	usage := map[string]int{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": rep.Text}
		if calls != nil {
			msg["tool_calls"] = calls
		}
		json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "chat.completion", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(delta map[string]any, fin any, u any) {
		ch := map[string]any{"id": id, "object": "chat.completion.chunk", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": fin}}}
		if u != nil {
			ch["choices"] = []any{}
			ch["usage"] = u
		}
		b, _ := json.Marshal(ch)
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	send(map[string]any{"role": "assistant"}, nil, nil)
	// Text in word-sized pieces.
	for _, piece := range strings.SplitAfter(rep.Text, " ") {
		if piece != "" {
			send(map[string]any{"content": piece}, nil, nil)
		}
	}
	// Tool call arguments split in two fragments, as real servers do.
	for i, c := range calls {
		args := c["function"].(map[string]any)["arguments"].(string)
		half := len(args) / 2
		send(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c["id"], "type": "function",
			"function": map[string]any{"name": c["function"].(map[string]any)["name"], "arguments": args[:half]}}}}, nil, nil)
		send(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": args[half:]}}}}, nil, nil)
	}
	send(map[string]any{}, finish, nil)
	send(nil, nil, usage)
	fmt.Fprint(w, "data: [DONE]\n\n")
}

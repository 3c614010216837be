package conformance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentrt/agentrt/examples/assistant"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/devtest"
	"github.com/agentrt/agentrt/internal/server"
)

// chatDo sends one request to a chat route and validates the answer: a
// JSON body against schema (2xx) or ErrorResponse; a stream chunk by chunk
// against CreateChatCompletionStreamResponse, an error frame against
// ErrorResponse. It returns the status and, for a stream, the frames.
func (c *checker) chatDo(t *testing.T, srv *httptest.Server, method, path, schema string, hdr map[string]string, body string) (int, []json.RawMessage) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	label := fmt.Sprintf("%s %s (%d)", method, path, resp.StatusCode)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 300 {
			schema = "ErrorResponse"
		}
		c.count(t, schema, label, data, c.spec.Validate(schema, data))
		return resp.StatusCode, []json.RawMessage{data}
	}
	var frames []json.RawMessage
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		switch {
		case !ok:
			t.Errorf("%s: unexpected SSE line %q", label, line)
			continue
		case done:
			t.Errorf("%s: frame after [DONE]: %s", label, data)
		case data == "[DONE]":
			done = true
			continue
		}
		schema := "CreateChatCompletionStreamResponse"
		if strings.HasPrefix(data, `{"error_code"`) {
			schema = "ErrorResponse"
		}
		c.count(t, schema, label+" chunk", []byte(data), c.spec.Validate(schema, []byte(data)))
		frames = append(frames, json.RawMessage(data))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !done {
		t.Errorf("%s: stream did not end with [DONE]", label)
	}
	return resp.StatusCode, frames
}

var chatBodies = map[string]string{
	"minimal": `{"model":"echo","messages":[{"role":"user","content":"hello there"}]}`,
	"conversation": `{"model":"echo","messages":[{"role":"system","content":"be brief"},{"role":"developer","content":[{"type":"text","text":"cite"}]},` +
		`{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"c1","content":"42"},{"role":"assistant","content":"It is 42."},{"role":"user","content":"thanks"}],` +
		`"temperature":0.2,"top_p":0.9,"max_completion_tokens":64,"n":1,"user":"u1","metadata":{"k":"v"},"stop":["\n"],"seed":1,"tool_choice":"none"}`,
}

// TestChatConforms: the echo agent over both chat routes, plain, streamed,
// and streamed with usage; and the model routes.
func TestChatConforms(t *testing.T) {
	c := newChecker(t)
	srv := listen(t, server.Options{Agent: echo.Agent{}, AgentName: "echo"})
	for _, route := range []string{"/v1/chat/completions", "/chat/completions"} {
		for name, body := range chatBodies {
			for _, extra := range []string{"", `"stream":true,`, `"stream":true,"stream_options":{"include_usage":true},`} {
				b := strings.Replace(body, "{", "{"+extra, 1)
				t.Run(fmt.Sprintf("%s/%s/%s", route, name, extra), func(t *testing.T) {
					status, frames := c.chatDo(t, srv, http.MethodPost, route, "CreateChatCompletionResponse", nil, b)
					if status != http.StatusOK {
						t.Fatalf("status %d: %s", status, frames)
					}
					if extra != "" && len(frames) < 3 {
						t.Errorf("only %d chunks", len(frames))
					}
				})
			}
		}
	}
	for path, schema := range map[string]string{"/v1/models": "ListModelsResponse", "/models": "ListModelsResponse", "/v1/models/echo": "Model"} {
		if status, _ := c.chatDo(t, srv, http.MethodGet, path, schema, nil, ""); status != 200 {
			t.Errorf("%s: status %d", path, status)
		}
	}
}

// TestChatErrorsConform: the chat routes' error answers, and the error
// frame of a stream that fails.
func TestChatErrorsConform(t *testing.T) {
	c := newChecker(t)
	srv := listen(t, server.Options{Agent: echo.Agent{}, AgentName: "echo"})
	bad := listen(t, server.Options{Agent: failing{}, AgentName: "failing"})
	cases := []struct {
		name   string
		srv    *httptest.Server
		method string
		path   string
		body   string
		status int
	}{
		{"malformed JSON", srv, "POST", "/v1/chat/completions", `{"messages":`, 400},
		{"no messages", srv, "POST", "/v1/chat/completions", `{"model":"echo"}`, 400},
		{"bad role", srv, "POST", "/v1/chat/completions", `{"messages":[{"role":"wizard","content":"x"}]}`, 400},
		{"client tools", srv, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}`, 400},
		{"unknown model", srv, "GET", "/v1/models/gpt-4o", ``, 404},
		{"method", srv, "GET", "/v1/chat/completions", ``, 405},
		{"agent fails", bad, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 500},
		{"agent fails mid-stream", bad, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"stream":true}`, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, frames := c.chatDo(t, tc.srv, tc.method, tc.path, "CreateChatCompletionResponse", nil, tc.body)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if tc.status == 200 && (len(frames) == 0 || !strings.HasPrefix(string(frames[len(frames)-1]), `{"error_code"`)) {
				t.Errorf("no error frame last in %s", frames)
			}
		})
	}
}

// TestAssistantChat drives the tool-calling assistant with openai-go's chat
// client, as a chat front-end would: the answer is the text the Responses
// route gives for the same question, with usage, and none of the agent's
// tool calls is presented as a client tool call. Every raw answer also
// validates against the spec.
func TestAssistantChat(t *testing.T) {
	c := newChecker(t)
	srv, _ := devtest.Assistant(t)
	as := func(user string) openai.Client {
		return openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey("unused"),
			option.WithMaxRetries(0), option.WithHeader("X-Dev-User", user))
	}
	ctx := context.Background()
	cases := []struct{ user, question string }{
		{"alice", "How do I install and configure Kestrel Vault?"},
		{"alice", "What was the total revenue by region?"},
		{"bob", "What was the total revenue by region?"},
		{"carol", "Look up order ORD-100042"},
	}
	withTools := 0 // answers that followed tool calls: the point of the test
	for _, tc := range cases {
		t.Run(tc.user+"/"+tc.question, func(t *testing.T) {
			client := as(tc.user)
			want, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: assistant.Name,
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(tc.question)}})
			if err != nil {
				t.Fatal(err)
			}
			tools := 0
			for _, it := range want.Output {
				if it.Type == "mcp_call" { // the agent's own calls, in the OpenAI dialect
					tools++
				}
			}
			if tools > 0 {
				withTools++
			}
			params := openai.ChatCompletionNewParams{Model: assistant.Name,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(tc.question)}}
			got, err := client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			ch := got.Choices[0]
			if ch.Message.Content != want.OutputText() || ch.Message.Content == "" || len(ch.Message.ToolCalls) != 0 || ch.FinishReason != "stop" {
				t.Errorf("chat %s\nresponses output_text %q (after %d tool calls)", got.RawJSON(), want.OutputText(), tools)
			}
			if got.Usage.PromptTokens == 0 || got.Usage.TotalTokens != got.Usage.PromptTokens+got.Usage.CompletionTokens {
				t.Errorf("usage %s", got.Usage.RawJSON())
			}

			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := client.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			var last openai.ChatCompletionChunk
			for stream.Next() {
				last = stream.Current()
				acc.AddChunk(last)
				for _, c := range last.Choices {
					if len(c.Delta.ToolCalls) > 0 {
						t.Errorf("tool call presented to the client: %s", last.RawJSON())
					}
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if acc.Choices[0].Message.Content != want.OutputText() || acc.Choices[0].FinishReason != "stop" {
				t.Errorf("stream text %q, want %q", acc.Choices[0].Message.Content, want.OutputText())
			}
			// The usage chunk comes last. agent/loop reports usage only
			// from Predict, so a streamed answer's counts are zero (its
			// Responses stream has none either).
			if len(last.Choices) != 0 || !last.JSON.Usage.Valid() {
				t.Errorf("last chunk: %s", last.RawJSON())
			}

			// The same exchanges, raw, against the spec.
			hdr := map[string]string{"X-Dev-User": tc.user}
			body, _ := json.Marshal(map[string]any{"model": assistant.Name, "messages": []any{map[string]any{"role": "user", "content": tc.question}}})
			if status, _ := c.chatDo(t, srv, "POST", "/v1/chat/completions", "CreateChatCompletionResponse", hdr, string(body)); status != 200 {
				t.Errorf("status %d", status)
			}
			sb := strings.Replace(string(body), "{", `{"stream":true,"stream_options":{"include_usage":true},`, 1)
			if status, _ := c.chatDo(t, srv, "POST", "/v1/chat/completions", "CreateChatCompletionResponse", hdr, sb); status != 200 {
				t.Errorf("stream status %d", status)
			}
		})
	}

	if withTools < 2 {
		t.Errorf("only %d answers followed tool calls", withTools)
	}
	t.Run("models.list", func(t *testing.T) {
		client := as("alice")
		page, err := client.Models.List(ctx)
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != assistant.Name {
			t.Errorf("models: %v %v", page, err)
		}
	})
	t.Run("unknown caller", func(t *testing.T) {
		client := as("mallory")
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: assistant.Name,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Type != "authentication_error" {
			t.Errorf("err = %v", err)
		}
		b, _ := json.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi"}}, "stream": true})
		if status, _ := c.chatDo(t, srv, "POST", "/v1/chat/completions", "CreateChatCompletionResponse", map[string]string{"X-Dev-User": "mallory"}, string(b)); status != 401 {
			t.Errorf("stream: status %d, want 401 before the stream starts", status)
		}
	})
}

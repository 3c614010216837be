package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/telemetry"
)

func chatParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("be brief"),
			openai.UserMessage(text),
		},
	}
}

// streamChat reads a chat stream with openai-go's accumulator, checking
// what every chunk must carry, and returns the accumulated completion and
// the last chunk.
func streamChat(t *testing.T, client openai.Client, params openai.ChatCompletionNewParams) (openai.ChatCompletion, openai.ChatCompletionChunk, int) {
	t.Helper()
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	var last openai.ChatCompletionChunk
	n := 0
	for stream.Next() {
		ch := stream.Current()
		if !acc.AddChunk(ch) {
			t.Fatalf("chunk %d does not fit the accumulated completion: %s", n, ch.RawJSON())
		}
		for _, c := range ch.Choices {
			if len(c.Delta.ToolCalls) > 0 {
				t.Errorf("chunk %d presents tool calls to the client: %s", n, ch.RawJSON())
			}
		}
		last = ch
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return acc.ChatCompletion, last, n
}

func TestChatOpenAIClient(t *testing.T) {
	for name, a := range agentsUnderTest() {
		for _, base := range []string{"/", "/v1/"} {
			t.Run(name+base, func(t *testing.T) {
				ts := newServer(t, httpapi.Options{Agent: a, AgentName: "echo"})
				client := openaiClient(ts.URL + base)
				params := chatParams("echo", "hello brave new world")

				c, err := client.Chat.Completions.New(context.Background(), params)
				if err != nil {
					t.Fatalf("Chat.Completions.New: %v", err)
				}
				if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Model != "echo" || c.Created == 0 {
					t.Errorf("envelope: %s", c.RawJSON())
				}
				if len(c.Choices) != 1 || c.Choices[0].Message.Content != "echo: hello brave new world" ||
					c.Choices[0].FinishReason != "stop" || c.Choices[0].Message.Role != "assistant" || len(c.Choices[0].Message.ToolCalls) != 0 {
					t.Errorf("choices: %s", c.RawJSON())
				}

				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				acc, last, n := streamChat(t, client, params)
				if n < 4 { // role, ≥ 2 word deltas, finish, usage
					t.Errorf("only %d chunks", n)
				}
				if acc.Choices[0].Message.Content != "echo: hello brave new world" || acc.Choices[0].FinishReason != "stop" {
					t.Errorf("accumulated: %+v", acc.Choices)
				}
				if len(last.Choices) != 0 || !last.JSON.Usage.Valid() {
					t.Errorf("last chunk is not the usage chunk: %s", last.RawJSON())
				}
			})
		}
	}
}

// TestChatHidesAgentToolActivity: the agent's own function calls, their
// outputs and its reasoning never reach a chat client as tool_calls; the
// text is what the Responses route's output_text is.
func TestChatHidesAgentToolActivity(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: scripted{}, AgentName: "scripted"})
	client := openaiClient(ts.URL + "/v1")
	params := chatParams("", "q")
	c, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Choices[0].Message
	if m.Content != "The answer is 42." || len(m.ToolCalls) != 0 || c.Choices[0].FinishReason != "stop" || c.Model != "scripted" {
		t.Errorf("completion: %s", c.RawJSON())
	}
	if len(m.Annotations) != 1 || m.Annotations[0].URLCitation.URL != "https://example.com" {
		t.Errorf("annotations: %s", m.RawJSON())
	}
	acc, _, _ := streamChat(t, client, params)
	if acc.Choices[0].Message.Content != "The answer is 42." || acc.Choices[0].FinishReason != "stop" {
		t.Errorf("stream: %+v", acc.Choices[0])
	}
}

func TestChatModels(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: scripted{}, AgentName: "assistant"})
	for _, base := range []string{"/", "/v1/"} {
		client := openaiClient(ts.URL + base)
		page, err := client.Models.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != "assistant" || page.Data[0].Object != "model" ||
			page.Data[0].OwnedBy != "agentrt" || page.Data[0].Created == 0 {
			t.Errorf("models: %s", page.RawJSON())
		}
		m, err := client.Models.Get(context.Background(), "assistant")
		if err != nil || m.ID != "assistant" {
			t.Errorf("Models.Get = %v, %v", m, err)
		}
		_, err = client.Models.Get(context.Background(), "gpt-4o")
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Type != "not_found_error" {
			t.Errorf("unknown model: %v", err)
		}
	}
}

// TestChatRefusesWhatItCannotHonour: fields the agent cannot honour are a
// 400 naming the field, raised by the client as an *openai.Error.
func TestChatRefusesWhatItCannotHonour(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: scripted{}})
	client := openaiClient(ts.URL + "/v1")
	p := chatParams("m", "q")
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "f"})}
	_, err := client.Chat.Completions.New(context.Background(), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "tools" || apiErr.Type != "invalid_request_error" {
		t.Fatalf("tools: %v", err)
	}
	p = chatParams("m", "q")
	p.N = openai.Int(2)
	_, err = client.Chat.Completions.New(context.Background(), p)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "n" {
		t.Fatalf("n: %v", err)
	}
}

// TestChatErrorsMatchResponses: for the same cause, the chat route answers
// with the status and the error body of the Responses route.
func TestChatErrorsMatchResponses(t *testing.T) {
	deny := httpapi.PreparerFunc(func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
		if r.Header.Get("Authorization") != "Bearer good" {
			return nil, httperr.Unauthenticated("invalid access token")
		}
		return ctx, nil
	})
	failing := agentFunc(func(context.Context, *agent.Request) (*agent.Response, error) {
		return nil, errors.New("backend exploded: secret detail")
	})
	slow := agentFunc(func(ctx context.Context, _ *agent.Request) (*agent.Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	type tc struct {
		name       string
		opts       httpapi.Options
		hdr        map[string]string
		chat, resp string // bodies
		status     int
	}
	msgs := `"messages":[{"role":"user","content":"x"}]`
	cases := []tc{
		{"unauthenticated", httpapi.Options{Agent: scripted{}, Preparers: []httpapi.Preparer{deny}}, nil, `{` + msgs + `}`, `{"input":"x"}`, 401},
		{"too large", httpapi.Options{Agent: scripted{}, Limits: httpapi.Limits{MaxBodyBytes: 64}},
			nil, `{` + msgs + `,"user":"` + strings.Repeat("x", 100) + `"}`, `{"input":"` + strings.Repeat("x", 100) + `"}`, 413},
		{"media type", httpapi.Options{Agent: scripted{}}, map[string]string{"Content-Type": "text/plain"}, `{` + msgs + `}`, `{"input":"x"}`, 415},
		{"agent fails", httpapi.Options{Agent: failing}, nil, `{` + msgs + `}`, `{"input":"x"}`, 500},
		{"timeout", httpapi.Options{Agent: slow, Limits: httpapi.Limits{RequestTimeout: 20 * time.Millisecond}}, nil, `{` + msgs + `}`, `{"input":"x"}`, 504},
	}
	read := func(t *testing.T, url, body string, hdr map[string]string) (int, errBody, string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var e errBody
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("%s: %v: %s", url, err, data)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", url)
		}
		return resp.StatusCode, e, string(data)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newServer(t, c.opts)
			cs, ce, raw := read(t, ts.URL+"/v1/chat/completions", c.chat, c.hdr)
			rs, re, _ := read(t, ts.URL+"/v1/responses", c.resp, c.hdr)
			if cs != c.status || rs != c.status {
				t.Fatalf("status chat %d responses %d, want %d", cs, rs, c.status)
			}
			// Agent failures quote the request id, which differs.
			ce.Message, re.Message, ce.Error.Message, re.Error.Message = "", "", "", ""
			if ce != re {
				t.Errorf("chat error body %+v, responses %+v", ce, re)
			}
			if strings.Contains(raw, "secret detail") {
				t.Errorf("internal detail leaked: %s", raw)
			}
		})
	}
	t.Run("bad request", func(t *testing.T) {
		ts := newServer(t, httpapi.Options{Agent: scripted{}})
		cs, ce, _ := read(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"wizard","content":"x"}]}`, nil)
		if cs != 400 || ce.ErrorCode != "BAD_REQUEST" || ce.Error.Param == nil || *ce.Error.Param != "messages[0].role" ||
			!strings.HasPrefix(ce.Message, "invalid request: messages[0].role: must be one of") {
			t.Errorf("%d %+v", cs, ce)
		}
	})
}

// TestChatStreamFailureIsAnErrorFrame: once the stream has started, an
// agent failure is a frame with the error body, which openai-go raises.
func TestChatStreamFailureIsAnErrorFrame(t *testing.T) {
	a := streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
		if err := emit(agent.TextDelta("partial ", "m")); err != nil {
			return err
		}
		return errors.New("backend exploded: secret detail")
	})
	ts := newServer(t, httpapi.Options{Agent: agent.FromStream(a)})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"stream":true}`)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) != 4 || lines[3] != "data: [DONE]" {
		t.Fatalf("frames: %q", lines)
	}
	var e errBody
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[2], "data: ")), &e); err != nil || e.Error.Type != "server_error" ||
		strings.Contains(lines[2], "secret") || !strings.Contains(e.Error.Message, "the agent failed") {
		t.Errorf("error frame %q (%v)", lines[2], err)
	}

	client := openaiClient(ts.URL + "/v1")
	stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("m", "x"))
	for stream.Next() {
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "the agent failed") {
		t.Errorf("openai-go stream error = %v", err)
	}
}

// TestChatSharesIdentityAndLimits: the preparers' identity reaches the
// agent, and the concurrency limit counts chat and Responses requests
// together.
func TestChatSharesIdentityAndLimits(t *testing.T) {
	who := httpapi.PreparerFunc(func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
		env.Caller.PrincipalID = "principal-" + r.Header.Get("X-Test-User")
		return ctx, nil
	})
	b := newBlocker()
	a := agentFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		if req.LastUserText() == "block" {
			return b.Predict(ctx, req)
		}
		return &agent.Response{Output: []agent.Item{agent.TextItem("", "hi "+agent.FromContext(ctx).Caller.PrincipalID)}}, nil
	})
	ts := newServer(t, httpapi.Options{Agent: a, Preparers: []httpapi.Preparer{who}, Limits: httpapi.Limits{MaxConcurrency: 1}})
	client := openaiClient(ts.URL + "/v1")

	c, err := client.Chat.Completions.New(context.Background(), chatParams("m", "x"), option.WithHeader("X-Test-User", "alice"))
	if err != nil || c.Choices[0].Message.Content != "hi principal-alice" {
		t.Fatalf("identity: %v %v", c, err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		r := post(t, ts.URL+"/v1/responses", `{"input":"block"}`)
		r.Body.Close()
	}()
	<-b.entered
	_, err = client.Chat.Completions.New(context.Background(), chatParams("m", "x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || apiErr.Response.Header.Get("Retry-After") == "" {
		t.Errorf("at the limit: %v", err)
	}
	close(b.release)
	<-done
}

// TestChatTraced: a chat request gets the server span named after its
// route and the predict span, like a Responses request.
func TestChatTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" },
		SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	ts := newServer(t, httpapi.Options{Agent: scripted{}, Telemetry: telemetry.NewServer()})
	for _, stream := range []string{"false", "true"} {
		r := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"stream":`+stream+`}`)
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	names := map[string]int{}
	for _, s := range rec.Ended() {
		names[s.Name()]++
	}
	if names["POST /v1/chat/completions"] != 2 || names["predict"] != 2 {
		t.Errorf("spans: %v", names)
	}
}

package devworkspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/serving"
	openai "github.com/sashabaranov/go-openai"
)

func apisOpenAI(ws *Workspace, token string) *openai.Client {
	c := openai.DefaultConfig(token)
	c.BaseURL = ws.URL() + "/serving-endpoints"
	return openai.NewClientWithConfig(c)
}

var lookupOrderTool = openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
	Name: "main__tools__lookup_order", Description: "Look up an order by its order id",
	Parameters: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string","description":"the order id"}},"required":["order_id"]}`),
}}

var weatherTool = openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
	Name: "get_weather", Description: "Current weather for a city",
	Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}}

func TestServingChatToolLoop(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ctx := context.Background()
	for _, who := range []string{AliceToken, BobToken, CarolToken} {
		c := apisOpenAI(ws, who)
		req := openai.ChatCompletionRequest{
			Model:    "dev-llm",
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Please look up order ORD-000042"}},
			Tools:    []openai.Tool{weatherTool, lookupOrderTool},
		}
		r1, err := c.CreateChatCompletion(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		ch := r1.Choices[0]
		if ch.FinishReason != openai.FinishReasonToolCalls || len(ch.Message.ToolCalls) != 1 {
			t.Fatalf("first turn: %+v", ch)
		}
		call := ch.Message.ToolCalls[0]
		if call.Function.Name != "main__tools__lookup_order" || call.Function.Arguments != `{"order_id":"ORD-000042"}` {
			t.Fatalf("tool call %+v", call)
		}
		if r1.Model != "dev-llm" || r1.Usage.TotalTokens == 0 {
			t.Fatalf("model/usage: %+v", r1)
		}
		// Determinism: the same conversation yields the same call.
		again, _ := c.CreateChatCompletion(ctx, req)
		if again.Choices[0].Message.ToolCalls[0] != call {
			t.Fatalf("not deterministic: %+v vs %+v", again.Choices[0].Message.ToolCalls[0], call)
		}
		req.Messages = append(req.Messages, ch.Message, openai.ChatCompletionMessage{
			Role: "tool", ToolCallID: call.ID, Content: `{"order_id":"ORD-000042","status":"SHIPPED"}`,
		})
		r2, err := c.CreateChatCompletion(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Choices[0].FinishReason != openai.FinishReasonStop || !strings.Contains(r2.Choices[0].Message.Content, `order_id: "ORD-000042"`) || !strings.Contains(r2.Choices[0].Message.Content, `status: "SHIPPED"`) {
			t.Fatalf("second turn: %+v", r2.Choices[0])
		}
	}
	// No matching tool: a plain answer containing the question.
	r, err := apisOpenAI(ws, AliceToken).CreateChatCompletion(ctx, openai.ChatCompletionRequest{
		Model: "dev-llm", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Tell me a joke"}}, Tools: []openai.Tool{weatherTool},
	})
	if err != nil || r.Choices[0].FinishReason != openai.FinishReasonStop || !strings.Contains(r.Choices[0].Message.Content, "Tell me a joke") {
		t.Fatalf("plain: %+v %v", r, err)
	}
}

func TestServingChatStream(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ctx := context.Background()
	c := apisOpenAI(ws, AliceToken)
	collect := func(req openai.ChatCompletionRequest) (string, []openai.ToolCall, openai.FinishReason, *openai.Usage) {
		t.Helper()
		s, err := c.CreateChatCompletionStream(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var text strings.Builder
		var calls []openai.ToolCall
		var finish openai.FinishReason
		var usage *openai.Usage
		for {
			chunk, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return text.String(), calls, finish, usage
			}
			if err != nil {
				t.Fatal(err)
			}
			if chunk.Usage != nil {
				usage = chunk.Usage
			}
			for _, ch := range chunk.Choices {
				text.WriteString(ch.Delta.Content)
				calls = append(calls, ch.Delta.ToolCalls...)
				if ch.FinishReason != "" {
					finish = ch.FinishReason
				}
			}
		}
	}
	text, _, finish, usage := collect(openai.ChatCompletionRequest{Model: "dev-llm", Stream: true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
		Messages:      []openai.ChatCompletionMessage{{Role: "user", Content: "What is Kestrel Vault?"}}})
	if finish != openai.FinishReasonStop || !strings.Contains(text, "What is Kestrel Vault?") || usage == nil || usage.TotalTokens == 0 {
		t.Fatalf("stream text %q finish %q usage %+v", text, finish, usage)
	}
	_, calls, finish, _ := collect(openai.ChatCompletionRequest{Model: "dev-llm", Stream: true,
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "weather in Oslo"}}, Tools: []openai.Tool{lookupOrderTool, weatherTool}})
	if finish != openai.FinishReasonToolCalls || len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != `{"city":"weather in Oslo"}` || calls[0].ID == "" {
		t.Fatalf("stream tool calls %+v finish %q", calls, finish)
	}
}

func TestServingPermissions(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ctx := context.Background()
	msg := []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}
	tests := []struct {
		token, model string
		status       int
	}{
		{CarolToken, "dev-llm", 200},
		{CarolToken, "dev-embeddings", 403},
		{BobToken, "dev-embeddings", 200},
		{"", "dev-llm", 200}, // agent-sp via M2M, below
		{AliceToken, "no-such-endpoint", 404},
		{"dev-unknown-token", "dev-llm", 401},
	}
	for _, tt := range tests {
		token := tt.token
		if token == "" {
			tok, err := apisSDK(t, ws, "").Config.GetToken()
			if err != nil {
				t.Fatal(err)
			}
			token = tok.AccessToken
		}
		c := apisOpenAI(ws, token)
		var err error
		if tt.model == "dev-embeddings" {
			_, err = c.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Input: []string{"x"}, Model: openai.EmbeddingModel(tt.model)})
		} else {
			_, err = c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: tt.model, Messages: msg})
		}
		status := 200
		var apiErr *openai.APIError
		var reqErr *openai.RequestError
		switch {
		case errors.As(err, &apiErr):
			status = apiErr.HTTPStatusCode
		case errors.As(err, &reqErr):
			status = reqErr.HTTPStatusCode
		case err != nil:
			t.Fatalf("%s %s: %v", tt.token, tt.model, err)
		}
		if status != tt.status {
			t.Errorf("%q on %s: status %d (%v), want %d", tt.token, tt.model, status, err, tt.status)
		}
	}
}

func TestServingEmbeddings(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ctx := context.Background()
	c := apisOpenAI(ws, AliceToken)
	res, err := c.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
		Input: []string{"rotate database passwords", "quiet hours"}, Model: "dev-embeddings",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || len(res.Data[0].Embedding) != EmbeddingDim || res.Data[1].Index != 1 {
		t.Fatalf("embeddings %d×%d", len(res.Data), len(res.Data[0].Embedding))
	}
	want := Embed("rotate database passwords")
	for i, v := range res.Data[0].Embedding {
		if math.Abs(float64(v-want[i])) > 1e-6 {
			t.Fatalf("component %d: %v != %v", i, v, want[i])
		}
	}
	b64, err := c.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Input: []string{"rotate database passwords"}, Model: "dev-embeddings", EncodingFormat: openai.EmbeddingEncodingFormatBase64})
	if err != nil || b64.Data[0].Embedding[5] != want[5] {
		t.Fatalf("base64 embeddings: %v", err)
	}
	// dev-embeddings is not a chat model.
	_, err = c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "dev-embeddings", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}}})
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 400 {
		t.Fatalf("chat on embeddings endpoint: %v", err)
	}
}

func TestServingEndpointsThroughSDK(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ctx := context.Background()
	tests := []struct {
		token, name string
		level       serving.ServingEndpointDetailedPermissionLevel
		err         error
	}{
		{AliceToken, "dev-llm", "CAN_MANAGE", nil},
		{CarolToken, "dev-llm", "CAN_QUERY", nil},
		{CarolToken, "dev-embeddings", "", databricks.ErrPermissionDenied},
		{"", "dev-embeddings", "CAN_QUERY", nil},
		{BobToken, "nope", "", databricks.ErrResourceDoesNotExist},
	}
	for _, tt := range tests {
		ep, err := apisSDK(t, ws, tt.token).ServingEndpoints.GetByName(ctx, tt.name)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s %s: err %v, want %v", tt.token, tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", tt.token, tt.name, err)
		}
		if ep.Name != tt.name || ep.State.Ready != serving.EndpointStateReadyReady || ep.Task == "" {
			t.Errorf("endpoint %+v", ep)
		}
		if tt.level != "CAN_MANAGE" && ep.PermissionLevel != tt.level || tt.level == "CAN_MANAGE" && ep.PermissionLevel == "" {
			t.Errorf("%s %s: permission_level %q, want %q", tt.token, tt.name, ep.PermissionLevel, tt.level)
		}
	}
	all, err := apisSDK(t, ws, CarolToken).ServingEndpoints.ListAll(ctx)
	if err != nil || len(all) != 1 || all[0].Name != "dev-llm" {
		t.Fatalf("carol's list: %+v, %v", all, err)
	}
	// The typed Query (chat format over /invocations) works for plain chat.
	q, err := apisSDK(t, ws, CarolToken).ServingEndpoints.Query(ctx, serving.QueryEndpointInput{
		Name: "dev-llm", Messages: []serving.ChatMessage{{Role: serving.ChatMessageRoleUser, Content: "hello there"}},
	})
	if err != nil || len(q.Choices) != 1 || !strings.Contains(q.Choices[0].Message.Content, "hello there") || q.ServedModelName != "dev-llm" {
		t.Fatalf("Query: %+v, %v", q, err)
	}
	// Invocations on the embeddings endpoint take {"input": …}.
	e, err := apisSDK(t, ws, BobToken).ServingEndpoints.Query(ctx, serving.QueryEndpointInput{Name: "dev-embeddings", Input: []string{"quiet hours"}})
	if err != nil || len(e.Data) != 1 || len(e.Data[0].Embedding) != EmbeddingDim {
		t.Fatalf("embeddings Query: %+v, %v", e, err)
	}
}

func TestServingProxy(t *testing.T) {
	var calls atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "" {
			http.Error(w, "unexpected "+r.URL.Path, 400)
			return
		}
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"from upstream"},"finish_reason":"stop"}]}`, req["model"])
	}))
	defer upstream.Close()
	ws := apisWorkspace(t, Options{LLMProxyURL: upstream.URL + "/v1"})
	r, err := apisOpenAI(ws, CarolToken).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "dev-llm", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	})
	if err != nil || r.Choices[0].Message.Content != "from upstream" || r.Model != "dev-llm" || calls.Load() != 1 {
		t.Fatalf("proxy: %+v, %v (calls %d)", r, err, calls.Load())
	}
	// Permissions still apply before proxying.
	_, err = apisOpenAI(ws, "dev-unknown").CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "dev-llm", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	})
	if err == nil || calls.Load() != 1 {
		t.Fatalf("unauthenticated call reached upstream: %v", err)
	}
}

// TestServingProxyForwardsBody: a body that already names the endpoint goes
// upstream byte for byte (the proxy does not decode and re-encode what it
// only passes on); one without a model (invocations) gets it, with every
// other member kept.
func TestServingProxyForwardsBody(t *testing.T) {
	got := make(chan []byte, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","object":"chat.completion","created":1,"model":"dev-llm","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
	}))
	defer upstream.Close()
	ws := apisWorkspace(t, Options{LLMProxyURL: upstream.URL + "/v1"})
	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ws.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+CarolToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	// Members out of encoding/json's order, and spacing it would drop.
	body := `{"stream":false, "model":"dev-llm","messages":[{"role":"user","content":"hi"}],"x_vendor":{"b":1,"a":2}}`
	post("/serving-endpoints/chat/completions", body)
	if b := <-got; string(b) != body {
		t.Errorf("upstream got\n%s\nwant the body as sent\n%s", b, body)
	}
	post("/serving-endpoints/dev-llm/invocations", `{"messages":[{"role":"user","content":"hi"}],"x_vendor":{"b":1,"a":2}}`)
	var fwd map[string]json.RawMessage
	if err := json.Unmarshal(<-got, &fwd); err != nil {
		t.Fatal(err)
	}
	if string(fwd["model"]) != `"dev-llm"` || string(fwd["x_vendor"]) != `{"b":1,"a":2}` || len(fwd) != 3 {
		t.Errorf("invocations forwarded %v: want the model added and the rest kept", fwd)
	}
}

// TestServingProxyStreamsHeadersFirst: the proxy passes the upstream's
// status and headers on as soon as it has them, so a streaming client is
// past its response headers before the model's first token (fails on a
// proxy that holds the headers until the first body bytes).
func TestServingProxyStreamsHeadersFirst(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select { // the first chunk waits for the client to have the headers
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"dev-llm\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n")
		w.(http.Flusher).Flush()
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer upstream.Close()
	ws := apisWorkspace(t, Options{LLMProxyURL: upstream.URL + "/v1"})

	req, _ := http.NewRequest(http.MethodPost, ws.URL()+"/serving-endpoints/chat/completions",
		strings.NewReader(`{"model":"dev-llm","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+CarolToken)
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		done <- result{resp, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		close(release) // let the old behaviour finish, then fail
		<-done
		t.Fatal("the proxy held the response headers until the model's first chunk")
	}
	close(release)
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.resp.Body.Close()
	if ct := res.resp.Header.Get("Content-Type"); res.resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", res.resp.StatusCode, ct)
	}
	b, err := io.ReadAll(res.resp.Body)
	if err != nil || !strings.Contains(string(b), `"content":"hi"`) || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Fatalf("stream %q, %v", b, err)
	}
}

func TestExternalFunction(t *testing.T) {
	ws := apisWorkspace(t, Options{})
	ctx := context.Background()
	// Initialize an MCP session on the external server through the UC
	// connection proxy, the way databricks-ai-bridge does.
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	req := serving.ExternalFunctionRequest{
		ConnectionName: "dev-external-mcp", Method: serving.ExternalFunctionRequestHttpMethodPost, Path: "/",
		Headers: `{"Accept":"application/json, text/event-stream"}`, Json: init,
	}
	resp, err := apisSDK(t, ws, AliceToken).ServingEndpoints.HttpRequest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Contents)
	resp.Contents.Close()
	if !strings.Contains(string(b), `"serverInfo"`) || !strings.Contains(string(b), "dev-external-mcp") {
		t.Fatalf("upstream body %s", b)
	}
	// The proxy relays the upstream's Mcp-Session-Id (the SDK's typed
	// response does not expose headers, so ask over plain HTTP).
	raw, _ := json.Marshal(map[string]string{"connection_name": "dev-external-mcp", "method": "POST", "path": "/",
		"headers": `{"Accept":"application/json, text/event-stream"}`, "json": init})
	hreq, _ := http.NewRequest(http.MethodPost, ws.URL()+"/api/2.0/external-function", strings.NewReader(string(raw)))
	hreq.Header.Set("Authorization", "Bearer "+AliceToken)
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != 200 || hresp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("relay: %d, session %q", hresp.StatusCode, hresp.Header.Get("Mcp-Session-Id"))
	}
	_, err = apisSDK(t, ws, CarolToken).ServingEndpoints.HttpRequest(ctx, req)
	if !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("carol without USE_CONNECTION: %v", err)
	}
	req.ConnectionName = "nope"
	_, err = apisSDK(t, ws, AliceToken).ServingEndpoints.HttpRequest(ctx, req)
	if !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("missing connection: %v", err)
	}
	req.ConnectionName, req.Headers = "dev-external-mcp", "not json"
	_, err = apisSDK(t, ws, AliceToken).ServingEndpoints.HttpRequest(ctx, req)
	if !errors.Is(err, databricks.ErrBadRequest) {
		t.Fatalf("bad headers: %v", err)
	}
}

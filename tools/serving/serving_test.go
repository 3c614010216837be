package serving_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	openai "github.com/sashabaranov/go-openai"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/servingtest"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/serving"
)

func userClient(t *testing.T, host string, scopes ...string) *databricks.WorkspaceClient {
	u, err := credentials.NewUser(credentials.UserOptions{Host: host, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return u.Client()
}

func TestChatSignsEveryRequestFromCtx(t *testing.T) {
	llm := servingtest.New(t, servingtest.Reply{Text: "hello there"})
	w := userClient(t, llm.URL, serving.Scope)
	c, err := serving.New(serving.Options{Endpoint: "dev-llm", Workspace: w})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"alice-token", "bob-token"} {
		resp, err := c.Chat(credentials.WithCaller(context.Background(), tok), openai.ChatCompletionRequest{
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Message.Content != "hello there" || resp.Usage.TotalTokens != 15 {
			t.Errorf("resp = %+v", resp)
		}
	}
	if got := strings.Join(llm.AuthHeaders(), ","); got != "Bearer alice-token,Bearer bob-token" {
		t.Errorf("auth = %s", got)
	}
	if llm.Snapshot()[0].Model != "dev-llm" {
		t.Errorf("model = %q", llm.Snapshot()[0].Model)
	}
	// Outside the scopes the call is refused before it is sent.
	narrow := userClient(t, llm.URL, "dashboards.genie")
	c2, _ := serving.New(serving.Options{Endpoint: "dev-llm", Workspace: narrow})
	_, err = c2.Chat(credentials.WithCaller(context.Background(), "alice-token"), openai.ChatCompletionRequest{
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	if !tools.IsPermission(err) || len(llm.Snapshot()) != 2 {
		t.Errorf("err = %v, requests = %d", err, len(llm.Snapshot()))
	}
}

func TestChatStreamAssemblesToolCalls(t *testing.T) {
	llm := servingtest.New(t, servingtest.Reply{Text: "Let me check. ", Calls: []servingtest.Call{
		{Name: "lookup", Args: `{"order_id":"o-1"}`}, {Name: "search", Args: `{"query":"reset password"}`}}})
	c, err := serving.New(serving.Options{Endpoint: "m", BaseURL: llm.URL + "/v1", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var deltas []string
	out, err := c.ChatStream(context.Background(), openai.ChatCompletionRequest{
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}},
		Tools: []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "lookup",
			Parameters: tools.ObjectSchema(map[string]string{"order_id": "id"}, "order_id")}}},
	}, func(ch *openai.ChatCompletionStreamResponse) error {
		for _, c := range ch.Choices {
			if c.Delta.Content != "" {
				deltas = append(deltas, c.Delta.Content)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := out.Choices[0].Message
	if msg.Content != "Let me check. " || strings.Join(deltas, "") != msg.Content || len(deltas) < 2 {
		t.Errorf("content %q deltas %q", msg.Content, deltas)
	}
	if len(msg.ToolCalls) != 2 || msg.ToolCalls[0].Function.Arguments != `{"order_id":"o-1"}` ||
		msg.ToolCalls[1].Function.Name != "search" || msg.ToolCalls[1].ID == "" {
		t.Errorf("tool calls = %+v", msg.ToolCalls)
	}
	if out.Usage.TotalTokens != 15 || out.Choices[0].FinishReason != openai.FinishReasonToolCalls {
		t.Errorf("usage %+v finish %q", out.Usage, out.Choices[0].FinishReason)
	}
	req := llm.Snapshot()[0]
	if !req.Stream || len(req.Tools) != 1 {
		t.Errorf("request = %+v", req)
	}
	// An error from the callback stops the stream.
	stop := errors.New("client went away")
	if _, err := c.ChatStream(context.Background(), openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}}},
		func(*openai.ChatCompletionStreamResponse) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("err = %v", err)
	}
}

func TestPermissionErrorFromEndpoint(t *testing.T) {
	llm := servingtest.New(t, servingtest.Reply{Status: http.StatusForbidden})
	w := userClient(t, llm.URL, serving.Scope)
	c, _ := serving.New(serving.Options{Endpoint: "dev-llm", Workspace: w})
	_, err := c.Chat(credentials.WithCaller(context.Background(), "bob-token"), openai.ChatCompletionRequest{
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}}})
	if !errors.Is(err, databricks.ErrPermissionDenied) || strings.Contains(err.Error(), "bob-token") {
		t.Errorf("err = %v", err)
	}
}

// Whatever server the client talks to, a 401 or 403 answer speaks the one
// vocabulary of tools.Classify, and the caller's key never shows.
func TestRefusalsMatchSDKErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
		reason tools.Reason
	}{
		{http.StatusForbidden, databricks.ErrPermissionDenied, tools.ReasonPermissionDenied},
		{http.StatusUnauthorized, databricks.ErrUnauthenticated, tools.ReasonUnauthenticated},
	} {
		llm := servingtest.New(t, servingtest.Reply{Status: tc.status}, servingtest.Reply{Status: tc.status})
		c, err := serving.New(serving.Options{Endpoint: "m", BaseURL: llm.URL + "/v1", APIKey: "sk-secret-key"})
		if err != nil {
			t.Fatal(err)
		}
		req := openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "x"}}}
		_, err1 := c.Chat(context.Background(), req)
		_, err2 := c.ChatStream(context.Background(), req, nil)
		for _, err := range []error{err1, err2} {
			if !errors.Is(err, tc.want) || tools.Classify(err) != tc.reason || !tools.IsPermission(err) {
				t.Errorf("HTTP %d: err = %v, reason %q", tc.status, err, tools.Classify(err))
			}
			var ae *openai.APIError
			var re *openai.RequestError
			if !errors.As(err, &ae) && !errors.As(err, &re) {
				t.Errorf("HTTP %d: go-openai's error is lost: %v", tc.status, err)
			}
			if err != nil && strings.Contains(err.Error(), "sk-secret-key") {
				t.Errorf("key in error: %v", err)
			}
		}
	}
}

func TestEmbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Input []string `json:"input"`
			Model string   `json:"model"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		if r.URL.Path != "/serving-endpoints/embeddings" || req.Model != "dev-embeddings" || r.Header.Get("Authorization") != "Bearer alice-token" {
			http.Error(w, "bad request "+r.URL.Path, 400)
			return
		}
		// Out of order on purpose: results are placed by index.
		io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0,1]},{"object":"embedding","index":0,"embedding":[1,0]}],"usage":{"prompt_tokens":2,"total_tokens":2}}`)
	}))
	defer srv.Close()
	c, _ := serving.New(serving.Options{Endpoint: "dev-embeddings", Workspace: userClient(t, srv.URL, serving.Scope)})
	vecs, err := c.Embed(credentials.WithCaller(context.Background(), "alice-token"), []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 2 || vecs[0][0] != 1 || vecs[1][1] != 1 {
		t.Errorf("vecs = %v", vecs)
	}
	if _, err := c.Embed(context.Background(), nil); err == nil {
		t.Error("empty input accepted")
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []serving.Options{{}, {Endpoint: "x"}} {
		if _, err := serving.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

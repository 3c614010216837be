package serving_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	openai "github.com/sashabaranov/go-openai"

	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/serving"
)

// TestDevWorkspace calls dev-llm (with a tool) and dev-embeddings as the
// agent's service principal and as the dev users.
func TestDevWorkspace(t *testing.T) {
	ws := testws.Dev(t)
	sys := testws.System(t, ws.URL())
	llm, err := serving.New(serving.Options{Endpoint: "dev-llm", Workspace: sys})
	if err != nil {
		t.Fatal(err)
	}
	req := openai.ChatCompletionRequest{
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "What is the weather in Paris?"}},
		Tools: []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "get_weather",
			Description: "Current weather for a city", Parameters: tools.ObjectSchema(map[string]string{"city": "city name"}, "city")}}},
	}
	for _, stream := range []bool{false, true} {
		var out *openai.ChatCompletionResponse
		if stream {
			out, err = llm.ChatStream(context.Background(), req, nil)
		} else {
			out, err = llm.Chat(context.Background(), req)
		}
		if err != nil {
			t.Fatal(err)
		}
		calls := out.Choices[0].Message.ToolCalls
		if len(calls) != 1 || calls[0].Function.Name != "get_weather" || !strings.Contains(calls[0].Function.Arguments, "Paris") {
			t.Errorf("stream=%v: tool calls = %+v", stream, calls)
		}
		if out.Usage.TotalTokens == 0 {
			t.Errorf("stream=%v: no usage", stream)
		}
	}

	user := testws.User(t, ws.URL(), serving.Scope)
	emb, _ := serving.New(serving.Options{Endpoint: "dev-embeddings", Workspace: user})
	vecs, err := emb.Embed(testws.As("bob"), []string{"reset password", "install on linux"})
	if err != nil || len(vecs) != 2 || len(vecs[0]) == 0 {
		t.Fatalf("embeddings as bob: %d, %v", len(vecs), err)
	}
	// carol may query dev-llm only.
	if _, err := emb.Embed(testws.As("carol"), []string{"x"}); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Errorf("carol embeddings err = %v", err)
	}
	ullm, _ := serving.New(serving.Options{Endpoint: "dev-llm", Workspace: user})
	if _, err := ullm.Chat(testws.As("carol"), openai.ChatCompletionRequest{Messages: req.Messages}); err != nil {
		t.Errorf("carol dev-llm: %v", err)
	}
}

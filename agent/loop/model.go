package loop

import (
	"context"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentrt/agentrt/agent"
)

// Model is the chat model a Loop asks at each step: any OpenAI-compatible
// chat completions API, in go-openai's types. *serving.Client implements it
// for Databricks model serving endpoints; any other client needs only this
// one method.
//
// ChatStream sends req and returns the complete answer: in Choices[0].Message
// the assistant's text and every tool call whole (ID, name and arguments
// assembled), and in Usage the token counts when the server reports them.
// The loop fills Messages and Tools (and Temperature and MaxTokens when set);
// the model sets the rest, such as Model and Stream. The model must not keep
// req or change its slices after returning; the loop owns the response
// once it is returned.
//
// Streaming: while the answer is generated, the model may call onChunk with
// each chunk, in order, on the calling goroutine and before ChatStream
// returns; the loop passes each chunk's text deltas on to the client at
// once. A model that does not stream may return without calling onChunk;
// the client then gets the text whole. When onChunk returns an error, the
// model must stop and return that error (wrapped or not).
//
// Errors: an error ends the request; the loop returns it as is, so the host
// answers 500, or 503 with Retry-After when the error has a
// RetryAfter() time.Duration method (as *serving.UnavailableError does).
// Report a refusal as an error matching databricks.ErrPermissionDenied or
// ErrUnauthenticated, the vocabulary of tools.Classify. Retrying is the
// model's business; the loop never retries.
//
// Concurrency: a Loop serves many requests at once, so ChatStream is called
// concurrently and must be safe for concurrent use; within one request the
// calls are sequential. ctx is the request's: it carries its deadline and
// agent.Env (agent.FromContext), so a model bound to the caller's identity can
// pick its client per request.
type Model interface {
	ChatStream(ctx context.Context, req openai.ChatCompletionRequest, onChunk func(*openai.ChatCompletionStreamResponse) error) (*openai.ChatCompletionResponse, error)
}

// chatTools converts prepared tools to the request's tool list.
func chatTools(ts []agent.Tool) []openai.Tool {
	out := make([]openai.Tool, 0, len(ts))
	for _, t := range ts {
		d := t.Definition()
		params := any(d.Parameters)
		if len(d.Parameters) == 0 {
			params = map[string]any{"type": "object", "properties": map[string]any{}}
		}
		out = append(out, openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: d.Name, Description: d.Description, Parameters: params}})
	}
	return out
}

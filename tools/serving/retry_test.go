package serving_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentrt/agentrt/internal/faultproxy"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/serving"
)

const llmPath = "/serving-endpoints/"

// devLLM returns a client for dev-llm as the service principal, through a
// fault proxy in front of the dev workspace.
func devLLM(t *testing.T) (*serving.Client, *faultproxy.Proxy) {
	t.Helper()
	ws := testws.Dev(t)
	u, _ := url.Parse(ws.URL())
	p := faultproxy.Start(t, faultproxy.Forward(u))
	c, err := serving.New(serving.Options{Endpoint: "dev-llm", Workspace: testws.System(t, p.URL)})
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

var hi = openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}

func TestModelRetries(t *testing.T) {
	c, p := devLLM(t)

	// 429 with Retry-After: 1, then 200.
	p.Add(faultproxy.Rule{Prefix: llmPath, Fault: faultproxy.RetryAfter(http.StatusTooManyRequests, 1), Times: 1})
	start := time.Now()
	if _, err := c.Chat(context.Background(), hi); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || p.Count(llmPath) != 2 {
		t.Errorf("429 Retry-After 1: %d calls in %s", p.Count(llmPath), d)
	}

	// 503 twice, then 200, streaming: the stream starts only once.
	p.Add(faultproxy.Rule{Prefix: llmPath, Fault: faultproxy.Status(http.StatusServiceUnavailable), Times: 2})
	if _, err := c.ChatStream(context.Background(), hi, nil); err != nil || p.Count(llmPath) != 5 {
		t.Errorf("503 twice: %v after %d calls", err, p.Count(llmPath)-2)
	}

	// 400 is not retried.
	p.Add(faultproxy.Rule{Prefix: llmPath, Fault: faultproxy.Status(http.StatusBadRequest), Times: 1})
	if _, err := c.Chat(context.Background(), hi); err == nil || p.Count(llmPath) != 6 {
		t.Errorf("400: %v after %d calls", err, p.Count(llmPath)-5)
	}

	// A reset after the POST was sent: the outcome is unknown, no retry.
	p.Add(faultproxy.Rule{Prefix: llmPath, Fault: faultproxy.Reset(), Times: 1})
	if _, err := c.Chat(context.Background(), hi); err == nil || p.Count(llmPath) != 7 {
		t.Errorf("reset: %v after %d calls", err, p.Count(llmPath)-6)
	}
}

// A Retry-After beyond the call's deadline: no wait, one call, and an error
// the HTTP layer answers with 503 and the endpoint's Retry-After.
func TestModelRetryAfterBeyondDeadline(t *testing.T) {
	c, p := devLLM(t)
	p.Add(faultproxy.Rule{Prefix: llmPath, Fault: faultproxy.RetryAfter(http.StatusTooManyRequests, 30)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Chat(ctx, hi)
	if d := time.Since(start); d > time.Second || p.Count(llmPath) != 1 {
		t.Errorf("%d calls in %s", p.Count(llmPath), d)
	}
	var ue *serving.UnavailableError
	if !errors.As(err, &ue) || ue.Status != 429 || ue.Wait != 30*time.Second {
		t.Fatalf("err = %v", err)
	}
	if e := httperr.From(err); e.Status != 503 || e.RetryAfter != 30 {
		t.Errorf("httperr: %d Retry-After %d", e.Status, e.RetryAfter)
	}
}

// Package serving is an OpenAI-compatible client (go-openai) for Databricks
// model serving endpoints: chat completions with tool calling and streaming,
// and embeddings, with the endpoint name as the model.
//
// Calls are retried where that is safe (429 and 503 answers, connection
// failures before the request was sent), honouring Retry-After within the
// call's deadline; a stream is never retried once it started.
//
// Authentication comes from the bound workspace client on every request (its
// credentials see the request's context), so per-user and refreshed tokens
// work without a static key; calls are traced as "chat <endpoint>" spans with
// the OpenTelemetry GenAI semantic conventions.
package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	openai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httpretry"
	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/wsapi"
)

const instrumentation = "github.com/agentrt/agentrt/tools/serving"

// Scope is the user API scope for querying serving endpoints.
const Scope = "serving.serving-endpoints"

// Options configure a Client. Exactly one of Workspace or BaseURL is used:
// with Workspace the base URL is {host}/serving-endpoints and every request
// is signed by the workspace client; BaseURL plugs in any other
// OpenAI-compatible server (with APIKey, or HTTPClient doing its own auth).
type Options struct {
	Endpoint  string // required: the serving endpoint name (the "model")
	Workspace *databricks.WorkspaceClient

	BaseURL    string
	APIKey     string
	HTTPClient *http.Client
}

// Client calls one serving endpoint.
type Client struct {
	oc       *openai.Client
	endpoint string
	system   string // gen_ai.system attribute
}

// New returns a client for o.Endpoint.
func New(o Options) (*Client, error) {
	if strings.TrimSpace(o.Endpoint) == "" {
		return nil, errors.New("serving: endpoint name is required")
	}
	var cfg openai.ClientConfig
	switch {
	case o.Workspace != nil:
		host, err := wsapi.Host(o.Workspace)
		if err != nil {
			return nil, fmt.Errorf("serving: %w", err)
		}
		hc, err := wsapi.HTTPClient(o.Workspace)
		if err != nil {
			return nil, fmt.Errorf("serving: %w", err)
		}
		cfg = openai.DefaultConfig("") // no static key: the transport signs
		cfg.BaseURL = host + "/serving-endpoints"
		cfg.HTTPClient = &http.Client{Transport: &httpretry.Transport{Base: hc.Transport}}
	case o.BaseURL != "":
		cfg = openai.DefaultConfig(o.APIKey)
		cfg.BaseURL = strings.TrimRight(o.BaseURL, "/")
		hc := &http.Client{}
		if o.HTTPClient != nil {
			*hc = *o.HTTPClient
		}
		hc.Transport = &httpretry.Transport{Base: hc.Transport}
		cfg.HTTPClient = hc
	default:
		return nil, errors.New("serving: Options needs Workspace or BaseURL")
	}
	return &Client{oc: openai.NewClientWithConfig(cfg), endpoint: o.Endpoint, system: "databricks"}, nil
}

// Endpoint returns the endpoint name.
func (c *Client) Endpoint() string { return c.endpoint }

// Resource is the manifest entry for the endpoint.
func (c *Client) Resource() agent.Resource {
	return agent.Resource{Type: agent.ServingEndpoint, Name: c.endpoint}
}

// Chat sends one chat completion request (Model is set to the endpoint).
func (c *Client) Chat(ctx context.Context, req openai.ChatCompletionRequest) (*openai.ChatCompletionResponse, error) {
	req.Model = c.endpoint
	req.Stream = false
	ctx, span, start := c.start(ctx, "chat", req)
	ctx, rep := httpretry.WithReport(ctx)
	resp, err := c.oc.CreateChatCompletion(ctx, req)
	if err != nil {
		err = c.wrap(err, rep)
		c.end(ctx, span, start, "chat", nil, err)
		return nil, err
	}
	c.end(ctx, span, start, "chat", &resp.Usage, nil, finishReasons(resp.Choices)...)
	return &resp, nil
}

// ChatStream streams a chat completion, calling fn (when not nil) for each
// chunk, and returns the whole response assembled from the chunks: the
// text, and tool calls merged by index. An error from fn stops the stream
// and is returned. Client implements loop.Model with it.
func (c *Client) ChatStream(ctx context.Context, req openai.ChatCompletionRequest, fn func(chunk *openai.ChatCompletionStreamResponse) error) (*openai.ChatCompletionResponse, error) {
	req.Model = c.endpoint
	req.Stream = true
	if req.StreamOptions == nil {
		req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	ctx, span, start := c.start(ctx, "chat", req)
	ctx, rep := httpretry.WithReport(ctx)
	out, err := c.stream(ctx, req, fn)
	if err != nil {
		err = c.wrap(err, rep)
		c.end(ctx, span, start, "chat", nil, err)
		return nil, err
	}
	c.end(ctx, span, start, "chat", &out.Usage, nil, finishReasons(out.Choices)...)
	return out, nil
}

func (c *Client) stream(ctx context.Context, req openai.ChatCompletionRequest, fn func(*openai.ChatCompletionStreamResponse) error) (*openai.ChatCompletionResponse, error) {
	st, err := c.oc.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := &openai.ChatCompletionResponse{Object: "chat.completion"}
	var text strings.Builder
	role, finish := openai.ChatMessageRoleAssistant, openai.FinishReason("")
	calls := map[int]*openai.ToolCall{}
	for {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if out.ID == "" {
			out.ID, out.Created, out.Model = chunk.ID, chunk.Created, chunk.Model
		}
		if chunk.Usage != nil {
			out.Usage = *chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.Role != "" {
				role = ch.Delta.Role
			}
			text.WriteString(ch.Delta.Content)
			for _, tc := range ch.Delta.ToolCalls {
				i := len(calls)
				if tc.Index != nil {
					i = *tc.Index
				}
				acc, ok := calls[i]
				if !ok {
					acc = &openai.ToolCall{Type: openai.ToolTypeFunction}
					calls[i] = acc
				}
				if tc.ID != "" {
					acc.ID = tc.ID
				}
				if tc.Function.Name != "" {
					acc.Function.Name += tc.Function.Name
				}
				acc.Function.Arguments += tc.Function.Arguments
			}
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
		if fn != nil {
			if err := fn(&chunk); err != nil {
				return nil, err
			}
		}
	}
	msg := openai.ChatCompletionMessage{Role: role, Content: text.String()}
	idx := make([]int, 0, len(calls))
	for i := range calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		msg.ToolCalls = append(msg.ToolCalls, *calls[i])
	}
	out.Choices = []openai.ChatCompletionChoice{{Index: 0, Message: msg, FinishReason: finish}}
	return out, nil
}

// Embed returns one embedding per input.
func (c *Client) Embed(ctx context.Context, input []string) ([][]float32, error) {
	if len(input) == 0 {
		return nil, errors.New("serving: no input to embed")
	}
	ctx, span, start := c.start(ctx, "embeddings", openai.ChatCompletionRequest{})
	ctx, rep := httpretry.WithReport(ctx)
	resp, err := c.oc.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Input: input, Model: openai.EmbeddingModel(c.endpoint)})
	if err != nil {
		err = c.wrap(err, rep)
		c.end(ctx, span, start, "embeddings", nil, err)
		return nil, err
	}
	c.end(ctx, span, start, "embeddings", &resp.Usage, nil)
	out := make([][]float32, len(input))
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= len(out) {
			return nil, fmt.Errorf("serving endpoint %s: embedding index %d out of range", c.endpoint, d.Index)
		}
		out[d.Index] = d.Embedding
	}
	return out, nil
}

// UnavailableError is a call the endpoint kept refusing with 429 or 503
// after the retries the call's deadline allowed. It implements
// httperr.Retryable, so an agent that returns it (wrapped or not) gets its
// caller a 503 with Retry-After instead of a 500.
type UnavailableError struct {
	Endpoint string
	Status   int           // 429 or 503
	Wait     time.Duration // the endpoint's last Retry-After; 0 if none
	Attempts int
	Err      error // go-openai's error
}

func (e *UnavailableError) Error() string {
	s := fmt.Sprintf("serving endpoint %s: HTTP %d after %d attempt(s)", e.Endpoint, e.Status, e.Attempts)
	if e.Wait > 0 {
		s += fmt.Sprintf("; it asks to retry after %s", e.Wait)
	}
	return s + ": " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// RetryAfter is when the call may be tried again.
func (e *UnavailableError) RetryAfter() time.Duration { return max(e.Wait, time.Second) }

// wrap names the endpoint, turns a final 429/503 into *UnavailableError, and
// makes a 401/403 answer match databricks.ErrUnauthenticated or
// ErrPermissionDenied, the vocabulary of tools.IsPermission, whatever server
// the client talks to.
func (c *Client) wrap(err error, rep *httpretry.Report) error {
	status := 0
	var ae *openai.APIError
	var re *openai.RequestError
	if errors.As(err, &ae) {
		status = ae.HTTPStatusCode
	} else if errors.As(err, &re) {
		status = re.HTTPStatusCode
	}
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return &UnavailableError{Endpoint: c.endpoint, Status: status, Wait: rep.RetryAfter, Attempts: rep.Attempts, Err: err}
	}
	if wsapi.IsAuthStatus(status) {
		err = &refusedError{err: err, status: status}
	}
	return fmt.Errorf("serving endpoint %s: %w", c.endpoint, err)
}

// refusedError is go-openai's error for a 401 or 403 answer; it also
// unwraps to the *apierr.APIError for that status.
type refusedError struct {
	err    error
	status int
}

func (e *refusedError) Error() string { return e.err.Error() }

func (e *refusedError) Unwrap() []error {
	return []error{e.err, &apierr.APIError{StatusCode: e.status, Message: e.err.Error()}}
}

// Telemetry.

func (c *Client) start(ctx context.Context, op string, req openai.ChatCompletionRequest) (context.Context, trace.Span, time.Time) {
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", op),
		attribute.String("gen_ai.system", c.system),
		attribute.String("gen_ai.request.model", c.endpoint),
	}
	if req.MaxCompletionTokens > 0 {
		attrs = append(attrs, attribute.Int("gen_ai.request.max_tokens", req.MaxCompletionTokens))
	} else if req.MaxTokens > 0 {
		attrs = append(attrs, attribute.Int("gen_ai.request.max_tokens", req.MaxTokens))
	}
	if req.Temperature != 0 {
		attrs = append(attrs, attribute.Float64("gen_ai.request.temperature", float64(req.Temperature)))
	}
	ctx, span := otel.Tracer(instrumentation).Start(ctx, op+" "+c.endpoint,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, span, time.Now()
}

func (c *Client) end(ctx context.Context, span trace.Span, start time.Time, op string, u *openai.Usage, err error, finish ...string) {
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", op),
		attribute.String("gen_ai.system", c.system),
		attribute.String("gen_ai.request.model", c.endpoint),
	}
	if err != nil {
		kind := "error"
		if tools.IsPermission(err) {
			kind = "permission_denied"
		}
		attrs = append(attrs, attribute.String("error.type", kind))
		span.RecordError(err)
		span.SetStatus(codes.Error, kind)
	}
	if u != nil {
		span.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", u.PromptTokens),
			attribute.Int("gen_ai.usage.output_tokens", u.CompletionTokens))
	}
	if len(finish) > 0 {
		span.SetAttributes(attribute.StringSlice("gen_ai.response.finish_reasons", finish))
	}
	duration().Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
	span.End()
}

func finishReasons(ch []openai.ChatCompletionChoice) []string {
	var out []string
	for _, c := range ch {
		if c.FinishReason != "" {
			out = append(out, string(c.FinishReason))
		}
	}
	return out
}

var (
	histOnce sync.Once
	hist     metric.Float64Histogram
)

func duration() metric.Float64Histogram {
	histOnce.Do(func() {
		hist, _ = otel.Meter(instrumentation).Float64Histogram("gen_ai.client.operation.duration",
			metric.WithUnit("s"), metric.WithDescription("GenAI operation duration."),
			metric.WithExplicitBucketBoundaries(0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92))
	})
	return hist
}

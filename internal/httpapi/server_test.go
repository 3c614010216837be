package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/payloads"
	"github.com/agentrt/agentrt/internal/telemetry"
	"github.com/agentrt/agentrt/internal/wireproto"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newServer(t testing.TB, opts httpapi.Options) *httptest.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.AgentName == "" {
		opts.AgentName = "test-agent"
	}
	srv, err := httpapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func openaiClient(baseURL string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(baseURL),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	)
}

// predictOnly hides the echo agent's streaming, so the host must synthesise
// the stream.
type predictOnly struct{ echo.Agent }

func (p predictOnly) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	return p.Agent.Predict(ctx, req)
}

// streamOnly hides the echo agent's Predict, so the host must aggregate.
type streamOnly struct{ a echo.Agent }

func (s streamOnly) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	return s.a.PredictStream(ctx, req, emit)
}

func agentsUnderTest() map[string]agent.Agent {
	return map[string]agent.Agent{
		"both":         echo.Agent{},
		"predict-only": predictOnly{},
		"stream-only":  agent.FromStream(streamOnly{}),
	}
}

func TestOpenAIClient(t *testing.T) {
	for name, a := range agentsUnderTest() {
		for _, base := range []string{"/", "/v1/"} {
			t.Run(name+base, func(t *testing.T) {
				ts := newServer(t, httpapi.Options{Agent: a, AgentName: "echo"})
				client := openaiClient(ts.URL + base)
				ctx := context.Background()
				params := responses.ResponseNewParams{
					Model: "echo",
					Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello brave new world")},
				}

				resp, err := client.Responses.New(ctx, params)
				if err != nil {
					t.Fatalf("Responses.New: %v", err)
				}
				if got, want := resp.OutputText(), "echo: hello brave new world"; got != want {
					t.Errorf("OutputText = %q, want %q", got, want)
				}
				if !strings.HasPrefix(resp.ID, "resp_") || resp.Status != "completed" || resp.Model != "echo" || resp.CreatedAt == 0 {
					t.Errorf("envelope: id=%q status=%q model=%q created_at=%v", resp.ID, resp.Status, resp.Model, resp.CreatedAt)
				}
				if len(resp.Output) != 1 || resp.Output[0].Status != "completed" || resp.Output[0].Role != "assistant" {
					t.Errorf("output = %s", resp.RawJSON())
				}

				stream := client.Responses.NewStreaming(ctx, params)
				var deltas strings.Builder
				var completed string
				var lastSeq int64 = -1
				var types []string
				for stream.Next() {
					ev := stream.Current()
					if ev.SequenceNumber != lastSeq+1 {
						t.Errorf("sequence_number %d after %d", ev.SequenceNumber, lastSeq)
					}
					lastSeq = ev.SequenceNumber
					types = append(types, ev.Type)
					switch ev.Type {
					case "response.output_text.delta":
						deltas.WriteString(ev.Delta)
					case "response.completed":
						completed = ev.Response.OutputText()
					}
				}
				if err := stream.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				if deltas.String() != "echo: hello brave new world" || completed != deltas.String() {
					t.Errorf("deltas %q, completed %q", deltas.String(), completed)
				}
				if types[0] != "response.created" || types[1] != "response.in_progress" || types[len(types)-1] != "response.completed" {
					t.Errorf("event types = %v", types)
				}
			})
		}
	}
}

// sseEvents reads a data-only SSE stream: every payload must be JSON except
// a final [DONE].
func sseEvents(t *testing.T, body io.Reader) (events []agent.StreamEvent, raws []map[string]any) {
	t.Helper()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		payload, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("non-data line %q (MLflow's client rejects it)", line)
		}
		if done {
			t.Fatalf("data after [DONE]: %q", payload)
		}
		if payload == "[DONE]" {
			done = true
			continue
		}
		var ev agent.StreamEvent
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			t.Fatalf("frame %q: %v", payload, err)
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(payload), &raw)
		events = append(events, ev)
		raws = append(raws, raw)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !done {
		t.Fatal("stream did not end with data: [DONE]")
	}
	return events, raws
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// scripted emits a tool call, its output, a reasoning item and an annotated
// message the way an MLflow agent would: only deltas and .done items.
type scripted struct{}

func (scripted) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	return agent.FromStream(streamFunc(scripted{}.PredictStream)).Predict(ctx, req)
}

func (scripted) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	events := []*agent.StreamEvent{
		agent.ItemDone(agent.FunctionCallItem("fc_1", "call_1", "lookup", `{"q":"x"}`)),
		agent.ItemDone(agent.FunctionCallOutputItem("call_1", "42")),
		agent.ItemDone(agent.ReasoningItem("rs_1", "thinking")),
		agent.TextDelta("The answer ", "msg_1"),
		agent.TextDelta("is 42.", "msg_1"),
		agent.AnnotationAdded("msg_1", agent.Annotation{Type: wireproto.AnnotationURLCitation, URL: "https://example.com", Title: "src"}, 0),
	}
	done := agent.ItemDone(agent.TextItem("msg_1", "The answer is 42.",
		agent.Annotation{Type: wireproto.AnnotationURLCitation, URL: "https://example.com", Title: "src"}))
	done.CustomOutputs = map[string]any{"k": "v"}
	events = append(events, done)
	for _, ev := range events {
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}

type streamFunc func(ctx context.Context, req *agent.Request, emit agent.Emit) error

func (f streamFunc) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	return f(ctx, req, emit)
}

// TestStreamAndPredictAgree: a streaming agent that sends only deltas (no
// output_item.done, or one without content) gives the same answer
// streamed (response.completed) and in one piece (FromStream), because the
// host and FromStream fold with one aggregator.
func TestStreamAndPredictAgree(t *testing.T) {
	a := agent.FromStream(streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
		for _, ev := range []*agent.StreamEvent{
			agent.TextDelta("open ", "m1"),
			agent.TextDelta("only deltas", "m2"),
			agent.TextDelta("and done", "m1"),
			agent.ItemDone(agent.Item{Type: agent.TypeMessage, ID: "m1"}),
		} {
			if err := emit(ev); err != nil {
				return err
			}
		}
		return nil
	}))
	ts := newServer(t, httpapi.Options{Agent: a})
	texts := func(r *agent.Response) []string {
		var out []string
		for _, it := range r.Output {
			out = append(out, it.ID+"="+it.Text())
		}
		return out
	}
	want := []string{"m1=open and done", "m2=only deltas"}

	resp := post(t, ts.URL+"/responses", `{"input":"q","stream":true}`)
	defer resp.Body.Close()
	events, _ := sseEvents(t, resp.Body)
	var completed *agent.Response
	doneText := map[string]string{}
	for _, ev := range events {
		switch ev.Type {
		case wireproto.EventCompleted:
			completed = ev.Response
		case agent.EventOutputItemDone:
			doneText[ev.Item.ID] = ev.Item.Text()
		}
	}
	if completed == nil || !slices.Equal(texts(completed), want) {
		t.Fatalf("stream: response.completed output %v, want %v", texts(completed), want)
	}
	if doneText["m1"] != "open and done" || doneText["m2"] != "only deltas" {
		t.Errorf("stream: output_item.done texts %v", doneText)
	}

	plain := post(t, ts.URL+"/responses", `{"input":"q"}`)
	defer plain.Body.Close()
	var r agent.Response
	if err := json.NewDecoder(plain.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(texts(&r), want) {
		t.Errorf("predict: output %v, want %v", texts(&r), want)
	}
}

// mlflowReduce folds one event the way MLflow's output reducer does:
// output_item.done items are appended and custom_outputs merged; deltas
// are ignored.
func mlflowReduce(resp *agent.Response, ev *agent.StreamEvent) {
	if ev.Type == agent.EventOutputItemDone && ev.Item != nil {
		resp.Output = append(resp.Output, *ev.Item)
	}
	for k, v := range ev.CustomOutputs {
		if resp.CustomOutputs == nil {
			resp.CustomOutputs = map[string]any{}
		}
		resp.CustomOutputs[k] = v
	}
}

// TestMLflowReducer reads the stream as MLflow does: only
// response.output_item.done items count, and they must equal what the
// non-streaming call and response.completed return.
func TestMLflowReducer(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: scripted{}})
	// The MLflow dialect: /invocations, or any route asked for it.
	post := func(t *testing.T, url, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(httpapi.DialectHeader, "mlflow")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, path := range []string{"/invocations", "/responses", "/v1/responses"} {
		t.Run(path, func(t *testing.T) {
			resp := post(t, ts.URL+path, `{"input":[{"role":"user","content":"q"}],"custom_inputs":{"a":1},"context":{"conversation_id":"c1"},"stream":true}`)
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("content type %q", ct)
			}
			events, raws := sseEvents(t, resp.Body)
			reduced := &agent.Response{}
			text := map[string]string{}
			added := map[int]bool{}
			var completed *agent.Response
			for i, ev := range events {
				if ev.SequenceNumber != i {
					t.Errorf("event %d has sequence_number %d", i, ev.SequenceNumber)
				}
				mlflowReduce(reduced, &ev)
				switch ev.Type {
				case wireproto.EventOutputItemAdded:
					added[ev.OutputIndex] = true
				case agent.EventOutputItemDone:
					if !added[ev.OutputIndex] {
						t.Errorf("output_item.done for index %d without output_item.added", ev.OutputIndex)
					}
				case agent.EventOutputTextDelta:
					if ev.ItemID == "" {
						t.Errorf("delta without item_id")
					}
					for _, k := range []string{"item_id", "output_index", "content_index"} {
						if _, ok := raws[i][k]; !ok {
							t.Errorf("delta lacks %s: %v", k, raws[i])
						}
					}
					text[ev.ItemID] += ev.Delta
				case wireproto.EventCompleted:
					completed = ev.Response
				}
			}
			want := []string{"function_call", "function_call_output", "reasoning", "message"}
			if len(reduced.Output) != len(want) {
				t.Fatalf("reduced %d items, want %d", len(reduced.Output), len(want))
			}
			for i, it := range reduced.Output {
				if it.Type != want[i] {
					t.Errorf("item %d type %q, want %q", i, it.Type, want[i])
				}
			}
			msg := reduced.Output[3]
			if msg.ID != "msg_1" || msg.Text() != "The answer is 42." || text["msg_1"] != msg.Text() {
				t.Errorf("message %q (deltas %q)", msg.Text(), text["msg_1"])
			}
			if len(msg.Content.Parts[0].Annotations) != 1 {
				t.Errorf("annotations lost: %+v", msg.Content.Parts[0])
			}
			if reduced.CustomOutputs["k"] != "v" {
				t.Errorf("custom_outputs = %v", reduced.CustomOutputs)
			}
			if completed == nil || len(completed.Output) != 4 || completed.CustomOutputs["k"] != "v" {
				t.Fatalf("response.completed = %+v", completed)
			}

			// Non-streaming gives the same items.
			plain := post(t, ts.URL+path, `{"input":[{"role":"user","content":"q"}]}`)
			defer plain.Body.Close()
			var r agent.Response
			if err := json.NewDecoder(plain.Body).Decode(&r); err != nil {
				t.Fatal(err)
			}
			if len(r.Output) != 4 || r.OutputText() != "The answer is 42." || r.CustomOutputs["k"] != "v" {
				t.Errorf("non-streaming = %+v", r)
			}
		})
	}
}

func TestInvocationsMLflowStyle(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: echo.Agent{}})
	resp := post(t, ts.URL+"/invocations", `{"input":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"input_text","text":"ping"}]}],"custom_inputs":{"x":1},"context":{"conversation_id":"c","user_id":"u"}}`)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := body["output"].([]any)[0].(map[string]any)
	content := out["content"].([]any)[0].(map[string]any)
	if content["text"] != "echo: ping" || out["type"] != "message" || out["id"] == "" {
		t.Errorf("output = %v", out)
	}
	// OpenAI's Response schema requires error, null when there is none;
	// MLflow reads the null as absent.
	if v, ok := body["error"]; !ok || v != nil {
		t.Errorf("error member = %v (present %v), want null", v, ok)
	}
}

func TestRequestIDEchoedAndInEnv(t *testing.T) {
	var seen atomic.Value
	a := agentFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		seen.Store(agent.FromContext(ctx).RequestID)
		return &agent.Response{Output: []agent.Item{agent.TextItem("", "ok")}}, nil
	})
	ts := newServer(t, httpapi.Options{Agent: a})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/responses", strings.NewReader(`{"input":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "abc-123" || seen.Load() != "abc-123" {
		t.Errorf("header %q, env %v", resp.Header.Get("X-Request-Id"), seen.Load())
	}
}

// TestEnvCarriesPayloadSwitch: the telemetry payload switch reaches the
// agent's Env, where agent/loop reads it for tool arguments.
func TestEnvCarriesPayloadSwitch(t *testing.T) {
	for _, on := range []bool{true, false} {
		tel, err := telemetry.Setup(context.Background(), telemetry.Options{RecordPayloads: on, Getenv: func(string) string { return "" }})
		if err != nil {
			t.Fatal(err)
		}
		var seen atomic.Bool
		a := agentFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
			seen.Store(payloads.Enabled(ctx))
			return &agent.Response{Output: []agent.Item{agent.TextItem("", "ok")}}, nil
		})
		ts := newServer(t, httpapi.Options{Agent: a})
		resp, err := http.Post(ts.URL+"/responses", "application/json", strings.NewReader(`{"input":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_ = tel.Shutdown(context.Background())
		if seen.Load() != on {
			t.Errorf("payload recording %v: payloads.Enabled = %v", on, seen.Load())
		}
	}
}

func TestRequestIDEchoedOnUnknownRouteAndMethod(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: agentFunc(nil)})
	for _, tc := range []struct {
		method, path string
		status       int
	}{{http.MethodGet, "/nope", http.StatusNotFound}, {http.MethodGet, "/responses", http.StatusMethodNotAllowed}} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		req.Header.Set("X-Request-Id", "rid-"+tc.path)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("X-Request-Id") != "rid-"+tc.path {
			t.Errorf("%s %s: status %d, X-Request-Id %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("X-Request-Id"))
		}
	}
}

type agentFunc func(ctx context.Context, req *agent.Request) (*agent.Response, error)

func (f agentFunc) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	return f(ctx, req)
}

func TestPreparersRunInOrder(t *testing.T) {
	type key struct{}
	var order []string
	p := func(name string) httpapi.Preparer {
		return httpapi.PreparerFunc(func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
			order = append(order, name)
			env.Caller.UserName = name
			return context.WithValue(ctx, key{}, name), nil
		})
	}
	var got string
	a := agentFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		got = ctx.Value(key{}).(string) + "/" + agent.FromContext(ctx).Caller.UserName
		return &agent.Response{}, nil
	})
	ts := newServer(t, httpapi.Options{Agent: a, Preparers: []httpapi.Preparer{p("first"), p("second")}})
	resp := post(t, ts.URL+"/responses", `{"input":"x"}`)
	resp.Body.Close()
	if strings.Join(order, ",") != "first,second" || got != "second/second" {
		t.Errorf("order %v, agent saw %q", order, got)
	}
}

// errBody is the error body both client families read.
type errBody struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
	Error     struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    string  `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

// blocker blocks in Predict until release is closed, reporting entry.
type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocker) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	b.entered <- struct{}{}
	<-b.release // deliberately ignores ctx: the host must still answer on time
	return &agent.Response{Output: []agent.Item{agent.TextItem("", "late")}}, nil
}

type panicker struct{}

func (panicker) Predict(context.Context, *agent.Request) (*agent.Response, error) {
	panic("agent bug")
}

func (panicker) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	if err := emit(agent.TextDelta("partial ", "msg_p")); err != nil {
		return err
	}
	panic("agent bug mid-stream")
}

type badCase struct {
	name        string
	opts        httpapi.Options
	method      string
	path        string
	contentType string
	body        string
	before      func(t *testing.T, url string) // e.g. fill the concurrency slot
	after       func()                         // runs before the test server closes
	wantStatus  int
	wantCode    string
	wantParam   string
	wantHeader  [2]string
}

func TestBadRequests(t *testing.T) {
	ok := `{"input":"hi"}`
	tests := []badCase{
		{name: "body over limit", opts: httpapi.Options{Limits: httpapi.Limits{MaxBodyBytes: 64}},
			body: `{"input":"` + strings.Repeat("x", 100) + `"}`, wantStatus: 413, wantCode: "REQUEST_TOO_LARGE"},
		{name: "body over limit, chunked", opts: httpapi.Options{Limits: httpapi.Limits{MaxBodyBytes: 64}},
			body: "chunked:" + `{"input":"` + strings.Repeat("x", 100) + `"}`, wantStatus: 413, wantCode: "REQUEST_TOO_LARGE"},
		{name: "wrong content type", contentType: "text/plain", body: ok, wantStatus: 415, wantCode: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "wrong charset", contentType: "application/json; charset=latin1", body: ok, wantStatus: 415, wantCode: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "wrong method", method: http.MethodGet, path: "/responses", wantStatus: 405, wantCode: "METHOD_NOT_ALLOWED", wantHeader: [2]string{"Allow", "POST"}},
		{name: "wrong method on health", method: http.MethodPost, path: "/health", body: ok, wantStatus: 405, wantCode: "METHOD_NOT_ALLOWED"},
		{name: "unknown route", path: "/nope", body: ok, wantStatus: 404, wantCode: "ENDPOINT_NOT_FOUND"},
		{name: "malformed JSON", body: `{"input": [`, wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input"},
		{name: "not an object", body: `[1,2]`, wantStatus: 400, wantCode: "BAD_REQUEST"},
		{name: "empty body", body: ``, wantStatus: 400, wantCode: "BAD_REQUEST"},
		{name: "missing input", body: `{"model":"m"}`, wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input"},
		{name: "input of wrong type", body: `{"input": 5}`, wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input"},
		{name: "bad role", body: `{"input":[{"role":"robot","content":"x"}]}`, wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input[0].role"},
		{name: "bad content part", body: `{"input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"video"}]}]}`,
			wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input[0].content[1].type"},
		{name: "function call without call_id", body: `{"input":[{"type":"function_call","name":"f","arguments":"{}"}]}`,
			wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input[0].call_id"},
		{name: "stream not a bool", body: `{"input":"x","stream":"yes"}`, wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "stream"},
		{name: "bad status", body: `{"input":[{"role":"user","content":"x","status":"done"}]}`, wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input[0].status"},
		{name: "unknown item type", body: `{"input":[{"type":"teleport"}]}`, wantStatus: 400, wantCode: "BAD_REQUEST", wantParam: "input[0].type"},
		{name: "preparer 401 keeps its status", opts: httpapi.Options{Preparers: []httpapi.Preparer{httpapi.PreparerFunc(
			func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
				return nil, httperr.Unauthenticated("missing credential")
			})}}, body: ok, wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		{name: "preparer error is a 500", opts: httpapi.Options{Preparers: []httpapi.Preparer{httpapi.PreparerFunc(
			func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
				return nil, errors.New("secret internal detail")
			})}}, body: ok, wantStatus: 500, wantCode: "INTERNAL_ERROR"},
		{name: "agent panic is a 500", opts: httpapi.Options{Agent: panicker{}}, body: ok, wantStatus: 500, wantCode: "INTERNAL_ERROR"},
		{name: "agent error is a 500", opts: httpapi.Options{Agent: agentFunc(func(context.Context, *agent.Request) (*agent.Response, error) {
			return nil, errors.New("secret internal detail")
		})}, body: ok, wantStatus: 500, wantCode: "INTERNAL_ERROR"},
	}
	// Cases that need an agent in flight.
	conc := newBlocker()
	timeout := newBlocker()
	tests = append(tests,
		badCase{name: "over the concurrency limit", opts: httpapi.Options{Agent: conc, Limits: httpapi.Limits{MaxConcurrency: 1, RetryAfter: 2 * time.Second}},
			body: ok, wantStatus: 503, wantCode: "TEMPORARILY_UNAVAILABLE", wantHeader: [2]string{"Retry-After", "2"},
			before: func(t *testing.T, url string) {
				go func() {
					if resp, err := http.Post(url+"/responses", "application/json", strings.NewReader(ok)); err == nil {
						resp.Body.Close()
					}
				}()
				<-conc.entered
			},
			after: func() { close(conc.release) }},
		badCase{name: "request timeout", opts: httpapi.Options{Agent: timeout, Limits: httpapi.Limits{RequestTimeout: 50 * time.Millisecond}},
			body: ok, wantStatus: 504, wantCode: "DEADLINE_EXCEEDED", after: func() { close(timeout.release) }},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.Agent == nil {
				opts.Agent = echo.Agent{}
			}
			ts := newServer(t, opts)
			if tc.after != nil {
				t.Cleanup(tc.after)
			}
			if tc.before != nil {
				tc.before(t, ts.URL)
			}
			method, path, ct := tc.method, tc.path, tc.contentType
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/responses"
			}
			if ct == "" {
				ct = "application/json"
			}
			var body io.Reader = strings.NewReader(tc.body)
			if b, ok := strings.CutPrefix(tc.body, "chunked:"); ok {
				body = io.MultiReader(strings.NewReader(b)) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(method, ts.URL+path, body)
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if k := tc.wantHeader[0]; k != "" && resp.Header.Get(k) != tc.wantHeader[1] {
				t.Errorf("%s = %q, want %q", k, resp.Header.Get(k), tc.wantHeader[1])
			}
			raw, _ := io.ReadAll(resp.Body)
			var eb errBody
			if err := json.Unmarshal(raw, &eb); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			if eb.ErrorCode != tc.wantCode || eb.Error.Code != tc.wantCode || eb.Message == "" || eb.Error.Message != eb.Message || eb.Error.Type == "" {
				t.Errorf("body = %s", raw)
			}
			gotParam := ""
			if eb.Error.Param != nil {
				gotParam = *eb.Error.Param
			}
			if gotParam != tc.wantParam {
				t.Errorf("param %q, want %q (body %s)", gotParam, tc.wantParam, raw)
			}
			if strings.Contains(string(raw), "secret") {
				t.Errorf("internal detail leaked: %s", raw)
			}
			// The server keeps serving after every failure.
			after := post(t, ts.URL+"/health", "")
			after.Body.Close()
			if after.StatusCode != 405 {
				t.Errorf("POST /health after failure: %d", after.StatusCode)
			}
			h, err := http.Get(ts.URL + "/health")
			if err != nil || h.StatusCode != 200 {
				t.Fatalf("health after failure: %v %v", h, err)
			}
			h.Body.Close()
		})
	}
}

func TestPanicThenServerStillServes(t *testing.T) {
	var n atomic.Int32
	a := agentFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		if n.Add(1) == 1 {
			var m map[string]int
			m["boom"]++ // nil map write: a runtime panic
		}
		return echo.Agent{}.Predict(ctx, req)
	})
	ts := newServer(t, httpapi.Options{Agent: a})
	first := post(t, ts.URL+"/responses", `{"input":"x"}`)
	first.Body.Close()
	second := post(t, ts.URL+"/responses", `{"input":"y"}`)
	defer second.Body.Close()
	var r agent.Response
	_ = json.NewDecoder(second.Body).Decode(&r)
	if first.StatusCode != 500 || second.StatusCode != 200 || r.OutputText() != "echo: y" {
		t.Errorf("first %d, second %d %q", first.StatusCode, second.StatusCode, r.OutputText())
	}
}

func TestStreamingPanicSendsErrorEvent(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: panicker{}})
	resp := post(t, ts.URL+"/responses", `{"input":"x","stream":true}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	events, raws := sseEvents(t, resp.Body)
	last := events[len(events)-1]
	if last.Type != wireproto.EventError || last.Code != "server_error" || last.Message == "" || strings.Contains(last.Message, "agent bug") {
		t.Errorf("last event = %+v", last)
	}
	if _, ok := raws[len(raws)-1]["sequence_number"]; !ok {
		t.Error("error event without sequence_number")
	}
	// The official client surfaces it as an error.
	client := openaiClient(ts.URL + "/")
	stream := client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("x")},
	})
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Error("openai-go saw no error")
	}
	// And the server still serves.
	ok := post(t, ts.URL+"/health", "")
	ok.Body.Close()
}

func TestStreamTimeoutSendsErrorEvent(t *testing.T) {
	a := streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
		if err := emit(agent.TextDelta("a", "m")); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	})
	ts := newServer(t, httpapi.Options{Agent: agent.FromStream(a), Limits: httpapi.Limits{RequestTimeout: 50 * time.Millisecond}})
	resp := post(t, ts.URL+"/responses", `{"input":"x","stream":true}`)
	defer resp.Body.Close()
	events, _ := sseEvents(t, resp.Body)
	if last := events[len(events)-1]; last.Type != wireproto.EventError || last.Code != "timeout" {
		t.Errorf("last event = %+v", last)
	}
}

func TestClientDisconnectCancelsAgent(t *testing.T) {
	cancelled := make(chan error, 1)
	a := streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
		if err := emit(agent.TextDelta("first ", "m")); err != nil {
			return err
		}
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	})
	ts := newServer(t, httpapi.Options{Agent: agent.FromStream(a)})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/responses", strings.NewReader(`{"input":"x","stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "output_text.delta") {
			break
		}
	}
	cancel()
	resp.Body.Close()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("agent ctx error %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent context was not cancelled after the client went away")
	}
}

func TestHealthPingInfo(t *testing.T) {
	m := agent.Manifest{Resources: []agent.Resource{{Type: agent.ServingEndpoint, Name: "llm"}}, UserAPIScopes: []string{"serving.serving-endpoints"}}
	ts := newServer(t, httpapi.Options{Agent: echo.Agent{}, AgentName: "echo", Manifest: m})
	for path, want := range map[string]string{
		"/health":     `{"status":"healthy"}`,
		"/ping":       "\n",
		"/agent/info": `{"agent_api":"responses","manifest":{"auth_policy":{"system_auth_policy":{"resources":{"api_version":"1","databricks":{"serving_endpoint":[{"name":"llm"}]}}},"user_auth_policy":{"api_scopes":["serving.serving-endpoints"]}}},"name":"echo","streaming":true,"use_case":"agent"}`,
	} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestUnencodableEventBecomesErrorEvent(t *testing.T) {
	a := streamFunc(func(ctx context.Context, req *agent.Request, emit agent.Emit) error {
		ev := agent.TextDelta("x", "m")
		ev.CustomOutputs = map[string]any{"bad": func() {}}
		return emit(ev)
	})
	ts := newServer(t, httpapi.Options{Agent: agent.FromStream(a)})
	resp := post(t, ts.URL+"/responses", `{"input":"x","stream":true}`)
	defer resp.Body.Close()
	events, _ := sseEvents(t, resp.Body)
	if last := events[len(events)-1]; last.Type != wireproto.EventError || last.Code != "server_error" {
		t.Errorf("last event = %+v", last)
	}
}

package conformance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/assistant"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/devtest"
	"github.com/agentrt/agentrt/internal/dialect"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/wireproto"
	"github.com/agentrt/agentrt/test/conformance"
)

// checker validates what the host answers and counts it.
type checker struct {
	t    *testing.T
	spec *conformance.Spec

	mu       sync.Mutex
	bySchema map[string]int
	failures int
	seen     map[string]bool // output item types, and "usage", seen in what was validated
}

func newChecker(t *testing.T) *checker {
	spec, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	c := &checker{t: t, spec: spec, bySchema: map[string]int{}, seen: map[string]bool{}}
	t.Cleanup(func() {
		var n int
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(c.bySchema)) {
			n += c.bySchema[k]
			parts = append(parts, fmt.Sprintf("%s %d", k, c.bySchema[k]))
		}
		t.Logf("openai-openapi %s (%s): %d objects validated, %d failures\n  %s",
			spec.Version, conformance.SpecCommit[:12], n, c.failures, strings.Join(parts, "\n  "))
	})
	return c
}

func (c *checker) count(t *testing.T, schema, label string, data []byte, err error) {
	t.Helper()
	var parts struct {
		Output   []struct{ Type string }
		Item     *struct{ Type string }
		Usage    json.RawMessage
		Response *struct {
			Output []struct{ Type string }
			Usage  json.RawMessage
		}
	}
	_ = json.Unmarshal(data, &parts)
	c.mu.Lock()
	c.bySchema[schema]++
	if err != nil {
		c.failures++
	}
	for _, it := range parts.Output {
		c.seen[it.Type] = true
	}
	if parts.Item != nil {
		c.seen[parts.Item.Type] = true
	}
	if len(parts.Usage) > 0 {
		c.seen["usage"] = true
	}
	if r := parts.Response; r != nil {
		for _, it := range r.Output {
			c.seen[it.Type] = true
		}
		if len(r.Usage) > 0 {
			c.seen["usage"] = true
		}
	}
	c.mu.Unlock()
	if err != nil {
		t.Errorf("%s: does not validate against %s:\n%v\nbody: %.2000s", label, schema, err, data)
	}
}

// do sends one request and validates the answer: a JSON body against
// Response (2xx) or ErrorResponse, or each SSE event against its
// ResponseStreamEvent branch. It returns the status and the event types
// (for a stream) so callers can check the scenario ran as meant.
func (c *checker) do(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string, body string) (int, []string) {
	t.Helper()
	label := method + " " + path
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
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, c.stream(t, label, resp.Body)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	schema := "Response"
	if resp.StatusCode >= 300 {
		schema = "ErrorResponse"
	}
	c.count(t, schema, fmt.Sprintf("%s (%d)", label, resp.StatusCode), data, c.spec.Validate(schema, data))
	return resp.StatusCode, nil
}

func (c *checker) stream(t *testing.T, label string, r io.Reader) []string {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var types []string
	done := false
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			if line != "" {
				t.Errorf("%s: unexpected SSE line %q", label, line)
			}
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		if done {
			t.Errorf("%s: event after [DONE]: %s", label, data)
		}
		var head struct{ Type string }
		_ = json.Unmarshal([]byte(data), &head)
		types = append(types, head.Type)
		branch, err := c.spec.ValidateEvent([]byte(data))
		if branch == "" {
			branch = "(unknown event type)"
		}
		c.count(t, branch, label+" event "+head.Type, []byte(data), err)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: reading the stream: %v", label, err)
	}
	if !done {
		t.Errorf("%s: stream did not end with [DONE]", label)
	}
	return types
}

func listen(t *testing.T, opts server.Options) *httptest.Server {
	t.Helper()
	host, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Serve would provision and close; serving Handler directly, the test does.
	if err := host.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(host.Handler())
	t.Cleanup(func() { srv.Close(); host.Close() })
	return srv
}

// failing answers some text, then fails: a 500 body unstreamed, an error
// event mid-stream.
type failing struct{}

func (failing) Predict(context.Context, *agent.Request) (*agent.Response, error) {
	return nil, errors.New("backend exploded")
}

func (failing) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	if err := emit(agent.TextDelta("partial ", "msg_partial")); err != nil {
		return err
	}
	return errors.New("backend exploded")
}

// Request bodies: the OpenAI form (input a string), the OpenAI form with
// every echoed setting, and MLflow's (input a list, custom_inputs).
var echoBodies = map[string]string{
	"minimal":  `{"model":"echo","input":"hello there"}`,
	"settings": `{"model":"echo","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"instructions":"be brief","metadata":{"k":"v"},"temperature":0.2,"top_p":0.9,"max_output_tokens":64,"parallel_tool_calls":false,"tool_choice":"none","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{}}}],"truncation":"disabled","user":"u1"}`,
	"mlflow":   `{"input":[{"role":"user","content":"hello"}],"custom_inputs":{"x":1},"context":{"conversation_id":"c1","user_id":"u"}}`,
}

var routes = []string{"/v1/responses", "/responses", "/invocations"}

// TestEchoConforms: the echo agent over every route, streamed and not,
// with the request forms of both dialects.
func TestEchoConforms(t *testing.T) {
	c := newChecker(t)
	srv := listen(t, server.Options{Agent: echo.Agent{}, AgentName: "echo"})
	for _, route := range routes {
		for _, name := range slices.Sorted(maps.Keys(echoBodies)) {
			for _, stream := range []bool{false, true} {
				body := echoBodies[name]
				if stream {
					body = strings.Replace(body, "{", `{"stream":true,`, 1)
				}
				t.Run(fmt.Sprintf("%s/%s/stream=%v", route, name, stream), func(t *testing.T) {
					status, types := c.do(t, srv, http.MethodPost, route, nil, body)
					if status != http.StatusOK {
						t.Fatalf("status %d", status)
					}
					if stream && !slices.Contains(types, wireproto.EventCompleted) {
						t.Errorf("no response.completed in %v", types)
					}
				})
			}
		}
	}
	c.requireSeen(t, agent.TypeMessage)
}

// TestErrorsConform: every error answer of the host, and the error event
// of a stream that fails.
func TestErrorsConform(t *testing.T) {
	c := newChecker(t)
	srv := listen(t, server.Options{Agent: echo.Agent{}, AgentName: "echo", Limits: server.Limits{MaxBodyBytes: 1024}})
	bad := listen(t, server.Options{Agent: failing{}, AgentName: "failing"})
	big := `{"input":"` + strings.Repeat("x", 2048) + `"}`
	cases := []struct {
		name   string
		srv    *httptest.Server
		method string
		path   string
		hdr    map[string]string
		body   string
		status int
	}{
		{"malformed JSON", srv, "POST", "/v1/responses", nil, `{"input":`, 400},
		{"no input", srv, "POST", "/v1/responses", nil, `{"model":"echo"}`, 400},
		{"bad item", srv, "POST", "/responses", nil, `{"input":[{"type":"message","role":"wizard","content":"x"}]}`, 400},
		{"empty body", srv, "POST", "/invocations", nil, ``, 400},
		{"too large", srv, "POST", "/v1/responses", nil, big, 413},
		{"media type", srv, "POST", "/v1/responses", map[string]string{"Content-Type": "text/plain"}, `{"input":"x"}`, 415},
		{"no route", srv, "POST", "/v1/nothing", nil, `{}`, 404},
		{"method", srv, "GET", "/v1/responses", nil, ``, 405},
		{"agent fails", bad, "POST", "/v1/responses", nil, `{"input":"x"}`, 500},
		{"agent fails mid-stream", bad, "POST", "/v1/responses", nil, `{"input":"x","stream":true}`, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, types := c.do(t, tc.srv, tc.method, tc.path, tc.hdr, tc.body)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if tc.status == 200 && !slices.Contains(types, wireproto.EventError) {
				t.Errorf("no error event in %v", types)
			}
		})
	}
}

// TestAssistantConforms: the tool-calling assistant against the dev
// workspace, as `serve --dev` runs it: alice's tool calls (function_call
// and function_call_output items), bob's skipped tools, carol's failing
// tool, and a caller the workspace does not know (401).
func TestAssistantConforms(t *testing.T) {
	c := newChecker(t)
	srv, _ := devtest.Assistant(t)

	ask := func(q string, stream bool) string {
		b, _ := json.Marshal(map[string]any{"model": assistant.Name, "input": q, "stream": stream})
		return string(b)
	}
	cases := []struct{ user, route, question string }{
		{"alice", "/v1/responses", "How do I install and configure Kestrel Vault?"},
		{"alice", "/responses", "What was the total revenue by region?"},
		{"bob", "/v1/responses", "What was the total revenue by region?"},
		{"carol", "/responses", "Look up order ORD-100042"},
		{"alice", "/invocations", "How do I install and configure Kestrel Vault?"}, // MLflow dialect
	}
	for _, tc := range cases {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s%s/stream=%v", tc.user, tc.route, stream), func(t *testing.T) {
				status, types := c.do(t, srv, http.MethodPost, tc.route, map[string]string{"X-Dev-User": tc.user}, ask(tc.question, stream))
				if status != http.StatusOK {
					t.Fatalf("status %d", status)
				}
				if stream && !slices.Contains(types, wireproto.EventCompleted) {
					t.Errorf("no response.completed in %v", types)
				}
			})
		}
	}
	t.Run("unknown caller", func(t *testing.T) {
		status, _ := c.do(t, srv, http.MethodPost, "/v1/responses", map[string]string{"X-Dev-User": "mallory"}, ask("hi", false))
		if status != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", status)
		}
	})
	// The agent's tool calls: mcp_call items on OpenAI's routes, the
	// function_call + function_call_output pairs on /invocations.
	c.requireSeen(t, agent.TypeMessage, dialect.TypeMCPCall, agent.TypeFunctionCall, agent.TypeFunctionCallOutput, "usage")
}

// requireSeen fails unless what was validated included each of want (item
// types, "usage"), so a scenario that stops producing them cannot pass
// vacuously.
func (c *checker) requireSeen(t *testing.T, want ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range want {
		if !c.seen[w] {
			t.Errorf("no %s among the validated answers (seen %v)", w, slices.Sorted(maps.Keys(c.seen)))
		}
	}
}

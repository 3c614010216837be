package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httpapi"
)

// TestRequestIDs: every answer carries X-Request-Id: the caller's when it is
// short printable ASCII, else a fresh req_<32 hex> that differs per request.
func TestRequestIDs(t *testing.T) {
	srv, err := httpapi.New(httpapi.Options{Agent: echo.Agent{}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	do := func(id string) string {
		r := httptest.NewRequest(http.MethodPost, "/responses", strings.NewReader(`{"input":"hi"}`))
		if id != "" {
			r.Header.Set("X-Request-Id", id)
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return w.Header().Get("X-Request-Id")
	}
	if got := do("trace-42"); got != "trace-42" {
		t.Errorf("caller's id: got %q", got)
	}
	made := regexp.MustCompile(`^req_[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for _, in := range []string{"", "has space", strings.Repeat("x", 129), "", ""} {
		got := do(in)
		if !made.MatchString(got) || seen[got] {
			t.Errorf("for %q: got %q (seen before: %v)", in, got, seen[got])
		}
		seen[got] = true
	}
}

// predictFunc is an agent.Agent from a function.
type predictFunc func(ctx context.Context, req *agent.Request) (*agent.Response, error)

func (f predictFunc) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	return f(ctx, req)
}

// TestPredictUnderDeadline: with a request timeout the agent call runs
// under the watchdog (admit.go); its answer, its error, its panic and a nil
// response all come back to the request that made the call, request after
// request.
func TestPredictUnderDeadline(t *testing.T) {
	a := predictFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("no deadline")
		}
		switch text := req.LastUserText(); text {
		case "fail":
			return nil, errors.New("agent failed")
		case "panic":
			panic("agent panicked")
		case "nil":
			return nil, nil
		default:
			return &agent.Response{Output: []agent.Item{agent.TextItem("m", "re: "+text)}}, nil
		}
	})
	srv, err := httpapi.New(httpapi.Options{Agent: a, Logger: quietLogger(), Limits: httpapi.Limits{RequestTimeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		for _, tc := range []struct {
			in     string
			status int
			want   string
		}{
			{"hello", 200, `"re: hello"`},
			{"fail", 500, `"error"`},
			{"panic", 500, `"error"`},
			{"nil", 500, `"error"`},
			{"again", 200, `"re: again"`},
		} {
			r := httptest.NewRequest(http.MethodPost, "/responses", strings.NewReader(`{"input":"`+tc.in+`"}`))
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, r)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("round %d, %q: %d %s", i, tc.in, w.Code, w.Body)
			}
		}
	}
}

// TestContentLength: a JSON answer is sent with its length, not chunked,
// small (net/http declares it) or large (the handler does).
func TestContentLength(t *testing.T) {
	a := predictFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		return &agent.Response{Output: []agent.Item{agent.TextItem("m", req.LastUserText())}}, nil
	})
	srv, err := httpapi.New(httpapi.Options{Agent: a, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, n := range []int{1, 1500, 1700, 2100, 100_000} {
		resp, err := http.Post(ts.URL+"/responses", "application/json", strings.NewReader(`{"input":"`+strings.Repeat("a", n)+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("input of %d: %d, %v", n, resp.StatusCode, err)
		}
		if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
			t.Errorf("input of %d: Content-Length %d, Transfer-Encoding %v for a %d-byte body", n, resp.ContentLength, resp.TransferEncoding, len(body))
		}
	}
}

// streamGate emits its answer only once released.
type streamGate struct{ release chan struct{} }

func (g streamGate) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return emit(agent.TextDelta("late", "m"))
}

// TestStreamOpensBeforeTheAgentEmits: the opening events reach the client
// while the agent has emitted nothing (they are flushed as it starts, not
// with its first event), with and without a request timeout.
func TestStreamOpensBeforeTheAgentEmits(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		g := streamGate{release: make(chan struct{})}
		api := newAPI(t, httpapi.Options{Agent: agent.FromStream(g), Limits: httpapi.Limits{RequestTimeout: timeout}})
		ts := httptest.NewServer(api.Handler())
		path := "/responses"
		body := `{"input":"x","stream":true}`
		for _, chat := range []bool{false, true} {
			if chat {
				path, body = "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}`
			}
			resp := post(t, ts.URL+path, body)
			first := make(chan string, 1)
			go func() { // returns once the first frame is flushed
				line, _ := bufio.NewReader(resp.Body).ReadString('\n')
				first <- line
			}()
			select {
			case line := <-first:
				if !strings.HasPrefix(line, "data: ") {
					t.Fatalf("timeout %v, %s: first line %q", timeout, path, line)
				}
			case <-time.After(10 * time.Second): // fail-safe: the agent is waiting for us
				t.Fatalf("timeout %v, %s: no event before the agent's first", timeout, path)
			}
			g.release <- struct{}{}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		ts.Close()
	}
}

// deadlineCounter counts the write deadlines a handler sets through
// http.ResponseController, passing them on to net/http's writer.
type deadlineCounter struct {
	http.ResponseWriter
	n int
}

func (w *deadlineCounter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *deadlineCounter) SetWriteDeadline(t time.Time) error {
	w.n++
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(t)
}

// TestJSONAnswerKeepsTheServerWriteDeadline: a JSON answer written well
// within the deadline net/http set (Limits.ServerWriteTimeout) keeps it;
// otherwise, or when the server's is unknown, it sets its own, and an
// answer that comes after the server's deadline still arrives whole.
func TestJSONAnswerKeepsTheServerWriteDeadline(t *testing.T) {
	const serverWrite = 300 * time.Millisecond
	slow := predictFunc(func(ctx context.Context, req *agent.Request) (*agent.Response, error) {
		if req.LastUserText() == "slow" {
			time.Sleep(2 * serverWrite) // past the server's write deadline: the point of the case
		}
		return &agent.Response{Output: []agent.Item{agent.TextItem("m", "re: "+req.LastUserText())}}, nil
	})
	for _, tc := range []struct {
		name   string
		limits httpapi.Limits
		input  string
		sets   int
	}{
		{"within the server's", httpapi.Limits{ServerWriteTimeout: time.Minute}, "hi", 0},
		{"server's unknown", httpapi.Limits{}, "hi", 1},
		{"server's too close", httpapi.Limits{ServerWriteTimeout: time.Minute, WriteTimeout: 59 * time.Second}, "hi", 1},
		{"after the server's", httpapi.Limits{ServerWriteTimeout: serverWrite, WriteTimeout: time.Second}, "slow", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := httpapi.New(httpapi.Options{Agent: slow, Logger: quietLogger(), Limits: tc.limits})
			if err != nil {
				t.Fatal(err)
			}
			counters := make(chan *deadlineCounter, 1)
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				dc := &deadlineCounter{ResponseWriter: w}
				srv.Handler().ServeHTTP(dc, r)
				counters <- dc
			}))
			ts.Config.WriteTimeout = tc.limits.ServerWriteTimeout
			ts.Start()
			defer ts.Close()
			resp, err := http.Post(ts.URL+"/responses", "application/json", strings.NewReader(`{"input":"`+tc.input+`"}`))
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"re: `+tc.input+`"`) {
				t.Fatalf("got %d %q, %v", resp.StatusCode, body, err)
			}
			if dc := <-counters; dc.n != tc.sets {
				t.Errorf("%d write deadlines set, want %d", dc.n, tc.sets)
			}
		})
	}
}

// failAtOnce is a streaming agent that fails before emitting anything.
type failAtOnce struct{}

func (failAtOnce) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	return errors.New("no model today")
}

// TestStreamFailingAtOnceStillOpens: an agent that fails before its first
// event (and before the opening events' delay) still gets the stream's
// opening events to the client ahead of the error, on both stream routes.
func TestStreamFailingAtOnceStillOpens(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		api := newAPI(t, httpapi.Options{Agent: agent.FromStream(failAtOnce{}), Limits: httpapi.Limits{RequestTimeout: timeout}})
		ts := httptest.NewServer(api.Handler())
		resp := post(t, ts.URL+"/responses", `{"input":"x","stream":true}`)
		events, _ := sseEvents(t, resp.Body)
		resp.Body.Close()
		var types []string
		for _, ev := range events {
			types = append(types, ev.Type)
		}
		if len(types) != 3 || types[0] != "response.created" || types[1] != "response.in_progress" || types[2] != "error" {
			t.Errorf("timeout %v: events %v, want response.created, response.in_progress, error", timeout, types)
		}
		for i, ev := range events {
			if ev.SequenceNumber != i {
				t.Errorf("timeout %v: event %d has sequence number %d", timeout, i, ev.SequenceNumber)
			}
		}

		resp = post(t, ts.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}`)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		frames := strings.Split(strings.TrimSpace(string(raw)), "\n\n")
		if len(frames) < 2 || !strings.Contains(frames[0], `"role":"assistant"`) || !strings.Contains(frames[1], `"error"`) {
			t.Errorf("timeout %v: chat frames %q, want the role chunk, then the error", timeout, frames)
		}
		ts.Close()
	}
}

package httpapi_test

import (
	"context"
	"errors"
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

// TestPredictUnderDeadline: with a request timeout the agent call runs on a
// caller goroutine (reused while one is idle); its answer, its error, its
// panic and a nil response all come back to the request that made the call,
// request after request.
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

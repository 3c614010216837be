package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httpapi"
)

// outputTypes posts body to path (with the dialect header when set) and
// returns the types of the answer's output items: from the JSON body, or
// from response.completed and the output_item.done events of a stream,
// which must agree.
func outputTypes(t *testing.T, url, dialectHdr string, stream bool) []string {
	t.Helper()
	body := `{"input":"what is the answer?"}`
	if stream {
		body = `{"input":"what is the answer?","stream":true}`
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if dialectHdr != "" {
		req.Header.Set(httpapi.DialectHeader, dialectHdr)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	var types []string
	if !stream {
		var r struct{ Output []agent.Item }
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		for _, it := range r.Output {
			types = append(types, it.Type)
		}
		return types
	}
	events, _ := sseEvents(t, resp.Body)
	var done, completed []string
	for _, ev := range events {
		switch {
		case ev.Type == "response.output_item.done":
			done = append(done, ev.Item.Type)
		case ev.Type == "response.completed":
			for _, it := range ev.Response.Output {
				completed = append(completed, it.Type)
			}
		case strings.HasPrefix(ev.Type, "response.function_call_arguments"):
			t.Errorf("%s: argument events of an executed call leaked: %s", url, ev.Type)
		}
	}
	if !slices.Equal(done, completed) {
		t.Errorf("%s: done items %v, completed output %v", url, done, completed)
	}
	return completed
}

// An agent's executed tool call is an mcp_call on OpenAI's routes and a
// function_call + function_call_output pair on MLflow's, in one piece and
// streamed, for streaming and predict-only agents; the header overrides
// the route.
func TestDialects(t *testing.T) {
	openAI := []string{"mcp_call", "reasoning", "message"}
	mlflow := []string{"function_call", "function_call_output", "reasoning", "message"}
	for name, a := range map[string]agent.Agent{"stream": scripted{}, "predict": agentFunc(scripted{}.Predict)} {
		ts := newServer(t, httpapi.Options{Agent: a})
		for _, tc := range []struct {
			path, hdr string
			want      []string
		}{
			{"/v1/responses", "", openAI},
			{"/responses", "", openAI},
			{"/invocations", "", mlflow},
			{"/v1/responses", "mlflow", mlflow},
			{"/invocations", "OpenAI", openAI},
		} {
			for _, stream := range []bool{false, true} {
				if got := outputTypes(t, ts.URL+tc.path, tc.hdr, stream); !slices.Equal(got, tc.want) {
					t.Errorf("%s %s dialect %q stream %v: %v, want %v", name, tc.path, tc.hdr, stream, got, tc.want)
				}
			}
		}
	}
}

func TestDialectHeaderRefused(t *testing.T) {
	ts := newServer(t, httpapi.Options{Agent: scripted{}})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/responses", strings.NewReader(`{"input":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpapi.DialectHeader, "anthropic")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Param, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusBadRequest || body.Error.Param != httpapi.DialectHeader {
		t.Fatalf("%d %+v, want 400 naming %s", resp.StatusCode, body, httpapi.DialectHeader)
	}
}

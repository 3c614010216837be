package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httpapi"
)

// accepting is the echo agent declaring that it acts on client tools,
// tool_choice and text.format.
type accepting struct{ echo.Agent }

func (accepting) Accepts() []string { return []string{"tools", "tool_choice", "text.format"} }

// A member the agent does not act on is refused with a 400 naming it, on
// every Responses route and streamed or not; never dropped in silence.
func TestUnhonouredMembersRefused(t *testing.T) {
	plain := newServer(t, httpapi.Options{Agent: echo.Agent{}})
	accepts := newServer(t, httpapi.Options{Agent: accepting{}})
	tool := `"tools":[{"type":"function","name":"weather","parameters":{"type":"object"}}]`
	cases := []struct {
		body, param string
		accepted    bool // accepted by an agent that declares the three members
	}{
		{`{"input":"x",` + tool + `}`, "tools", true},
		{`{"input":"x","tool_choice":"required"}`, "tool_choice", true},
		{`{"input":"x","tool_choice":{"type":"function","name":"weather"}}`, "tool_choice", true},
		{`{"input":"x","text":{"format":{"type":"json_schema","name":"o","schema":{"type":"object"}}}}`, "text.format", true},
		{`{"input":"x","text":{"format":{"type":"json_object"}}}`, "text.format", true},
	}
	for _, tc := range cases {
		for _, path := range []string{"/v1/responses", "/invocations"} {
			for _, stream := range []string{"", `,"stream":true`} {
				body := tc.body[:len(tc.body)-1] + stream + "}"
				resp := post(t, plain.URL+path, body)
				var e struct {
					Error struct{ Param, Message string }
				}
				_ = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest || e.Error.Param != tc.param {
					t.Errorf("%s %s: %d %+v, want 400 naming %s", path, body, resp.StatusCode, e.Error, tc.param)
				}
				resp = post(t, accepts.URL+path, body)
				resp.Body.Close()
				if got := resp.StatusCode == http.StatusOK; got != tc.accepted {
					t.Errorf("accepting agent, %s %s: status %d", path, body, resp.StatusCode)
				}
			}
		}
	}
	// What every agent takes as it is.
	for _, body := range []string{`{"input":"x","tool_choice":"auto"}`, `{"input":"x","tool_choice":"none",` + tool + `}`, `{"input":"x","text":{"format":{"type":"text"}}}`, `{"input":"x","store":true}`} {
		resp := post(t, plain.URL+"/v1/responses", body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", body, resp.StatusCode)
		}
	}
}

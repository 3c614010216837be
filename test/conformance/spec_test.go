package conformance

import (
	"slices"
	"strings"
	"testing"
)

func mustLoad(t testing.TB) *Spec {
	t.Helper()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestValidatorCatches proves the validator is not vacuous: each document
// breaks one rule of the spec and must fail, naming the rule; the fixed
// document must pass.
func TestValidatorCatches(t *testing.T) {
	s := mustLoad(t)
	t.Logf("spec %s: %d discriminated unions, %d left as plain unions, %d stream event types",
		s.Version, s.Unions, len(s.Unresolved), len(s.events))
	unresolved := slices.Sorted(slices.Values(s.Unresolved))
	// Only the request-side input unions, whose message and item-reference
	// branches may omit type, stay plain; a new entry is a union the
	// validator would check loosely.
	if want := []string{"#/components/schemas/BetaInputItem", "#/components/schemas/InputItem"}; !slices.Equal(unresolved, want) {
		t.Errorf("unions left unresolved: %v, want %v", unresolved, want)
	}
	const msg = `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[],"logprobs":[]}]}`
	resp := func(output string) string {
		return `{"id":"resp_1","object":"response","created_at":1,"status":"completed","error":null,"incomplete_details":null,` +
			`"instructions":null,"model":"m","output":[` + output + `],"parallel_tool_calls":true,"metadata":{},` +
			`"tool_choice":"auto","tools":[],"temperature":null,"top_p":null}`
	}
	ok := []struct{ schema, body string }{
		{"Response", resp(msg)},
		{"Response", resp(`{"type":"function_call_output","id":"fco_1","status":"completed","call_id":"c","output":"x"}`)},
		{"ErrorResponse", `{"error":{"type":"invalid_request_error","message":"m","param":null,"code":null}}`},
	}
	for _, c := range ok {
		if err := s.Validate(c.schema, []byte(c.body)); err != nil {
			t.Errorf("valid %s rejected: %v", c.schema, err)
		}
	}
	bad := []struct{ schema, body, want string }{
		{"Response", strings.Replace(resp(msg), `"top_p":null`, `"x":1`, 1), "top_p"},
		{"Response", strings.Replace(resp(msg), `,"logprobs":[]`, ``, 1), "logprobs"},
		{"Response", resp(`{"type":"function_call_output","call_id":"c","output":"x"}`), "id"},
		{"Response", resp(`{"type":"no_such_item","id":"x"}`), "/output/0/type"},
		{"Response", strings.Replace(resp(msg), `"status":"completed","error"`, `"status":"done","error"`, 1), "/status"},
		{"ErrorResponse", `{"error":{"message":"m"}}`, "type"},
	}
	for _, c := range bad {
		err := s.Validate(c.schema, []byte(c.body))
		if err == nil {
			t.Errorf("invalid %s accepted (want a complaint about %s): %s", c.schema, c.want, c.body)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error does not mention %q: %v", c.want, err)
		}
	}
	if _, err := s.ValidateEvent([]byte(`{"type":"response.no_such_event","sequence_number":0}`)); err == nil {
		t.Error("unknown event type accepted")
	}
	br, err := s.ValidateEvent([]byte(`{"type":"response.output_text.delta","sequence_number":3,"item_id":"m","output_index":0,"content_index":0,"delta":"x"}`))
	if br != "ResponseTextDeltaEvent" || err == nil || !strings.Contains(err.Error(), "logprobs") {
		t.Errorf("delta without logprobs: branch %q, err %v", br, err)
	}
}

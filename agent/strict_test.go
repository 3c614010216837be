package agent_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wire"
)

// TestDecodeRequestStrictJSON: a body must be exactly one valid JSON value.
// Invalid JSON anywhere (also inside members the decoder keeps verbatim) and
// anything but whitespace after the value is a *FieldError naming the byte
// offset and, when the error is inside one, the member.
func TestDecodeRequestStrictJSON(t *testing.T) {
	tests := []struct {
		name, body string
		field      string
		offset     int64 // json.SyntaxError semantics: bytes read, so the bad byte is the offset-th
	}{
		{"invalid nested unknown member", `{"input":"hi","tools":[{"type":"function","name":"f","x":{"a":]}]}`, "tools[0].x.a", 63},
		{"invalid unknown top-level member", `{"input":"hi","vendor":{"k":[1,2,}}`, "vendor.k[2]", 34},
		{"invalid parameters", `{"input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object",}}]}`, "tools[0].parameters", 84},
		{"invalid tool_choice", `{"input":"hi","tool_choice":{"type":"function" "name":"f"}}`, "tool_choice.type", 48}, // right after the type member,
		{"invalid text in an item", `{"input":[{"role":"user","content":[{"type":"input_text","text":"a` + "\x01" + `"}]}]}`, "input[0].content[0].text", 67},
		{"bad literal", `{"input":"hi","stream":tru}`, "stream", 27},
		{"trailing data", `{"input":"hi"} trailing`, "", 16},
		{"second value", `{"input":"hi"}{"input":"again"}`, "", 15},
		{"truncated", `{"input":[{"role":"user"`, "input[0].role", 24},
		{"not JSON", `hello`, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := wire.DecodeRequest([]byte(tc.body))
			var fe *wire.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("DecodeRequest = %+v, %v; want a *FieldError", req, err)
			}
			if fe.Field != tc.field || fe.Offset != tc.offset {
				t.Errorf("error %q: field %q offset %d, want %q %d", err, fe.Field, fe.Offset, tc.field, tc.offset)
			}
			if !strings.Contains(fe.Msg, "invalid JSON at byte") {
				t.Errorf("message %q does not name the position", fe.Msg)
			}
			// The same check guards json.Unmarshal into a Request.
			var r agent.Request
			if err := r.UnmarshalJSON([]byte(tc.body)); err == nil {
				t.Error("UnmarshalJSON accepted it")
			}
		})
	}
}

// TestDecodeRequestAcceptsWhitespace: whitespace around the value is JSON.
func TestDecodeRequestAcceptsWhitespace(t *testing.T) {
	for _, body := range []string{" \t\r\n{\"input\":\"hi\"}\n", "{\"input\":\"hi\"}\r\n\r\n", "{ \"input\" : [ ] ,\n \"x\" : { } }  "} {
		if _, err := wire.DecodeRequest([]byte(body)); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
}

// TestDecodeRequestRepeatedMember: a member name repeated in an object the
// decoder reads is refused (encoding/json would keep the last, other parsers
// the first; and a string input followed by a list input used to leave the
// request half string, half list). Inside values kept verbatim, repeats are
// the client's business and survive as they came.
func TestDecodeRequestRepeatedMember(t *testing.T) {
	for body, field := range map[string]string{
		`{"input":"hi","input":[{"type":"function_call_output","call_id":"c","output":"o"}]}`: "input",
		`{"input":"hi","model":"a","model":"b"}`:                                              "model",
		`{"input":"hi","vendor":1,"vendor":2}`:                                                "vendor",
		`{"input":[{"role":"user","role":"system","content":"x"}]}`:                           "input[0].role",
		`{"input":[{"role":"user","content":[{"type":"input_text","text":"a","text":"b"}]}]}`: "input[0].content[0].text",
		`{"input":"hi","tools":[{"type":"function","name":"f","name":"g"}]}`:                  "tools[0].name",
	} {
		_, err := wire.DecodeRequest([]byte(body))
		var fe *wire.FieldError
		if !errors.As(err, &fe) || fe.Field != field || !strings.Contains(fe.Msg, "repeated") {
			t.Errorf("%s: error %v, want a repeated-member error on %q", body, err, field)
		}
	}
	// More members than the small linear set holds: still found.
	var b strings.Builder
	b.WriteString(`{"input":"hi"`)
	for i := range 40 {
		b.WriteString(`,"k` + strings.Repeat("x", i) + `":1`)
	}
	if _, err := wire.DecodeRequest([]byte(b.String() + `}`)); err != nil {
		t.Errorf("40 distinct members: %v", err)
	}
	if _, err := wire.DecodeRequest([]byte(b.String() + `,"kxxxxxxxxxxxxxxxxxxxx":2}`)); err == nil {
		t.Error("a repeat past the 16th member was accepted")
	}
	// Opaque values keep their repeats, and the echo is still valid JSON.
	req, err := wire.DecodeRequest([]byte(`{"input":"hi","vendor":{"a":1,"a":2},"custom_inputs":{"a":1,"a":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(req)
	if err != nil || !json.Valid(out) || !strings.Contains(string(out), `"vendor":{"a":1,"a":2}`) {
		t.Errorf("echo %s, %v", out, err)
	}
}

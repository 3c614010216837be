package agent_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/agentrt/agentrt/agent"
)

// FuzzItemRoundTrip: whatever item decodes, encodes to valid JSON that
// decodes to the same encoding again (a fixed point after one trip).
func FuzzItemRoundTrip(f *testing.F) {
	for _, seed := range []string{
		`{"type":"message","id":"m","role":"assistant","content":[{"type":"output_text","text":"x","annotations":[{"type":"url_citation","url":"u","start_index":1}]}]}`,
		`{"role":"user","content":"a\u2028b\\\"c"}`,
		`{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"t"}]}`,
		`{"type":"x","summary":3,"approve":"no","extra":{"a":[1,"b",null]}}`,
		`{"type":"mcp_approval_response","approval_request_id":"a","approve":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var it agent.Item
		if err := json.Unmarshal(data, &it); err != nil {
			return
		}
		once, err := json.Marshal(it)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again agent.Item
		if err := json.Unmarshal(once, &again); err != nil {
			t.Fatalf("re-decode %s: %v", once, err)
		}
		twice, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("not a fixed point:\n%s\n%s", once, twice)
		}
	})
}

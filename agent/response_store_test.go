package agent_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/agent"
)

// The store member is a field: written only when set, read back into the
// field (not Extra), so a stored response says store on GET as it did on
// POST.
func TestResponseStoreMember(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		store *bool
		want  string // "" : absent
	}{{nil, ""}, {&yes, `"store":true`}, {&no, `"store":false`}} {
		b, err := json.Marshal(agent.Response{ID: "resp_1", Store: tc.store})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), `"store"`); got != (tc.want != "") || !strings.Contains(string(b), tc.want) {
			t.Errorf("Store %v: encoded %s, want %q", tc.store, b, tc.want)
		}
		var back agent.Response
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if (back.Store == nil) != (tc.store == nil) || back.Store != nil && *back.Store != *tc.store {
			t.Errorf("Store %v: decoded %v", tc.store, back.Store)
		}
		if _, inExtra := back.Extra["store"]; inExtra {
			t.Errorf("Store %v: decoded into Extra", tc.store)
		}
	}
	var r agent.Response
	if err := json.Unmarshal([]byte(`{"id":"resp_1","store":"yes"}`), &r); err == nil {
		t.Error(`store: "yes" decoded without an error`)
	}
	if err := json.Unmarshal([]byte(`{"id":"resp_1","store":null}`), &r); err != nil || r.Store != nil {
		t.Errorf("store: null → %v, %v; want nil, nil", r.Store, err)
	}
}

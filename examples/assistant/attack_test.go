package assistant_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/internal/devworkspace"
)

// send posts one question with the given headers and returns the status,
// the body and the skipped tool names (dev mode's custom_outputs).
func send(t *testing.T, url string, headers map[string]string) (int, string, []string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/responses",
		strings.NewReader(`{"input":[{"role":"user","content":"How do I rotate an API key?"}]}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		CustomOutputs struct {
			Skipped []struct{ Tool string } `json:"skipped_tools"`
		} `json:"custom_outputs"`
	}
	json.Unmarshal(b, &r)
	var skipped []string
	for _, s := range r.CustomOutputs.Skipped {
		skipped = append(skipped, s.Tool)
	}
	return resp.StatusCode, string(b), skipped
}

// A garbage bearer is a 401 before anything runs: no call as the service
// principal (the model, system-bound tools) and none as anyone else.
func TestGarbageBearerRunsNothing(t *testing.T) {
	srv, dev := serveDev(t)
	for _, h := range []map[string]string{
		{"Authorization": "Bearer bogus", "X-Request-Id": "attack-1"},
		{"X-Forwarded-Access-Token": "bogus", "X-Forwarded-User": "alice@example.com", "X-Request-Id": "attack-2"},
	} {
		status, body, _ := send(t, srv.URL, h)
		var e struct {
			ErrorCode string                `json:"error_code"`
			Error     struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || status != http.StatusUnauthorized || e.ErrorCode != "UNAUTHENTICATED" {
			t.Fatalf("%v: %d %s", h, status, body)
		}
	}
	for _, e := range dev.Audit() {
		if !strings.HasPrefix(e.RequestID, "attack-") {
			continue
		}
		if e.Principal != "" || e.Path != "/api/2.0/preview/scim/v2/Me" {
			t.Errorf("a refused request reached the workspace as %q: %s %s (%s)", e.Principal, e.Method, e.Path, e.AuthMethod)
		}
	}
}

// X-Forwarded-User is the client's to set, so it keys nothing: bob claiming
// alice's name (or any shared name) keeps bob's tool set, and a rejected
// credential sent with alice's name does not change what alice gets.
func TestForwardedUserKeysNothing(t *testing.T) {
	srv, _ := serveDev(t)
	skipsOf := func(h map[string]string) string {
		t.Helper()
		status, body, skipped := send(t, srv.URL, h)
		if status != http.StatusOK {
			t.Fatalf("%v: %d %s", h, status, body)
		}
		return strings.Join(skipped, ",")
	}
	aliceSkips := skipsOf(map[string]string{"X-Dev-User": "alice", "X-Forwarded-User": "victim"})
	bobSkips := skipsOf(map[string]string{"X-Forwarded-Access-Token": devworkspace.BobToken})
	if aliceSkips == bobSkips {
		t.Fatalf("alice and bob have the same skips (%q): the test cannot tell them apart", aliceSkips)
	}
	if got := skipsOf(map[string]string{"X-Forwarded-Access-Token": devworkspace.BobToken, "X-Forwarded-User": "victim"}); got != bobSkips {
		t.Errorf("bob claiming alice's forwarded name got skips %q, want his own %q", got, bobSkips)
	}
	for range 3 {
		if status, _, _ := send(t, srv.URL, map[string]string{"Authorization": "Bearer garbage", "X-Forwarded-User": "victim"}); status != http.StatusUnauthorized {
			t.Fatalf("garbage token: %d", status)
		}
	}
	if got := skipsOf(map[string]string{"X-Dev-User": "alice", "X-Forwarded-User": "victim"}); got != aliceSkips {
		t.Errorf("after the poisoning attempt alice's skips are %q, want %q", got, aliceSkips)
	}
}

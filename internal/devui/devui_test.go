package devui_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/devui"
)

type access struct {
	Name     string              `json:"name"`
	Identity agent.Identity      `json:"identity"`
	Tools    []devui.ToolInfo    `json:"tools"`
	Skipped  []agent.SkippedTool `json:"skipped_tools"`
	Error    string              `json:"error"`
}

func toolNames(a access) []string {
	var out []string
	for _, t := range a.Tools {
		out = append(out, t.Name)
	}
	return out
}

// The identity picker's data is what the host would prepare for each mock
// identity: alice may use the docs index, bob may not, with the reason the
// dev workspace gave, and no token is in the answer.
func TestIdentities(t *testing.T) {
	var got struct {
		Agent      string           `json:"agent"`
		Resources  []devui.Resource `json:"resources"`
		Identities []access         `json:"identities"`
	}
	getJSON(t, "/dev/identities", http.StatusOK, &got)
	if got.Agent != "assistant" {
		t.Errorf("agent = %q", got.Agent)
	}
	byName := map[string]access{}
	var names []string
	for _, a := range got.Identities {
		byName[a.Name] = a
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"alice", "bob", "carol"}) {
		t.Fatalf("identities = %v, want alice, bob, carol", names)
	}
	const docs = "main__docs__product_docs_index"
	alice, bob := byName["alice"], byName["bob"]
	if alice.Identity.UserName != "alice@example.com" || alice.Identity.PrincipalID != "1001" {
		t.Errorf("alice = %+v", alice.Identity)
	}
	if !slices.Contains(toolNames(alice), docs) || len(alice.Skipped) != 0 {
		t.Errorf("alice: tools %v, skipped %+v; want the docs index and no skip", toolNames(alice), alice.Skipped)
	}
	if slices.Contains(toolNames(bob), docs) {
		t.Errorf("bob may use %s", docs)
	}
	i := slices.IndexFunc(bob.Skipped, func(s agent.SkippedTool) bool { return s.Tool == docs })
	if i < 0 || !strings.Contains(bob.Skipped[i].Reason, "bob@example.com") || bob.Skipped[i].Binding != "user" {
		t.Errorf("bob's skipped tools = %+v, want %s with bob's missing privilege", bob.Skipped, docs)
	}
	if !slices.ContainsFunc(got.Resources, func(r devui.Resource) bool { return r.Name == "dev-llm" && r.Binding == "system" }) {
		t.Errorf("resources = %+v, want dev-llm used as the agent", got.Resources)
	}
	raw := new(strings.Builder)
	for _, a := range got.Identities {
		raw.WriteString(a.Error)
		for _, s := range a.Skipped {
			raw.WriteString(s.Reason)
		}
	}
	if strings.Contains(raw.String(), "dev-bob-token") || strings.Contains(raw.String(), "dev-alice-token") {
		t.Error("a token is in the answer")
	}
}

// A pasted token is checked as a request would be: a known one shows its
// principal's tools, an unknown one gets the host's 401 body.
func TestAccessByToken(t *testing.T) {
	var bob access
	getJSON(t, "/dev/access", http.StatusOK, &bob, "Authorization", "Bearer dev-bob-token")
	if bob.Identity.UserName != "bob@example.com" || len(bob.Skipped) == 0 {
		t.Errorf("bob's token: %+v", bob)
	}
	var refused struct {
		ErrorCode string `json:"error_code"`
	}
	getJSON(t, "/dev/access", http.StatusUnauthorized, &refused, "Authorization", "Bearer not-a-token")
	if refused.ErrorCode != "UNAUTHENTICATED" {
		t.Errorf("error_code = %q", refused.ErrorCode)
	}
}

// A request's details join the recorded trace with the dev workspace's
// audit entries: alice's docs search ran as alice, the model call as the
// agent's service principal.
func TestRequestDetails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/invocations",
		strings.NewReader(`{"input":[{"role":"user","content":"How do I install Kestrel Gateway?"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dev-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("status %d, request id %q", resp.StatusCode, id)
	}
	var got struct {
		Spans     []devui.Span     `json:"spans"`
		ToolCalls []devui.ToolCall `json:"tool_calls"`
		Audit     []struct {
			Principal string `json:"principal"`
			Path      string `json:"path"`
			RequestID string `json:"request_id"`
		} `json:"audit"`
	}
	getJSON(t, "/dev/requests/"+id, http.StatusOK, &got)
	var names []string
	for _, s := range got.Spans {
		names = append(names, s.Name)
	}
	for _, want := range []string{"POST /invocations", "identity.resolve", "tools.prepare", "predict", "tool.call", "chat dev-llm"} {
		if !slices.Contains(names, want) {
			t.Errorf("spans %v: no %q", names, want)
		}
	}
	if len(names) > 0 && names[0] != "POST /invocations" {
		t.Errorf("first span = %q, want the server span", names[0])
	}
	if len(got.ToolCalls) != 1 || got.ToolCalls[0].Name != "main__docs__product_docs_index" ||
		!slices.Equal(got.ToolCalls[0].Principals, []string{"alice@example.com"}) || got.ToolCalls[0].CallID == "" {
		t.Errorf("tool calls = %+v, want the docs search as alice", got.ToolCalls)
	}
	principals := map[string]bool{}
	for _, e := range got.Audit {
		if e.RequestID != id {
			t.Errorf("audit entry of request %q", e.RequestID)
		}
		principals[e.Principal] = true
	}
	if !principals["alice@example.com"] || !principals["agent-sp"] {
		t.Errorf("audit principals = %v, want alice and agent-sp", principals)
	}
	getJSON(t, "/dev/requests/req_unknown", http.StatusNotFound, nil)
}

// The UI is part of --dev only: a host without it answers / with 404, and
// serves the page and its assets with --dev.
func TestOnlyInDevMode(t *testing.T) {
	getJSON(t, "/dev/ui/app.js", http.StatusOK, nil)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / with --dev: %d %s", resp.StatusCode, ct)
	}
	for _, p := range []string{"/", "/dev/identities", "/dev/ui/app.js"} {
		resp, err := http.Get(prodBase + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without --dev: %d, want 404", p, resp.StatusCode)
		}
	}
}

package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/sql"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/devworkspace"
	"github.com/agentrt/agentrt/internal/syncbuf"
	"github.com/agentrt/agentrt/runtime/credentials"
	"github.com/agentrt/agentrt/runtime/devmode"
	"github.com/agentrt/agentrt/runtime/httpapi"
	"github.com/agentrt/agentrt/runtime/identity"
)

// whoAgent calls the workspace with both clients and answers with the
// caller's user name as the user client sees it.
type whoAgent struct{}

func (whoAgent) Predict(ctx context.Context, _ *agent.Request) (*agent.Response, error) {
	env := agent.EnvFrom(ctx)
	id, err := env.Caller.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := env.User.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "dev-warehouse"}); err != nil {
		return nil, err
	}
	if _, err := env.System.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "dev-warehouse"}); err != nil {
		return nil, err
	}
	return &agent.Response{Output: []agent.Item{agent.TextOutputItem(id.UserName, agent.NewID("msg"))}}, nil
}

type devStack struct {
	dev    *devmode.Dev
	user   *credentials.User
	system *credentials.System
	res    *identity.Resolver
	server *httptest.Server
}

func newDevStack(t testing.TB, manifest agent.Manifest, logOut ...io.Writer) *devStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if len(logOut) > 0 {
		log = slog.New(slog.NewTextHandler(logOut[0], &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	dev, err := devmode.Start(ctx, devmode.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	sys, err := credentials.NewSystem(ctx, credentials.SystemOptions{Lookup: dev.Lookup, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	user, err := credentials.NewUser(credentials.UserOptions{Host: dev.URL(), Scopes: manifest.UserAPIScopes})
	if err != nil {
		t.Fatal(err)
	}
	res, err := identity.New(identity.Options{Manifest: manifest, User: user.Client(), System: sys.Client(), Dev: true, DevUsers: dev.Users(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Options{Agent: whoAgent{}, Manifest: manifest, Preparers: []httpapi.Preparer{res}, Dev: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &devStack{dev: dev, user: user, system: sys, res: res, server: srv}
}

func post(t testing.TB, url string, headers map[string]string) (int, string) {
	req, _ := http.NewRequest("POST", url+"/responses", strings.NewReader(`{"input":[{"role":"user","content":"who am I?"}]}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func outputText(t testing.TB, body string) string {
	var r struct {
		Output []struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"output"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Output) == 0 || len(r.Output[0].Content) == 0 {
		t.Errorf("unexpected body %s", body)
		return ""
	}
	return r.Output[0].Content[0].Text
}

// Alice and bob call the same agent concurrently; the dev workspace's audit
// log shows every user-client call as exactly that request's caller and
// every system-client call as agent-sp.
func TestConcurrentCallersAgainstDevWorkspace(t *testing.T) {
	s := newDevStack(t, agent.Manifest{UserAPIScopes: []string{"sql.warehouses"}})
	users := map[string]string{"alice": "alice@example.com", "bob": "bob@example.com"}
	const perUser = 150
	type job struct{ who, reqID string }
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				h := map[string]string{"X-Request-Id": j.reqID}
				if j.who == "alice" {
					h["X-Dev-User"] = "alice"
				} else {
					h["X-Forwarded-Access-Token"] = devworkspace.BobToken
				}
				status, body := post(t, s.server.URL, h)
				if status != 200 || outputText(t, body) != users[j.who] {
					t.Errorf("%s: %d %s", j.reqID, status, body)
				}
			}
		}()
	}
	for i := range perUser {
		for who := range users {
			jobs <- job{who, fmt.Sprintf("%s-%d", who, i)}
		}
	}
	close(jobs)
	wg.Wait()

	userCalls, systemCalls := map[string]int{}, map[string]int{}
	for _, e := range s.dev.Workspace().Audit() {
		who, _, ok := strings.Cut(e.RequestID, "-")
		if !ok || users[who] == "" {
			continue
		}
		switch e.AuthMethod {
		case devworkspace.MethodPAT:
			userCalls[e.RequestID]++
			if e.Principal != users[who] {
				t.Errorf("user-client call %s %s of request %s ran as %q", e.Method, e.Path, e.RequestID, e.Principal)
			}
		case devworkspace.MethodOAuthM2M:
			systemCalls[e.RequestID]++
			if e.Principal != devworkspace.SPClientID {
				t.Errorf("system-client call of request %s ran as %q", e.RequestID, e.Principal)
			}
		default:
			t.Errorf("unexpected auth method %q for %s", e.AuthMethod, e.RequestID)
		}
		if e.Status != 200 {
			t.Errorf("%s %s of %s: status %d", e.Method, e.Path, e.RequestID, e.Status)
		}
	}
	if len(userCalls) != 2*perUser || len(systemCalls) != 2*perUser {
		t.Fatalf("requests with user calls: %d, with system calls: %d; want %d each", len(userCalls), len(systemCalls), 2*perUser)
	}
	for id, n := range systemCalls {
		if n != 1 {
			t.Errorf("request %s made %d system calls, want 1", id, n)
		}
	}
}

func TestMissingCredentialIs401(t *testing.T) {
	s := newDevStack(t, agent.Manifest{UserAPIScopes: []string{"sql.warehouses"}})
	before := len(s.dev.Workspace().Audit())
	for _, h := range []map[string]string{nil, {"X-Dev-User": "mallory"}} {
		status, body := post(t, s.server.URL, h)
		var e struct {
			ErrorCode string `json:"error_code"`
			Message   string `json:"message"`
		}
		json.Unmarshal([]byte(body), &e)
		if status != 401 || e.ErrorCode != "UNAUTHENTICATED" {
			t.Fatalf("%v: %d %s", h, status, body)
		}
		if h == nil && !strings.Contains(e.Message, "X-Dev-User: alice") {
			t.Fatalf("dev-mode 401 does not say how to pick a mock identity: %s", e.Message)
		}
	}
	if after := len(s.dev.Workspace().Audit()); after != before {
		t.Fatalf("a refused request reached the workspace (%d audit entries)", after-before)
	}
}

// Refused scopes never reach the workspace, and the error names the scope.
func TestScopeRefusalNeverArrives(t *testing.T) {
	s := newDevStack(t, agent.Manifest{UserAPIScopes: []string{"dashboards.genie"}})
	status, body := post(t, s.server.URL, map[string]string{"X-Dev-User": "alice", "X-Request-Id": "scope-1"})
	if status == 200 {
		t.Fatalf("out-of-scope call succeeded: %s", body)
	}
	ctx := credentials.WithCaller(context.Background(), devworkspace.AliceToken)
	_, err := s.user.Client().Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "dev-warehouse"})
	if err == nil || !strings.Contains(err.Error(), "sql.warehouses") {
		t.Fatalf("err = %v", err)
	}
	for _, e := range s.dev.Workspace().Audit() {
		if strings.HasPrefix(e.Path, "/api/2.0/sql/warehouses") && e.AuthMethod == devworkspace.MethodPAT {
			t.Fatalf("refused call arrived: %+v", e)
		}
	}
}

// Tokens never appear in logs, errors or responses.
func TestNoTokensInLogsOrErrors(t *testing.T) {
	var logs syncbuf.Buffer
	s := newDevStack(t, agent.Manifest{UserAPIScopes: []string{"dashboards.genie"}}, &logs)
	var texts []string
	for _, h := range []map[string]string{
		{"X-Dev-User": "alice"},
		{"X-Forwarded-Access-Token": devworkspace.BobToken},
		{"Authorization": "Bearer " + devworkspace.CarolToken},
		{"Authorization": "Basic " + devworkspace.CarolToken},
		{"X-Forwarded-Access-Token": devworkspace.AliceToken + " extra"},
	} {
		_, body := post(t, s.server.URL, h)
		texts = append(texts, body)
	}
	ctx := credentials.WithCaller(context.Background(), devworkspace.AliceToken)
	for _, call := range []func() error{
		func() error {
			_, err := s.user.Client().Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "x"})
			return err
		},
		func() error {
			_, err := s.user.Client().Warehouses.Get(context.Background(), sql.GetWarehouseRequest{Id: "x"})
			return err
		},
	} {
		if err := call(); err != nil {
			texts = append(texts, err.Error())
		}
	}
	texts = append(texts, logs.String())
	if !strings.Contains(logs.String(), "predict failed") {
		t.Fatalf("the test captured no request logs:\n%s", logs.String())
	}
	for _, text := range texts {
		for _, tok := range []string{devworkspace.AliceToken, devworkspace.BobToken, devworkspace.CarolToken, devworkspace.SPClientSecret} {
			if strings.Contains(text, tok) {
				t.Errorf("token %q leaked in %q", tok, text)
			}
		}
	}
}

package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/iam"
	"github.com/databricks/databricks-sdk-go/service/sql"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/identity"
	"github.com/agentrt/agentrt/internal/syncbuf"
)

// whoAgent calls the workspace with both clients and answers with the
// caller's user name as the host verified it and as the user client sees it.
// Asked about the warehouse, it also reads it as the caller (which needs the
// sql.warehouses scope and CAN_USE).
type whoAgent struct{}

func (whoAgent) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	env := agent.FromContext(ctx)
	id, err := env.Caller.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	me, err := env.User.CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil {
		return nil, err
	}
	if len(req.Input) > 0 && strings.Contains(req.Input[0].Text(), "warehouse") {
		if _, err := env.User.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "dev-warehouse"}); err != nil {
			return nil, err
		}
	}
	if _, err := env.System.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "dev-warehouse"}); err != nil {
		return nil, err
	}
	return &agent.Response{Output: []agent.Item{agent.TextItem(agent.NewID("msg"), id.UserName+" "+me.UserName)}}, nil
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
	n, _ := isolationRequests()
	dev, err := devmode.Start(ctx, devmode.Options{Logger: log, AuditEntries: 4 * n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	sys, err := credentials.NewSystem(ctx, withLogger(dev.System(), log))
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
	return postBody(t, url, headers, `{"input":[{"role":"user","content":"who am I? (and the warehouse)"}]}`)
}

func postBody(t testing.TB, url string, headers map[string]string, body string) (int, string) {
	req, _ := http.NewRequest("POST", url+"/responses", strings.NewReader(body))
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

// answerText returns the output text of a JSON response or of an SSE
// stream (its response.completed event).
func answerText(t testing.TB, body string) string {
	if strings.HasPrefix(body, "data: ") || strings.HasPrefix(body, "event: ") {
		for line := range strings.Lines(body) {
			data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
			if !ok || !strings.Contains(data, `"response.completed"`) {
				continue
			}
			var ev struct {
				Response json.RawMessage `json:"response"`
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Errorf("bad completed event %s", data)
				return ""
			}
			return outputText(t, string(ev.Response))
		}
		t.Errorf("stream without response.completed: %s", body)
		return ""
	}
	return outputText(t, body)
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

// isolationRequests is the size of the mixed-identity run; the documented
// load run sets AGENTRT_ISOLATION_REQUESTS=10000 AGENTRT_ISOLATION_CONCURRENCY=10000.
func isolationRequests() (n, conc int) {
	n, conc = 400, 32
	if v, err := strconv.Atoi(os.Getenv("AGENTRT_ISOLATION_REQUESTS")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("AGENTRT_ISOLATION_CONCURRENCY")); err == nil && v > 0 {
		conc = v
	}
	return n, conc
}

// Alice, bob, carol and callers with garbage tokens call the same agent
// concurrently, streamed and not. Every answer names its own caller, no
// garbage token gets an answer, and the dev workspace's audit log shows
// every user-client call as exactly that request's caller, every
// system-client call as agent-sp, and no call as anyone for a refused
// request. Those are isolation violations. A request refused or failed
// because the machine is overloaded (a 503, or an agent error when a
// workspace call gave up) is not one; it is counted apart, and must not
// happen at the size make test runs.
func TestMixedIdentityIsolation(t *testing.T) {
	s := newDevStack(t, agent.Manifest{UserAPIScopes: []string{"sql.warehouses"}})
	users := map[string]string{"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com"}
	kinds := []string{"alice", "bob", "carol", "garbage"}
	n, conc := isolationRequests()
	batch := max(conc, 1000) // the dev stack's audit log holds 4n entries
	var violations, unavailable atomic.Int64
	// The documented 10,000-request run overloads a small machine on
	// purpose: there, load refusals are reported, not failures.
	loadRun := os.Getenv("AGENTRT_ISOLATION_REQUESTS") != ""
	report := func(counter *atomic.Int64, fail bool, format string, args ...any) {
		if counter.Add(1) <= 10 {
			if fail {
				t.Errorf(format, args...)
			} else {
				t.Logf(format, args...)
			}
		}
	}
	bad := func(format string, args ...any) { report(&violations, true, "isolation: "+format, args...) }
	down := func(format string, args ...any) { report(&unavailable, !loadRun, "availability: "+format, args...) }
	requests := map[string]int{}
	var seq int64
	for start := 0; start < n; start += batch {
		sem := make(chan struct{}, conc)
		var wg sync.WaitGroup
		for i := start; i < min(n, start+batch); i++ {
			who := kinds[i%len(kinds)]
			stream := i/len(kinds)%2 == 1
			reqID := fmt.Sprintf("%s-%d", who, i)
			requests[who]++
			h := map[string]string{"X-Request-Id": reqID}
			switch who {
			case "alice":
				h["X-Dev-User"] = "alice"
			case "bob":
				h["X-Forwarded-Access-Token"] = devworkspace.BobToken
			case "carol":
				h["Authorization"] = "Bearer " + devworkspace.CarolToken
			default:
				h["Authorization"] = fmt.Sprintf("Bearer garbage-%d", i)
			}
			// Everyone claims to be alice: the claim must change nothing.
			h["X-Forwarded-User"] = "alice@example.com"
			body := `{"input":[{"role":"user","content":"who am I?"}],"stream":` + strconv.FormatBool(stream) + `}`
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				status, resp := postBody(t, s.server.URL, h, body)
				switch {
				case who == "garbage" && status == http.StatusUnauthorized && strings.Contains(resp, "UNAUTHENTICATED"):
				case who == "garbage" && status == http.StatusServiceUnavailable:
					down("%s: garbage token got %d", reqID, status)
				case who == "garbage":
					bad("%s: garbage token got %d %.200s", reqID, status, resp)
				case status == http.StatusServiceUnavailable || status == http.StatusInternalServerError || status == 0 ||
					(status == http.StatusOK && strings.Contains(resp, `"type":"error"`)):
					down("%s: %d %.200s", reqID, status, resp)
				case status != http.StatusOK:
					bad("%s: %d %.300s", reqID, status, resp)
				default:
					if got, want := answerText(t, resp), users[who]+" "+users[who]; got != want {
						bad("%s: answer %q, want %q", reqID, got, want)
					}
				}
			})
		}
		wg.Wait()
		entries := s.dev.Workspace().AuditSince(seq)
		if len(entries) > 0 {
			seq = entries[len(entries)-1].Seq
		}
		for _, e := range entries {
			who, _, ok := strings.Cut(e.RequestID, "-")
			if !ok {
				continue
			}
			switch {
			case who == "garbage":
				// Only the verification itself may reach the workspace, and
				// it must be refused.
				if e.Principal != "" || e.Path != "/api/2.0/preview/scim/v2/Me" {
					bad("refused request %s reached the workspace: %+v", e.RequestID, e)
				}
			case users[who] == "":
				continue
			case e.AuthMethod == devworkspace.MethodPAT:
				if e.Principal != users[who] {
					bad("user-client call %s %s of request %s ran as %q", e.Method, e.Path, e.RequestID, e.Principal)
				}
			case e.AuthMethod == devworkspace.MethodOAuthM2M:
				if e.Principal != devworkspace.SPClientID || e.Path != "/api/2.0/sql/warehouses/dev-warehouse" {
					bad("system-client call %s of request %s ran as %q", e.Path, e.RequestID, e.Principal)
				}
			default:
				bad("unexpected auth method %q for %s", e.AuthMethod, e.RequestID)
			}
		}
	}
	t.Logf("%d requests (%v), concurrency %d: %d isolation violations, %d refused or failed for load",
		n, requests, conc, violations.Load(), unavailable.Load())
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

func withLogger(o credentials.SystemOptions, log *slog.Logger) credentials.SystemOptions {
	o.Logger = log
	return o
}

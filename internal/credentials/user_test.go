package credentials_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/dashboards"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"github.com/databricks/databricks-sdk-go/service/sql"
)

func newUser(t *testing.T, f *fakeWorkspace, scopes ...string) *credentials.User {
	t.Helper()
	u, err := credentials.NewUser(credentials.UserOptions{Host: f.URL, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUserClientCallsAsEachCaller(t *testing.T) {
	f := newFakeWorkspace(t)
	w := newUser(t, f, "dashboards.genie").Client()
	callers := map[string]string{"pat-alice": "alice@example.com", "pat-bob": "bob@example.com"}
	const perCaller = 150
	var wg sync.WaitGroup
	errs := make(chan error, 2*perCaller)
	for tok := range callers {
		for i := range perCaller {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := agent.NewContext(credentials.WithCaller(context.Background(), tok), &agent.Env{RequestID: fmt.Sprintf("%s-%d", tok, i)})
				if _, err := w.Genie.GetSpace(ctx, dashboards.GenieGetSpaceRequest{SpaceId: "s1"}); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	calls := f.snapshot()
	if len(calls) != 2*perCaller {
		t.Fatalf("workspace saw %d calls, want %d", len(calls), 2*perCaller)
	}
	for _, c := range calls {
		// The request id names the token the request was sent with.
		tok := c.RequestID[:strings.LastIndex(c.RequestID, "-")]
		if callers[tok] != c.Principal {
			t.Errorf("request %s ran as %s, want %s", c.RequestID, c.Principal, callers[tok])
		}
	}
}

func TestUserClientFailsClosed(t *testing.T) {
	f := newFakeWorkspace(t)
	w := newUser(t, f, "all-apis").Client()
	_, err := w.CurrentUser.Me(context.Background(), iam.MeRequest{})
	var nc *credentials.NoCallerError
	if !errors.As(err, &nc) || !errors.Is(err, databricks.ErrUnauthenticated) {
		t.Fatalf("err = %v (%T), want *NoCallerError matching ErrUnauthenticated", err, err)
	}
	if n := f.apiRequests.Load(); n != 0 {
		t.Fatalf("%d requests reached the workspace", n)
	}
}

func TestUserClientScopes(t *testing.T) {
	tests := []struct {
		name     string
		declared []string
		call     func(ctx context.Context, w *databricks.WorkspaceClient) error
		missing  string // "" when allowed
	}{
		{"declared dotted", []string{"dashboards.genie"}, getSpace, ""},
		{"declared coarse", []string{"genie"}, getSpace, ""},
		{"all-apis", []string{"all-apis"}, getWarehouse, ""},
		{"other api", []string{"dashboards.genie"}, getWarehouse, "sql.warehouses"},
		{"nothing declared", nil, getSpace, "dashboards.genie"},
		{"auto-granted Me", nil, me, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWorkspace(t)
			w := newUser(t, f, tt.declared...).Client()
			err := tt.call(credentials.WithCaller(context.Background(), "pat-alice"), w)
			if tt.missing == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *credentials.ScopeError
			var ae *apierr.APIError
			if !errors.Is(err, databricks.ErrPermissionDenied) || !errors.As(err, &se) || !errors.As(err, &ae) {
				t.Fatalf("err = %v, want a ScopeError matching ErrPermissionDenied", err)
			}
			if se.Scope != tt.missing || !strings.Contains(err.Error(), tt.missing) || ae.ErrorCode != "PERMISSION_DENIED" {
				t.Fatalf("err = %v (scope %q, code %q), want it to name %q", err, se.Scope, ae.ErrorCode, tt.missing)
			}
			if n := f.apiRequests.Load(); n != 0 {
				t.Fatalf("refused call reached the workspace (%d requests)", n)
			}
		})
	}
}

func getSpace(ctx context.Context, w *databricks.WorkspaceClient) error {
	_, err := w.Genie.GetSpace(ctx, dashboards.GenieGetSpaceRequest{SpaceId: "s1"})
	return err
}

func getWarehouse(ctx context.Context, w *databricks.WorkspaceClient) error {
	_, err := w.Warehouses.Get(ctx, sql.GetWarehouseRequest{Id: "wh1"})
	return err
}

func me(ctx context.Context, w *databricks.WorkspaceClient) error {
	_, err := w.CurrentUser.Me(ctx, iam.MeRequest{})
	return err
}

// Non-SDK requests (MCP, OpenAI) signed through the client's Config (as
// tools' wsapi.Transport does) get the same identity, scope and host checks.
func TestConfigSignsRawRequests(t *testing.T) {
	f := newFakeWorkspace(t)
	w := newUser(t, f, "mcp.genie").Client()
	hc := &http.Client{Transport: signer{w}}
	ctx := credentials.WithCaller(context.Background(), "pat-bob")

	req, _ := http.NewRequestWithContext(ctx, "POST", f.URL+"/api/2.0/mcp/genie/s1", strings.NewReader("{}"))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls := f.snapshot(); len(calls) != 1 || calls[0].Principal != "bob@example.com" {
		t.Fatalf("calls = %+v, want one as bob", calls)
	}

	req, _ = http.NewRequestWithContext(ctx, "POST", f.URL+"/serving-endpoints/chat/completions", strings.NewReader("{}"))
	_, err = hc.Do(req)
	if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "serving.serving-endpoints") {
		t.Fatalf("err = %v, want a scope refusal naming serving.serving-endpoints", err)
	}

	req, _ = http.NewRequestWithContext(ctx, "POST", "http://elsewhere.example/api/2.0/mcp/genie/s1", nil)
	err = w.Config.Authenticate(req)
	var he *credentials.HostError
	if !errors.As(err, &he) || req.Header.Get("Authorization") != "" {
		t.Fatalf("err = %v, Authorization set = %v; want a HostError and no header", err, req.Header.Get("Authorization") != "")
	}
	if n := f.apiRequests.Load(); n != 1 {
		t.Fatalf("workspace saw %d requests, want 1", n)
	}
}

func TestNewUserRejectsBadInput(t *testing.T) {
	for _, o := range []credentials.UserOptions{
		{},
		{Host: "ftp://x"},
		{Host: "http://127.0.0.1:1", Scopes: []string{"made.up"}},
		{Host: "http://127.0.0.1:1", Exchange: &credentials.ExchangeOptions{}},
	} {
		if _, err := credentials.NewUser(o); err == nil {
			t.Errorf("NewUser(%+v) succeeded", o)
		}
	}
}

// signer signs each request with w's credentials strategy, the way tools'
// wsapi.Transport does (less its own host check).
type signer struct{ w *databricks.WorkspaceClient }

func (s signer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if err := s.w.Config.Authenticate(r); err != nil {
		return nil, err
	}
	return http.DefaultTransport.RoundTrip(r)
}

package credentials_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/databricks/databricks-sdk-go"
)

func TestTokenExchangeCachedPerCaller(t *testing.T) {
	f := newFakeWorkspace(t)
	u, err := credentials.NewUser(credentials.UserOptions{Host: f.URL, Scopes: []string{"genie", "dashboards.genie"},
		Exchange: &credentials.ExchangeOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	w := u.Client()
	var wg sync.WaitGroup
	for _, tok := range []string{"pat-alice", "pat-bob"} {
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := getSpace(credentials.WithCaller(context.Background(), tok), w); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if n := f.exchanges.Load(); n != 2 {
		t.Fatalf("%d exchanges for two callers, want 2 (one per caller, single flight)", n)
	}
	byPrincipal := map[string]int{}
	for _, c := range f.snapshot() {
		byPrincipal[c.Principal]++
	}
	if byPrincipal["alice@example.com"] != 50 || byPrincipal["bob@example.com"] != 50 {
		t.Fatalf("calls by principal = %v", byPrincipal)
	}
	if form := f.lastForm.Load(); form == nil || !strings.Contains(form.(interface{ Get(string) string }).Get("scope"), "dashboards.genie genie iam.access-control:read iam.current-user:read") {
		t.Fatalf("exchange form = %v, want the sorted declared scopes", form)
	}
}

func TestTokenExchangeRejected(t *testing.T) {
	f := newFakeWorkspace(t)
	u, err := credentials.NewUser(credentials.UserOptions{Host: f.URL, Scopes: []string{"genie"},
		Exchange: &credentials.ExchangeOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "unknown-user-token-0123456789"
	err = getSpace(credentials.WithCaller(context.Background(), secret), u.Client())
	var xe *credentials.ExchangeError
	if !errors.As(err, &xe) || !errors.Is(err, databricks.ErrUnauthenticated) || xe.Code != "invalid_grant" {
		t.Fatalf("err = %v, want an ExchangeError (invalid_grant) matching ErrUnauthenticated", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if n := f.apiRequests.Load(); n != 0 {
		t.Fatalf("%d API requests after a failed exchange", n)
	}
}

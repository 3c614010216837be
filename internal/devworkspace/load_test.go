package devworkspace

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/iam"
	"github.com/databricks/databricks-sdk-go/service/sql"
)

// heldStart starts a workspace whose background data load waits until
// release is closed (or the workspace closes), and returns once the load
// has started. waiting receives one value per request that starts waiting
// for the data.
func heldStart(t *testing.T, loadErr error) (ws *Workspace, release chan struct{}, waiting chan struct{}) {
	t.Helper()
	release, waiting = make(chan struct{}), make(chan struct{}, 8)
	started := make(chan struct{})
	ws = coreStart(t, Options{
		beforeLoad: func(ctx context.Context) error {
			close(started)
			select {
			case <-release:
				return loadErr
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		onDataWait: func() { waiting <- struct{}{} },
	})
	<-started
	return ws, release, waiting
}

// A request that reads the sample data while Start is still loading it
// waits, and then gets the answer from the whole data set; routes that
// read only the configuration answer meanwhile.
func TestStartRequestWaitsForSampleData(t *testing.T) {
	ws, release, waiting := heldStart(t, nil)
	alice := corePAT(t, ws, AliceToken)

	// Identity (SCIM) and serving endpoints do not wait: the host's
	// start-up (system token, preflight) does not depend on the data.
	if me, err := alice.CurrentUser.Me(context.Background(), iam.MeRequest{}); err != nil || me.UserName != "alice@example.com" {
		t.Fatalf("Me while loading = %v, %v", me, err)
	}
	if _, err := alice.ServingEndpoints.GetByName(context.Background(), "dev-llm"); err != nil {
		t.Fatalf("serving endpoint while loading: %v", err)
	}

	type result struct {
		resp *sql.StatementResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := coreExec(t, alice, "SELECT COUNT(*) AS n FROM main.sales.orders")
		done <- result{resp, err}
	}()
	select { // the request is parked on the data, not answered
	case <-waiting:
	case r := <-done:
		t.Fatalf("answered before the sample data was loaded: %+v, %v", r.resp, r.err)
	}
	close(release)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.resp.Status.State != sql.StatementStateSucceeded {
		t.Fatalf("state %s: %+v", r.resp.Status.State, r.resp.Status.Error)
	}
	if want := [][]string{{"12000"}}; !reflect.DeepEqual(r.resp.Result.DataArray, want) {
		t.Fatalf("rows %v, want %v (every order loaded)", r.resp.Result.DataArray, want)
	}
	// Once loaded, requests do not wait at all.
	if _, err := coreExec(t, alice, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if n := len(waiting); n != 0 {
		t.Errorf("%d requests waited after the load", n)
	}
}

// Every kind of route that reads the data waits for it: SQL, Unity
// Catalog, Genie, Vector Search and the managed MCP servers.
func TestStartDataRoutesWait(t *testing.T) {
	ws, release, waiting := heldStart(t, nil)
	routes := []struct{ method, path, body string }{
		{"POST", "/api/2.0/sql/statements", `{"warehouse_id":"dev-warehouse","statement":"SELECT 1"}`},
		{"GET", "/api/2.1/unity-catalog/tables/main.sales.orders", ""},
		{"GET", "/api/2.1/unity-catalog/functions/main.tools.lookup_order", ""},
		{"GET", "/api/2.0/genie/spaces/01dev0genie0sales", ""},
		{"POST", "/api/2.0/vector-search/indexes/main.docs.product_docs_index/query", `{"query_text":"backup","columns":["id"],"num_results":1}`},
		{"POST", "/api/2.0/mcp/functions/main/tools", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`},
	}
	type answer struct {
		path string
		code int
		body string
	}
	codes := make(chan answer, len(routes))
	for _, rt := range routes {
		go func() {
			req := httptest.NewRequest(rt.method, "http://127.0.0.1"+rt.path, strings.NewReader(rt.body))
			req.Header.Set("Authorization", "Bearer "+AliceToken)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			rec := httptest.NewRecorder()
			ws.Handler().ServeHTTP(rec, req)
			codes <- answer{rt.path, rec.Code, rec.Body.String()}
		}()
	}
	for range routes {
		select {
		case <-waiting:
		case a := <-codes:
			t.Fatalf("%s answered before the load finished: %d %s", a.path, a.code, a.body)
		}
	}
	close(release)
	for range routes {
		if a := <-codes; a.code != http.StatusOK {
			t.Errorf("%s: status %d after the load: %s", a.path, a.code, a.body)
		}
	}
}

// A caller that gives up while the data loads gets a 503 at once; a load
// that fails answers the data routes with a 500 naming why, and the
// configuration routes still work.
func TestStartDataWaitEnds(t *testing.T) {
	t.Run("caller gives up", func(t *testing.T) {
		ws, _, waiting := heldStart(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, "GET", "http://127.0.0.1/api/2.1/unity-catalog/tables/main.sales.orders", nil)
		req.Header.Set("Authorization", "Bearer "+AliceToken)
		rec := httptest.NewRecorder()
		go func() { <-waiting; cancel() }()
		ws.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), codeTemporarilyUnavailable) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		// Close stops the held load (the hook sees its context end).
	})
	t.Run("load fails", func(t *testing.T) {
		ws, release, _ := heldStart(t, errors.New("disk on fire"))
		close(release)
		alice := corePAT(t, ws, AliceToken)
		_, err := coreExec(t, alice, "SELECT 1")
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("statement after a failed load: %v", err)
		}
		if _, err := alice.CurrentUser.Me(context.Background(), iam.MeRequest{}); err != nil {
			t.Fatalf("Me after a failed load: %v", err)
		}
		var body struct {
			ErrorCode string `json:"error_code"`
		}
		req := httptest.NewRequest("GET", "http://127.0.0.1/api/2.1/unity-catalog/tables/main.sales.orders", nil)
		req.Header.Set("Authorization", "Bearer "+AliceToken)
		rec := httptest.NewRecorder()
		ws.Handler().ServeHTTP(rec, req)
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusInternalServerError || body.ErrorCode != codeInternal {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}

package devworkspace

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"github.com/databricks/databricks-sdk-go/service/sql"
)

// coreNoLoader keeps env vars and ~/.databrickscfg out of test clients.
type coreNoLoader struct{}

func (coreNoLoader) Name() string                   { return "core-none" }
func (coreNoLoader) Configure(*config.Config) error { return nil }

var (
	coreOnce sync.Once
	coreWS   *Workspace
	coreErr  error
)

// coreShared is one default workspace shared by the tests that only read;
// every test keeps to its own conversations and statements.
func coreShared(t testing.TB) *Workspace {
	t.Helper()
	coreOnce.Do(func() { coreWS, coreErr = Start(context.Background(), Options{}) })
	if coreErr != nil {
		t.Fatal(coreErr)
	}
	return coreWS
}

// coreStart starts a private workspace (for tests that change the clock or
// the configuration).
func coreStart(t testing.TB, opts Options) *Workspace {
	t.Helper()
	ws, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func coreConfig(ws *Workspace) *databricks.Config {
	return &databricks.Config{Host: ws.URL(), Loaders: []config.Loader{coreNoLoader{}}, RetryTimeoutSeconds: 5, RateLimitPerSecond: 1000}
}

func corePAT(t testing.TB, ws *Workspace, token string) *databricks.WorkspaceClient {
	t.Helper()
	c := coreConfig(ws)
	c.Token, c.AuthType = token, "pat"
	w, err := databricks.NewWorkspaceClient(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func coreM2M(t testing.TB, ws *Workspace, scopes ...string) *databricks.WorkspaceClient {
	t.Helper()
	c := coreConfig(ws)
	c.ClientID, c.ClientSecret, c.AuthType, c.Scopes = SPClientID, SPClientSecret, "oauth-m2m", scopes
	w, err := databricks.NewWorkspaceClient(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestIdentities(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		client *databricks.WorkspaceClient
		want   string
	}{
		{"alice", corePAT(t, ws, AliceToken), "alice@example.com"},
		{"bob", corePAT(t, ws, BobToken), "bob@example.com"},
		{"carol", corePAT(t, ws, CarolToken), "carol@example.com"},
		{"agent-sp m2m", coreM2M(t, ws), SPClientID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			me, err := tt.client.CurrentUser.Me(ctx, iam.MeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if me.UserName != tt.want {
				t.Fatalf("Me().UserName = %q, want %q", me.UserName, tt.want)
			}
		})
	}
}

func TestUnauthenticated(t *testing.T) {
	ws := coreShared(t)
	_, err := corePAT(t, ws, "not-a-token").CurrentUser.Me(context.Background(), iam.MeRequest{})
	if !errors.Is(err, databricks.ErrUnauthenticated) {
		t.Fatalf("unknown token: err = %v, want ErrUnauthenticated", err)
	}
	resp, err := http.Get(ws.URL() + "/api/2.0/preview/scim/v2/Me")
	if err != nil {
		t.Fatal(err)
	}
	var body errorBody
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 401 || body.ErrorCode != codeUnauthenticated {
		t.Fatalf("no token: %d %+v", resp.StatusCode, body)
	}
	c := coreConfig(ws)
	c.ClientID, c.ClientSecret, c.AuthType = SPClientID, "wrong-secret", "oauth-m2m"
	w, err := databricks.NewWorkspaceClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CurrentUser.Me(context.Background(), iam.MeRequest{}); err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("bad client secret: err = %v, want an error that does not echo the secret", err)
	}
}

// coreClock is a settable clock for token expiry tests.
type coreClock struct{ ns atomic.Int64 }

func (c *coreClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *coreClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newCoreClock() *coreClock           { c := &coreClock{}; c.ns.Store(time.Now().UnixNano()); return c }

func TestOAuthTokensExpire(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TokenTTL = Duration{2 * time.Minute}
	ws, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	clock := newCoreClock()
	ws.now = clock.now
	srv := httptest.NewServer(ws.Handler())
	defer srv.Close()

	tok := coreToken(t, srv.URL, url.Values{"grant_type": {"client_credentials"}}, SPClientID, SPClientSecret)
	if tok.ExpiresIn != 120 || tok.Scope != "all-apis" {
		t.Fatalf("token response %+v, want expires_in 120 and scope all-apis", tok)
	}
	if code := coreGet(t, srv.URL+"/api/2.0/preview/scim/v2/Me", tok.AccessToken); code != 200 {
		t.Fatalf("fresh token: status %d", code)
	}
	// An exchanged token never outlives its subject, whatever the subject
	// token type says (Databricks OAuth tokens are JWTs).
	clock.add(60 * time.Second)
	ex := coreToken(t, srv.URL, url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok.AccessToken},
		"subject_token_type": {tokenTypeJWT}, "scope": {"sql"}}, "", "")
	if ex.ExpiresIn != 60 || ex.Scope != "sql" {
		t.Fatalf("exchanged token %+v, want expires_in 60 and scope sql", ex)
	}
	clock.add(61 * time.Second)
	for _, tk := range []string{tok.AccessToken, ex.AccessToken} {
		if code := coreGet(t, srv.URL+"/api/2.0/sql/warehouses/dev-warehouse", tk); code != 401 {
			t.Fatalf("expired token: status %d, want 401", code)
		}
	}
}

func coreToken(t testing.TB, base string, form url.Values, user, pass string) tokenResponse {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oidc/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if resp.StatusCode != 200 {
		var e map[string]string
		json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("token endpoint: %d %v", resp.StatusCode, e)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

func coreGet(t testing.TB, u, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTokenExchange(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	exchange := func(subject, scope string) (*http.Response, map[string]any) {
		form := url.Values{
			"grant_type":         {grantTokenExchange},
			"subject_token":      {subject},
			"subject_token_type": {tokenTypeAccessToken},
			"scope":              {scope},
		}
		resp, err := http.PostForm(ws.URL()+"/oidc/v1/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	resp, body := exchange(AliceToken, "sql iam.current-user:read")
	if resp.StatusCode != 200 || body["scope"] != "sql iam.current-user:read" {
		t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
	narrowed := body["access_token"].(string)
	w := corePAT(t, ws, narrowed)
	me, err := w.CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil || me.UserName != "alice@example.com" {
		t.Fatalf("Me with exchanged token: %v %v", me, err)
	}
	if _, err := w.StatementExecution.ExecuteStatement(ctx, sql.ExecuteStatementRequest{WarehouseId: "dev-warehouse", Statement: "SELECT 1 AS one"}); err != nil {
		t.Fatalf("statement within scope sql: %v", err)
	}
	_, err = w.Tables.GetByFullName(ctx, "main.sales.orders")
	if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "catalog.tables:read") {
		t.Fatalf("out-of-scope call: err = %v, want PERMISSION_DENIED naming catalog.tables:read", err)
	}
	// Never more than the subject has.
	if resp, body := exchange(narrowed, "genie"); resp.StatusCode != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("widening exchange: %d %v, want 400 invalid_scope", resp.StatusCode, body)
	}
	if resp, body := exchange(narrowed, "all-apis"); resp.StatusCode != 400 {
		t.Fatalf("widening to all-apis: %d %v, want 400", resp.StatusCode, body)
	}
	if resp, _ := exchange("bogus", "sql"); resp.StatusCode != 400 {
		t.Fatalf("unknown subject: %d, want 400", resp.StatusCode)
	}
	if resp, body := exchange(AliceToken, "no-such-scope"); resp.StatusCode != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("unknown scope: %d %v", resp.StatusCode, body)
	}
	// Exchanged tokens are audited as such.
	var found bool
	for _, e := range ws.Audit() {
		if e.Principal == "alice@example.com" && e.AuthMethod == MethodTokenExchange && e.Path == "/api/2.0/preview/scim/v2/Me" {
			found = true
		}
	}
	if !found {
		t.Fatal("audit log has no token-exchange entry for alice")
	}
}

func TestM2MScopes(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	w := coreM2M(t, ws, "sql")
	if _, err := w.Warehouses.GetById(ctx, "dev-warehouse"); err != nil {
		t.Fatalf("warehouse with scope sql: %v", err)
	}
	_, err := w.Genie.GetSpaceBySpaceId(ctx, "01dev0genie0sales")
	if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "dashboards.genie") {
		t.Fatalf("genie with scope sql: err = %v, want PERMISSION_DENIED naming dashboards.genie", err)
	}
}

func TestWorkloadIdentityFederation(t *testing.T) {
	ws := coreShared(t)
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(ws.Config().Federation[0].Token), 0o600); err != nil {
		t.Fatal(err)
	}
	c := coreConfig(ws)
	c.ClientID, c.OIDCTokenFilepath, c.AuthType = SPClientID, f, "file-oidc"
	w, err := databricks.NewWorkspaceClient(c)
	if err != nil {
		t.Fatal(err)
	}
	me, err := w.CurrentUser.Me(context.Background(), iam.MeRequest{})
	if err != nil || me.UserName != SPClientID {
		t.Fatalf("Me via file-oidc: %v %v", me, err)
	}
	if err := os.WriteFile(f, []byte("untrusted"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = coreConfig(ws)
	c.ClientID, c.OIDCTokenFilepath, c.AuthType = SPClientID, f, "file-oidc"
	w, err = databricks.NewWorkspaceClient(c)
	if err == nil {
		_, err = w.CurrentUser.Me(context.Background(), iam.MeRequest{})
	}
	if err == nil {
		t.Fatal("an untrusted workload token was accepted")
	}
}

func TestAuditLog(t *testing.T) {
	ws := coreShared(t)
	start := int64(0)
	if a := ws.Audit(); len(a) > 0 {
		start = a[len(a)-1].Seq
	}
	req, _ := http.NewRequest("GET", ws.URL()+"/api/2.0/sql/warehouses/dev-warehouse", nil)
	req.Header.Set("Authorization", "Bearer "+CarolToken)
	req.Header.Set("X-Request-Id", "core-audit-req-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("carol on the warehouse: %d, want 403", resp.StatusCode)
	}
	resp, err = http.Get(ws.URL() + "/dev/audit?since=" + itoa(start))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Entries []AuditEntry }
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	var e *AuditEntry
	for i := range got.Entries {
		if got.Entries[i].RequestID == "core-audit-req-1" {
			e = &got.Entries[i]
		}
		if got.Entries[i].Seq <= start {
			t.Fatalf("since=%d returned seq %d", start, got.Entries[i].Seq)
		}
	}
	if e == nil {
		t.Fatalf("no audit entry with the request id in %+v", got.Entries)
	}
	want := AuditEntry{Seq: e.Seq, Time: e.Time, Principal: "carol@example.com", AuthMethod: MethodPAT, Scopes: []string{"all-apis"},
		Method: "GET", Path: "/api/2.0/sql/warehouses/dev-warehouse", Status: 403, RequestID: "core-audit-req-1"}
	if b1, b2 := mustJSON(t, *e), mustJSON(t, want); b1 != b2 {
		t.Fatalf("audit entry\n got %s\nwant %s", b1, b2)
	}
	if e.Time.IsZero() {
		t.Fatal("audit entry without time")
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestErrorsCarryCodes(t *testing.T) {
	ws := coreShared(t)
	_, err := corePAT(t, ws, AliceToken).Tables.GetByFullName(context.Background(), "main.sales.nope")
	if !errors.Is(err, databricks.ErrNotFound) || !errors.Is(err, databricks.ErrResourceDoesNotExist) {
		t.Fatalf("unknown table: %v, want ErrResourceDoesNotExist", err)
	}
	if code := coreGet(t, ws.URL()+"/api/2.0/no/such/api", AliceToken); code != 404 {
		t.Fatalf("unknown route: %d", code)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "nope: 1", "unknown field"},
		{"grant to nobody", "grants: [{principal: x@example.com, securable_type: catalog, full_name: main, privileges: [SELECT]}]", "unknown principal"},
		{"bad level", "users: [{user_name: a}]\npermissions: [{principal: a, object_type: genie, object_id: s, level: CAN_FLY}]", "unknown level"},
		{"bad table name", "tables: [{full_name: orders}]", "catalog.schema.table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml), "test.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestUnityCatalog(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	alice, bob, carol, sp := corePAT(t, ws, AliceToken), corePAT(t, ws, BobToken), corePAT(t, ws, CarolToken), coreM2M(t, ws)

	tbl, err := alice.Tables.GetByFullName(ctx, "main.sales.orders")
	if err != nil {
		t.Fatal(err)
	}
	if tbl.FullName != "main.sales.orders" || len(tbl.Columns) != 7 || tbl.Columns[0].Name != "order_id" ||
		tbl.Columns[1].TypeName != catalog.ColumnTypeNameLong || tbl.Columns[1].TypeText != "bigint" || tbl.Columns[5].Position != 5 {
		t.Fatalf("table info: %+v", tbl)
	}
	if _, err := sp.Tables.GetByFullName(ctx, "main.sales.customers"); err != nil {
		t.Fatalf("agent-sp reads main.sales: %v", err)
	}
	_, err = bob.Tables.GetByFullName(ctx, "main.sales.orders")
	if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), "USE_SCHEMA on schema main.sales") {
		t.Fatalf("bob on main.sales.orders: %v", err)
	}

	fn, err := bob.Functions.GetByName(ctx, "main.tools.lookup_order")
	if err != nil {
		t.Fatal(err)
	}
	if fn.DataType != catalog.ColumnTypeNameString || len(fn.InputParams.Parameters) != 1 || fn.InputParams.Parameters[0].Name != "order_id" {
		t.Fatalf("lookup_order: %+v", fn)
	}
	top, err := alice.Functions.GetByName(ctx, "main.tools.top_products")
	if err != nil || top.DataType != catalog.ColumnTypeNameTableType || top.InputParams.Parameters[0].TypeName != catalog.ColumnTypeNameInt {
		t.Fatalf("top_products: %+v %v", top, err)
	}
	if _, err := carol.Functions.GetByName(ctx, "main.tools.lookup_order"); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("carol on a function: %v", err)
	}

	conn, err := sp.Connections.GetByName(ctx, "dev-external-mcp")
	if err != nil {
		t.Fatal(err)
	}
	if conn.ConnectionType != catalog.ConnectionTypeHttp || conn.Url != ws.URL()+"/dev/external-mcp" {
		t.Fatalf("connection: %+v", conn)
	}
	if _, err := bob.Connections.GetByName(ctx, "dev-external-mcp"); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("bob on the connection: %v", err)
	}

	for _, typ := range []string{"table", "TABLE"} {
		eff, err := carol.Grants.GetEffective(ctx, catalog.GetEffectiveRequest{SecurableType: typ, FullName: "main.docs.product_docs", Principal: SPClientID})
		if err != nil {
			t.Fatal(err)
		}
		if len(eff.PrivilegeAssignments) != 1 {
			t.Fatalf("effective grants (%s): %+v", typ, eff)
		}
		var sel bool
		for _, p := range eff.PrivilegeAssignments[0].Privileges {
			if p.Privilege == catalog.PrivilegeSelect && p.InheritedFromName == "main.docs" {
				sel = true
			}
		}
		if !sel {
			t.Fatalf("agent-sp SELECT inherited from main.docs missing: %+v", eff.PrivilegeAssignments[0].Privileges)
		}
	}
	direct, err := alice.Grants.GetBySecurableTypeAndFullName(ctx, "schema", "main.tools")
	if err != nil {
		t.Fatal(err)
	}
	if len(direct.PrivilegeAssignments) != 2 {
		t.Fatalf("grants on main.tools: %+v", direct.PrivilegeAssignments)
	}
}

func TestWarehouses(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	wh, err := coreM2M(t, ws).Warehouses.GetById(ctx, "dev-warehouse")
	if err != nil {
		t.Fatal(err)
	}
	if wh.State != sql.StateRunning || wh.WarehouseType != sql.GetWarehouseResponseWarehouseTypePro || !wh.EnableServerlessCompute {
		t.Fatalf("warehouse: %+v", wh)
	}
	all, err := corePAT(t, ws, BobToken).Warehouses.ListAll(ctx, sql.ListWarehousesRequest{})
	if err != nil || len(all) != 1 || all[0].Id != "dev-warehouse" {
		t.Fatalf("bob lists warehouses: %+v %v", all, err)
	}
	if _, err := corePAT(t, ws, CarolToken).Warehouses.GetById(ctx, "dev-warehouse"); !errors.Is(err, databricks.ErrPermissionDenied) {
		t.Fatalf("carol: %v", err)
	}
	if _, err := corePAT(t, ws, AliceToken).Warehouses.GetById(ctx, "nope"); !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("unknown warehouse: %v", err)
	}
}

// Start followed at once by Close must not race the serve goroutine.
func TestStartThenCloseImmediately(t *testing.T) {
	for range 3 {
		ws, err := Start(t.Context(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

package devworkspace

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/service/sql"
)

func coreExec(t testing.TB, w *databricks.WorkspaceClient, stmt string, params ...sql.StatementParameterListItem) (*sql.StatementResponse, error) {
	t.Helper()
	return w.StatementExecution.ExecuteStatement(context.Background(), sql.ExecuteStatementRequest{
		WarehouseId: "dev-warehouse", Statement: stmt, Parameters: params, WaitTimeout: "30s",
	})
}

func TestStatementsThroughSDK(t *testing.T) {
	ws := coreShared(t)
	alice, bob, sp := corePAT(t, ws, AliceToken), corePAT(t, ws, BobToken), coreM2M(t, ws)
	tests := []struct {
		name     string
		client   *databricks.WorkspaceClient
		stmt     string
		params   []sql.StatementParameterListItem
		wantCols []string
		wantType []sql.ColumnInfoTypeName
		wantRows [][]string
	}{
		{"three-part name count", alice, "SELECT COUNT(*) AS n FROM main.sales.orders", nil,
			[]string{"n"}, []sql.ColumnInfoTypeName{sql.ColumnInfoTypeNameLong}, [][]string{{"12000"}}},
		{"typed params", sp, "SELECT order_id, quantity, order_date FROM main.sales.orders WHERE order_id = :id AND quantity >= :q",
			[]sql.StatementParameterListItem{{Name: "id", Value: "ORD-100001"}, {Name: "q", Value: "1", Type: "INT"}},
			[]string{"order_id", "quantity", "order_date"},
			[]sql.ColumnInfoTypeName{sql.ColumnInfoTypeNameString, sql.ColumnInfoTypeNameInt, sql.ColumnInfoTypeNameDate}, nil},
		{"backquoted names and join", alice, "SELECT c.region, COUNT(*) AS n FROM `main`.`sales`.`orders` o JOIN main.sales.customers c ON c.customer_id = o.customer_id GROUP BY c.region ORDER BY c.region LIMIT 1", nil,
			[]string{"region", "n"}, nil, nil},
		{"scalar UC function as bob (EXECUTE, no SELECT)", bob, "SELECT main.tools.lookup_order(:id) AS answer",
			[]sql.StatementParameterListItem{{Name: "id", Value: "ORD-100001"}}, []string{"answer"}, []sql.ColumnInfoTypeName{sql.ColumnInfoTypeNameString}, nil},
		{"IDENTIFIER(:function_name) as unitycatalog-ai calls it", bob, "SELECT IDENTIFIER(:function_name)(:order_id) AS answer",
			[]sql.StatementParameterListItem{{Name: "function_name", Value: "main.tools.lookup_order"}, {Name: "order_id", Value: "ORD-100002"}},
			[]string{"answer"}, nil, nil},
		{"table UC function", sp, "SELECT product, revenue FROM main.tools.top_products(3)", nil,
			[]string{"product", "revenue"}, []sql.ColumnInfoTypeName{sql.ColumnInfoTypeNameString, sql.ColumnInfoTypeNameDouble}, nil},
		{"null parameter", alice, "SELECT :x IS NULL AS is_null",
			[]sql.StatementParameterListItem{{Name: "x"}}, []string{"is_null"}, nil, [][]string{{"1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := coreExec(t, tt.client, tt.stmt, tt.params...)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status.State != sql.StatementStateSucceeded {
				t.Fatalf("state %s: %+v", resp.Status.State, resp.Status.Error)
			}
			var cols []string
			var types []sql.ColumnInfoTypeName
			for _, c := range resp.Manifest.Schema.Columns {
				cols, types = append(cols, c.Name), append(types, c.TypeName)
			}
			if !reflect.DeepEqual(cols, tt.wantCols) {
				t.Fatalf("columns %v, want %v", cols, tt.wantCols)
			}
			if tt.wantType != nil && !reflect.DeepEqual(types, tt.wantType) {
				t.Fatalf("types %v, want %v", types, tt.wantType)
			}
			if len(resp.Result.DataArray) == 0 {
				t.Fatal("no rows")
			}
			if tt.wantRows != nil && !reflect.DeepEqual(resp.Result.DataArray, tt.wantRows) {
				t.Fatalf("rows %v, want %v", resp.Result.DataArray, tt.wantRows)
			}
		})
	}
}

func TestLookupOrderDescribesOrder(t *testing.T) {
	ws := coreShared(t)
	p := ws.principal("bob@example.com")
	rs, err := ws.query(context.Background(), p, "SELECT main.tools.lookup_order(:q)", []StatementParam{{Name: "q", Value: ptr("what is the status of order 100042?")}})
	if err != nil {
		t.Fatal(err)
	}
	got := *rs.DataArray()[0][0]
	if !strings.HasPrefix(got, "Order ORD-100042 placed on ") || !strings.Contains(got, "status ") {
		t.Fatalf("lookup_order = %q", got)
	}
	rs, err = ws.query(context.Background(), p, "SELECT main.tools.lookup_order('nothing here')", nil)
	if err != nil || *rs.DataArray()[0][0] != "No order matches nothing here" {
		t.Fatalf("unknown order: %v %v", rs, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestStatementFailuresAndDenials(t *testing.T) {
	ws := coreShared(t)
	alice, bob, carol := corePAT(t, ws, AliceToken), corePAT(t, ws, BobToken), corePAT(t, ws, CarolToken)
	// SQL errors: HTTP 200, FAILED, status.error.
	for _, stmt := range []string{
		"SELECT no_such_column FROM main.sales.orders",
		"SELECT * FROM main.sales.no_such_table",
		"DELETE FROM main.sales.orders",
		"SELECT 1; SELECT 2",
		"SELECT * FROM sqlite_master",
		"SELECT main.tools.lookup_order()",
		"SELECT :unbound AS x",
	} {
		resp, err := coreExec(t, alice, stmt)
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if resp.Status.State != sql.StatementStateFailed || resp.Status.Error == nil || resp.Status.Error.Message == "" {
			t.Fatalf("%s: %+v", stmt, resp.Status)
		}
	}
	// Rights: 403 naming the securable and the privilege.
	denials := []struct {
		client *databricks.WorkspaceClient
		stmt   string
		want   string
	}{
		{bob, "SELECT * FROM main.docs.product_docs", "on schema main.docs"},
		{bob, `SELECT * FROM "main.sales.orders"`, "USE_SCHEMA on schema main.sales"},
		{carol, "SELECT 1", "CAN_USE on warehouses dev-warehouse"},
	}
	for _, d := range denials {
		_, err := coreExec(t, d.client, d.stmt)
		if !errors.Is(err, databricks.ErrPermissionDenied) || !strings.Contains(err.Error(), d.want) {
			t.Fatalf("%s: err = %v, want PERMISSION_DENIED with %q", d.stmt, err, d.want)
		}
	}
	_, err := alice.StatementExecution.ExecuteStatement(context.Background(), sql.ExecuteStatementRequest{WarehouseId: "dev-warehouse", Statement: "SELECT 1", WaitTimeout: "3s"})
	if !errors.Is(err, databricks.ErrBadRequest) {
		t.Fatalf("wait_timeout 3s: %v, want ErrBadRequest", err)
	}
	_, err = alice.StatementExecution.ExecuteStatement(context.Background(), sql.ExecuteStatementRequest{WarehouseId: "nope", Statement: "SELECT 1"})
	if !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("unknown warehouse: %v, want ErrNotFound", err)
	}
}

func TestStatementAsyncAndCancel(t *testing.T) {
	ws := coreShared(t)
	ctx := context.Background()
	alice := corePAT(t, ws, AliceToken)
	resp, err := alice.StatementExecution.ExecuteStatement(ctx, sql.ExecuteStatementRequest{
		WarehouseId: "dev-warehouse", WaitTimeout: "0s",
		Statement: "SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY status", Catalog: "main", Schema: "sales",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status.State != sql.StatementStatePending || resp.Result != nil {
		t.Fatalf("wait_timeout 0s: %+v", resp.Status)
	}
	var got *sql.StatementResponse
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		got, err = alice.StatementExecution.GetStatementByStatementId(ctx, resp.StatementId)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.State == sql.StatementStateSucceeded || got.Status.State == sql.StatementStateFailed {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got.Status.State != sql.StatementStateSucceeded || len(got.Result.DataArray) != 5 {
		t.Fatalf("after polling: %+v", got)
	}
	chunk, err := alice.StatementExecution.GetStatementResultChunkN(ctx, sql.GetStatementResultChunkNRequest{StatementId: resp.StatementId, ChunkIndex: 0})
	if err != nil || len(chunk.DataArray) != 5 {
		t.Fatalf("chunk 0: %+v %v", chunk, err)
	}
	// Only the owner sees a statement.
	if _, err := corePAT(t, ws, BobToken).StatementExecution.GetStatementByStatementId(ctx, resp.StatementId); !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("bob reads alice's statement: %v", err)
	}
	// Cancelling a finished statement keeps its state; cancelling an unknown one is 404.
	if err := alice.StatementExecution.CancelExecution(ctx, sql.CancelExecutionRequest{StatementId: resp.StatementId}); err != nil {
		t.Fatal(err)
	}
	if err := alice.StatementExecution.CancelExecution(ctx, sql.CancelExecutionRequest{StatementId: "nope"}); !errors.Is(err, databricks.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
	// row_limit truncates.
	lim, err := alice.StatementExecution.ExecuteStatement(ctx, sql.ExecuteStatementRequest{WarehouseId: "dev-warehouse", Statement: "SELECT * FROM main.sales.products", RowLimit: 5})
	if err != nil || len(lim.Result.DataArray) != 5 || !lim.Manifest.Truncated {
		t.Fatalf("row_limit: %+v %v", lim, err)
	}
}

func TestStatementCancelRunning(t *testing.T) {
	ws := coreShared(t)
	p := ws.principal("alice@example.com")
	// A recursive query that runs until cancelled.
	st, err := ws.submit(p, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c", nil, queryOptions{Catalog: "main"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ws.cancelStatement(st)
	select {
	case <-st.done:
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled statement did not stop")
	}
	if r := ws.statementResponse(st, false); r.Status.State != stateCanceled {
		t.Fatalf("state %s, want CANCELED", r.Status.State)
	}
}

func TestCompileRewritesNames(t *testing.T) {
	ws := coreShared(t)
	tests := []struct {
		name, stmt, want string
		o                queryOptions
		tables, funcs    []string
	}{
		{"three-part", "SELECT * FROM main.sales.orders", `SELECT * FROM "main.sales.orders"`, queryOptions{}, []string{"main.sales.orders"}, nil},
		{"column of three-part", "SELECT main.sales.orders.status FROM main.sales.orders", `SELECT "main.sales.orders".status FROM "main.sales.orders"`, queryOptions{}, []string{"main.sales.orders", "main.sales.orders"}, nil},
		{"two-part with catalog", "SELECT * FROM sales.orders o", `SELECT * FROM "main.sales.orders" o`, queryOptions{Catalog: "main"}, []string{"main.sales.orders"}, nil},
		{"one-part with schema", "SELECT * FROM orders JOIN customers USING (customer_id)", `SELECT * FROM "main.sales.orders" JOIN "main.sales.customers" USING (customer_id)`, queryOptions{Catalog: "main", Schema: "sales"}, []string{"main.sales.orders", "main.sales.customers"}, nil},
		{"column named like a table", "SELECT orders FROM main.sales.orders", `SELECT orders FROM "main.sales.orders"`, queryOptions{Catalog: "main", Schema: "sales"}, []string{"main.sales.orders"}, nil},
		{"strings and comments untouched", "SELECT 'main.sales.orders' -- main.sales.orders\n", "SELECT 'main.sales.orders' -- main.sales.orders\n", queryOptions{}, nil, nil},
		{"function", "SELECT main.tools.lookup_order(:id)", "", queryOptions{}, nil, []string{"main.tools.lookup_order"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ws.compile(tt.stmt, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && c.sql != tt.want {
				t.Fatalf("sql\n got %s\nwant %s", c.sql, tt.want)
			}
			if !reflect.DeepEqual(c.tables, tt.tables) || !reflect.DeepEqual(c.functions, tt.funcs) {
				t.Fatalf("tables %v functions %v, want %v %v", c.tables, c.functions, tt.tables, tt.funcs)
			}
		})
	}
}

func TestSampleDataDeterministic(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []string{"sales.customers", "sales.products", "sales.orders"} {
		a, err := sampleRows(cfg.SampleData, gen)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sampleRows(cfg.SampleData, gen)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s differs between runs", gen)
		}
		other := cfg.SampleData
		other.Seed++
		c, _ := sampleRows(other, gen)
		if gen != "sales.products" && reflect.DeepEqual(a, c) {
			t.Fatalf("%s ignores the seed", gen)
		}
	}
	ws := coreShared(t)
	rs, err := ws.query(context.Background(), ws.principal("alice@example.com"),
		"SELECT (SELECT COUNT(*) FROM main.sales.customers), (SELECT COUNT(*) FROM main.sales.products), (SELECT COUNT(DISTINCT order_id) FROM main.sales.orders), (SELECT COUNT(*) FROM main.sales.orders o LEFT JOIN main.sales.customers c USING (customer_id) WHERE c.customer_id IS NULL)", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.Rows[0]; !reflect.DeepEqual(got, []any{int64(500), int64(40), int64(12000), int64(0)}) {
		t.Fatalf("counts %v", got)
	}
}

func TestLexRoundTrip(t *testing.T) {
	for _, s := range []string{
		"SELECT a, b FROM main.sales.orders WHERE x = :id AND y::int > 2 -- c\n",
		"SELECT 'it''s', \"q\"\"d\", `b``t` /* multi\nline */ FROM t",
		"SELECT 1.5e3, café FROM ü",
	} {
		toks, err := lexSQL(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := joinToks(toks); got != s {
			t.Fatalf("round trip\n got %q\nwant %q", got, s)
		}
	}
	for _, bad := range []string{"SELECT 'open", "SELECT /* open", "SELECT `open"} {
		if _, err := lexSQL(bad); err == nil {
			t.Fatalf("%q: no error", bad)
		}
	}
}

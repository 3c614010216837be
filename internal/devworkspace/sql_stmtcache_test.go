package devworkspace

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const lookupOrderCall = "SELECT main.tools.lookup_order(:order_id) AS result"

func lookupOrderParams(id string) []StatementParam {
	return []StatementParam{{Name: "order_id", Value: &id, Type: "STRING"}}
}

// cachedPlan compiles stmt as a function tool does: once, its statement
// kept prepared per connection.
func cachedPlan(t testing.TB, ws *Workspace, stmt string) *compiled {
	t.Helper()
	c, err := ws.compile(stmt, queryOptions{Catalog: "main"})
	if err != nil {
		t.Fatal(err)
	}
	c.cached = true
	return c
}

// A cached statement is prepared under its plan's read-only authorizer, and
// another statement's authorizer on the same connection expires it; the
// next run must put its own back before SQLite prepares it again, or the
// lookup is refused (the other statement reads only products).
func TestCachedPlanRunsUnderItsOwnAuthorizer(t *testing.T) {
	ws, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.db.db.SetMaxOpenConns(2) // keep and one more: every run shares a connection
	alice := ws.principal("alice@example.com")
	ctx := context.Background()
	lookup := cachedPlan(t, ws, lookupOrderCall)
	for i := range 3 {
		rs, err := ws.runCompiled(ctx, alice, lookup, lookupOrderParams("ORD-100042"))
		if err != nil {
			t.Fatalf("run %d: lookup_order: %v", i, err)
		}
		if len(rs.Rows) != 1 || !strings.HasPrefix(fmt.Sprint(rs.Rows[0][0]), "Order ORD-100042 placed on ") || rs.Columns[0].Name != "result" {
			t.Fatalf("run %d: lookup_order %+v", i, rs)
		}
		rs, err = ws.query(ctx, alice, "SELECT count(*) AS n FROM main.sales.products", nil)
		if err != nil || len(rs.Rows) != 1 || rs.Rows[0][0] != int64(40) {
			t.Fatalf("run %d: products: %v %+v", i, err, rs)
		}
	}
	// Rights are still checked per run of a cached plan.
	if _, err := ws.runCompiled(ctx, ws.principal("carol@example.com"), lookup, lookupOrderParams("ORD-100042")); err == nil {
		t.Fatal("carol ran lookup_order through the cached plan")
	}
}

// Unbound markers are reported in statement order, from the markers the
// plan found once at compile time.
func TestCachedPlanParams(t *testing.T) {
	ws, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := cachedPlan(t, ws, "SELECT :b AS b, :a AS a, :b AS b2")
	if got := strings.Join(c.params, ","); got != "b,a" {
		t.Fatalf("params %q", got)
	}
	_, err = ws.run(context.Background(), c, nil)
	if err == nil || !strings.Contains(err.Error(), "UNBOUND_SQL_PARAMETER") || !strings.Contains(err.Error(), ":b") {
		t.Fatalf("unbound: %v", err)
	}
	x := "1"
	rs, err := ws.runCompiled(context.Background(), ws.principal("alice@example.com"), c,
		[]StatementParam{{Name: "a", Value: &x, Type: "INT"}, {Name: "b", Value: &x}, {Name: "unused", Value: &x}})
	if err != nil || len(rs.Rows) != 1 || rs.Rows[0][1] != int64(1) || rs.Rows[0][0] != "1" {
		t.Fatalf("bound: %v %+v", err, rs)
	}
}

// lookup_order filters orders by order_id and joins customers and products
// on their ids: with the key columns indexed, SQLite searches instead of
// scanning 12,000 orders and building automatic indexes on every call.
func TestLookupOrderUsesIndexes(t *testing.T) {
	ws, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c, err := ws.compile(lookupOrderCall, queryOptions{Catalog: "main"})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ws.db.db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+c.sql, mustBind(t, lookupOrderParams("ORD-100042"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "\n")
	if strings.Contains(all, "SCAN o") || strings.Contains(all, "AUTOMATIC") || strings.Count(all, "USING INDEX") != 3 {
		t.Fatalf("lookup_order plan:\n%s", all)
	}
}

func mustBind(t testing.TB, params []StatementParam) []any {
	t.Helper()
	args, err := bindParams(params)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

// Closing the workspace finalizes the cached statements: a connection
// closed with live statements would keep the in-memory database behind it.
func TestCachedStatementsClosedWithWorkspace(t *testing.T) {
	ws, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := cachedPlan(t, ws, lookupOrderCall)
	if _, err := ws.runCompiled(context.Background(), ws.principal("alice@example.com"), c, lookupOrderParams("100042")); err != nil {
		t.Fatal(err)
	}
	ws.db.stmts.mu.Lock()
	n := len(ws.db.stmts.conns)
	ws.db.stmts.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections with cached statements, want 1", n)
	}
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(ws.db.stmts.conns); n != 0 {
		t.Fatalf("%d connections still hold cached statements after Close", n)
	}
}

func TestRegexpCacheBounded(t *testing.T) {
	c := &reCache{m: map[string]*regexp.Regexp{}}
	for i := range maxCachedRegexps + 10 {
		re, err := c.compile(fmt.Sprintf("x(%d)", i))
		if err != nil || re.FindStringSubmatch(fmt.Sprintf("ax%d", i))[1] != fmt.Sprint(i) {
			t.Fatalf("pattern %d: %v", i, err)
		}
		if len(c.m) > maxCachedRegexps {
			t.Fatalf("%d cached patterns, bound %d", len(c.m), maxCachedRegexps)
		}
	}
	if _, err := c.compile("("); err == nil {
		t.Fatal("bad pattern compiled")
	}
}

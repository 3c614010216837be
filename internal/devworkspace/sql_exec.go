package devworkspace

// Execution: privilege checks, then the compiled statement run in SQLite.

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// checkAccess enforces SELECT on every table and EXECUTE on every function a
// compiled statement references directly.
func (ws *Workspace) checkAccess(p *Principal, c *compiled) error {
	for _, t := range c.tables {
		if err := ws.acl.checkUC(p, PrivSelect, "table", t); err != nil {
			return err
		}
	}
	for _, f := range c.functions {
		if err := ws.acl.checkUC(p, PrivExecute, "function", f); err != nil {
			return err
		}
	}
	return nil
}

// query runs a read-only statement on the embedded database as p. It
// returns a *PermissionError when p lacks SELECT/EXECUTE on something the
// statement references, an *SQLError when the statement is invalid or
// fails, and a bad-request error for malformed parameters.
func (ws *Workspace) query(ctx context.Context, p *Principal, stmt string, params []StatementParam) (*ResultSet, error) {
	return ws.queryWith(ctx, p, stmt, params, queryOptions{Catalog: "main"})
}

func (ws *Workspace) queryWith(ctx context.Context, p *Principal, stmt string, params []StatementParam, o queryOptions) (*ResultSet, error) {
	stmt, err := expandIdentifier(stmt, params)
	if err != nil {
		return nil, err
	}
	c, err := ws.compile(stmt, o)
	if err != nil {
		return nil, err
	}
	return ws.runCompiled(ctx, p, c, params)
}

// runCompiled runs a compiled statement as p: the privilege checks, then
// the statement with params bound. A caller that runs one statement often
// (a UC function's MCP tool) compiles it once and calls this per run.
func (ws *Workspace) runCompiled(ctx context.Context, p *Principal, c *compiled, params []StatementParam) (*ResultSet, error) {
	if err := ws.checkAccess(p, c); err != nil {
		return nil, err
	}
	args, err := bindParams(params)
	if err != nil {
		return nil, err
	}
	return ws.run(ctx, c, args)
}

func (ws *Workspace) run(ctx context.Context, c *compiled, args []any) (*ResultSet, error) {
	conn, err := ws.db.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	bound, err := usedArgs(c.params, args)
	if err != nil {
		return nil, err
	}
	var rs *ResultSet
	if c.cached {
		names, types, rows, err := ws.db.queryCached(ctx, conn, c, bound)
		if err != nil {
			return nil, sqliteError(ctx, err)
		}
		rs = &ResultSet{Columns: make([]Column, len(names)), Rows: rows}
		for i := range names {
			rs.Columns[i] = Column{Name: names[i], TypeName: typeName(types[i])}
		}
	} else if rs, err = ws.query1(ctx, conn, c, bound); err != nil {
		return nil, err
	}
	// Expressions have no declared type: infer it from the first value.
	for i := range rs.Columns {
		if rs.Columns[i].TypeName != "" {
			continue
		}
		rs.Columns[i].TypeName = "STRING"
		for _, row := range rs.Rows {
			if row[i] == nil {
				continue
			}
			switch row[i].(type) {
			case int64:
				rs.Columns[i].TypeName = "LONG"
			case float64:
				rs.Columns[i].TypeName = "DOUBLE"
			case bool:
				rs.Columns[i].TypeName = "BOOLEAN"
			case time.Time:
				rs.Columns[i].TypeName = "TIMESTAMP"
			case []byte:
				rs.Columns[i].TypeName = "BINARY"
			}
			break
		}
	}
	return rs, nil
}

// query1 runs c through database/sql, prepared for this run only, under
// c's read-only authorizer.
func (ws *Workspace) query1(ctx context.Context, conn *sql.Conn, c *compiled, bound []any) (*ResultSet, error) {
	if err := ws.db.setAuthorizer(conn, readOnlyAuthorizer(c.reads)); err != nil {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, c.sql, bound...)
	if err != nil {
		return nil, sqliteError(ctx, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, sqliteError(ctx, err)
	}
	rs := &ResultSet{Columns: make([]Column, len(cts))}
	for i, ct := range cts {
		rs.Columns[i] = Column{Name: ct.Name(), TypeName: typeName(ct.DatabaseTypeName())}
	}
	for rows.Next() {
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, sqliteError(ctx, err)
		}
		rs.Rows = append(rs.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteError(ctx, err)
	}
	return rs, nil
}

// usedArgs drops named arguments the statement does not mention (its
// markers are params), so extra statement parameters are ignored the way
// Databricks ignores them, and reports a marker without a parameter
// (Databricks' UNBOUND_SQL_PARAMETER).
func usedArgs(params []string, args []any) ([]any, error) {
	given := make(map[string]bool, len(args))
	for _, a := range args {
		if na, ok := a.(sql.NamedArg); ok {
			given[na.Name] = true
		}
	}
	for _, name := range params {
		if !given[name] {
			return nil, &SQLError{Code: codeBadRequest, Message: fmt.Sprintf("[UNBOUND_SQL_PARAMETER] no value for parameter :%s", name)}
		}
	}
	out := args[:0:0]
	for _, a := range args {
		if na, ok := a.(sql.NamedArg); ok && slices.Contains(params, na.Name) {
			out = append(out, a)
		}
	}
	return out, nil
}

var sqliteCodeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(` \(\d+\)$`) })

// sqliteError turns a driver error into an *SQLError without SQLite's
// internal table naming leaking more than the message.
func sqliteError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := sqliteCodeRE().ReplaceAllString(err.Error(), "")
	msg = strings.TrimPrefix(msg, "SQL logic error: ")
	if strings.Contains(msg, "not authorized") || strings.Contains(msg, "authorization denied") {
		msg = "[INSUFFICIENT_PERMISSIONS] the statement reads something it may not: " + msg
	}
	return &SQLError{Code: codeBadRequest, Message: msg}
}

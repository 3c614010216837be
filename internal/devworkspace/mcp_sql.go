package devworkspace

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The UC functions and Databricks SQL managed MCP servers: both run SQL on
// the embedded engine as the caller.

// buildFunctionsMCP serves one tool per UC function of catalog.schema,
// named catalog__schema__function, with an input schema built from the
// function's parameters.
func (ws *Workspace) buildFunctionsMCP(r *http.Request) (*server.MCPServer, error) {
	schema := strings.ToLower(r.PathValue("catalog") + "." + r.PathValue("schema"))
	only := strings.ToLower(r.PathValue("name"))
	s := newMCPServer("databricks-functions-" + schema)
	var fns []FunctionConfig
	for _, f := range ws.cfg.Functions {
		full := strings.ToLower(f.FullName)
		if strings.HasPrefix(full, schema+".") && (only == "" || full == schema+"."+only) {
			fns = append(fns, f)
		}
	}
	if len(fns) == 0 && only != "" {
		return nil, &NotFoundError{Kind: "function", Name: schema + "." + only}
	}
	if len(fns) == 0 {
		return nil, &NotFoundError{Kind: "schema with functions", Name: schema}
	}
	for _, f := range fns {
		props := map[string]any{}
		required := []string{}
		for _, p := range f.Parameters {
			prop := map[string]any{"type": jsonSchemaType(p.Type)}
			if p.Comment != "" {
				prop["description"] = p.Comment
			}
			props[p.Name] = prop
			required = append(required, p.Name)
		}
		schemaJSON, _ := json.Marshal(map[string]any{"type": "object", "properties": props, "required": required})
		desc := f.Comment
		if desc == "" {
			desc = "Unity Catalog function " + f.FullName
		}
		s.AddTool(mcp.NewToolWithRawSchema(strings.ReplaceAll(f.FullName, ".", "__"), desc, schemaJSON), ws.functionTool(f))
	}
	return s, nil
}

// jsonSchemaType maps a Databricks type to a JSON Schema type.
func jsonSchemaType(dbType string) string {
	switch sqliteDecl(dbType) {
	case "BIGINT", "INT":
		return "integer"
	case "DOUBLE":
		return "number"
	case "BOOLEAN":
		return "boolean"
	}
	return "string"
}

// functionTool runs f as the caller. The statement that calls f is the same
// on every call, so it is compiled once (the catalog is fixed once the
// workspace has started) and only the caller's EXECUTE right and the
// arguments are checked per call: lexing and rewriting the inlined body
// cost more than the rest of a cheap function's call.
func (ws *Workspace) functionTool(f FunctionConfig) server.ToolHandlerFunc {
	marks := make([]string, len(f.Parameters))
	for i, fp := range f.Parameters {
		marks[i] = ":" + fp.Name
	}
	call := f.FullName + "(" + strings.Join(marks, ", ") + ")"
	stmt := "SELECT " + call + " AS result"
	table := strings.EqualFold(f.Returns, "TABLE")
	if table {
		stmt = "SELECT * FROM " + call
	}
	var plan atomic.Pointer[compiled] // set on the first successful compile
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, err := mcpCaller(ctx)
		if err != nil {
			return nil, err
		}
		args := req.GetArguments()
		params := make([]StatementParam, 0, len(f.Parameters))
		for _, fp := range f.Parameters {
			v, ok := args[fp.Name]
			if !ok || v == nil {
				return toolErr(badRequest("missing argument %q", fp.Name)), nil
			}
			s, err := paramString(v)
			if err != nil {
				return toolErr(badRequest("argument %q: %v", fp.Name, err)), nil
			}
			params = append(params, StatementParam{Name: fp.Name, Value: &s, Type: strings.ToUpper(fp.Type)})
		}
		c := plan.Load()
		if c == nil {
			if c, err = ws.compile(stmt, queryOptions{Catalog: "main"}); err != nil {
				return toolErr(err), nil
			}
			c.cached = true // and prepared once per connection
			if !plan.CompareAndSwap(nil, c) {
				c = plan.Load() // one plan per tool, so one statement per connection
			}
		}
		rs, err := ws.runCompiled(ctx, p, c, params)
		if err != nil {
			return toolErr(err), nil
		}
		if !table && len(rs.Rows) == 1 && len(rs.Rows[0]) == 1 {
			return mcp.NewToolResultText(cellText(rs.Rows[0][0])), nil
		}
		return jsonResult(resultObjects(rs)), nil
	}
}

// paramString renders a JSON argument as a statement parameter value.
func paramString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("want a string, number or boolean")
}

func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

// resultObjects renders a result set as a list of column→value objects.
func resultObjects(rs *ResultSet) []map[string]any {
	out := make([]map[string]any, len(rs.Rows))
	for i, row := range rs.Rows {
		m := make(map[string]any, len(row))
		for j, c := range rs.Columns {
			switch x := row[j].(type) {
			case []byte:
				m[c.Name] = string(x)
			case time.Time:
				m[c.Name] = x.UTC().Format(time.RFC3339)
			default:
				m[c.Name] = x
			}
		}
		out[i] = m
	}
	return out
}

// maxSQLToolRows caps the rows a SQL tool returns to the model.
const maxSQLToolRows = 100

// buildSQLMCP serves execute_sql and execute_sql_read_only. The embedded
// engine only runs queries, so execute_sql refuses writes with a clear
// error, and the read-only tool refuses anything but a query up front.
func (ws *Workspace) buildSQLMCP(*http.Request) (*server.MCPServer, error) {
	s := newMCPServer("databricks-sql")
	for _, t := range []struct{ name, desc string }{
		{"execute_sql", "Runs a SQL statement on a Databricks SQL warehouse as the caller and returns the rows as JSON. Three-part names (catalog.schema.table) work."},
		{"execute_sql_read_only", "Runs a read-only SQL query (SELECT, WITH, SHOW, DESCRIBE) as the caller and returns the rows as JSON."},
	} {
		readOnly := t.name == "execute_sql_read_only"
		s.AddTool(mcp.NewTool(t.name, mcp.WithDescription(t.desc),
			mcp.WithString("query", mcp.Required(), mcp.Description("The SQL statement."))),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				p, err := mcpCaller(ctx)
				if err != nil {
					return nil, err
				}
				q, err := req.RequireString("query")
				if err != nil || strings.TrimSpace(q) == "" {
					return toolErr(badRequest("query is required")), nil
				}
				if readOnly && !isReadOnlySQL(q) {
					return toolErr(badRequest("execute_sql_read_only runs only queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN)")), nil
				}
				if err := ws.checkWarehouseForSQL(p); err != nil {
					return toolErr(err), nil
				}
				rs, err := ws.query(ctx, p, q, nil)
				if err != nil {
					return toolErr(err), nil
				}
				cols := make([]string, len(rs.Columns))
				for i, c := range rs.Columns {
					cols[i] = c.Name
				}
				rows := resultObjects(rs)
				truncated := len(rows) > maxSQLToolRows
				if truncated {
					rows = rows[:maxSQLToolRows]
				}
				return jsonResult(map[string]any{"columns": cols, "rows": rows, "row_count": len(rs.Rows), "truncated": truncated}), nil
			})
	}
	return s, nil
}

// checkWarehouseForSQL requires CAN_USE on some configured warehouse: the
// managed SQL server runs statements on a warehouse the caller may use.
func (ws *Workspace) checkWarehouseForSQL(p *Principal) error {
	ids := make([]string, 0, len(ws.cfg.Warehouses))
	for _, w := range ws.cfg.Warehouses {
		ids = append(ids, w.ID)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if ws.checkPermission(p, "warehouses", id, "CAN_USE") == nil {
			return nil
		}
	}
	if len(ids) == 0 {
		return &NotFoundError{Kind: "warehouse", Name: "(none configured)"}
	}
	return &PermissionError{Principal: p.Name, Privilege: "CAN_USE", SecurableType: "warehouses", FullName: ids[0]}
}

func isReadOnlySQL(q string) bool {
	f := strings.Fields(strings.TrimLeft(q, "( \t\n"))
	if len(f) == 0 {
		return false
	}
	switch strings.ToUpper(f[0]) {
	case "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES":
		return true
	}
	return false
}

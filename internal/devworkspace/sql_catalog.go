package devworkspace

// The Unity Catalog objects of the dev workspace (tables and functions)
// and how they are loaded into SQLite.

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// ucTable is a table registered in the catalog.
type ucTable struct {
	FullName string
	Comment  string
	Columns  []ColumnConfig
	Created  time.Time
}

// ucFunction is a SQL-bodied UC function.
type ucFunction struct {
	cfg     FunctionConfig
	body    []sqlTok
	isTable bool
}

// ucCatalog indexes the securables the workspace knows (lower-case keys).
type ucCatalog struct {
	mu          sync.RWMutex
	tables      map[string]*ucTable
	functions   map[string]*ucFunction
	connections map[string]*ConnectionConfig
	others      map[securable]bool // e.g. vector indexes registered by the APIs
}

func newUCCatalog() *ucCatalog {
	return &ucCatalog{tables: map[string]*ucTable{}, functions: map[string]*ucFunction{},
		connections: map[string]*ConnectionConfig{}, others: map[securable]bool{}}
}

func (c *ucCatalog) table(name string) *ucTable {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tables[strings.ToLower(name)]
}

func (c *ucCatalog) function(name string) *ucFunction {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.functions[strings.ToLower(name)]
}

// register records a securable of another kind (for example a vector
// index as "table") so requireUC finds it.
func (c *ucCatalog) register(typ, fullName string) {
	c.mu.Lock()
	c.others[securable{strings.ToLower(typ), strings.ToLower(fullName)}] = true
	c.mu.Unlock()
}

// exists reports whether a securable exists; catalogs and schemas exist when
// anything lives in them.
func (c *ucCatalog) exists(typ, fullName string) bool {
	typ, fullName = strings.ToLower(typ), strings.ToLower(fullName)
	c.mu.RLock()
	defer c.mu.RUnlock()
	switch typ {
	case "table":
		if c.tables[fullName] != nil {
			return true
		}
	case "function":
		if c.functions[fullName] != nil {
			return true
		}
	case "connection":
		if c.connections[fullName] != nil {
			return true
		}
	case "catalog", "schema":
		prefix := fullName + "."
		for n := range c.tables {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		}
		for n := range c.functions {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		}
		for s := range c.others {
			if strings.HasPrefix(s.name, prefix) || s == (securable{typ, fullName}) {
				return true
			}
		}
		return false
	}
	return c.others[securable{typ, fullName}]
}

func (c *ucCatalog) knownCatalog(name string) bool { return c.exists("catalog", name) }

// ---- types ----

// sqliteDecl maps a Databricks type to the SQLite declared type used for
// storage; the declared type is what result columns report back.
func sqliteDecl(dbType string) string {
	t := strings.ToUpper(strings.TrimSpace(dbType))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = t[:i]
	}
	switch t {
	case "BIGINT", "LONG":
		return "BIGINT"
	case "INT", "INTEGER", "SMALLINT", "TINYINT", "SHORT", "BYTE":
		return "INT"
	case "DOUBLE", "FLOAT", "REAL", "DECIMAL":
		return "DOUBLE"
	case "BOOLEAN":
		return "BOOLEAN"
	case "DATE":
		return "DATE"
	case "TIMESTAMP", "TIMESTAMP_NTZ":
		return "TIMESTAMP"
	}
	return "TEXT"
}

// typeName maps a SQLite declared type to a Databricks type_name.
func typeName(decl string) string {
	switch strings.ToUpper(decl) {
	case "BIGINT":
		return "LONG"
	case "INT", "INTEGER":
		return "INT"
	case "DOUBLE", "REAL", "FLOAT":
		return "DOUBLE"
	case "BOOLEAN":
		return "BOOLEAN"
	case "DATE":
		return "DATE"
	case "TIMESTAMP", "DATETIME":
		return "TIMESTAMP"
	case "TEXT":
		return "STRING"
	}
	return ""
}

// typeText is the lower-case SQL spelling (type_text) of a type_name.
func typeText(name string) string {
	switch name {
	case "LONG":
		return "bigint"
	}
	return strings.ToLower(name)
}

// ---- loading ----

// loadTable creates a catalog table (catalog.schema.table) and inserts rows;
// columns carry Databricks types (string, bigint, int, double, date,
// timestamp, boolean). The APIs engineer's data (main.docs.product_docs)
// comes in through here.
func (ws *Workspace) loadTable(ctx context.Context, fullName, comment string, columns []ColumnConfig, rows [][]any) error {
	if len(strings.Split(fullName, ".")) != 3 {
		return fmt.Errorf("devworkspace: table %q: want catalog.schema.table", fullName)
	}
	if len(columns) == 0 {
		return fmt.Errorf("devworkspace: table %s has no columns", fullName)
	}
	key := strings.ToLower(fullName)
	if ws.catalog.table(key) != nil {
		return fmt.Errorf("devworkspace: table %s already exists", fullName)
	}
	defs := make([]string, len(columns))
	marks := make([]string, len(columns))
	for i, c := range columns {
		defs[i] = quoteIdent(c.Name) + " " + sqliteDecl(c.Type)
		marks[i] = "?"
	}
	conn, err := ws.db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ws.db.setAuthorizer(conn, func(sqlite.AuthorizerActionCode, string, string, string, string) sqlite.AuthorizerReturnCode {
		return sqlite.AuthorizerOK
	}); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "CREATE TABLE "+quoteIdent(key)+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return fmt.Errorf("devworkspace: create %s: %w", fullName, err)
	}
	// Multi-row INSERTs through one prepared statement per batch size: far
	// fewer statement executions than one per row.
	rowMarks := "(" + strings.Join(marks, ", ") + ")"
	batch := max(1, 900/len(columns)) // stay under SQLite's bound-variable limit
	prepared := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range prepared {
			st.Close()
		}
	}()
	args := make([]any, 0, batch*len(columns))
	for start := 0; start < len(rows); start += batch {
		end := min(start+batch, len(rows))
		args = args[:0]
		for i, row := range rows[start:end] {
			if len(row) != len(columns) {
				return fmt.Errorf("devworkspace: %s row %d has %d values, want %d", fullName, start+i, len(row), len(columns))
			}
			args = append(args, row...)
		}
		n := end - start
		st := prepared[n]
		if st == nil {
			q := "INSERT INTO " + quoteIdent(key) + " VALUES " + strings.Repeat(rowMarks+", ", n-1) + rowMarks
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("devworkspace: insert into %s: %w", fullName, err)
			}
			prepared[n] = st
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("devworkspace: insert into %s: %w", fullName, err)
		}
	}
	// A first column named *_id is the table's key (order_id, customer_id):
	// index it, as lookups and joins on it are what the sample functions do.
	// Without it every call scans the table and SQLite builds throwaway
	// automatic indexes for the joins, which made a UC function's MCP call
	// cost several times its HTTP round trip.
	if first := strings.ToLower(columns[0].Name); strings.HasSuffix(first, "_id") {
		if _, err := tx.ExecContext(ctx, "CREATE INDEX "+quoteIdent(key+"#"+first)+" ON "+quoteIdent(key)+" ("+quoteIdent(columns[0].Name)+")"); err != nil {
			return fmt.Errorf("devworkspace: index %s: %w", fullName, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	ws.catalog.mu.Lock()
	ws.catalog.tables[key] = &ucTable{FullName: fullName, Comment: comment, Columns: columns, Created: ws.built}
	ws.catalog.mu.Unlock()
	return nil
}

// loadDefinitions registers the configured functions and connections and
// checks the configured tables, without loading any rows: the part of the
// catalog that is cheap, and whose mistakes must fail start-up rather than
// the background load.
func (ws *Workspace) loadDefinitions() error {
	seen := map[string]bool{}
	for _, t := range ws.cfg.Tables {
		key := strings.ToLower(t.FullName)
		switch {
		case seen[key]:
			return fmt.Errorf("devworkspace: table %s already exists", t.FullName)
		case len(t.Columns) == 0:
			return fmt.Errorf("devworkspace: table %s has no columns", t.FullName)
		case t.Generator != "" && !slices.Contains(sampleGenerators, t.Generator):
			return fmt.Errorf("devworkspace: table %s: unknown generator %q (want %s)", t.FullName, t.Generator, strings.Join(sampleGenerators, ", "))
		case t.Generator != "":
			if err := checkSampleData(ws.cfg.SampleData); err != nil {
				return fmt.Errorf("devworkspace: table %s: %w", t.FullName, err)
			}
		}
		seen[key] = true
		for i, row := range t.Rows {
			if t.Generator == "" && len(row) != len(t.Columns) {
				return fmt.Errorf("devworkspace: %s row %d has %d values, want %d", t.FullName, i, len(row), len(t.Columns))
			}
		}
	}
	for _, f := range ws.cfg.Functions {
		body, err := lexSQL(f.Definition)
		if err != nil {
			return fmt.Errorf("devworkspace: function %s: %w", f.FullName, err)
		}
		for _, t := range body {
			if t.kind == tkParam && !hasParam(f.Parameters, t.text[1:]) {
				return fmt.Errorf("devworkspace: function %s: definition uses undeclared parameter %s", f.FullName, t.text)
			}
		}
		ws.catalog.functions[strings.ToLower(f.FullName)] = &ucFunction{cfg: f, body: body, isTable: strings.EqualFold(f.Returns, "TABLE")}
	}
	for i := range ws.cfg.Connections {
		c := &ws.cfg.Connections[i]
		ws.catalog.connections[strings.ToLower(c.Name)] = c
	}
	return nil
}

// loadTables creates the configured tables and fills them (the generated
// sample data: customers, products and 12,000 orders).
func (ws *Workspace) loadTables(ctx context.Context) error {
	for _, t := range ws.cfg.Tables {
		rows := t.Rows
		if t.Generator != "" {
			gen, err := sampleRows(ws.cfg.SampleData, t.Generator)
			if err != nil {
				return fmt.Errorf("devworkspace: table %s: %w", t.FullName, err)
			}
			rows = gen
		}
		if err := ws.loadTable(ctx, t.FullName, t.Comment, t.Columns, rows); err != nil {
			return err
		}
	}
	return nil
}

func hasParam(ps []ColumnConfig, name string) bool {
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return true
		}
	}
	return false
}

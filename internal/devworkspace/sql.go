package devworkspace

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// sqlDB is the embedded database: one in-memory SQLite database per
// workspace, shared by a small connection pool. Catalog tables are SQLite
// tables named by their full name ("main.sales.orders").
type sqlDB struct {
	db   *sql.DB
	keep *sql.Conn // holds the in-memory database open
}

// sqliteDriver is private to this package so its functions and hooks never
// reach other users of modernc.org/sqlite in the process.
var sqliteDriver = newSQLiteDriver()

func newSQLiteDriver() *sqlite.Driver {
	d := &sqlite.Driver{}
	// Databricks SQL functions the sample SQL uses that SQLite lacks.
	d.MustRegisterDeterministicScalarFunction("regexp_extract", -1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if len(args) < 2 || len(args) > 3 {
			return nil, errors.New("regexp_extract(str, regexp[, idx]) takes 2 or 3 arguments")
		}
		if args[0] == nil || args[1] == nil {
			return nil, nil
		}
		re, err := regexp.Compile(fmt.Sprint(args[1]))
		if err != nil {
			return nil, err
		}
		idx := int64(1)
		if len(args) == 3 {
			if v, ok := args[2].(int64); ok {
				idx = v
			}
		}
		m := re.FindStringSubmatch(fmt.Sprint(args[0]))
		if m == nil || idx < 0 || int(idx) >= len(m) {
			return "", nil
		}
		return m[idx], nil
	})
	datePart := func(layout string) func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		return func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			if len(args) != 1 || args[0] == nil {
				return nil, nil
			}
			t, err := toTime(args[0])
			if err != nil {
				return nil, err
			}
			switch layout {
			case "year":
				return int64(t.Year()), nil
			case "month":
				return int64(t.Month()), nil
			case "quarter":
				return int64((t.Month()-1)/3 + 1), nil
			}
			return int64(t.Day()), nil
		}
	}
	for _, n := range []string{"year", "month", "quarter", "day"} {
		d.MustRegisterDeterministicScalarFunction(n, 1, datePart(n))
	}
	d.MustRegisterDeterministicScalarFunction("date_trunc", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if args[0] == nil || args[1] == nil {
			return nil, nil
		}
		t, err := toTime(args[1])
		if err != nil {
			return nil, err
		}
		switch strings.ToUpper(fmt.Sprint(args[0])) {
		case "YEAR", "YYYY", "YY":
			t = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		case "QUARTER":
			t = time.Date(t.Year(), (t.Month()-1)/3*3+1, 1, 0, 0, 0, 0, time.UTC)
		case "MONTH", "MM", "MON":
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		case "WEEK":
			t = time.Date(t.Year(), t.Month(), t.Day()-(int(t.Weekday())+6)%7, 0, 0, 0, 0, time.UTC)
		case "DAY", "DD":
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		default:
			return nil, fmt.Errorf("date_trunc: unsupported unit %v", args[0])
		}
		return t.Format("2006-01-02"), nil
	})
	return d
}

func toTime(v driver.Value) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case string:
		for _, l := range []string{"2006-01-02", time.RFC3339Nano, "2006-01-02 15:04:05"} {
			if t, err := time.Parse(l, x); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("not a date: %v", v)
}

type sqliteConnector struct{ dsn string }

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	return sqliteDriver.Open(c.dsn)
}
func (c sqliteConnector) Driver() driver.Driver { return sqliteDriver }

func openSQLDB(ctx context.Context) (*sqlDB, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	dsn := "file:devws-" + hex.EncodeToString(b[:]) + "?mode=memory&cache=shared"
	db := sql.OpenDB(sqliteConnector{dsn: dsn})
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	keep, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("devworkspace: open database: %w", err)
	}
	return &sqlDB{db: db, keep: keep}, nil
}

func (d *sqlDB) Close() error { return errors.Join(d.keep.Close(), d.db.Close()) }

// setAuthorizer installs fn on the physical connection behind c.
func setAuthorizer(c *sql.Conn, fn sqlite.AuthorizerFn) error {
	return c.Raw(func(dc any) error {
		ar, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("sqlite driver has no authorizer")
		}
		return ar.RegisterAuthorizer(fn)
	})
}

// readOnlyAuthorizer lets a statement read exactly the tables in allowed
// (physical names) and nothing else: no writes, pragmas, attaches or
// SQLite internals. It backs up the privilege checks done on the parsed
// statement.
func readOnlyAuthorizer(allowed map[string]bool) sqlite.AuthorizerFn {
	return func(action sqlite.AuthorizerActionCode, arg1, _, _, _ string) sqlite.AuthorizerReturnCode {
		switch action {
		case sqlite.AuthSelect, sqlite.AuthFunction, sqlite.AuthRecursive:
			return sqlite.AuthorizerOK
		case sqlite.AuthRead:
			if allowed[arg1] {
				return sqlite.AuthorizerOK
			}
		}
		return sqlite.AuthorizerDeny
	}
}

// ---- catalog of tables and functions ----

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
	if err := setAuthorizer(conn, func(sqlite.AuthorizerActionCode, string, string, string, string) sqlite.AuthorizerReturnCode {
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
	if err := tx.Commit(); err != nil {
		return err
	}
	ws.catalog.mu.Lock()
	ws.catalog.tables[key] = &ucTable{FullName: fullName, Comment: comment, Columns: columns, Created: ws.now()}
	ws.catalog.mu.Unlock()
	return nil
}

// loadCatalog creates the configured tables, functions and connections.
func (ws *Workspace) loadCatalog(ctx context.Context) error {
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

func hasParam(ps []ColumnConfig, name string) bool {
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return true
		}
	}
	return false
}

// ---- query ----

// StatementParam is a named statement parameter as the statement API sends
// it: Value nil means NULL; Type defaults to STRING.
type StatementParam struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
	Type  string  `json:"type,omitempty"`
}

// Column is one result column.
type Column struct {
	Name     string
	TypeName string // Databricks type_name: STRING, LONG, INT, DOUBLE, DATE, TIMESTAMP, BOOLEAN
}

// ResultSet is a query result with typed cells (int64, float64, string,
// bool, time.Time, []byte or nil).
type ResultSet struct {
	Columns []Column
	Rows    [][]any
}

// DataArray renders the rows as the statement API's JSON_ARRAY: every cell
// a string, nil for NULL.
func (rs *ResultSet) DataArray() [][]*string {
	out := make([][]*string, len(rs.Rows))
	for i, row := range rs.Rows {
		cells := make([]*string, len(row))
		for j, v := range row {
			cells[j] = formatCell(v, rs.Columns[j].TypeName)
		}
		out[i] = cells
	}
	return out
}

func formatCell(v any, typ string) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case []byte:
		s = string(x)
	case int64:
		if typ == "BOOLEAN" {
			s = strconv.FormatBool(x != 0)
		} else {
			s = strconv.FormatInt(x, 10)
		}
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case time.Time:
		if typ == "DATE" {
			s = x.UTC().Format("2006-01-02")
		} else {
			s = x.UTC().Format("2006-01-02T15:04:05.000Z")
		}
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

// queryOptions set defaults for unqualified names.
type queryOptions struct {
	Catalog, Schema string
}

// compiled is a statement rewritten for SQLite with what it references.
type compiled struct {
	sql       string
	tables    []string        // tables the caller's statement reads (SELECT needed)
	functions []string        // functions it calls (EXECUTE needed)
	reads     map[string]bool // every physical table read, function bodies included
}

const maxFunctionDepth = 8

// compile rewrites a Databricks SQL statement for SQLite: three-part (and,
// with defaults, shorter) table names become the physical tables, UC
// function calls are expanded into subqueries over their definitions.
func (ws *Workspace) compile(stmt string, o queryOptions) (*compiled, error) {
	toks, err := lexSQL(stmt)
	if err != nil {
		return nil, err
	}
	first := nextSignificant(toks, 0)
	if first == len(toks) {
		return nil, &SQLError{Code: codeBadRequest, Message: "[PARSE_SYNTAX_ERROR] empty statement"}
	}
	if kw := strings.ToUpper(toks[first].text); kw != "SELECT" && kw != "WITH" && kw != "VALUES" && kw != "(" {
		return nil, &SQLError{Code: "NOT_IMPLEMENTED", Message: fmt.Sprintf("the dev workspace runs read-only queries only (got %s)", kw)}
	}
	for i, t := range toks {
		if t.kind == tkPunct && t.text == ";" && nextSignificant(toks, i+1) != len(toks) {
			return nil, &SQLError{Code: codeBadRequest, Message: "[PARSE_SYNTAX_ERROR] only one statement per request"}
		}
	}
	c := &compiled{reads: map[string]bool{}}
	out, err := ws.rewrite(toks, o, c, 0)
	if err != nil {
		return nil, err
	}
	c.sql = out
	return c, nil
}

func (ws *Workspace) rewrite(toks []sqlTok, o queryOptions, c *compiled, depth int) (string, error) {
	var b strings.Builder
	for i := 0; i < len(toks); {
		t := toks[i]
		if !t.isIdent() {
			b.WriteString(t.text)
			i++
			continue
		}
		if prev, ok := prevSignificant(toks, i); ok && prev.kind == tkPunct && prev.text == "." {
			b.WriteString(t.text) // the tail of a name we did not rewrite
			i++
			continue
		}
		parts, next := dottedName(toks, i)
		// A quoted identifier holding a whole dotted name ("main.sales.orders").
		whole := len(parts) == 1 && t.kind == tkQIdent && strings.Count(parts[0], ".") == 2
		if whole {
			parts = strings.Split(parts[0], ".")
		}
		name, used := ws.resolveName(parts, toks, i, o)
		if name == "" {
			if len(parts) >= 3 && ws.catalog.knownCatalog(parts[0]) {
				return "", &SQLError{Code: codeBadRequest, Message: fmt.Sprintf("[TABLE_OR_VIEW_NOT_FOUND] The table or view %s cannot be found", strings.Join(parts[:3], "."))}
			}
			b.WriteString(joinToks(toks[i:next]))
			i = next
			continue
		}
		// Where the name's parts end in the token stream.
		end := i + 1
		if !whole {
			end = i + 2*used - 1
		}
		if f := ws.catalog.function(name); f != nil {
			open := nextSignificant(toks, end)
			if open >= len(toks) || !toks[open].is("(") {
				return "", &SQLError{Code: codeBadRequest, Message: fmt.Sprintf("function %s must be called with arguments", f.cfg.FullName)}
			}
			args, after, err := callArgs(toks, open)
			if err != nil {
				return "", err
			}
			if depth == 0 {
				c.functions = append(c.functions, f.cfg.FullName)
			}
			expanded, err := ws.expandFunction(f, args, o, c, depth)
			if err != nil {
				return "", err
			}
			b.WriteString(expanded)
			i = after
			continue
		}
		key := strings.ToLower(name)
		if depth == 0 {
			c.tables = append(c.tables, ws.catalog.table(key).FullName)
		}
		c.reads[key] = true
		b.WriteString(quoteIdent(key))
		i = end
	}
	return b.String(), nil
}

// resolveName maps a dotted name at toks[i] to a catalog table or function
// full name; used is how many parts of the name it consumed.
func (ws *Workspace) resolveName(parts []string, toks []sqlTok, i int, o queryOptions) (string, int) {
	known := func(n string) bool { return ws.catalog.table(n) != nil || ws.catalog.function(n) != nil }
	if len(parts) >= 3 {
		if n := strings.Join(parts[:3], "."); known(n) {
			return n, 3
		}
	}
	if len(parts) == 2 && o.Catalog != "" {
		if n := o.Catalog + "." + parts[0] + "." + parts[1]; known(n) {
			return n, 2
		}
	}
	if len(parts) == 1 && o.Catalog != "" && o.Schema != "" {
		prev, ok := prevSignificant(toks, i)
		if ok && (prev.is("FROM") || prev.is("JOIN")) {
			if n := o.Catalog + "." + o.Schema + "." + parts[0]; known(n) {
				return n, 1
			}
		}
	}
	return "", 0
}

// expandFunction inlines a UC function call as a subquery over its body,
// with each parameter replaced by the (rewritten) argument cast to the
// parameter's type.
func (ws *Workspace) expandFunction(f *ucFunction, args [][]sqlTok, o queryOptions, c *compiled, depth int) (string, error) {
	if depth >= maxFunctionDepth {
		return "", &SQLError{Code: codeBadRequest, Message: "function calls nested too deeply"}
	}
	if len(args) != len(f.cfg.Parameters) {
		return "", &SQLError{Code: codeBadRequest, Message: fmt.Sprintf("[WRONG_NUM_ARGS] %s takes %d arguments, got %d", f.cfg.FullName, len(f.cfg.Parameters), len(args))}
	}
	vals := map[string]string{}
	for k, p := range f.cfg.Parameters {
		a, err := ws.rewrite(args[k], o, c, depth)
		if err != nil {
			return "", err
		}
		vals[strings.ToLower(p.Name)] = "CAST((" + a + ") AS " + castType(p.Type) + ")"
	}
	sub := make([]sqlTok, len(f.body))
	for k, t := range f.body {
		if t.kind == tkParam {
			t = sqlTok{kind: tkSpace, text: vals[strings.ToLower(t.text[1:])]}
		}
		sub[k] = t
	}
	body, err := ws.rewrite(sub, queryOptions{}, c, depth+1)
	if err != nil {
		return "", err
	}
	return "(" + body + ")", nil
}

func castType(dbType string) string {
	switch sqliteDecl(dbType) {
	case "BIGINT", "INT", "BOOLEAN":
		return "INTEGER"
	case "DOUBLE":
		return "REAL"
	}
	return "TEXT"
}

var identRE = regexp.MustCompile("^[A-Za-z0-9_`]+(\\.[A-Za-z0-9_`]+)*$")

// expandIdentifier replaces Databricks' IDENTIFIER(:param) and
// IDENTIFIER('name') with the (validated) name, as the unitycatalog-ai
// client calls functions: SELECT IDENTIFIER(:function_name)(…).
func expandIdentifier(stmt string, params []StatementParam) (string, error) {
	if !strings.Contains(strings.ToUpper(stmt), "IDENTIFIER") {
		return stmt, nil
	}
	toks, err := lexSQL(stmt)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind == tkIdent && strings.EqualFold(t.text, "IDENTIFIER") {
			open := nextSignificant(toks, i+1)
			if open < len(toks) && toks[open].is("(") {
				arg := nextSignificant(toks, open+1)
				closing := nextSignificant(toks, arg+1)
				if arg < len(toks) && closing < len(toks) && toks[closing].is(")") {
					name, ok := "", false
					switch a := toks[arg]; a.kind {
					case tkString:
						name, ok = strings.ReplaceAll(a.text[1:len(a.text)-1], "''", "'"), true
					case tkParam:
						for _, p := range params {
							if p.Name == a.text[1:] && p.Value != nil {
								name, ok = *p.Value, true
							}
						}
					}
					if ok {
						if !identRE.MatchString(name) {
							return "", &SQLError{Code: codeBadRequest, Message: fmt.Sprintf("[INVALID_SQL_SYNTAX] IDENTIFIER: %q is not a valid identifier", name)}
						}
						b.WriteString(name)
						i = closing
						continue
					}
				}
			}
		}
		b.WriteString(t.text)
	}
	return b.String(), nil
}

// bindParams converts statement parameters to SQLite named arguments.
func bindParams(params []StatementParam) ([]any, error) {
	args := make([]any, 0, len(params))
	for _, p := range params {
		if p.Name == "" {
			return nil, badRequest("statement parameter without a name")
		}
		var v any
		if p.Value != nil {
			s := *p.Value
			switch sqliteDecl(p.Type) {
			case "BIGINT", "INT":
				n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
				if err != nil {
					return nil, badRequest("parameter %s: %q is not a valid %s", p.Name, s, p.Type)
				}
				v = n
			case "DOUBLE":
				f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil {
					return nil, badRequest("parameter %s: %q is not a valid %s", p.Name, s, p.Type)
				}
				v = f
			case "BOOLEAN":
				bv, err := strconv.ParseBool(strings.TrimSpace(s))
				if err != nil {
					return nil, badRequest("parameter %s: %q is not a valid BOOLEAN", p.Name, s)
				}
				v = bv
			default:
				v = s
			}
		}
		args = append(args, sql.Named(p.Name, v))
	}
	return args, nil
}

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
	if err := setAuthorizer(conn, readOnlyAuthorizer(c.reads)); err != nil {
		return nil, err
	}
	bound, err := usedArgs(c.sql, args)
	if err != nil {
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

// usedArgs drops named arguments the statement does not mention, so extra
// statement parameters are ignored the way Databricks ignores them, and
// reports a marker without a parameter (Databricks' UNBOUND_SQL_PARAMETER).
func usedArgs(stmt string, args []any) ([]any, error) {
	toks, err := lexSQL(stmt)
	if err != nil {
		return nil, err
	}
	given := map[string]bool{}
	for _, a := range args {
		if na, ok := a.(sql.NamedArg); ok {
			given[na.Name] = true
		}
	}
	used := map[string]bool{}
	for _, t := range toks {
		if t.kind == tkParam {
			name := t.text[1:]
			if !given[name] {
				return nil, &SQLError{Code: codeBadRequest, Message: fmt.Sprintf("[UNBOUND_SQL_PARAMETER] no value for parameter :%s", name)}
			}
			used[name] = true
		}
	}
	out := args[:0:0]
	for _, a := range args {
		if na, ok := a.(sql.NamedArg); ok && used[na.Name] {
			out = append(out, a)
		}
	}
	return out, nil
}

var sqliteCodeRE = regexp.MustCompile(` \(\d+\)$`)

// sqliteError turns a driver error into an *SQLError without SQLite's
// internal table naming leaking more than the message.
func sqliteError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := sqliteCodeRE.ReplaceAllString(err.Error(), "")
	msg = strings.TrimPrefix(msg, "SQL logic error: ")
	if strings.Contains(msg, "not authorized") || strings.Contains(msg, "authorization denied") {
		msg = "[INSUFFICIENT_PERMISSIONS] the statement reads something it may not: " + msg
	}
	return &SQLError{Code: codeBadRequest, Message: msg}
}

package devworkspace

// Planning: a Databricks SQL statement rewritten for SQLite, with the
// tables and functions it references, and its parameters bound.

import (
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

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
	params    []string        // the :name markers in sql, in order, once each
	// cached keeps the statement prepared on each connection it runs on;
	// for plans compiled once and run often (sql_stmtcache.go).
	cached bool
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
	// The markers, found once here rather than on every run of c.
	outToks, err := lexSQL(out)
	if err != nil {
		return nil, err
	}
	for _, t := range outToks {
		if t.kind == tkParam && !slices.Contains(c.params, t.text[1:]) {
			c.params = append(c.params, t.text[1:])
		}
	}
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

var identRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^[A-Za-z0-9_`]+(\\.[A-Za-z0-9_`]+)*$") })

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
						if !identRE().MatchString(name) {
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

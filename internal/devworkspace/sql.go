package devworkspace

// The embedded SQLite database behind the dev workspace's SQL: the
// connection pool, the private driver and the read-only authorizer.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// sqlDB is the embedded database: one in-memory SQLite database per
// workspace, shared by a small connection pool. Catalog tables are SQLite
// tables named by their full name ("main.sales.orders").
type sqlDB struct {
	db    *sql.DB
	keep  *sql.Conn // holds the in-memory database open
	stmts stmtCache // prepared statements of plans run often (sql_stmtcache.go)
}

// sqliteDriver is private to this package so its functions and hooks never
// reach other users of modernc.org/sqlite in the process.
var sqliteDriver = newSQLiteDriver()

// regexpCache keeps the patterns regexp_extract compiled: the function runs
// per row (or per call, when its arguments are constant), and compiling the
// pattern each time cost more than the indexed lookup it filters.
var regexpCache = &reCache{m: map[string]*regexp.Regexp{}}

type reCache struct {
	mu sync.Mutex
	m  map[string]*regexp.Regexp
}

// maxCachedRegexps bounds the cache; ad-hoc SQL can name any pattern.
const maxCachedRegexps = 256

func (c *reCache) compile(pattern string) (*regexp.Regexp, error) {
	c.mu.Lock()
	re := c.m[pattern]
	c.mu.Unlock()
	if re != nil {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedRegexps {
		clear(c.m)
	}
	c.m[pattern] = re
	c.mu.Unlock()
	return re, nil
}

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
		re, err := regexpCache.compile(fmt.Sprint(args[1]))
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

func (d *sqlDB) Close() error {
	d.closeStmts()
	return errors.Join(d.keep.Close(), d.db.Close())
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

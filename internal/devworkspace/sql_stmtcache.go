package devworkspace

// Prepared statements kept per connection for statements run again and
// again (a UC function's MCP tool): preparing the inlined function body cost
// more than running it against an indexed table.
//
// SQLite expires every prepared statement of a connection when its
// authorizer is replaced (sqlite3_set_authorizer), so a cached statement is
// only worth something if the read-only authorizer it was prepared under
// stays installed. Each connection therefore remembers which plan its
// authorizer was installed for, and a run of the same plan leaves it be.
// Any other install (setAuthorizer) forgets that, so a run always executes
// under its own plan's authorizer: an expired statement is prepared again
// by SQLite, under whatever authorizer is installed, which is then the
// plan's own.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// maxCachedStmts bounds the statements kept per connection; at the bound
// they are all closed and the cache starts over.
const maxCachedStmts = 64

// connStmts is the state kept for one physical connection. Its fields are
// used only by whoever holds the connection (inside sql.Conn.Raw).
type connStmts struct {
	authFor *compiled // the plan whose authorizer is installed, nil if another
	stmts   map[*compiled]driver.Stmt
}

// stmtCache maps physical connections (the driver's conn) to their state.
// Entries live as long as the database; the pool is small and its
// connections are not recycled.
type stmtCache struct {
	mu    sync.Mutex
	conns map[any]*connStmts
}

func (s *stmtCache) state(dc any) *connStmts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[any]*connStmts{}
	}
	cs := s.conns[dc]
	if cs == nil {
		cs = &connStmts{stmts: map[*compiled]driver.Stmt{}}
		s.conns[dc] = cs
	}
	return cs
}

// forget records that dc's authorizer is no longer any plan's; the caller
// holds dc.
func (s *stmtCache) forget(dc any) {
	s.mu.Lock()
	cs := s.conns[dc]
	s.mu.Unlock()
	if cs != nil {
		cs.authFor = nil
	}
}

// setAuthorizer installs fn on the physical connection behind c.
func (d *sqlDB) setAuthorizer(c *sql.Conn, fn sqlite.AuthorizerFn) error {
	return c.Raw(func(dc any) error {
		d.stmts.forget(dc)
		return registerAuthorizer(dc, fn)
	})
}

func registerAuthorizer(dc any, fn sqlite.AuthorizerFn) error {
	ar, ok := dc.(sqlite.AuthorizerRegisterer)
	if !ok {
		return errors.New("sqlite driver has no authorizer")
	}
	return ar.RegisterAuthorizer(fn)
}

// queryCached runs c on conn through the connection's prepared statement
// for c, preparing it on first use, and returns the columns' names and
// database types and the rows as the driver returns them (byte slices
// copied, as database/sql's Scan into *any does).
func (d *sqlDB) queryCached(ctx context.Context, conn *sql.Conn, c *compiled, args []any) (names, types []string, rows [][]any, err error) {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		if na, ok := a.(sql.NamedArg); ok {
			named[i].Name, named[i].Value = na.Name, na.Value
		}
	}
	err = conn.Raw(func(dc any) error {
		cs := d.stmts.state(dc)
		if cs.authFor != c {
			if err := registerAuthorizer(dc, readOnlyAuthorizer(c.reads)); err != nil {
				return err
			}
			cs.authFor = c
		}
		st := cs.stmts[c]
		if st == nil {
			if len(cs.stmts) >= maxCachedStmts {
				for k, s := range cs.stmts {
					s.Close()
					delete(cs.stmts, k)
				}
			}
			prep, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("sqlite driver cannot prepare with a context")
			}
			var err error
			if st, err = prep.PrepareContext(ctx, c.sql); err != nil {
				return err
			}
			cs.stmts[c] = st
		}
		q, ok := st.(driver.StmtQueryContext)
		if !ok {
			return errors.New("sqlite driver cannot query with a context")
		}
		r, err := q.QueryContext(ctx, named)
		if err != nil {
			return err
		}
		defer r.Close()
		names = r.Columns()
		types = make([]string, len(names))
		if ct, ok := r.(driver.RowsColumnTypeDatabaseTypeName); ok {
			for i := range types {
				types[i] = ct.ColumnTypeDatabaseTypeName(i)
			}
		}
		for {
			vals := make([]driver.Value, len(names))
			if err := r.Next(vals); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			row := make([]any, len(vals))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = append([]byte(nil), b...)
				}
				row[i] = v
			}
			rows = append(rows, row)
		}
	})
	return names, types, rows, err
}

// closeStmts finalizes the cached statements before the pool closes: a
// connection closed with unfinalized statements stays behind as a zombie
// that keeps the in-memory database alive. It holds every pooled
// connection but keep (which runs no statements), so none is in use while
// its statements are finalized; one still busy after a few seconds keeps
// its statements, and the database, alive.
func (d *sqlDB) closeStmts() {
	d.stmts.mu.Lock()
	n := len(d.stmts.conns)
	d.stmts.mu.Unlock()
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var held []*sql.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range d.db.Stats().MaxOpenConnections - 1 {
		c, err := d.db.Conn(ctx)
		if err != nil {
			return
		}
		held = append(held, c)
		_ = c.Raw(func(dc any) error {
			d.stmts.mu.Lock()
			cs := d.stmts.conns[dc]
			delete(d.stmts.conns, dc)
			d.stmts.mu.Unlock()
			if cs != nil {
				for _, st := range cs.stmts {
					st.Close()
				}
			}
			return nil
		})
	}
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
)

// openSQLite opens (creating it if needed) the database file at path: a
// reader pool, and a one-connection writer pool whose transactions begin
// IMMEDIATE, so writers in this process queue instead of failing with
// SQLITE_BUSY, and busy_timeout absorbs the other processes' writes.
func openSQLite(ctx context.Context, path string, opts Options) (_ *sqlStore, err error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: sqlite path %q may not contain ? or #", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	// WAL is a property of the file: the writer sets it before anything
	// else uses the database, so readers need not (and cannot race it).
	dsn := func(pragmas ...string) string { return "file:" + abs + "?" + url.Values{"_pragma": pragmas}.Encode() }
	busy := fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())
	rdsn := dsn(busy, "synchronous(NORMAL)", "foreign_keys(1)")
	wdsn := dsn(busy, "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)")
	w, err := sql.Open("sqlite", wdsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	h, release := sqliteHub(abs)
	s := &sqlStore{dialect: "sqlite", r: r, w: w, opts: opts, hub: h, poll: opts.PollInterval,
		closed: make(chan struct{}), onClose: func() error { release(); return nil }}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := connectWriter(ctx, w); err != nil {
		return nil, fmt.Errorf("store: sqlite %s: %w", abs, err)
	}
	if err := s.migrate(ctx, opts.NoMigrate); err != nil {
		return nil, err
	}
	return s, nil
}

// sqliteBusy is SQLite's primary result code SQLITE_BUSY.
const sqliteBusy = 5

// busyTimeout is how long a connection waits for another's lock.
const busyTimeout = 10 * time.Second

// connectWriter opens the writer's connection, which switches a new file
// to WAL. That switch needs the file to itself and SQLite does not wait
// for it with busy_timeout: replicas opening a new database at once get
// SQLITE_BUSY from all but one, so a busy connect is retried (for as long
// as busy_timeout would have waited) until the file is in WAL mode.
func connectWriter(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := w.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqliteBusy || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Handles on one SQLite file in one process share a hub, so a write
// through one wakes waits on the others at once; other processes are
// noticed by polling.
var sqliteHubs = struct {
	sync.Mutex
	m map[string]*sharedHub
}{m: map[string]*sharedHub{}}

type sharedHub struct {
	h    *hub
	refs int
}

func sqliteHub(path string) (*hub, func()) {
	sqliteHubs.Lock()
	defer sqliteHubs.Unlock()
	sh := sqliteHubs.m[path]
	if sh == nil {
		sh = &sharedHub{h: newHub()}
		sqliteHubs.m[path] = sh
	}
	sh.refs++
	var once sync.Once
	return sh.h, func() {
		once.Do(func() {
			sqliteHubs.Lock()
			defer sqliteHubs.Unlock()
			if sh.refs--; sh.refs == 0 {
				delete(sqliteHubs.m, path)
			}
		})
	}
}

package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// notifyChannel is where the schema's trigger announces changed responses.
const notifyChannel = "agentrt_store"

// openPostgres connects a pool to the database at url, migrates it, and
// starts a listener: one extra connection that LISTENs on notifyChannel
// and wakes this handle's waits, so a write on any replica reaches them in
// one round trip. While that connection is down, waits poll.
func openPostgres(ctx context.Context, url string, opts Options) (_ *sqlStore, err error) {
	cfg, err := pgx.ParseConfig(url) // its errors redact the password
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &sqlStore{dialect: "postgres", r: db, w: db, opts: opts, hub: newHub(), poll: opts.PollInterval,
		closed: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := db.PingContext(ctx); err != nil {
		return nil, s.fail(err)
	}
	if err := s.migrate(ctx, opts.NoMigrate); err != nil {
		return nil, err
	}
	l := &listener{cfg: cfg, hub: s.hub, poll: opts.PollInterval}
	// The first LISTEN is in place before Open returns, so no write made
	// after Open is missed.
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.run(lctx, conn) })
	s.onClose = func() error { cancel(); wg.Wait(); return nil }
	return s, nil
}

type listener struct {
	cfg  *pgx.ConnConfig
	hub  *hub
	poll time.Duration
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// run relays notifications until ctx ends, reconnecting after a failure
// (every poll interval); after a reconnection it wakes every waiter, since
// notifications sent meanwhile are lost.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
				conn.Close(closeCtx)
				cancel()
				conn = nil
				break
			}
			l.hub.notify(n.Payload)
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(l.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if c, err := l.connect(ctx); err == nil {
			conn = c
			l.hub.wakeAll()
		}
	}
}

package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sqlStore is the SQLite and PostgreSQL backend: one implementation over
// database/sql, with queries written once with ? placeholders and
// renumbered ($1…) for PostgreSQL.
type sqlStore struct {
	dialect string  // "sqlite" or "postgres"
	r, w    *sql.DB // readers and writers (the same pool for PostgreSQL)
	opts    Options
	hub     *hub
	poll    time.Duration // wait fallback polling; 0 when every write notifies
	closed  chan struct{}
	once    sync.Once
	onClose func() error // stops what the backend started (listener, hub ref)
	queries sync.Map     // query text → dialect text
}

// q returns query in the dialect's placeholder syntax.
func (s *sqlStore) q(query string) string {
	if s.dialect != "postgres" {
		return query
	}
	if v, ok := s.queries.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	s.queries.Store(query, b.String())
	return b.String()
}

func (s *sqlStore) now() int64 { return s.opts.Now().UnixMicro() }

func (s *sqlStore) forUpdate() string {
	if s.dialect == "postgres" {
		return " FOR UPDATE"
	}
	return "" // SQLite write transactions begin IMMEDIATE: already exclusive
}

func (s *sqlStore) check(owner string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return ErrClosed
	default:
		return nil
	}
}

// fail wraps a database error; the store's own errors pass unchanged.
func (s *sqlStore) fail(err error) error {
	var tl *TooLargeError
	var se *SequenceError
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrFinished),
		errors.Is(err, ErrBadCursor), errors.Is(err, ErrClosed), errors.Is(err, ErrAnonymous),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &tl), errors.As(err, &se):
		return err
	}
	return fmt.Errorf("store: %s: %w", s.dialect, err)
}

// inTx runs fn in a write transaction and commits it.
func (s *sqlStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.fail(err)
	}
	return s.fail(tx.Commit())
}

const liveRow = ` WHERE id = ? AND owner = ? AND expires_at > ?`

func (s *sqlStore) Create(ctx context.Context, r *Response) error {
	if err := checkNew(r); err != nil {
		return err
	}
	if err := s.check(r.Owner); err != nil {
		return err
	}
	created := r.CreatedAt
	if created.IsZero() {
		created = s.opts.Now()
	}
	created = created.Truncate(time.Microsecond)
	expires := created.Add(s.opts.TTL)
	inSize, outSize := itemsSize(r.Input), itemsSize(r.Output)+int64(len(r.Object))
	var lease time.Time
	if !r.Status.Terminal() {
		lease = s.opts.Now().Add(s.opts.Lease).Truncate(time.Microsecond)
	}
	if err := checkSize(inSize+outSize, s.opts.MaxResponseBytes); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if r.PreviousResponseID != "" {
			var one int
			err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM responses`+liveRow), r.PreviousResponseID, r.Owner, s.now()).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: previous response %q", ErrNotFound, r.PreviousResponseID)
			} else if err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO responses
			(id, owner, created_at, expires_at, status, model, previous_response_id, conversation_id, object, input_size, output_size, lease_expires)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			r.ID, r.Owner, created.UnixMicro(), expires.UnixMicro(), string(r.Status), r.Model,
			r.PreviousResponseID, r.ConversationID, nullBytes(r.Object), inSize, outSize, microOrZero(lease))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrExists
		}
		if err := s.insertItems(ctx, tx, r.ID, 0, r.Input); err != nil {
			return err
		}
		return s.insertItems(ctx, tx, r.ID, 1, r.Output)
	})
	if err != nil {
		return err
	}
	r.CreatedAt, r.ExpiresAt, r.LastSeq, r.Size, r.CancelRequested = created, expires, -1, inSize+outSize, false
	r.LeaseExpiresAt = lease
	return nil
}

// microOrZero stores a time as unix microseconds, the zero time as 0.
func microOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func timeOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// insertItems writes items in multi-row INSERTs of at most 100 rows.
func (s *sqlStore) insertItems(ctx context.Context, tx *sql.Tx, id string, kind int, items []Item) error {
	for start := 0; start < len(items); start += 100 {
		chunk := items[start:min(start+100, len(items))]
		var b strings.Builder
		b.WriteString(`INSERT INTO items (response_id, kind, pos, item_id, data) VALUES `)
		args := make([]any, 0, 5*len(chunk))
		for i, it := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, id, kind, start+i, it.ID, []byte(it.Data))
		}
		if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
			return err
		}
	}
	return nil
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

const responseCols = `id, owner, created_at, expires_at, status, model, previous_response_id, conversation_id,
	object, input_size + output_size + event_size, last_seq, cancel_requested, lease_expires`

func scanResponse(row interface{ Scan(...any) error }) (*Response, error) {
	var r Response
	var created, expires, cancel, lease int64
	var status string
	var object []byte
	err := row.Scan(&r.ID, &r.Owner, &created, &expires, &status, &r.Model, &r.PreviousResponseID,
		&r.ConversationID, &object, &r.Size, &r.LastSeq, &cancel, &lease)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	r.CreatedAt, r.ExpiresAt = time.UnixMicro(created), time.UnixMicro(expires)
	r.Status, r.CancelRequested, r.LeaseExpiresAt = Status(status), cancel != 0, timeOrZero(lease)
	if object != nil {
		r.Object = json.RawMessage(object)
	}
	return &r, nil
}

func (s *sqlStore) Get(ctx context.Context, owner, id string) (*Response, error) {
	if err := s.check(owner); err != nil {
		return nil, err
	}
	r, err := s.get(ctx, owner, id)
	return r, s.fail(err)
}

func (s *sqlStore) get(ctx context.Context, owner, id string) (*Response, error) {
	// One read transaction, so the object and the output agree.
	tx, err := s.r.BeginTx(ctx, s.readTx())
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	r, err := scanResponse(tx.QueryRowContext(ctx, s.q(`SELECT `+responseCols+` FROM responses`+liveRow), id, owner, s.now()))
	if err != nil {
		return nil, err
	}
	if r.Output, err = s.items(ctx, tx, id, 1); err != nil {
		return nil, err
	}
	return r, tx.Commit()
}

func (s *sqlStore) readTx() *sql.TxOptions {
	if s.dialect == "postgres" {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return nil // the reader pool's transactions are DEFERRED: a snapshot at first read
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *sqlStore) items(ctx context.Context, q querier, id string, kind int) ([]Item, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT item_id, data FROM items WHERE response_id = ? AND kind = ? ORDER BY pos`), id, kind)
	if err != nil {
		return nil, err
	}
	return scanItems(rows)
}

func scanItems(rows *sql.Rows) ([]Item, error) {
	defer rows.Close()
	out := []Item{}
	for rows.Next() {
		var it Item
		var data []byte
		if err := rows.Scan(&it.ID, &data); err != nil {
			return nil, err
		}
		it.Data = data
		out = append(out, it)
	}
	return out, rows.Err()
}

func (s *sqlStore) Update(ctx context.Context, owner, id string, u Update) error {
	if u.Status != nil && !u.Status.valid() {
		return errBadStatus(*u.Status)
	}
	if err := checkItems("output", u.Output); err != nil {
		return err
	}
	if err := s.check(owner); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var status string
		var inSize, outSize, evSize, objSize int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT status, input_size, output_size, event_size, COALESCE(LENGTH(object), 0)
			FROM responses`+liveRow+s.forUpdate()), id, owner, s.now()).Scan(&status, &inSize, &outSize, &evSize, &objSize)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if Status(status).Terminal() {
			return ErrFinished
		}
		newOut := outSize
		if u.Object != nil {
			newOut += int64(len(u.Object)) - objSize
		}
		if u.Output != nil {
			newOut += itemsSize(u.Output) - (outSize - objSize)
		}
		if err := checkSize(inSize+newOut+evSize, s.opts.MaxResponseBytes); err != nil {
			return err
		}
		if u.Status != nil {
			status = string(*u.Status)
		}
		if u.Object != nil {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE responses SET status = ?, output_size = ?, object = ? WHERE id = ?`), status, newOut, []byte(u.Object), id)
		} else {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE responses SET status = ?, output_size = ? WHERE id = ?`), status, newOut, id)
		}
		if err != nil || u.Output == nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM items WHERE response_id = ? AND kind = 1`), id); err != nil {
			return err
		}
		return s.insertItems(ctx, tx, id, 1, u.Output)
	})
	if err == nil {
		s.hub.notify(id)
	}
	return err
}

func (s *sqlStore) Delete(ctx context.Context, owner, id string) error {
	if err := s.check(owner); err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM responses`+liveRow), id, owner, s.now())
	if err != nil {
		return s.fail(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail(err)
	} else if n == 0 {
		return ErrNotFound
	}
	s.hub.notify(id)
	return nil
}

// exists is the owner check for reads that return no response columns.
func (s *sqlStore) exists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, owner, id string) error {
	var one int
	err := q.QueryRowContext(ctx, s.q(`SELECT 1 FROM responses`+liveRow), id, owner, s.now()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func (s *sqlStore) InputItems(ctx context.Context, owner, id string, o ListOptions) (*ItemPage, error) {
	o, err := normList(o)
	if err != nil {
		return nil, err
	}
	if err := s.check(owner); err != nil {
		return nil, err
	}
	p, err := s.inputItems(ctx, owner, id, o)
	return p, s.fail(err)
}

func (s *sqlStore) inputItems(ctx context.Context, owner, id string, o ListOptions) (*ItemPage, error) {
	if err := s.exists(ctx, s.r, owner, id); err != nil {
		return nil, err
	}
	// Input items never change after Create, so no transaction is needed.
	cmp, dir, from := ">", "ASC", int64(-1)
	if o.Order == Desc {
		cmp, dir, from = "<", "DESC", 1<<31-1 // pos is a 32-bit INTEGER
	}
	if o.After != "" {
		err := s.r.QueryRowContext(ctx, s.q(`SELECT pos FROM items WHERE response_id = ? AND kind = 0 AND item_id = ?`), id, o.After).Scan(&from)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrBadCursor
		} else if err != nil {
			return nil, err
		}
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT item_id, data FROM items WHERE response_id = ? AND kind = 0 AND pos `+cmp+` ?
		ORDER BY pos `+dir+` LIMIT ?`), id, from, o.Limit+1)
	if err != nil {
		return nil, err
	}
	items, err := scanItems(rows)
	if err != nil {
		return nil, err
	}
	return page(items, o.Limit), nil
}

func (s *sqlStore) History(ctx context.Context, owner, id string) ([]Item, error) {
	if err := s.check(owner); err != nil {
		return nil, err
	}
	now := s.now()
	// One statement: a consistent view of the whole chain. Responses
	// without items still yield a row (NULL item), so an empty result
	// means the head is missing.
	rows, err := s.r.QueryContext(ctx, s.q(`WITH RECURSIVE chain (id, prev, depth) AS (
			SELECT id, previous_response_id, 0 FROM responses`+liveRow+`
			UNION ALL
			SELECT r.id, r.previous_response_id, c.depth + 1 FROM responses r JOIN chain c ON r.id = c.prev
			WHERE r.owner = ? AND r.expires_at > ? AND c.depth < ?
		)
		SELECT i.item_id, i.data FROM chain c LEFT JOIN items i ON i.response_id = c.id
		ORDER BY c.depth DESC, i.kind, i.pos`), id, owner, now, owner, now, maxChain)
	if err != nil {
		return nil, s.fail(err)
	}
	defer rows.Close()
	out, n := []Item{}, 0
	for rows.Next() {
		n++
		var itemID sql.NullString
		var data []byte
		if err := rows.Scan(&itemID, &data); err != nil {
			return nil, s.fail(err)
		}
		if itemID.Valid {
			out = append(out, Item{ID: itemID.String, Data: data})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(err)
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

func (s *sqlStore) Items(ctx context.Context, owner string, ids []string) ([]Item, error) {
	if err := s.check(owner); err != nil {
		return nil, err
	}
	found := make(map[string]Item, len(ids))
	uniq := slices.Compact(slices.Sorted(slices.Values(ids)))
	now := s.now()
	for start := 0; start < len(uniq); start += 200 {
		chunk := uniq[start:min(start+200, len(uniq))]
		args := []any{owner, now}
		for _, id := range chunk {
			args = append(args, id)
		}
		// Oldest first, so the newest response's item wins a repeated id.
		rows, err := s.r.QueryContext(ctx, s.q(`SELECT i.item_id, i.data FROM items i JOIN responses r ON r.id = i.response_id
			WHERE r.owner = ? AND r.expires_at > ? AND i.item_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)
			ORDER BY r.created_at, r.id, i.kind, i.pos`), args...)
		if err != nil {
			return nil, s.fail(err)
		}
		items, err := scanItems(rows)
		if err != nil {
			return nil, s.fail(err)
		}
		for _, it := range items {
			found[it.ID] = it
		}
	}
	out := make([]Item, 0, len(ids))
	for _, id := range ids {
		it, ok := found[id]
		if !ok {
			return nil, missingItem(id)
		}
		out = append(out, Item{ID: it.ID, Data: slices.Clone(it.Data)})
	}
	return out, nil
}

func (s *sqlStore) LastInConversation(ctx context.Context, owner, conv string) (*Response, error) {
	if err := s.check(owner); err != nil {
		return nil, err
	}
	var id string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id FROM responses WHERE owner = ? AND conversation_id = ? AND conversation_id <> '' AND expires_at > ?
		ORDER BY created_at DESC, id DESC LIMIT 1`), owner, conv, s.now()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, s.fail(err)
	}
	return s.Get(ctx, owner, id)
}

func (s *sqlStore) AppendEvent(ctx context.Context, owner, id string, seq int64, data json.RawMessage) error {
	if err := s.check(owner); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var status string
		var last, size int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT status, last_seq, input_size + output_size + event_size FROM responses`+liveRow+s.forUpdate()),
			id, owner, s.now()).Scan(&status, &last, &size)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case Status(status).Terminal():
			return ErrFinished
		case seq != last+1:
			return &SequenceError{Got: seq, Want: last + 1}
		}
		if err := checkSize(size+int64(len(data)), s.opts.MaxResponseBytes); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO events (response_id, seq, data) VALUES (?, ?, ?)`), id, seq, []byte(data)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE responses SET last_seq = ?, event_size = event_size + ? WHERE id = ?`), seq, len(data), id)
		return err
	})
	if err == nil {
		s.hub.notify(id)
	}
	return err
}

func (s *sqlStore) Events(ctx context.Context, owner, id string, after int64, limit int) ([]Event, error) {
	if err := s.check(owner); err != nil {
		return nil, err
	}
	lim := "LIMIT ?"
	args := []any{id, owner, s.now(), after}
	if limit > 0 {
		args = append(args, limit)
	} else {
		lim = ""
	}
	// The owner check is part of the statement; an absent response and an
	// empty log both give no rows, so look again only then.
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT e.seq, e.data FROM events e JOIN responses r ON r.id = e.response_id
		WHERE r.id = ? AND r.owner = ? AND r.expires_at > ? AND e.seq > ? ORDER BY e.seq `+lim), args...)
	if err != nil {
		return nil, s.fail(err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var data []byte
		if err := rows.Scan(&e.Seq, &data); err != nil {
			return nil, s.fail(err)
		}
		e.Data = data
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(err)
	}
	if len(out) == 0 {
		if err := s.exists(ctx, s.r, owner, id); err != nil {
			return nil, s.fail(err)
		}
	}
	return out, nil
}

func (s *sqlStore) progress(ctx context.Context, owner, id string) (Progress, error) {
	var p Progress
	var status string
	var cancel, lease int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT status, last_seq, cancel_requested, lease_expires FROM responses`+liveRow), id, owner, s.now()).
		Scan(&status, &p.LastSeq, &cancel, &lease)
	if errors.Is(err, sql.ErrNoRows) {
		return p, ErrNotFound
	} else if err != nil {
		return p, s.fail(err)
	}
	p.Status, p.CancelRequested, p.LeaseExpiresAt = Status(status), cancel != 0, timeOrZero(lease)
	return p, nil
}

func (s *sqlStore) WaitEvents(ctx context.Context, owner, id string, after int64) (Progress, error) {
	if err := s.check(owner); err != nil {
		return Progress{}, err
	}
	var p Progress
	err := waitUntil(ctx, s.hub, s.closed, id, s.poll, func() (bool, error) {
		var err error
		p, err = s.progress(ctx, owner, id)
		return err == nil && (p.LastSeq > after || p.Status.Terminal()), err
	})
	return p, err
}

func (s *sqlStore) RequestCancel(ctx context.Context, owner, id string) (Status, error) {
	if err := s.check(owner); err != nil {
		return "", err
	}
	var status string
	err := s.w.QueryRowContext(ctx, s.q(`UPDATE responses
		SET cancel_requested = CASE WHEN status IN ('queued', 'in_progress') THEN 1 ELSE cancel_requested END`+
		liveRow+` RETURNING status`), id, owner, s.now()).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	} else if err != nil {
		return "", s.fail(err)
	}
	s.hub.notify(id)
	return Status(status), nil
}

func (s *sqlStore) WaitCancel(ctx context.Context, owner, id string) error {
	if err := s.check(owner); err != nil {
		return err
	}
	return waitUntil(ctx, s.hub, s.closed, id, s.poll, func() (bool, error) {
		return cancelDone(s.progress(ctx, owner, id))
	})
}

const runningRow = ` AND status IN ('queued', 'in_progress')`

func (s *sqlStore) RenewLease(ctx context.Context, owner, id string) (time.Time, error) {
	if err := s.check(owner); err != nil {
		return time.Time{}, err
	}
	lease := s.opts.Now().Add(s.opts.Lease).Truncate(time.Microsecond)
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE responses SET lease_expires = ?`+liveRow+runningRow), lease.UnixMicro(), id, owner, s.now())
	if err != nil {
		return time.Time{}, s.fail(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return time.Time{}, s.fail(err)
	} else if n == 0 {
		// Gone, or terminal: the rare path pays a second read to say which.
		if err := s.exists(ctx, s.r, owner, id); err != nil {
			return time.Time{}, s.fail(err)
		}
		return time.Time{}, ErrFinished
	}
	return lease, nil
}

func (s *sqlStore) EndLapsed(ctx context.Context, owner, id string, fin LapseFunc) (bool, error) {
	if err := s.check(owner); err != nil {
		return false, err
	}
	// A cheap read first: a live run (the common case) takes no write lock.
	p, err := s.progress(ctx, owner, id)
	if err != nil || !p.Lapsed(s.opts.Now()) {
		return false, err
	}
	var ended bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		ended, err = s.endLapsed(ctx, tx, owner, id, fin)
		return err
	})
	if ended {
		s.hub.notify(id)
	}
	return ended, err
}

// endLapsed ends the response in tx if its lease lapsed, with the row
// locked, so that of concurrent callers (any replica) one ends it.
func (s *sqlStore) endLapsed(ctx context.Context, tx *sql.Tx, owner, id string, fin LapseFunc) (bool, error) {
	r := Response{ID: id, Owner: owner}
	var status string
	var lease int64
	var object []byte
	err := tx.QueryRowContext(ctx, s.q(`SELECT status, last_seq, lease_expires, object FROM responses`+liveRow+s.forUpdate()),
		id, owner, s.now()).Scan(&status, &r.LastSeq, &lease, &object)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	} else if err != nil {
		return false, err
	}
	r.Status, r.LeaseExpiresAt, r.Object = Status(status), timeOrZero(lease), object
	if !r.Lapsed(s.opts.Now()) {
		return false, nil
	}
	obj, ev, err := fin(&r)
	if err != nil {
		return false, err
	}
	seq := r.LastSeq + 1
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO events (response_id, seq, data) VALUES (?, ?, ?)`), id, seq, []byte(ev)); err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, s.q(`UPDATE responses SET status = ?, last_seq = ?, event_size = event_size + ?,
		output_size = output_size + ? - COALESCE(LENGTH(object), 0), object = ? WHERE id = ?`),
		string(StatusIncomplete), seq, len(ev), len(obj), nullBytes(obj), id)
	return err == nil, err
}

// leaseBatch is how many lapsed runs one ExpireLeases sweep ends at most;
// the janitor's next sweep takes the rest.
const leaseBatch = 500

func (s *sqlStore) ExpireLeases(ctx context.Context, fin LapseFunc) (int64, error) {
	select {
	case <-s.closed:
		return 0, ErrClosed
	default:
	}
	now := s.now()
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT owner, id FROM responses
		WHERE lease_expires > 0 AND lease_expires <= ? AND expires_at > ?`+runningRow+` LIMIT ?`), now, now, leaseBatch)
	if err != nil {
		return 0, s.fail(err)
	}
	type ref struct{ owner, id string }
	var lapsed []ref
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.owner, &r.id); err != nil {
			rows.Close()
			return 0, s.fail(err)
		}
		lapsed = append(lapsed, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, s.fail(err)
	}
	var n int64
	for _, r := range lapsed {
		ended, err := s.EndLapsed(ctx, r.owner, r.id, fin)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}

func (s *sqlStore) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	select {
	case <-s.closed:
		return 0, ErrClosed
	default:
	}
	const batch = 500 // short transactions: replicas keep writing meanwhile
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM responses WHERE id IN
			(SELECT id FROM responses WHERE expires_at <= ? LIMIT ?)`), now.UnixMicro(), batch)
		if err != nil {
			return total, s.fail(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.fail(err)
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}

func (s *sqlStore) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		if s.onClose != nil {
			err = s.onClose()
		}
		err = errors.Join(err, s.r.Close())
		if s.w != s.r {
			err = errors.Join(err, s.w.Close())
		}
	})
	return err
}

//go:embed migrations
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	ents, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration %s is not named NNNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// migrationsApplied reports whether schema_migrations lists every one of
// ms; any error (no such table yet) is a no.
func (s *sqlStore) migrationsApplied(ctx context.Context, ms []migration) bool {
	rows, err := s.w.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return false
	}
	defer rows.Close()
	applied := make(map[int]bool, len(ms))
	for rows.Next() {
		var v int
		if rows.Scan(&v) != nil {
			return false
		}
		applied[v] = true
	}
	if rows.Err() != nil {
		return false
	}
	for _, m := range ms {
		if !applied[m.version] {
			return false
		}
	}
	return true
}

// migrationLock is the PostgreSQL advisory lock key migrations hold
// (an arbitrary constant: "agentrt" in ASCII).
const migrationLock = 0x6167656e747274

// migrate applies the migrations the database lacks, all in one
// transaction that holds the migration lock (PostgreSQL: an advisory
// transaction lock; SQLite: BEGIN IMMEDIATE), so replicas starting at once
// apply each exactly once. With check set it only verifies the version.
func (s *sqlStore) migrate(ctx context.Context, check bool) error {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	// Every start of every replica runs this, and the schema is nearly
	// always current: a read without a lock says so, and only a missing
	// migration (or table) takes the write transaction and its lock.
	if s.migrationsApplied(ctx, ms) {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == "postgres" {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at BIGINT  NOT NULL)`); err != nil {
			return err
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if check {
				return fmt.Errorf("store: schema migration %s is not applied: run `serve migrate`", m.name)
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("store: migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, time.Now().UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	})
}

package store

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"
)

// memStore keeps everything in process memory; one Open is one database.
type memStore struct {
	opts   Options
	hub    *hub
	mu     sync.Mutex
	rs     map[string]*memResp
	closed chan struct{}
	once   sync.Once
}

type memResp struct {
	r                       Response // Input and Output unused
	input, output           []Item
	events                  []Event
	inSize, outSize, evSize int64
}

func (m *memResp) size() int64 { return m.inSize + m.outSize + m.evSize }

func newMemory(opts Options) *memStore {
	return &memStore{opts: opts, hub: newHub(), rs: map[string]*memResp{}, closed: make(chan struct{})}
}

// lookup is the one path every owner-scoped read and write takes.
func (s *memStore) lookup(owner, id string) (*memResp, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	m := s.rs[id]
	if m == nil || m.r.Owner != owner || !m.r.ExpiresAt.After(s.opts.Now()) {
		return nil, ErrNotFound
	}
	return m, nil
}

func (s *memStore) Create(ctx context.Context, r *Response) error {
	if err := checkNew(r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.PreviousResponseID != "" {
		if _, err := s.lookup(r.Owner, r.PreviousResponseID); err != nil {
			return err
		}
	} else if s.isClosed() {
		return ErrClosed
	}
	if _, taken := s.rs[r.ID]; taken {
		return ErrExists
	}
	m := &memResp{
		r:       *r,
		input:   cloneItems(r.Input),
		output:  cloneItems(r.Output),
		inSize:  itemsSize(r.Input),
		outSize: itemsSize(r.Output) + int64(len(r.Object)),
	}
	if err := checkSize(m.size(), s.opts.MaxResponseBytes); err != nil {
		return err
	}
	if m.r.CreatedAt.IsZero() {
		m.r.CreatedAt = s.opts.Now()
	}
	m.r.CreatedAt = m.r.CreatedAt.Truncate(time.Microsecond)
	m.r.ExpiresAt = m.r.CreatedAt.Add(s.opts.TTL)
	m.r.Object = slices.Clone(r.Object)
	m.r.Input, m.r.Output = nil, nil
	m.r.LastSeq, m.r.CancelRequested, m.r.LeaseExpiresAt = -1, false, time.Time{}
	if !r.Status.Terminal() {
		m.r.LeaseExpiresAt = s.opts.Now().Add(s.opts.Lease).Truncate(time.Microsecond)
	}
	s.rs[r.ID] = m
	r.CreatedAt, r.ExpiresAt, r.LastSeq, r.Size, r.LeaseExpiresAt = m.r.CreatedAt, m.r.ExpiresAt, -1, m.size(), m.r.LeaseExpiresAt
	return nil
}

func (s *memStore) Get(ctx context.Context, owner, id string) (*Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return nil, err
	}
	r := m.r
	r.Object = slices.Clone(m.r.Object)
	r.Output = cloneItems(m.output)
	if r.Output == nil {
		r.Output = []Item{}
	}
	r.Size = m.size()
	return &r, nil
}

func (s *memStore) Update(ctx context.Context, owner, id string, u Update) error {
	if u.Status != nil && !u.Status.valid() {
		return errBadStatus(*u.Status)
	}
	if err := checkItems("output", u.Output); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return err
	}
	if m.r.Status.Terminal() {
		return ErrFinished
	}
	outSize := m.outSize
	if u.Output != nil || u.Object != nil {
		outSize = 0
		if u.Output != nil {
			outSize += itemsSize(u.Output)
		} else {
			outSize += itemsSize(m.output)
		}
		if u.Object != nil {
			outSize += int64(len(u.Object))
		} else {
			outSize += int64(len(m.r.Object))
		}
	}
	if err := checkSize(m.inSize+outSize+m.evSize, s.opts.MaxResponseBytes); err != nil {
		return err
	}
	if u.Status != nil {
		m.r.Status = *u.Status
	}
	if u.Output != nil {
		m.output = cloneItems(u.Output)
	}
	if u.Object != nil {
		m.r.Object = slices.Clone(u.Object)
	}
	m.outSize = outSize
	s.hub.notify(id)
	return nil
}

func (s *memStore) Delete(ctx context.Context, owner, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookup(owner, id); err != nil {
		return err
	}
	delete(s.rs, id)
	s.hub.notify(id)
	return nil
}

func (s *memStore) InputItems(ctx context.Context, owner, id string, o ListOptions) (*ItemPage, error) {
	o, err := normList(o)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return nil, err
	}
	items := cloneItems(m.input)
	if o.Order == Desc {
		slices.Reverse(items)
	}
	start := 0
	if o.After != "" {
		i := slices.IndexFunc(items, func(it Item) bool { return it.ID == o.After })
		if i < 0 {
			return nil, ErrBadCursor
		}
		start = i + 1
	}
	items = items[start:]
	if len(items) > o.Limit+1 {
		items = items[:o.Limit+1]
	}
	return page(items, o.Limit), nil
}

func (s *memStore) History(ctx context.Context, owner, id string) ([]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return nil, err
	}
	var chain []*memResp
	for n := 0; m != nil && n < maxChain; n++ {
		chain = append(chain, m)
		if m.r.PreviousResponseID == "" {
			break
		}
		m, _ = s.lookup(owner, m.r.PreviousResponseID)
	}
	var out []Item
	for _, m := range slices.Backward(chain) {
		out = append(out, cloneItems(m.input)...)
		out = append(out, cloneItems(m.output)...)
	}
	return out, nil
}

func (s *memStore) Items(ctx context.Context, owner string, ids []string) ([]Item, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		want[id] = struct{}{}
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	var owned []*memResp
	for id := range s.rs {
		if m, err := s.lookup(owner, id); err == nil {
			owned = append(owned, m)
		}
	}
	slices.SortFunc(owned, byCreated)
	found := map[string]Item{}
	for _, m := range owned {
		for _, list := range [][]Item{m.input, m.output} {
			for _, it := range list {
				if _, ok := want[it.ID]; ok {
					found[it.ID] = it
				}
			}
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

func byCreated(a, b *memResp) int {
	if c := a.r.CreatedAt.Compare(b.r.CreatedAt); c != 0 {
		return c
	}
	switch {
	case a.r.ID < b.r.ID:
		return -1
	case a.r.ID > b.r.ID:
		return 1
	}
	return 0
}

func (s *memStore) LastInConversation(ctx context.Context, owner, conv string) (*Response, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var last *memResp
	for id, m := range s.rs {
		if _, err := s.lookup(owner, id); err != nil || conv == "" || m.r.ConversationID != conv {
			continue
		}
		if last == nil || byCreated(m, last) > 0 {
			last = m
		}
	}
	s.mu.Unlock()
	if last == nil {
		return nil, ErrNotFound
	}
	return s.Get(ctx, owner, last.r.ID)
}

func (s *memStore) AppendEvent(ctx context.Context, owner, id string, seq int64, data json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return err
	}
	if m.r.Status.Terminal() {
		return ErrFinished
	}
	if want := m.r.LastSeq + 1; seq != want {
		return &SequenceError{Got: seq, Want: want}
	}
	if err := checkSize(m.size()+int64(len(data)), s.opts.MaxResponseBytes); err != nil {
		return err
	}
	m.events = append(m.events, Event{Seq: seq, Data: slices.Clone(data)})
	m.evSize += int64(len(data))
	m.r.LastSeq = seq
	s.hub.notify(id)
	return nil
}

func (s *memStore) Events(ctx context.Context, owner, id string, after int64, limit int) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return nil, err
	}
	var out []Event
	for _, e := range m.events {
		if e.Seq > after {
			out = append(out, Event{Seq: e.Seq, Data: slices.Clone(e.Data)})
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (s *memStore) progress(owner, id string) (Progress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return Progress{}, err
	}
	return Progress{Status: m.r.Status, LastSeq: m.r.LastSeq, CancelRequested: m.r.CancelRequested, LeaseExpiresAt: m.r.LeaseExpiresAt}, nil
}

func (s *memStore) WaitEvents(ctx context.Context, owner, id string, after int64) (Progress, error) {
	var p Progress
	err := waitUntil(ctx, s.hub, s.closed, id, 0, func() (bool, error) {
		var err error
		p, err = s.progress(owner, id)
		return err == nil && (p.LastSeq > after || p.Status.Terminal()), err
	})
	return p, err
}

func (s *memStore) RequestCancel(ctx context.Context, owner, id string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return "", err
	}
	if !m.r.Status.Terminal() {
		m.r.CancelRequested = true
		s.hub.notify(id)
	}
	return m.r.Status, nil
}

func (s *memStore) WaitCancel(ctx context.Context, owner, id string) error {
	return waitUntil(ctx, s.hub, s.closed, id, 0, func() (bool, error) {
		p, err := s.progress(owner, id)
		return cancelDone(p, err)
	})
}

// cancelDone is WaitCancel's check on a Progress.
func cancelDone(p Progress, err error) (bool, error) {
	switch {
	case err != nil:
		return false, err
	case p.Status.Terminal(): // nothing left to cancel
		return false, ErrFinished
	case p.CancelRequested:
		return true, nil
	}
	return false, nil
}

func (s *memStore) RenewLease(ctx context.Context, owner, id string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return time.Time{}, err
	}
	if m.r.Status.Terminal() {
		return time.Time{}, ErrFinished
	}
	m.r.LeaseExpiresAt = s.opts.Now().Add(s.opts.Lease).Truncate(time.Microsecond)
	return m.r.LeaseExpiresAt, nil
}

func (s *memStore) EndLapsed(ctx context.Context, owner, id string, fin LapseFunc) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(owner, id)
	if err != nil {
		return false, err
	}
	return s.endLapsed(m, fin)
}

// endLapsed ends m if its lease lapsed; s.mu is held.
func (s *memStore) endLapsed(m *memResp, fin LapseFunc) (bool, error) {
	if !m.r.Lapsed(s.opts.Now()) {
		return false, nil
	}
	r := m.r
	r.Object = slices.Clone(m.r.Object)
	obj, ev, err := fin(&r)
	if err != nil {
		return false, err
	}
	m.events = append(m.events, Event{Seq: m.r.LastSeq + 1, Data: slices.Clone(ev)})
	m.evSize += int64(len(ev))
	m.outSize += int64(len(obj)) - int64(len(m.r.Object))
	m.r.LastSeq++
	m.r.Object = slices.Clone(obj)
	m.r.Status = StatusIncomplete
	s.hub.notify(m.r.ID)
	return true, nil
}

func (s *memStore) ExpireLeases(ctx context.Context, fin LapseFunc) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return 0, ErrClosed
	}
	var n int64
	for _, m := range s.rs {
		if !m.r.ExpiresAt.After(s.opts.Now()) {
			continue
		}
		ended, err := s.endLapsed(m, fin)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}

func (s *memStore) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return 0, ErrClosed
	}
	var n int64
	for id, m := range s.rs {
		if !m.r.ExpiresAt.After(now) {
			delete(s.rs, id)
			s.hub.notify(id)
			n++
		}
	}
	return n, nil
}

func (s *memStore) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *memStore) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

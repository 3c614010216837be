package store

import (
	"context"
	"sync"
	"time"
)

// hub wakes in-process waiters when a response changes. Backends call
// notify after every committed write; PostgreSQL also feeds it from
// LISTEN, so writes on other replicas wake local waiters.
type hub struct {
	mu sync.Mutex
	m  map[string]*waiters
}

type waiters struct {
	ch chan struct{} // closed (and replaced) on the next change
	n  int
}

func newHub() *hub { return &hub{m: map[string]*waiters{}} }

// watch returns a channel closed at the next change of id; call done once
// the channel is no longer needed.
func (h *hub) watch(id string) (ch <-chan struct{}, done func()) {
	h.mu.Lock()
	w := h.m[id]
	if w == nil {
		w = &waiters{ch: make(chan struct{})}
		h.m[id] = w
	}
	w.n++
	c := w.ch
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		if w.n--; w.n == 0 && h.m[id] == w {
			delete(h.m, id)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(id string) {
	h.mu.Lock()
	if w := h.m[id]; w != nil {
		close(w.ch)
		w.ch = make(chan struct{})
	}
	h.mu.Unlock()
}

// wakeAll wakes every waiter, to check again (after a LISTEN connection
// was lost, when notifications may have been missed).
func (h *hub) wakeAll() {
	h.mu.Lock()
	for _, w := range h.m {
		close(w.ch)
		w.ch = make(chan struct{})
	}
	h.mu.Unlock()
}

// testHookWaiting, when set (by tests), is called each time a wait has
// checked and is about to block.
var testHookWaiting func(id string)

// waitUntil subscribes to id, then calls check; until check reports done it
// waits for a change, a poll tick or the end of ctx or closed. Subscribing
// before checking means no change between the two is missed.
func waitUntil(ctx context.Context, h *hub, closed <-chan struct{}, id string, poll time.Duration, check func() (bool, error)) error {
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		ch, done := h.watch(id)
		ok, err := check()
		if ok || err != nil {
			done()
			return err
		}
		if testHookWaiting != nil {
			testHookWaiting(id)
		}
		select {
		case <-ch:
		case <-tick:
		case <-closed:
			done()
			return ErrClosed
		case <-ctx.Done():
			done()
			return ctx.Err()
		}
		done()
	}
}

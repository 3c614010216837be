package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callCtx is the context a request's agent call runs under when the
// request timeout is set. It behaves as context.WithTimeout(r.Context(), d)
// would, with one difference in cost: it starts watching the request's
// context (net/http cancels it when the client goes away) only once
// something waits on Done. An agent that never waits on its context cannot
// notice the cancellation anyway, and registering with the request's
// context on every request (a done channel, a children map, a child entry)
// was the largest share of the host's per-request allocations. Err still
// reports a cancelled request at once.
//
// Values, the deadline's DeadlineExceeded (for contexts derived from it
// too) and context.Cause come from inner, a real timer context under the
// request's values; contexts derived from a callCtx register with inner
// directly, as with any context of the standard library.
type callCtx struct {
	context.Context // inner: WithDeadline(WithoutCancel(r.Context()), deadline)

	parent   context.Context // the request's
	cancel   context.CancelFunc
	deadline time.Time

	watching atomic.Bool
	mu       sync.Mutex
	unwatch  func() bool // set under mu once watching

	wd watchdog // predict's, when it runs the agent under this context
}

func newCallCtx(parent context.Context, d time.Duration) *callCtx {
	c := &callCtx{parent: parent, deadline: time.Now().Add(d)}
	c.Context, c.cancel = context.WithDeadline(context.WithoutCancel(parent), c.deadline)
	return c
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callCtx) Done() <-chan struct{} {
	if !c.watching.Load() {
		c.watch()
	}
	return c.Context.Done()
}

func (c *callCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.parent.Err() != nil {
		c.cancel()
		return c.Context.Err()
	}
	return nil
}

// watch cancels c when the request's context ends.
func (c *callCtx) watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watching.Load() {
		c.unwatch = context.AfterFunc(c.parent, c.cancel)
		c.watching.Store(true)
	}
}

// end releases c's timer and its watch of the request's context; c is
// cancelled from here on. It is nil-safe, for requests without a timeout.
func (c *callCtx) end() {
	if c == nil {
		return
	}
	c.cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unwatch != nil {
		c.unwatch()
	}
	c.watching.Store(true) // a late Done must not watch again
}

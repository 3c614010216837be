package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callCtx is the context a request's agent call runs under when the
// request timeout is set. It behaves as context.WithTimeout(r.Context(), d)
// would, but costs nothing beyond its own allocation until something waits
// on Done: only then does it make the machinery of a standard context (a
// timer context with its timer, and a watch on the request's context, which
// net/http cancels when the client goes away). An echo-sized agent never
// waits, and that machinery (a second timer beside predict's watchdog, and
// registering with the request's context) was the largest share of the
// host's own per-request cost. Err needs none of it: it compares the clock
// and asks the request's context.
//
// Once made, inner (WithDeadline(WithoutCancel(r.Context()), deadline))
// answers Done, Err and context.Cause, with DeadlineExceeded for contexts
// derived from this one too, which register with inner directly as they
// would with any standard context.
type callCtx struct {
	parent   context.Context // the request's
	deadline time.Time

	inner  atomic.Pointer[context.Context] // nil until made
	ended  atomic.Bool
	mu     sync.Mutex // making inner, and end
	cancel context.CancelFunc
	stop   func() bool // ends the watch on parent
}

func newCallCtx(parent context.Context, d time.Duration) *callCtx {
	return &callCtx{parent: parent, deadline: time.Now().Add(d)}
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callCtx) Done() <-chan struct{} { return c.made().Done() }

func (c *callCtx) Err() error {
	if in := c.inner.Load(); in != nil {
		if err := (*in).Err(); err != nil || c.parent.Err() == nil {
			return err
		}
		c.cancel()
		return (*in).Err()
	}
	if !c.ended.Load() && c.parent.Err() == nil && time.Until(c.deadline) > 0 { // Until reads only the monotonic clock
		return nil
	}
	return c.made().Err() // cancelled as it is made: Cause agrees with Err
}

// Value answers context.Cause's own key from inner, and everything else
// from the request's context (which inner would ask anyway).
func (c *callCtx) Value(key any) any {
	if key == cancelCtxKey {
		return c.made().Value(key)
	}
	return c.parent.Value(key)
}

// made returns inner, making it on first use.
func (c *callCtx) made() context.Context {
	if in := c.inner.Load(); in != nil {
		return *in
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in := c.inner.Load(); in != nil {
		return *in
	}
	in, cancel := context.WithDeadline(context.WithoutCancel(c.parent), c.deadline)
	c.cancel = cancel
	if c.ended.Load() || c.parent.Err() != nil {
		cancel() // now, not from AfterFunc's goroutine
	} else {
		c.stop = context.AfterFunc(c.parent, cancel)
	}
	c.inner.Store(&in)
	return in
}

// end cancels c (as WithTimeout's cancel would) and releases what it made.
// It is nil-safe, for requests without a timeout.
func (c *callCtx) end() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended.Store(true)
	if c.cancel != nil {
		c.cancel()
		if c.stop != nil {
			c.stop()
		}
	}
}

// cancelCtxKey is the context package's private key for a context's
// cancellation state. A context derived from c looks it up with Value to
// register with inner directly (without it, the standard library watches
// an unknown parent from a goroutine of its own per derived context), and
// context.Cause looks it up too. It is learnt once, from Cause, which asks
// a cancelled context for it; TestCallCtxUnwaited fails if that changes.
var cancelCtxKey = func() any {
	var p keyProbe
	_ = context.Cause(&p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any { p.key = key; return nil }
func (p *keyProbe) Err() error        { return context.Canceled }

// Package ttlcache is the one cache the runtime keeps per-caller state in:
// entries expire after a TTL chosen per entry, the count is bounded, and
// concurrent misses for one key share a single fill (single-flight).
//
// Fills run detached from the waiting callers' cancellation, so a caller
// that gives up does not fail the others waiting on the same key; each
// caller waits only as long as its own ctx allows.
package ttlcache

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Cache maps keys to values that expire. The zero value is not usable; call
// New. All methods are safe for concurrent use.
type Cache[K comparable, V any] struct {
	max int
	now func() time.Time

	mu       sync.Mutex
	m        map[K]entry[V]
	inflight map[K]*call[V]
}

type entry[V any] struct {
	v       V
	err     error // a cached refusal (see Fill)
	expires time.Time
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// New returns a cache that holds at most max entries (max ≤ 0 means 10,000).
func New[K comparable, V any](max int) *Cache[K, V] {
	return NewWithClock[K, V](max, time.Now)
}

// NewWithClock is New with the clock that TTLs are measured by, for callers
// that keep their own (and their tests).
func NewWithClock[K comparable, V any](max int, now func() time.Time) *Cache[K, V] {
	if max <= 0 {
		max = 10000
	}
	return &Cache[K, V]{max: max, now: now, m: map[K]entry[V]{}, inflight: map[K]*call[V]{}}
}

// Get returns the value for k when it is present and not expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || e.err != nil || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Lookup returns the outcome cached for k, a value or a refusal, when it
// is present and not expired: what Do would return without waiting.
func (c *Cache[K, V]) Lookup(k K) (v V, ok bool, err error) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) {
		return v, false, nil
	}
	return e.v, true, e.err
}

// Put stores v for k for ttl; ttl ≤ 0 removes k.
func (c *Cache[K, V]) Put(k K, v V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v, nil, ttl)
}

// Delete removes k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// Len returns the number of stored entries, expired ones included until
// they are swept.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *Cache[K, V]) putLocked(k K, v V, err error, ttl time.Duration) {
	if ttl <= 0 {
		delete(c.m, k)
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.evictLocked()
	}
	c.m[k] = entry[V]{v: v, err: err, expires: c.now().Add(ttl)}
}

// evictLocked drops expired entries and, if that is not enough, arbitrary
// ones down to 90% of the bound, so a sweep runs once per many inserts even
// when more keys are live than the cache holds. An evicted entry only costs
// one more fill.
func (c *Cache[K, V]) evictLocked() {
	now := c.now()
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < c.max*9/10 {
			break
		}
		delete(c.m, k)
	}
}

// Fill computes the value of a key that is not cached. It returns the value,
// how long to keep it (≤ 0: do not keep it) and an error; an outcome with
// an error is kept too when ttl > 0, so callers can cache refusals briefly.
type Fill[V any] func(ctx context.Context) (v V, ttl time.Duration, err error)

// Do returns the cached value of k, or runs fill once for all concurrent
// callers of k and caches its outcome for the ttl it returns. fill runs with
// a ctx that keeps ctx's values but not its cancellation (bound it with a
// timeout inside fill); Do itself returns ctx.Err() when ctx ends first.
// A cached error outcome is returned as such.
func (c *Cache[K, V]) Do(ctx context.Context, k K, fill Fill[V]) (V, error) {
	c.mu.Lock()
	if e, ok := c.m[k]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.v, e.err
	}
	cl, running := c.inflight[k]
	if !running {
		cl = &call[V]{done: make(chan struct{})}
		c.inflight[k] = cl
		go c.run(context.WithoutCancel(ctx), k, cl, fill)
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.v, cl.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

func (c *Cache[K, V]) run(ctx context.Context, k K, cl *call[V], fill Fill[V]) {
	var ttl time.Duration
	func() {
		defer func() {
			if r := recover(); r != nil {
				cl.err = &PanicError{Value: r}
				ttl = 0
			}
		}()
		cl.v, ttl, cl.err = fill(ctx)
	}()
	c.mu.Lock()
	delete(c.inflight, k)
	c.putLocked(k, cl.v, cl.err, ttl)
	c.mu.Unlock()
	close(cl.done)
}

// PanicError is the error of a fill that panicked; it is never cached.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("ttlcache: fill panicked: %v", e.Value) }

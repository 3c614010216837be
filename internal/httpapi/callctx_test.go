package httpapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// callCtx must behave as context.WithTimeout(parent, d) does, for the
// context itself and for what is derived from it.
func TestCallCtxDeadline(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	defer cancelParent()
	c := newCallCtx(parent, 20*time.Millisecond)
	defer c.end()

	if d, ok := c.Deadline(); !ok || d != c.deadline {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("the request's values are lost")
	}
	if c.Err() != nil || context.Cause(c) != nil {
		t.Fatalf("Err %v, Cause %v before the deadline", c.Err(), context.Cause(c))
	}
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })

	<-c.Done()
	<-child.Done()
	<-ran
	for name, ctx := range map[string]context.Context{"callCtx": c, "derived": child} {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			t.Errorf("%s: Err %v, Cause %v; want DeadlineExceeded", name, ctx.Err(), context.Cause(ctx))
		}
	}
	if parent.Err() != nil {
		t.Error("the deadline cancelled the request's context")
	}
}

// The request's end reaches Err at once, and Done and what is derived from
// the context once they are waited on, whether that is before or after.
func TestCallCtxRequestEnds(t *testing.T) {
	for _, waitFirst := range []bool{true, false} {
		parent, cancelParent := context.WithCancel(context.Background())
		c := newCallCtx(parent, time.Hour)
		var child context.Context
		var cancelChild context.CancelFunc
		if waitFirst {
			child, cancelChild = context.WithCancel(c)
			_ = c.Done()
		}
		cancelParent()
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("waitFirst=%v: Err %v after the request ended, want Canceled", waitFirst, c.Err())
		}
		if child == nil {
			child, cancelChild = context.WithCancel(c)
		}
		<-c.Done()
		<-child.Done()
		if !errors.Is(child.Err(), context.Canceled) {
			t.Errorf("waitFirst=%v: derived Err %v, want Canceled", waitFirst, child.Err())
		}
		cancelChild()
		c.end()
	}

	// Without Err or Done, cancellation still arrives through a waiter
	// that comes later.
	parent, cancelParent := context.WithCancel(context.Background())
	c := newCallCtx(parent, time.Hour)
	defer c.end()
	cancelParent()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done never closed after the request ended")
	}
}

// end cancels the context and stops watching the request's; racing
// waiters are safe (run with -race).
func TestCallCtxEnd(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	c := newCallCtx(parent, time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { <-c.Done() })
	}
	c.end()
	wg.Wait()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err %v after end, want Canceled", c.Err())
	}
	<-c.Done() // after end: closed, and no new watch
	var nilCall *callCtx
	nilCall.end() // requests without a timeout
}

package httpapi

import (
	"context"
	"errors"
	"runtime"
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

// Nobody waits on Done: Err and context.Cause still report the deadline
// and the request's end, and agree.
func TestCallCtxUnwaited(t *testing.T) {
	if cancelCtxKey == nil {
		t.Fatal("context.Cause no longer looks its key up with Value: callCtx needs another way to answer it")
	}
	c := newCallCtx(context.Background(), time.Millisecond)
	defer c.end()
	for c.Err() == nil { // bounded by the 1 ms deadline
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Fatalf("after the deadline: Err %v, Cause %v", c.Err(), context.Cause(c))
	}

	parent, cancelParent := context.WithCancel(context.Background())
	c2 := newCallCtx(parent, time.Hour)
	defer c2.end()
	if context.Cause(c2) != nil || c2.Err() != nil {
		t.Fatal("cancelled before anything ended")
	}
	cancelParent()
	if !errors.Is(context.Cause(c2), context.Canceled) || !errors.Is(c2.Err(), context.Canceled) {
		t.Fatalf("after the request ended: Err %v, Cause %v", c2.Err(), context.Cause(c2))
	}
	if c2.inner.Load() == nil {
		t.Fatal("Cause did not make inner")
	}

	c3 := newCallCtx(context.Background(), time.Hour)
	c3.end()
	if !errors.Is(c3.Err(), context.Canceled) || c3.inner.Load() == nil {
		t.Fatalf("after end: Err %v", c3.Err())
	}
	if c4 := newCallCtx(context.Background(), time.Hour); c4.Err() != nil || c4.inner.Load() != nil {
		t.Fatal("Err made the machinery of a context nobody waits on")
	}
}

// Contexts derived from a callCtx register with its inner context, as with
// a standard one: none is watched from a goroutine of its own.
func TestCallCtxDerivedNeedNoGoroutine(t *testing.T) {
	c := newCallCtx(context.Background(), time.Hour)
	defer c.end()
	before := runtime.NumGoroutine()
	var cancels []context.CancelFunc
	for range 50 {
		_, cancel := context.WithCancel(c)
		cancels = append(cancels, cancel)
	}
	if n := runtime.NumGoroutine() - before; n >= 50 {
		t.Errorf("50 derived contexts started %d goroutines", n)
	}
	for _, cancel := range cancels {
		cancel()
	}
}

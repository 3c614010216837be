package ttlcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(max int) (*Cache[string, int], *clock) {
	c := New[string, int](max)
	clk := &clock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	return c, clk
}

func TestDoCachesValueForItsTTL(t *testing.T) {
	c, clk := newTest(10)
	var fills atomic.Int32
	fill := func(context.Context) (int, time.Duration, error) {
		return int(fills.Add(1)), time.Minute, nil
	}
	for range 3 {
		if v, err := c.Do(context.Background(), "k", fill); err != nil || v != 1 {
			t.Fatalf("Do = %d, %v; want 1, nil", v, err)
		}
	}
	clk.add(time.Minute)
	if v, _ := c.Do(context.Background(), "k", fill); v != 2 {
		t.Fatalf("after expiry Do = %d, want a new fill (2)", v)
	}
}

func TestDoCachesErrorsOnlyWhenAsked(t *testing.T) {
	c, clk := newTest(10)
	boom := errors.New("boom")
	var fills atomic.Int32
	fill := func(ttl time.Duration) Fill[int] {
		return func(context.Context) (int, time.Duration, error) { fills.Add(1); return 0, ttl, boom }
	}
	c.Do(context.Background(), "a", fill(0))
	c.Do(context.Background(), "a", fill(0))
	if fills.Load() != 2 {
		t.Fatalf("uncached error: %d fills, want 2", fills.Load())
	}
	fills.Store(0)
	c.Do(context.Background(), "b", fill(time.Second))
	if _, err := c.Do(context.Background(), "b", fill(time.Second)); !errors.Is(err, boom) || fills.Load() != 1 {
		t.Fatalf("cached error: err %v after %d fills; want boom after 1", err, fills.Load())
	}
	if _, ok := c.Get("b"); ok {
		t.Fatal("Get returned a cached error as a value")
	}
	clk.add(time.Second)
	c.Do(context.Background(), "b", fill(time.Second))
	if fills.Load() != 2 {
		t.Fatal("an expired error was not filled again")
	}
}

func TestDoSingleFlight(t *testing.T) {
	c, _ := newTest(10)
	release, started := make(chan struct{}), make(chan struct{})
	var fills atomic.Int32
	fill := func(context.Context) (int, time.Duration, error) {
		if fills.Add(1) == 1 {
			close(started)
		}
		<-release
		return 7, time.Minute, nil
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if v, err := c.Do(context.Background(), "k", fill); v != 7 || err != nil {
				t.Errorf("Do = %d, %v", v, err)
			}
		})
	}
	<-started
	close(release)
	wg.Wait()
	if fills.Load() != 1 {
		t.Fatalf("%d fills for one key, want 1", fills.Load())
	}
}

func TestDoWaiterCancelDoesNotFailOthers(t *testing.T) {
	c, _ := newTest(10)
	release := make(chan struct{})
	started := make(chan struct{})
	fill := func(ctx context.Context) (int, time.Duration, error) {
		close(started)
		<-release
		return 1, time.Minute, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Do(ctx, "k", fill); errc <- err }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	done := make(chan int, 1)
	go func() { v, _ := c.Do(context.Background(), "k", fill); done <- v }()
	close(release)
	if v := <-done; v != 1 {
		t.Fatalf("second waiter got %d; the fill must not see the first waiter's cancellation", v)
	}
}

func TestBoundHolds(t *testing.T) {
	c, _ := newTest(100)
	for i := range 10000 {
		c.Put(string(rune(i+0x4e00)), i, time.Hour)
		if c.Len() > 100 {
			t.Fatalf("Len %d > bound 100", c.Len())
		}
	}
}

func TestPanickingFillIsAnErrorAndNotCached(t *testing.T) {
	c, _ := newTest(10)
	_, err := c.Do(context.Background(), "k", func(context.Context) (int, time.Duration, error) { panic("x") })
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PanicError", err)
	}
	v, err := c.Do(context.Background(), "k", func(context.Context) (int, time.Duration, error) { return 3, time.Minute, nil })
	if v != 3 || err != nil {
		t.Fatalf("after a panic Do = %d, %v", v, err)
	}
}

// Lookup answers what Do would answer from the cache, value or refusal,
// and nothing for a missing or expired key.
func TestLookup(t *testing.T) {
	c, clk := newTest(10)
	boom := errors.New("boom")
	c.Do(context.Background(), "v", func(context.Context) (int, time.Duration, error) { return 7, time.Minute, nil })
	c.Do(context.Background(), "e", func(context.Context) (int, time.Duration, error) { return 0, time.Minute, boom })
	if v, ok, err := c.Lookup("v"); !ok || v != 7 || err != nil {
		t.Errorf("Lookup(v) = %d, %v, %v", v, ok, err)
	}
	if _, ok, err := c.Lookup("e"); !ok || !errors.Is(err, boom) {
		t.Errorf("Lookup(e) = %v, %v; want the cached refusal", ok, err)
	}
	if _, ok, _ := c.Lookup("missing"); ok {
		t.Error("Lookup of a missing key")
	}
	clk.add(time.Minute)
	if _, ok, _ := c.Lookup("v"); ok {
		t.Error("Lookup of an expired key")
	}
}

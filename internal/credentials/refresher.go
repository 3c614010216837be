package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"golang.org/x/oauth2"
)

// Background refresh timing, after the SDK's cache: start refreshing once
// half the token's lifetime is gone, but no more than 20 minutes early.
const maxRefreshLead = 20 * time.Minute

func refreshLead(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return min(ttl/2, maxRefreshLead)
}

// RefreshEvent describes one token acquisition of the system client.
type RefreshEvent struct {
	Source     string
	Err        error     // nil on success
	Expiry     time.Time // of the new token; zero when it does not expire
	Background bool      // false for the start-up fetch and blocking fetches
}

type fetchFunc func(ctx context.Context) (*oauth2.Token, error)

// UnavailableError means the system client has no valid token and cannot
// get one now: the token endpoint failed or is slow, or the request's ctx
// ended while waiting for it. It implements httperr.Retryable (the HTTP
// layer answers 503 with Retry-After) and matches
// databricks.ErrTemporarilyUnavailable.
type UnavailableError struct {
	Source string
	Wait   time.Duration // when a new attempt may succeed
	Err    error         // the token endpoint's failure, or the ctx's error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("system credentials (%s) unavailable: %v", e.Source, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// RetryAfter is when the request may be tried again.
func (e *UnavailableError) RetryAfter() time.Duration { return max(e.Wait, time.Second) }

// Is makes errors.Is(err, databricks.ErrTemporarilyUnavailable) hold.
func (e *UnavailableError) Is(target error) bool { return target == apierr.ErrTemporarilyUnavailable }

// flight is one token fetch that requests and the background loop share.
type flight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// refresher holds the system token. Requests read it under a read lock and
// never wait for a refresh while it is valid; a goroutine replaces it before
// it expires, retrying with jittered backoff while the token endpoint is down.
// Without a valid token a request joins the one fetch in flight (or starts
// it) and waits for it no longer than its ctx and maxWait allow; a failed
// fetch is remembered for failTTL, during which requests fail at once.
type refresher struct {
	source   string
	fetch    fetchFunc
	retryMin time.Duration
	retryMax time.Duration
	timeout  time.Duration // one fetch
	failTTL  time.Duration // negative cache
	maxWait  time.Duration // longest a request waits for a fetch
	log      *slog.Logger
	notify   func(RefreshEvent)
	life     context.Context // ends with the System; bounds shared fetches

	mu        sync.RWMutex
	tok       *oauth2.Token
	refreshAt time.Time // zero: never
	failErr   error     // last fetch failure, remembered until failUntil
	failUntil time.Time
	inflight  *flight
}

func (r *refresher) current() (*oauth2.Token, time.Time) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tok, r.refreshAt
}

func (r *refresher) set(t *oauth2.Token) {
	at := time.Time{}
	if !t.Expiry.IsZero() {
		at = t.Expiry.Add(-refreshLead(time.Until(t.Expiry)))
	}
	r.mu.Lock()
	r.tok, r.refreshAt = t, at
	r.failErr = nil
	r.mu.Unlock()
}

func valid(t *oauth2.Token) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || time.Now().Before(t.Expiry))
}

// Token returns the current token. Without a valid one it fails fast with an
// *UnavailableError while a recent fetch failure is remembered, and otherwise
// waits for the shared fetch until it ends, ctx ends or maxWait passes.
func (r *refresher) Token(ctx context.Context) (*oauth2.Token, error) {
	if t, _ := r.current(); valid(t) {
		return t, nil
	}
	r.mu.Lock()
	if valid(r.tok) {
		t := r.tok
		r.mu.Unlock()
		return t, nil
	}
	if now := time.Now(); r.failErr != nil && now.Before(r.failUntil) {
		err, wait := r.failErr, r.failUntil.Sub(now)
		r.mu.Unlock()
		return nil, &UnavailableError{Source: r.source, Wait: wait, Err: err}
	}
	f := r.startLocked(false)
	r.mu.Unlock()

	timer := time.NewTimer(r.maxWait)
	defer timer.Stop()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, &UnavailableError{Source: r.source, Wait: r.failTTL, Err: f.err}
		}
		return f.tok, nil
	case <-ctx.Done():
		return nil, &UnavailableError{Source: r.source, Wait: r.failTTL,
			Err: fmt.Errorf("gave up waiting for the token endpoint: %w", ctx.Err())}
	case <-timer.C:
		return nil, &UnavailableError{Source: r.source, Wait: r.failTTL,
			Err: fmt.Errorf("the token endpoint did not answer within %s", r.maxWait)}
	}
}

// startLocked returns the fetch in flight, starting one if there is none.
// The fetch is bounded by the refresher's life and timeout, not by any one
// request, so that a caller giving up does not fail it for the others.
// Called with r.mu held.
func (r *refresher) startLocked(background bool) *flight {
	if r.inflight != nil {
		return r.inflight
	}
	f := &flight{done: make(chan struct{})}
	r.inflight = f
	life := r.life
	if life == nil {
		life = context.Background()
	}
	go func() {
		t, err := r.refresh(life, background)
		r.mu.Lock()
		if err != nil {
			r.failErr, r.failUntil = err, time.Now().Add(r.failTTL)
		}
		r.inflight = nil
		r.mu.Unlock()
		f.tok, f.err = t, err
		close(f.done)
	}()
	return f
}

// refreshShared runs (or joins) the shared fetch for the background loop.
func (r *refresher) refreshShared(ctx context.Context) error {
	r.mu.Lock()
	f := r.startLocked(true)
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh fetches and stores a new token, recording the outcome.
func (r *refresher) refresh(ctx context.Context, background bool) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	t, err := r.fetch(ctx)
	if err == nil && (t == nil || t.AccessToken == "") {
		err = errors.New("token endpoint returned no access token")
	}
	recordRefresh(ctx, r.source, err)
	ev := RefreshEvent{Source: r.source, Err: err, Background: background}
	if err == nil {
		r.set(t)
		ev.Expiry = t.Expiry
	} else {
		r.log.Warn("system token refresh failed", "source", r.source, "background", background, "error", err)
	}
	if r.notify != nil {
		r.notify(ev)
	}
	return t, err
}

// run refreshes ahead of expiry until ctx ends. While the token endpoint
// fails it retries with jittered exponential backoff; the still-valid token
// keeps being served meanwhile.
func (r *refresher) run(ctx context.Context) {
	backoff := r.retryMin
	for {
		_, at := r.current()
		if at.IsZero() {
			<-ctx.Done() // the token does not expire: nothing to do
			return
		}
		if !sleepUntil(ctx, at) {
			return
		}
		for {
			err := r.refreshShared(ctx)
			if err == nil {
				backoff = r.retryMin
				break
			}
			if ctx.Err() != nil {
				return
			}
			if !sleepFor(ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, r.retryMax)
		}
		// A token that is due again at once (a tiny lifetime, clock skew)
		// must not turn this loop into a busy one.
		if !sleepFor(ctx, r.retryMin) {
			return
		}
	}
}

// jitter spreads d over [d/2, d] so that replicas hit by the same outage do
// not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	return sleepFor(ctx, time.Until(t))
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

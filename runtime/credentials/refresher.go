package credentials

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

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

// refresher holds the system token. Requests read it under a read lock and
// never wait for a refresh while it is valid; a goroutine replaces it before
// it expires, retrying with backoff while the token endpoint is down.
type refresher struct {
	source   string
	fetch    fetchFunc
	retryMin time.Duration
	retryMax time.Duration
	timeout  time.Duration
	log      *slog.Logger
	notify   func(RefreshEvent)

	mu        sync.RWMutex
	tok       *oauth2.Token
	refreshAt time.Time // zero: never

	fetchMu sync.Mutex // one blocking fetch at a time
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
	r.mu.Unlock()
}

func valid(t *oauth2.Token) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || time.Now().Before(t.Expiry))
}

// Token returns the current token, fetching one (single flight) only when
// there is no valid token.
func (r *refresher) Token(ctx context.Context) (*oauth2.Token, error) {
	if t, _ := r.current(); valid(t) {
		return t, nil
	}
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	if t, _ := r.current(); valid(t) {
		return t, nil
	}
	return r.refresh(ctx, false)
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

// run refreshes ahead of expiry until ctx ends.
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
			if _, err := r.refresh(ctx, true); err == nil {
				backoff = r.retryMin
				break
			}
			if !sleepFor(ctx, backoff) {
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

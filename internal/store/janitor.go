package store

import (
	"context"
	"time"
)

// Janitor purges expired responses from s every interval (zero means an
// hour) until ctx ends, starting with one purge at once. It runs in the
// caller's goroutine: start it with `go store.Janitor(ctx, s, 0, logErr)`
// and it ends with ctx. onErr (may be nil) hears about failed purges; the
// next tick tries again.
func Janitor(ctx context.Context, s Store, interval time.Duration, onErr func(error)) {
	if interval <= 0 {
		interval = time.Hour
	}
	if IsOff(s) {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.PurgeExpired(ctx, time.Now()); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

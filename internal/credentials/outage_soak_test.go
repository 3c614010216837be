//go:build soak

package credentials_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/faultproxy"
	"github.com/agentrt/agentrt/internal/httperr"
)

// TestOutageSoak is the token-endpoint outage figure of BENCHMARKS.md. It
// is built only with the soak tag and reads the outage length from
// AGENTRT_OUTAGE (e.g. 5m):
//
//	AGENTRT_OUTAGE=5m go test -tags soak -run TestOutageSoak -v -timeout 30m ./internal/credentials/
//
// Under steady load (4 workers, one call each per 10ms) the token endpoint
// answers 503 for the whole outage. With a valid cached token (its
// background refresh falls inside the outage) no call may fail; without one
// every call must be a 503 with Retry-After within 1s.
func TestOutageSoak(t *testing.T) {
	outage, err := time.ParseDuration(os.Getenv("AGENTRT_OUTAGE"))
	if err != nil || outage <= 0 {
		t.Fatal("set AGENTRT_OUTAGE (e.g. 5m) to the outage length")
	}
	ttl := (outage * 3 / 2).Round(time.Second) // refresh due at 3/4 of the outage
	type result struct {
		calls, failed, unavailable int
		lat                        []time.Duration
	}
	load := func(s *credentials.System, d time.Duration) result {
		var mu sync.Mutex
		var r result
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for range 4 {
			wg.Go(func() {
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for time.Now().Before(end) {
					<-tick.C
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					start := time.Now()
					err := spMe(ctx, s)
					lat := time.Since(start)
					cancel()
					mu.Lock()
					r.calls++
					r.lat = append(r.lat, lat)
					if err != nil {
						r.failed++
						if e := httperr.From(err); e.Status == http.StatusServiceUnavailable && e.RetryAfter > 0 {
							r.unavailable++
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(r.lat)
		return r
	}
	pct := func(l []time.Duration, p float64) time.Duration {
		if len(l) == 0 {
			return 0
		}
		return l[min(len(l)-1, int(float64(len(l))*p))]
	}

	// With a valid cached token.
	p := devBehind(t, ttl)
	s, first, events := m2m(t, p.URL, credentials.SystemOptions{})
	p.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusServiceUnavailable), For: outage})
	r := load(s, outage+outage/10)
	refreshed := false
	for len(events) > 0 {
		if ev := <-events; ev.Err == nil && ev.Background {
			refreshed = true
		}
	}
	t.Logf("valid cached token: outage %s, token ttl %s: %d calls, %d failed, p50 %s p99 %s max %s, token endpoint calls %d, refreshed before expiry %v (expiry %s)",
		outage, ttl, r.calls, r.failed, pct(r.lat, .5), pct(r.lat, .99), r.lat[len(r.lat)-1], p.Count(tokenPath), refreshed, time.Until(first.Expiry).Round(time.Second))
	if r.failed != 0 || !refreshed {
		t.Errorf("with a valid token: %d failed calls, refreshed %v", r.failed, refreshed)
	}

	// Without a valid token.
	p2 := devBehind(t, 2*time.Second)
	s2, first2, _ := m2m(t, p2.URL, credentials.SystemOptions{})
	p2.Add(faultproxy.Rule{Prefix: tokenPath, Fault: faultproxy.Status(http.StatusServiceUnavailable)})
	waitPast(first2.Expiry)
	before := p2.Count(tokenPath)
	r = load(s2, outage)
	t.Logf("no valid token: outage %s: %d calls, %d failed, %d were 503 + Retry-After, p50 %s p99 %s max %s, token endpoint calls %d",
		outage, r.calls, r.failed, r.unavailable, pct(r.lat, .5), pct(r.lat, .99), r.lat[len(r.lat)-1], p2.Count(tokenPath)-before)
	if r.unavailable != r.calls || r.lat[len(r.lat)-1] >= time.Second {
		t.Errorf("without a token: %d of %d calls were 503, max latency %s", r.unavailable, r.calls, r.lat[len(r.lat)-1])
	}
}

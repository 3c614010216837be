package credentials

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestExchangeCacheExpires(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "x", "token_type": "Bearer", "expires_in": 600})
	}))
	defer srv.Close()
	x, err := newExchanger(srv.URL, []string{"genie"}, ExchangeOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	x.now = func() time.Time { return now }
	c := &caller{token: "t", fingerprint: Fingerprint("t")}
	for range 3 {
		if _, err := x.token(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("%d exchanges, want 1", n.Load())
	}
	now = now.Add(590 * time.Second) // within the early-expiry margin
	if _, err := x.token(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d exchanges after expiry, want 2", n.Load())
	}
}

package credentials

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
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
	c := &caller{token: "t", key: KeyOf("t")}
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

// The cache is keyed by the full hash of the inbound token: a caller whose
// short fingerprint equals alice's (forged here; logs and spans show it)
// gets an exchange of its own token, never alice's exchanged token.
func TestExchangeForgedFingerprint(t *testing.T) {
	var subjects []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		subjects = append(subjects, r.PostForm.Get("subject_token"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "exchanged-" + r.PostForm.Get("subject_token"), "token_type": "Bearer", "expires_in": 600})
	}))
	defer srv.Close()
	x, err := newExchanger(srv.URL, []string{"genie"}, ExchangeOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := &caller{token: "alice-token", key: KeyOf("alice-token")}
	if tok, err := x.token(context.Background(), alice); err != nil || tok != "exchanged-alice-token" {
		t.Fatalf("alice: %q, %v", tok, err)
	}
	// A credential whose key shares the fingerprint's bytes with alice's.
	forged := &caller{token: "mallory-token", key: KeyOf("mallory-token")}
	copy(forged.key[:6], alice.key[:6])
	if forged.fingerprint() != alice.fingerprint() {
		t.Fatal("the forged credential's fingerprint differs from alice's")
	}
	tok, err := x.token(context.Background(), forged)
	if err != nil || tok != "exchanged-mallory-token" {
		t.Fatalf("forged fingerprint got %q, %v; want its own exchange", tok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(subjects) != 2 || subjects[1] != "mallory-token" {
		t.Fatalf("token endpoint saw %q", subjects)
	}
}

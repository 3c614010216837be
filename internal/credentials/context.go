package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"

	"github.com/agentrt/agentrt/agent"
)

type callerKey struct{}

// caller is the caller's credential in a ctx: the raw token and its key,
// computed once per request so that caches never need the token. It is
// itself the context.Context that carries it, so that attaching a caller
// costs one allocation, not a value and a context.
type caller struct {
	context.Context
	token string
	key   Key
}

func (c *caller) Value(k any) any {
	if k == (callerKey{}) {
		return c
	}
	return c.Context.Value(k)
}

// String and Format stand in for the token wherever a ctx is printed
// (context.WithValue's context printed its value's type only): without
// them fmt would print the struct, token included.
func (c *caller) String() string {
	return fmt.Sprint(c.Context) + ".WithCaller(credential " + c.fingerprint() + ")"
}

func (c *caller) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// fingerprint is made when a log line or a span asks for it, not on every
// request.
func (c *caller) fingerprint() string { return c.key.fingerprint() }

// Key is the full SHA-256 of a credential. Caches that hold per-credential
// state are keyed by it, never by a shorter fingerprint: a hit then means
// the presented credential is the one that filled the entry.
type Key [sha256.Size]byte

// KeyOf returns the key of token.
func KeyOf(token string) Key { return sha256.Sum256([]byte(token)) }

// WithCaller returns a copy of ctx carrying the caller's credential for the
// user client. An empty token leaves ctx without one.
func WithCaller(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return &caller{Context: ctx, token: token, key: KeyOf(token)}
}

// CallerToken returns the caller credential in ctx ("" when none). Only the
// identity verifier needs it; everything else uses the clients.
func CallerToken(ctx context.Context) string {
	if c, ok := callerFrom(ctx); ok {
		return c.token
	}
	return ""
}

// CallerKey returns the key of the caller credential in ctx.
func CallerKey(ctx context.Context) (Key, bool) {
	if c, ok := callerFrom(ctx); ok {
		return c.key, true
	}
	return Key{}, false
}

// HasCaller reports whether ctx carries a caller credential.
func HasCaller(ctx context.Context) bool {
	_, ok := callerFrom(ctx)
	return ok
}

// CallerFingerprint returns the fingerprint of the caller credential in ctx,
// or "" when there is none. It is safe to log.
func CallerFingerprint(ctx context.Context) string {
	if c, ok := callerFrom(ctx); ok {
		return c.fingerprint()
	}
	return ""
}

func callerFrom(ctx context.Context) (*caller, bool) {
	if ctx == nil {
		return nil, false
	}
	c, ok := ctx.Value(callerKey{}).(*caller)
	return c, ok && c != nil && c.token != ""
}

// Fingerprint returns a short, stable, non-reversible stand-in for a token,
// safe for logs. It is too short to key a cache: use Key.
func Fingerprint(token string) string { return KeyOf(token).fingerprint() }

// fingerprint is the first six bytes of the key, in hex.
func (k Key) fingerprint() string { return hex.EncodeToString(k[:6]) }

// RequestIDHeader carries the inbound request id on outgoing workspace calls.
// The id is the RequestID of the request environment in the call's ctx
// (agent.NewContext), the one request-scoped carrier.
const RequestIDHeader = "X-Request-Id"

// setRequestID copies the request id from the request's ctx onto r unless r
// already has one.
func setRequestID(r *http.Request) {
	if r.Header.Get(RequestIDHeader) != "" {
		return
	}
	if id := agent.FromContext(r.Context()).RequestID; id != "" {
		r.Header.Set(RequestIDHeader, id)
	}
}

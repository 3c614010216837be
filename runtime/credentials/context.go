package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/agentrt/agentrt/agent"
)

type callerKey struct{}

// caller is the ctx value: the raw token plus its fingerprint, computed once
// per request so log fields never need the token.
type caller struct {
	token       string
	fingerprint string
}

// WithCaller returns a copy of ctx carrying the caller's credential for the
// user client. An empty token leaves ctx without one.
func WithCaller(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return context.WithValue(ctx, callerKey{}, &caller{token: token, fingerprint: Fingerprint(token)})
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
		return c.fingerprint
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
// safe for logs and cache keys.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// RequestIDHeader carries the inbound request id on outgoing workspace calls.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// WithRequestID returns a copy of ctx whose workspace calls carry id in
// X-Request-Id. Without it the id of the request environment
// (agent.EnvFrom) is used.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok && id != "" {
		return id
	}
	return agent.EnvFrom(ctx).RequestID
}

// setRequestID copies the request id from the request's ctx onto r unless r
// already has one.
func setRequestID(r *http.Request) {
	if r.Header.Get(RequestIDHeader) != "" {
		return
	}
	if id := requestID(r.Context()); id != "" {
		r.Header.Set(RequestIDHeader, id)
	}
}

package credentials_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/credentials"
)

type parentKey struct{}

// The caller's ctx is a context of its own type: it must behave as
// context.WithValue's would, for values, cancellation, deadlines and the
// contexts derived from it.
func TestWithCallerBehavesAsAValueContext(t *testing.T) {
	parent, cancel := context.WithTimeoutCause(context.WithValue(context.Background(), parentKey{}, "p"), time.Hour, errors.New("cause"))
	ctx := credentials.WithCaller(parent, "tok-1")
	if got := ctx.Value(parentKey{}); got != "p" {
		t.Fatalf("parent value = %v", got)
	}
	if credentials.CallerToken(ctx) != "tok-1" || !credentials.HasCaller(ctx) {
		t.Fatal("caller token lost")
	}
	if k, ok := credentials.CallerKey(ctx); !ok || k != credentials.KeyOf("tok-1") {
		t.Fatal("caller key lost")
	}
	if fp := credentials.CallerFingerprint(ctx); fp != credentials.Fingerprint("tok-1") || len(fp) != 12 {
		t.Fatalf("fingerprint = %q", fp)
	}
	if d1, _ := ctx.Deadline(); d1.IsZero() {
		t.Fatal("deadline lost")
	}
	// An inner caller wins; the outer stays in its own ctx.
	inner := credentials.WithCaller(ctx, "tok-2")
	if credentials.CallerToken(inner) != "tok-2" || credentials.CallerToken(ctx) != "tok-1" {
		t.Fatal("nested callers mixed up")
	}
	// Derived contexts register with the parent's cancellation directly,
	// without a goroutine watching it.
	before := runtime.NumGoroutine()
	child, stop := context.WithCancel(inner)
	defer stop()
	if n := runtime.NumGoroutine(); n != before {
		t.Fatalf("deriving a context started %d goroutines", n-before)
	}
	cancel()
	<-child.Done()
	if context.Cause(child).Error() != "context canceled" || !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("cause %v, err %v", context.Cause(child), ctx.Err())
	}
	// Printed, a ctx shows the credential's fingerprint, never the token.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, c := range []any{ctx, inner, child} {
			if out := fmt.Sprintf(verb, c); strings.Contains(out, "tok-") || strings.Contains(out, hex.EncodeToString([]byte("tok-"))) {
				t.Errorf("%s of a caller's ctx shows the token: %s", verb, out)
			}
		}
	}
	if out := fmt.Sprint(ctx); !strings.Contains(out, credentials.Fingerprint("tok-1")) {
		t.Errorf("a caller's ctx prints as %s, without its fingerprint", out)
	}
	if credentials.WithCaller(parent, "") != parent || credentials.HasCaller(parent) {
		t.Fatal("an empty token must leave ctx as it is")
	}
}

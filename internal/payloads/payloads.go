// Package payloads carries, per request, whether spans may record request
// input and tool arguments and results (serve --trace-payloads). It is off
// by default, since payloads may hold personal data. The host sets it when
// a request begins; agent/loop reads it when it records a tool call.
package payloads

import "context"

type key struct{}

// NewContext returns a copy of ctx that says whether payloads are recorded.
func NewContext(ctx context.Context, on bool) context.Context {
	return context.WithValue(ctx, key{}, on)
}

// Enabled reports whether ctx says payloads are recorded (false when it
// says nothing).
func Enabled(ctx context.Context) bool {
	on, _ := ctx.Value(key{}).(bool)
	return on
}

package telemetry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// samplerFromEnv reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as
// the SDK would, with one difference: a caller's traceparent is untrusted
// input, so its sampled flag decides nothing unless the operator picks a
// parentbased_* sampler. Otherwise a caller could make every request
// recorded (flag 01, or a trace id that a ratio sampler always keeps) or
// none (flag 00). The default, unset, samples every request.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	ratio := func() (float64, error) {
		arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			return 0, &ConfigError{Variable: "OTEL_TRACES_SAMPLER_ARG", Value: arg, Err: errors.New("want a ratio from 0 to 1")}
		}
		return r, nil
	}
	switch name {
	case "", "always_on":
		return newUntrustedParent(1), nil
	case "always_off":
		return newUntrustedParent(0), nil
	case "traceidratio":
		r, err := ratio()
		return newUntrustedParent(r), err
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), err
	}
	return nil, &ConfigError{Variable: "OTEL_TRACES_SAMPLER", Value: name, Err: errors.New("want always_on, always_off, " +
		"traceidratio, or parentbased_always_on, parentbased_always_off, parentbased_traceidratio to honour callers' traceparent")}
}

// untrustedParent samples a fraction ratio of the spans that start a local
// trace part (no parent, or a remote one) and makes every other span follow
// its local parent, so recorded traces stay whole. A remote parent still
// makes the span its child (the trace id and parent id are kept); only its
// sampled flag is ignored. With a remote parent the trace id is the
// caller's choice too, so the ratio is drawn at random rather than from the
// trace id as TraceIDRatioBased does.
type untrustedParent struct {
	ratio float64
	root  sdktrace.Sampler // for new traces
}

func newUntrustedParent(ratio float64) untrustedParent {
	return untrustedParent{ratio: ratio, root: sdktrace.TraceIDRatioBased(ratio)}
}

func (s untrustedParent) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	var sample bool
	switch {
	case psc.IsValid() && !psc.IsRemote():
		sample = psc.IsSampled()
	case s.ratio >= 1:
		sample = true
	case s.ratio <= 0:
		sample = false
	case psc.IsValid():
		sample = rand.Float64() < s.ratio
	default:
		// Our own new trace id: random already, and consistent with what
		// other services deciding by trace id would pick.
		return s.root.ShouldSample(p)
	}
	d := sdktrace.Drop
	if sample {
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: psc.TraceState()}
}

func (s untrustedParent) Description() string {
	return fmt.Sprintf("UntrustedParent{ratio:%g}", s.ratio)
}

package telemetry

import (
	"errors"
	"net/http/httptest"
	"os"
	"testing"

	"go.opentelemetry.io/otel"
)

// TestCallerCannotChooseSampling: a caller's traceparent makes the server
// span its child, but its sampled flag (and, for a ratio, its trace id)
// decides nothing unless the operator chose a parentbased_* sampler.
func TestCallerCannotChooseSampling(t *testing.T) {
	const (
		sampled    = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		notSampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
		lowTraceID = "00-0af7651916cd43dd0000000000000000-b7ad6b7169203331-01" // TraceIDRatioBased keeps it at any ratio > 0
	)
	tests := []struct {
		name        string
		env         map[string]string
		traceparent string
		recorded    bool
	}{
		{"never-sample root ignores a sampled caller", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, sampled, false},
		{"zero ratio ignores a sampled caller", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, sampled, false},
		{"tiny ratio ignores a caller's chosen trace id", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1e-12"}, lowTraceID, false},
		{"default records a caller asking not to be", nil, notSampled, true},
		{"default records without a caller trace", nil, "", true},
		{"opt-in: parentbased honours a sampled caller", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, sampled, true},
		{"opt-in: parentbased honours an unsampled caller", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, notSampled, false},
		{"opt-in: parentbased root without a caller trace", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t, tc.env)
			_, mem := setupMem(t, Options{})
			r := httptest.NewRequest("POST", "/responses", nil)
			if tc.traceparent != "" {
				r.Header.Set("traceparent", tc.traceparent)
			}
			s := NewServer()
			ctx, q := s.Start(r.Context(), r, "/responses")
			_, child := otel.Tracer("test").Start(ctx, "predict")
			child.End()
			q.End(200)
			spans := mem.GetSpans()
			if got := len(spans) > 0; got != tc.recorded {
				t.Fatalf("recorded %d spans, want recorded=%v", len(spans), tc.recorded)
			}
			if !tc.recorded {
				return
			}
			if len(spans) != 2 {
				t.Errorf("spans = %d, want the server span and its child (a trace stays whole)", len(spans))
			}
			if tc.traceparent != "" {
				server := spans[len(spans)-1]
				if server.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || !server.Parent.IsRemote() {
					t.Errorf("server span %s is not the caller's child (parent %s)", server.SpanContext.TraceID(), server.Parent.SpanID())
				}
			}
		})
	}
}

func TestSamplerConfigErrors(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_TRACES_SAMPLER": "sometimes"},
		{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
		{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "ten percent"},
	} {
		cleanEnv(t, env)
		_, err := Setup(t.Context(), Options{Getenv: os.Getenv})
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%v: err = %v, want a *ConfigError", env, err)
		}
	}
}

package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// instrumented records every call's latency (agentrt.store.duration, in
// seconds) and its failures (agentrt.store.errors), by op and backend.
// Outcomes that are answers, not failures — not found, finished, a
// sequence or size refusal, the caller's cancellation or deadline — are
// not errors.
type instrumented struct {
	next    Store
	backend string
	dur     metric.Float64Histogram
	errs    metric.Int64Counter
	sets    map[string]metric.MeasurementOption // op → attributes, built once
}

const meterName = "github.com/agentrt/agentrt/internal/store"

var ops = []string{"create", "get", "update", "delete", "input_items", "history", "items", "last_in_conversation",
	"append_event", "events", "wait_events", "request_cancel", "wait_cancel", "renew_lease", "end_lapsed", "expire_leases", "purge_expired"}

func instrument(s Store, backend string, m metric.Meter) Store {
	if m == nil {
		m = otel.GetMeterProvider().Meter(meterName)
	}
	// Instrument creation fails only on invalid names; a nil instrument is
	// replaced by the API's no-op one, so recording stays safe.
	dur, _ := m.Float64Histogram("agentrt.store.duration", metric.WithUnit("s"),
		metric.WithDescription("Latency of response store operations."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	errs, _ := m.Int64Counter("agentrt.store.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Response store operations that failed (store outages, not not-found answers)."))
	in := &instrumented{next: s, backend: backend, dur: dur, errs: errs, sets: map[string]metric.MeasurementOption{}}
	for _, op := range ops {
		in.sets[op] = metric.WithAttributeSet(attribute.NewSet(attribute.String("op", op), attribute.String("backend", backend)))
	}
	return in
}

// Waits are recorded only as errors: their duration is the client's.
func (in *instrumented) done(ctx context.Context, op string, start time.Time, err error) {
	set := in.sets[op]
	if !start.IsZero() {
		in.dur.Record(ctx, time.Since(start).Seconds(), set)
	}
	// A wait or call the caller gave up on is the caller's doing.
	if isFailure(err) && ctx.Err() == nil {
		in.errs.Add(ctx, 1, set)
	}
}

func isFailure(err error) bool {
	var tl *TooLargeError
	var se *SequenceError
	return err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinished) && !errors.Is(err, ErrExists) &&
		!errors.Is(err, ErrBadCursor) && !errors.Is(err, ErrAnonymous) && !errors.As(err, &tl) && !errors.As(err, &se)
}

func (in *instrumented) Create(ctx context.Context, r *Response) error {
	start := time.Now()
	err := in.next.Create(ctx, r)
	in.done(ctx, "create", start, err)
	return err
}

func (in *instrumented) Get(ctx context.Context, owner, id string) (*Response, error) {
	start := time.Now()
	v, err := in.next.Get(ctx, owner, id)
	in.done(ctx, "get", start, err)
	return v, err
}

func (in *instrumented) Update(ctx context.Context, owner, id string, u Update) error {
	start := time.Now()
	err := in.next.Update(ctx, owner, id, u)
	in.done(ctx, "update", start, err)
	return err
}

func (in *instrumented) Delete(ctx context.Context, owner, id string) error {
	start := time.Now()
	err := in.next.Delete(ctx, owner, id)
	in.done(ctx, "delete", start, err)
	return err
}

func (in *instrumented) InputItems(ctx context.Context, owner, id string, o ListOptions) (*ItemPage, error) {
	start := time.Now()
	v, err := in.next.InputItems(ctx, owner, id, o)
	in.done(ctx, "input_items", start, err)
	return v, err
}

func (in *instrumented) History(ctx context.Context, owner, id string) ([]Item, error) {
	start := time.Now()
	v, err := in.next.History(ctx, owner, id)
	in.done(ctx, "history", start, err)
	return v, err
}

func (in *instrumented) Items(ctx context.Context, owner string, ids []string) ([]Item, error) {
	start := time.Now()
	v, err := in.next.Items(ctx, owner, ids)
	in.done(ctx, "items", start, err)
	return v, err
}

func (in *instrumented) LastInConversation(ctx context.Context, owner, conversationID string) (*Response, error) {
	start := time.Now()
	v, err := in.next.LastInConversation(ctx, owner, conversationID)
	in.done(ctx, "last_in_conversation", start, err)
	return v, err
}

func (in *instrumented) AppendEvent(ctx context.Context, owner, id string, seq int64, data json.RawMessage) error {
	start := time.Now()
	err := in.next.AppendEvent(ctx, owner, id, seq, data)
	in.done(ctx, "append_event", start, err)
	return err
}

func (in *instrumented) Events(ctx context.Context, owner, id string, after int64, limit int) ([]Event, error) {
	start := time.Now()
	v, err := in.next.Events(ctx, owner, id, after, limit)
	in.done(ctx, "events", start, err)
	return v, err
}

func (in *instrumented) WaitEvents(ctx context.Context, owner, id string, after int64) (Progress, error) {
	v, err := in.next.WaitEvents(ctx, owner, id, after)
	in.done(ctx, "wait_events", time.Time{}, err)
	return v, err
}

func (in *instrumented) RequestCancel(ctx context.Context, owner, id string) (Status, error) {
	start := time.Now()
	v, err := in.next.RequestCancel(ctx, owner, id)
	in.done(ctx, "request_cancel", start, err)
	return v, err
}

func (in *instrumented) WaitCancel(ctx context.Context, owner, id string) error {
	err := in.next.WaitCancel(ctx, owner, id)
	in.done(ctx, "wait_cancel", time.Time{}, err)
	return err
}

func (in *instrumented) RenewLease(ctx context.Context, owner, id string) (time.Time, error) {
	start := time.Now()
	v, err := in.next.RenewLease(ctx, owner, id)
	in.done(ctx, "renew_lease", start, err)
	return v, err
}

func (in *instrumented) EndLapsed(ctx context.Context, owner, id string, fin LapseFunc) (bool, error) {
	start := time.Now()
	v, err := in.next.EndLapsed(ctx, owner, id, fin)
	in.done(ctx, "end_lapsed", start, err)
	return v, err
}

func (in *instrumented) ExpireLeases(ctx context.Context, fin LapseFunc) (int64, error) {
	start := time.Now()
	v, err := in.next.ExpireLeases(ctx, fin)
	in.done(ctx, "expire_leases", start, err)
	return v, err
}

func (in *instrumented) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	start := time.Now()
	v, err := in.next.PurgeExpired(ctx, now)
	in.done(ctx, "purge_expired", start, err)
	return v, err
}

func (in *instrumented) Close() error { return in.next.Close() }

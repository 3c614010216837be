// Package httpretry is an http.RoundTripper that retries what is safe to
// retry, and nothing else: 429 and 503 answers (the server did not process
// the request), and connection failures that prove the request was not
// processed (a failed dial or write) or that hit an idempotent request. It
// waits with jittered exponential backoff, honours Retry-After, and never
// waits past the request's deadline: when the wait would, it gives up at once
// with an error that says how long the server asked to wait.
//
// Requests with a body are retried only when the body can be replayed
// (Request.GetBody). A response handed to the caller is never retried, so a
// stream is retried only before its first byte reached the caller.
package httpretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"syscall"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
)

// Defaults of Transport's zero fields.
const (
	DefaultMaxAttempts = 4
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
	DefaultMaxWait     = time.Minute
)

// Transport retries requests sent through Base. Its zero value (with a nil
// Base meaning http.DefaultTransport) is ready to use.
type Transport struct {
	Base http.RoundTripper
	// MaxAttempts counts the first attempt (default DefaultMaxAttempts).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the jittered exponential backoff used
	// when the server gives no Retry-After.
	MinBackoff, MaxBackoff time.Duration
	// MaxWait is the longest single wait, Retry-After included; a longer
	// Retry-After ends the retries (default DefaultMaxWait). The request's
	// deadline, when sooner, is the bound.
	MaxWait time.Duration
	// ErrorOnGiveUp returns an *Error instead of the last 429/503 response,
	// and reports connection failures as an *Error whose message the
	// databricks SDK does not recognise as transient. Set it under a client
	// that retries by itself (the SDK) so that nothing is retried twice and
	// a non-idempotent call is never repeated after an unknown outcome.
	ErrorOnGiveUp bool
}

// Error is a request that could not be completed: the server kept answering
// 429/503 (Status), or the connection failed (Err). RetryAfter tells the
// caller's caller when to try again, so the HTTP layer can answer 503 with
// Retry-After.
type Error struct {
	Status   int           // 429 or 503; 0 for a connection failure
	Wait     time.Duration // the server's last Retry-After; 0 if none
	Attempts int
	Err      error // the connection failure, when Status is 0
}

func (e *Error) Error() string {
	if e.Status != 0 {
		s := fmt.Sprintf("upstream answered HTTP %d after %d attempt(s)", e.Status, e.Attempts)
		if e.Wait > 0 {
			s += fmt.Sprintf(" and asks to retry after %s, beyond what this request can wait", e.Wait)
		}
		return s
	}
	// The cause is described, not quoted: its text ("connection reset by
	// peer") would make the SDK retry the call once more.
	return fmt.Sprintf("upstream connection failed (%s) after %d attempt(s)", describe(e.Err), e.Attempts)
}

// Unwrap returns the connection failure, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, databricks.ErrTooManyRequests) and
// ErrTemporarilyUnavailable hold as they would for the SDK's own error.
func (e *Error) Is(target error) bool {
	switch e.Status {
	case http.StatusTooManyRequests:
		return target == apierr.ErrTooManyRequests
	case http.StatusServiceUnavailable:
		return target == apierr.ErrTemporarilyUnavailable
	}
	return false
}

// RetryAfter is when the request may be tried again (at least a second).
func (e *Error) RetryAfter() time.Duration { return max(e.Wait, time.Second) }

// Report receives the outcome of the retries of one call; see WithReport.
type Report struct {
	Attempts   int
	Status     int           // status of the last response (0: none)
	RetryAfter time.Duration // the last Retry-After seen (0: none)
}

type reportKey struct{}
type activeKey struct{}

// WithReport returns a ctx whose requests record their retries in the
// returned Report, so that a caller that gets the last 429/503 back (as a
// library error) can still tell its own caller when to retry.
func WithReport(ctx context.Context) (context.Context, *Report) {
	r := &Report{}
	return context.WithValue(ctx, reportKey{}, r), r
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	ctx := req.Context()
	// An outer Transport already retries this call: one attempt here.
	if ctx.Value(activeKey{}) != nil {
		return base.RoundTrip(req)
	}
	report, _ := ctx.Value(reportKey{}).(*Report)
	maxAttempts := t.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		maxAttempts = 1 // the body cannot be sent twice
	}
	ctx = context.WithValue(ctx, activeKey{}, true)

	for attempt := 1; ; attempt++ {
		r := req.WithContext(ctx)
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		var wrote, wroteErr bool
		r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) { wrote, wroteErr = true, i.Err != nil },
		}))
		resp, err := base.RoundTrip(r)
		if report != nil {
			report.Attempts = attempt
		}
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil || !connError(err) {
				return nil, err
			}
			if !retriableConnError(req, err, wrote, wroteErr) || attempt >= maxAttempts {
				return nil, t.giveUpErr(err, attempt)
			}
			wait = t.backoff(attempt)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			ra := retryAfter(resp.Header, time.Now())
			if report != nil {
				report.Status, report.RetryAfter = resp.StatusCode, ra
			}
			wait = t.backoff(attempt)
			if ra > 0 {
				wait = ra
			}
			if attempt >= maxAttempts || !t.canWait(ctx, wait) {
				return t.giveUp(resp, ra, attempt)
			}
			drain(resp)
		default:
			if report != nil {
				report.Status, report.RetryAfter = resp.StatusCode, 0
			}
			return resp, nil
		}
		if !t.canWait(ctx, wait) {
			return nil, t.giveUpErr(err, attempt)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

func (t *Transport) giveUp(resp *http.Response, ra time.Duration, attempts int) (*http.Response, error) {
	if !t.ErrorOnGiveUp {
		return resp, nil
	}
	drain(resp)
	return nil, &Error{Status: resp.StatusCode, Wait: ra, Attempts: attempts}
}

func (t *Transport) giveUpErr(err error, attempts int) error {
	if !t.ErrorOnGiveUp {
		return err
	}
	return &Error{Attempts: attempts, Err: err}
}

// canWait reports whether a wait of d ends before the request's deadline
// and within MaxWait.
func (t *Transport) canWait(ctx context.Context, d time.Duration) bool {
	maxWait := t.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	if d > maxWait {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	return true
}

// backoff is exponential with "equal jitter": half fixed, half random, so
// that replicas hit by the same outage do not retry in step.
func (t *Transport) backoff(attempt int) time.Duration {
	lo, hi := t.MinBackoff, t.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi < lo {
		hi = max(DefaultMaxBackoff, lo)
	}
	d := lo << min(attempt-1, 20)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// connError reports whether err is a failure of the connection (as
// opposed to a refusal by an inner RoundTripper, such as missing
// credentials, which must not be retried).
func connError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// retriableConnError decides whether a failed attempt may be sent again: if
// the request provably never reached the server (the dial or the write
// failed), always; otherwise only when the method is idempotent.
func retriableConnError(req *http.Request, err error, wrote, wroteErr bool) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if wrote && wroteErr {
		return true
	}
	return idempotent(req)
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

func describe(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed before the response"
	case errors.As(err, &op):
		return op.Op + " failed"
	}
	return "failed"
}

// drain lets the connection be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

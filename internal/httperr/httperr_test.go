package httperr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/httperr"
)

func TestBodyShape(t *testing.T) {
	tests := []struct {
		err       *httperr.Error
		status    int
		code, typ string
		param     any
	}{
		{httperr.BadRequest("input[0].role", "bad \"role\"\n"), 400, "BAD_REQUEST", "invalid_request_error", "input[0].role"},
		{httperr.Unauthenticated("no credential"), 401, "UNAUTHENTICATED", "authentication_error", nil},
		{httperr.PermissionDenied("no"), 403, "PERMISSION_DENIED", "permission_error", nil},
		{httperr.NotFound("no route"), 404, "ENDPOINT_NOT_FOUND", "not_found_error", nil},
		{httperr.MethodNotAllowed("GET"), 405, "METHOD_NOT_ALLOWED", "invalid_request_error", nil},
		{httperr.TooLarge("big"), 413, "REQUEST_TOO_LARGE", "invalid_request_error", nil},
		{httperr.UnsupportedMediaType("xml"), 415, "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error", nil},
		{httperr.Unavailable("busy", 3), 503, "TEMPORARILY_UNAVAILABLE", "server_error", nil},
		{httperr.Timeout("slow"), 504, "DEADLINE_EXCEEDED", "timeout_error", nil},
		{httperr.Internal("oops"), 500, "INTERNAL_ERROR", "server_error", nil},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		tc.err.Write(rec)
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%v: status %d", tc.err, rec.Code)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v", rec.Body, err)
		}
		inner := body["error"].(map[string]any)
		if body["error_code"] != tc.code || body["message"] != tc.err.Message || inner["message"] != tc.err.Message ||
			inner["type"] != tc.typ || inner["code"] != tc.code || inner["param"] != tc.param {
			t.Errorf("body %s", rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	httperr.Unavailable("busy", 3).Write(rec)
	if rec.Header().Get("Retry-After") != "3" {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
}

func TestFrom(t *testing.T) {
	wrapped := fmt.Errorf("prepare: %w", httperr.Unauthenticated("missing token"))
	if e := httperr.From(wrapped); e.Status != http.StatusUnauthorized {
		t.Errorf("From kept status %d", e.Status)
	}
	var he *httperr.Error
	if !errors.As(wrapped, &he) || he.Message != "missing token" {
		t.Error("errors.As failed")
	}
	e := httperr.From(errors.New("dial tcp 10.0.0.1: token=abc"))
	if e.Status != 500 || e.Message != "internal error" {
		t.Errorf("From leaked %q", e.Message)
	}
}

type tempErr struct{ d time.Duration }

func (e tempErr) Error() string             { return "token endpoint https://internal/x: HTTP 503" }
func (e tempErr) RetryAfter() time.Duration { return e.d }

func TestFromRetryable(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {1500 * time.Millisecond, "2"}, {30 * time.Second, "30"}}
	for _, tc := range tests {
		err := fmt.Errorf("agent: model call: %w", fmt.Errorf("serving: %w", tempErr{tc.d}))
		e := httperr.From(err)
		rec := httptest.NewRecorder()
		e.Write(rec)
		if rec.Code != 503 || rec.Header().Get("Retry-After") != tc.want || e.Code != "TEMPORARILY_UNAVAILABLE" {
			t.Errorf("%s: %d Retry-After %q code %s", tc.d, rec.Code, rec.Header().Get("Retry-After"), e.Code)
		}
		if strings.Contains(rec.Body.String(), "internal") {
			t.Errorf("body leaks the cause: %s", rec.Body)
		}
	}
	// An explicit *Error in the chain keeps its status.
	if e := httperr.From(fmt.Errorf("%w: %w", httperr.Unauthenticated("no"), tempErr{})); e.Status != 401 {
		t.Errorf("status %d", e.Status)
	}
	if _, ok := httperr.As(errors.New("x")); ok {
		t.Error("As accepted a plain error")
	}
}

// Package httperr is the one error type the agentrt HTTP surface answers with.
// Its body is read by both client families: MLflow/Databricks clients look at
// error_code and message, OpenAI clients at the nested error object.
package httperr

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/agentrt/agentrt/internal/wireproto"
)

// Error is an HTTP error with the status it is sent with. Code is the
// Databricks/MLflow error code (BAD_REQUEST, …); Type is OpenAI's error type
// (invalid_request_error, …); Param names the offending request member.
type Error struct {
	Status  int
	Code    string
	Type    string
	Message string
	Param   string

	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Param != "" {
		return e.Message + " (" + e.Param + ")"
	}
	return e.Message
}

// New returns an error with the codes that go with status.
func New(status int, msg string) *Error {
	code, typ := codesFor(status)
	return &Error{Status: status, Code: code, Type: typ, Message: msg}
}

func codesFor(status int) (code, typ string) {
	switch status {
	case http.StatusBadRequest:
		return "BAD_REQUEST", "invalid_request_error"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED", "authentication_error"
	case http.StatusForbidden:
		return "PERMISSION_DENIED", "permission_error"
	case http.StatusNotFound:
		return "ENDPOINT_NOT_FOUND", "not_found_error"
	case http.StatusMethodNotAllowed:
		return "METHOD_NOT_ALLOWED", "invalid_request_error"
	case http.StatusRequestEntityTooLarge:
		return "REQUEST_TOO_LARGE", "invalid_request_error"
	case http.StatusUnsupportedMediaType:
		return "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error"
	case http.StatusTooManyRequests:
		return "REQUEST_LIMIT_EXCEEDED", "rate_limit_error"
	case http.StatusServiceUnavailable:
		return "TEMPORARILY_UNAVAILABLE", "server_error"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED", "timeout_error"
	}
	if status >= 500 {
		return "INTERNAL_ERROR", "server_error"
	}
	return "BAD_REQUEST", "invalid_request_error"
}

// BadRequest is a 400 naming the offending member (param may be empty).
func BadRequest(param, msg string) *Error {
	e := New(http.StatusBadRequest, msg)
	e.Param = param
	return e
}

// Unauthenticated is a 401: no or an invalid credential.
func Unauthenticated(msg string) *Error { return New(http.StatusUnauthorized, msg) }

// PermissionDenied is a 403.
func PermissionDenied(msg string) *Error { return New(http.StatusForbidden, msg) }

// NotFound is a 404.
func NotFound(msg string) *Error { return New(http.StatusNotFound, msg) }

// MethodNotAllowed is a 405.
func MethodNotAllowed(msg string) *Error { return New(http.StatusMethodNotAllowed, msg) }

// TooLarge is a 413.
func TooLarge(msg string) *Error { return New(http.StatusRequestEntityTooLarge, msg) }

// UnsupportedMediaType is a 415.
func UnsupportedMediaType(msg string) *Error { return New(http.StatusUnsupportedMediaType, msg) }

// Unavailable is a 503 asking the client to retry after retryAfter seconds.
func Unavailable(msg string, retryAfter int) *Error {
	e := New(http.StatusServiceUnavailable, msg)
	e.RetryAfter = retryAfter
	return e
}

// Timeout is a 504.
func Timeout(msg string) *Error { return New(http.StatusGatewayTimeout, msg) }

// Internal is a 500. Its message must not carry internal details.
func Internal(msg string) *Error { return New(http.StatusInternalServerError, msg) }

// Retryable is implemented by errors that mean a dependency of the request
// (the token endpoint, a model, the workspace) is temporarily unavailable and
// the same request may succeed after RetryAfter. Packages that must not
// import httperr report unavailability through it; As and From answer such
// an error, however deeply wrapped, with 503 and a Retry-After header.
type Retryable interface {
	error
	RetryAfter() time.Duration
}

// unavailableMessage is what the client is told for a Retryable error; the
// error's own text stays in the logs.
const unavailableMessage = "a service this request depends on is temporarily unavailable; retry later"

// As returns err as an *Error if it is or wraps one, or as a 503 with
// Retry-After if it wraps a Retryable; ok is false otherwise.
func As(err error) (e *Error, ok bool) {
	if errors.As(err, &e) {
		return e, true
	}
	var r Retryable
	if errors.As(err, &r) {
		return Unavailable(unavailableMessage, retryAfterSeconds(r.RetryAfter())), true
	}
	return nil, false
}

// retryAfterSeconds rounds up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	s := math.Ceil(d.Seconds())
	return int(min(max(s, 1), 24*3600))
}

// From returns err as an *Error (see As), otherwise a 500 with a generic
// message, so that internal details never reach clients.
func From(err error) *Error {
	if e, ok := As(err); ok {
		return e
	}
	return Internal("internal error")
}

// AppendBody appends the JSON body of e to b.
func (e *Error) AppendBody(b []byte) []byte {
	code, typ := e.Code, e.Type
	if code == "" || typ == "" {
		c, t := codesFor(e.Status)
		if code == "" {
			code = c
		}
		if typ == "" {
			typ = t
		}
	}
	b = append(b, `{"error_code":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"message":`...)
	b = wireproto.AppendString(b, e.Message)
	b = append(b, `,"error":{"message":`...)
	b = wireproto.AppendString(b, e.Message)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, typ)
	b = append(b, `,"code":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"param":`...)
	if e.Param == "" {
		b = append(b, "null"...)
	} else {
		b = wireproto.AppendString(b, e.Param)
	}
	return append(b, "}}"...)
}

// Body returns the JSON body of e.
func (e *Error) Body() []byte { return e.AppendBody(make([]byte, 0, 160+2*len(e.Message))) }

// Write sends e on w.
func (e *Error) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	_, _ = w.Write(e.Body())
}

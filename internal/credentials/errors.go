package credentials

import (
	"fmt"
	"net/http"

	"github.com/databricks/databricks-sdk-go/apierr"
)

// NoCallerError is returned when the user client is used with a context
// that carries no caller credential: outside a request, or in a request that
// came without one. It matches databricks.ErrUnauthenticated.
type NoCallerError struct {
	Method, Path string
}

func (e *NoCallerError) Error() string {
	return fmt.Sprintf("user client: no caller credential in context for %s %s (use the request's ctx; the user client never falls back to the service principal)", e.Method, e.Path)
}

// Unwrap makes errors.Is(err, databricks.ErrUnauthenticated) hold.
func (e *NoCallerError) Unwrap() error {
	return &apierr.APIError{ErrorCode: "UNAUTHENTICATED", StatusCode: http.StatusUnauthorized, Message: e.Error()}
}

// ScopeError is returned, before the request leaves the process, when the
// user client is asked for a route outside the agent's declared API scopes.
// It matches databricks.ErrPermissionDenied and unwraps to an
// *apierr.APIError with error code PERMISSION_DENIED, like the workspace's own
// refusal.
type ScopeError struct {
	Scope        string   // the scope the route needs (canonical name)
	Method, Path string   // the refused call
	Declared     []string // the agent's declared user API scopes
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("user client: %s %s requires API scope %q, which the agent does not declare (declared: %v)", e.Method, e.Path, e.Scope, e.Declared)
}

// Unwrap makes errors.Is(err, databricks.ErrPermissionDenied) hold.
func (e *ScopeError) Unwrap() error {
	return &apierr.APIError{ErrorCode: "PERMISSION_DENIED", StatusCode: http.StatusForbidden, Message: e.Error()}
}

// HostError is returned when a caller credential would be sent to a host
// other than the workspace's.
type HostError struct {
	Host, Workspace string
}

func (e *HostError) Error() string {
	return fmt.Sprintf("user client: refusing to send the caller's credential to %q (workspace host is %q)", e.Host, e.Workspace)
}

// Unwrap makes errors.Is(err, databricks.ErrPermissionDenied) hold.
func (e *HostError) Unwrap() error {
	return &apierr.APIError{ErrorCode: "PERMISSION_DENIED", StatusCode: http.StatusForbidden, Message: e.Error()}
}

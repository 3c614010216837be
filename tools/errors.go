package tools

import (
	"context"
	"errors"
	"fmt"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
)

// Reason classifies why a provider was skipped or a tool call failed; it is
// the low-cardinality "reason" label of the agentrt.tools.skipped metric.
type Reason string

const (
	ReasonPermissionDenied Reason = "permission_denied"
	ReasonUnauthenticated  Reason = "unauthenticated"
	ReasonNoClient         Reason = "no_client"
	ReasonNotFound         Reason = "not_found"
	ReasonTimeout          Reason = "timeout"
	ReasonDuplicate        Reason = "duplicate_name"
	ReasonError            Reason = "error"
)

// IsPermission reports whether err means the identity may not use the
// resource: it matches databricks.ErrPermissionDenied (which includes a
// call the user client refused because it is outside the agent's declared
// scopes) or databricks.ErrUnauthenticated. Providers with such errors are
// skipped, never failing the request (but see Provider for a User binding's
// ErrUnauthenticated).
func IsPermission(err error) bool {
	switch Classify(err) {
	case ReasonPermissionDenied, ReasonUnauthenticated:
		return true
	}
	return false
}

// Classify maps an error from a probe or tool call to a Reason; nil maps
// to "".
func Classify(err error) Reason {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, databricks.ErrPermissionDenied):
		return ReasonPermissionDenied
	case errors.Is(err, databricks.ErrUnauthenticated):
		return ReasonUnauthenticated
	case errors.Is(err, ErrNoClient):
		return ReasonNoClient
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, apierr.ErrNotFound):
		return ReasonNotFound
	}
	return ReasonError
}

// ErrNoClient is reported when a binding has no workspace client (the host
// has no workspace configured). Providers return it, wrapped or not, when
// they are prepared without a client.
var ErrNoClient = errors.New("no workspace client for this binding")

// PrepareError is returned by Set.Prepare when the request cannot go on: a
// User-bound provider's probe found the caller's credential rejected, or a
// provider with the Fail policy could not be prepared.
type PrepareError struct {
	Tool    string
	Binding Binding
	Err     error
}

func (e *PrepareError) Error() string {
	return fmt.Sprintf("prepare tool %q (%s): %v", e.Tool, e.Binding, e.Err)
}

func (e *PrepareError) Unwrap() error { return e.Err }

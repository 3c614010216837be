package devworkspace

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes the dev workspace sends in {"error_code","message"} bodies. The
// SDK maps them (or the HTTP status) to its sentinel errors.
const (
	codeUnauthenticated  = "UNAUTHENTICATED"
	codePermissionDenied = "PERMISSION_DENIED"
	codeNotFound         = "RESOURCE_DOES_NOT_EXIST"
	codeInvalidParam     = "INVALID_PARAMETER_VALUE"
	codeBadRequest       = "BAD_REQUEST"
	codeInternal         = "INTERNAL_ERROR"

	codeTemporarilyUnavailable = "TEMPORARILY_UNAVAILABLE"
)

// PermissionError reports that a principal lacks a privilege or permission on
// a securable. It becomes a 403 PERMISSION_DENIED naming both.
type PermissionError struct {
	Principal     string // user name or application id
	Privilege     string // e.g. SELECT, CAN_QUERY
	SecurableType string // e.g. table, serving-endpoints
	FullName      string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("principal %s does not have %s on %s %s", e.Principal, e.Privilege, e.SecurableType, e.FullName)
}

// NotFoundError reports a securable or resource that does not exist. It
// becomes a 404 RESOURCE_DOES_NOT_EXIST.
type NotFoundError struct {
	Kind string // e.g. table, function, statement
	Name string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s '%s' does not exist", e.Kind, e.Name)
}

// SQLError is a statement that could not be compiled or run. The statement
// API reports it as a FAILED statement (HTTP 200), other APIs as a 400.
type SQLError struct {
	Code    string // e.g. BAD_REQUEST, NOT_IMPLEMENTED
	Message string
}

func (e *SQLError) Error() string { return e.Message }

// errorBody is the wire shape every error response uses.
type errorBody struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes the {"error_code","message"} body the SDK parses.
func writeError(w http.ResponseWriter, status int, code string, format string, args ...any) {
	writeJSON(w, status, errorBody{ErrorCode: code, Message: fmt.Sprintf(format, args...)})
}

// writeErr maps a typed error to its status and code; anything untyped is a
// 500 whose text is not leaked beyond its message.
func writeErr(w http.ResponseWriter, err error) {
	var pe *PermissionError
	var nf *NotFoundError
	var se *SQLError
	var be *badRequestError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusForbidden, codePermissionDenied, "%s", pe.Error())
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, codeNotFound, "%s", nf.Error())
	case errors.As(err, &be):
		writeError(w, http.StatusBadRequest, codeInvalidParam, "%s", be.msg)
	case errors.As(err, &se):
		writeError(w, http.StatusBadRequest, codeBadRequest, "%s", se.Message)
	default:
		writeError(w, http.StatusInternalServerError, codeInternal, "%s", err.Error())
	}
}

// badRequestError is an invalid request parameter (400 INVALID_PARAMETER_VALUE).
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{msg: fmt.Sprintf(format, args...)}
}

// decodeBody decodes a JSON request body of at most 16 MiB into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

// MarshalJSON renders an SQLError as the statement API's status.error.
func (e *SQLError) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorBody{ErrorCode: e.Code, Message: e.Message})
}

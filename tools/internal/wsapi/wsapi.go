// Package wsapi gives the tool integrations what they need to call a
// workspace with a bound *databricks.WorkspaceClient beyond its typed
// services: the SDK's raw API client over the same configuration, an
// *http.Client whose [Transport] signs every request with the client's
// credentials, and the mapping of an error response to the SDK's errors.
//
// Both clients go through the client's own Config, so a per-request user
// client (whose credentials come from the request context and which enforces
// its scopes) keeps doing so, and refreshed tokens are used without any
// caching here. The Transport signs only requests to the workspace host: any
// other host (a third-party URL, a redirect elsewhere) is refused before a
// credential is attached, whatever the client's credentials provider would
// do. It does not read responses: a caller that gets a 401 or 403 maps it
// with [ResponseError] or [StatusError].
package wsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/common"

	"github.com/agentrt/agentrt/tools"
)

// ErrNoClient is returned when a tool is prepared without a workspace
// client. It is tools.ErrNoClient, so tools.Classify reports ReasonNoClient.
var ErrNoClient = tools.ErrNoClient

var apiClients sync.Map // *config.Config → *client.DatabricksClient

// API returns the SDK's raw client for w's configuration. It is built once per
// Config (a new ApiClient has its own rate limiter and connection pool).
func API(w *databricks.WorkspaceClient) (*client.DatabricksClient, error) {
	if w == nil || w.Config == nil {
		return nil, ErrNoClient
	}
	if c, ok := apiClients.Load(w.Config); ok {
		return c.(*client.DatabricksClient), nil
	}
	c, err := client.New(w.Config)
	if err != nil {
		return nil, fmt.Errorf("workspace client: %w", err)
	}
	actual, _ := apiClients.LoadOrStore(w.Config, c)
	return actual.(*client.DatabricksClient), nil
}

// Host returns the workspace URL of w without a trailing slash, with a scheme.
func Host(w *databricks.WorkspaceClient) (string, error) {
	if w == nil || w.Config == nil {
		return "", ErrNoClient
	}
	if err := w.Config.EnsureResolved(); err != nil {
		return "", fmt.Errorf("workspace client: %w", err)
	}
	h := strings.TrimRight(w.Config.Host, "/")
	if h == "" {
		return "", errors.New("workspace client has no host")
	}
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	return h, nil
}

var httpClients sync.Map // *config.Config → *http.Client

// HTTPClient returns an *http.Client whose requests to the workspace are
// signed by w (a [Transport] with w.Config as its Source, over w's own
// transport when it has one). It is built once per Config.
//
// Like any *http.Client it returns every response, whatever its status;
// callers that read a 401 or 403 turn it into an error with [ResponseError]
// or [StatusError].
func HTTPClient(w *databricks.WorkspaceClient) (*http.Client, error) {
	if w == nil || w.Config == nil {
		return nil, ErrNoClient
	}
	if c, ok := httpClients.Load(w.Config); ok {
		return c.(*http.Client), nil
	}
	host, err := Host(w)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("workspace client: invalid host %q", host)
	}
	c := &http.Client{Transport: &Transport{Source: w.Config, Workspace: u, Base: w.Config.HTTPTransport}}
	actual, _ := httpClients.LoadOrStore(w.Config, c)
	return actual.(*http.Client), nil
}

// A Source sets the credential of one outgoing request, reading whatever it
// needs (the caller's token, a refreshed service-principal token) from the
// request's context. A workspace client's *config.Config is a Source: its
// Authenticate runs the client's credentials strategy, so the user client's
// scope and host checks apply to requests signed this way too.
//
// Authenticate must be safe for concurrent use. It may modify the request's
// headers (it is given a clone the Transport owns) and nothing else. An error
// means the request must not be sent.
type Source interface {
	Authenticate(r *http.Request) error
}

// Transport is an http.RoundTripper that signs each request with the
// credential from Source and sends it with Base, like oauth2.Transport.
//
// It refuses, unsent and unsigned, a request to any host but Workspace's (a
// third-party URL, a redirect elsewhere), with a *HostError; a failure of
// Source is an *AuthError. Every response Base returns is passed through
// unchanged, whatever its status: reading a 401 or 403 as an error is the
// caller's job (see ResponseError).
//
// A Transport is safe for concurrent use; its fields must not change once
// it is in use.
type Transport struct {
	// Source signs each request (required).
	Source Source
	// Workspace is the workspace URL (required). Only requests with the same
	// scheme, host and port (the scheme's default made explicit) are signed.
	Workspace *url.URL
	// Base sends the signed request; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// HostPort returns u's host and port, lower-cased, with the scheme's default
// port made explicit, so "https://h" and "https://H:443" compare equal.
func HostPort(u *url.URL) string {
	host := strings.ToLower(u.Host)
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "443"
	if strings.EqualFold(u.Scheme, "http") {
		port = "80"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// RoundTrip implements http.RoundTripper. It clones the request before
// adding the credential, as a RoundTripper must not modify its input, and
// closes the request body when it does not send the request.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Host == "" || HostPort(req.URL) != HostPort(t.Workspace) {
		closeBody(req)
		host := ""
		if req.URL != nil {
			host = req.URL.Host
		}
		return nil, &HostError{Host: host, Workspace: t.Workspace.Host}
	}
	r := req.Clone(req.Context())
	r.Header.Del("Authorization") // never forward a placeholder key
	if err := t.Source.Authenticate(r); err != nil {
		closeBody(req)
		return nil, &AuthError{Err: err}
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// IsAuthStatus reports whether status is a refusal of the request's
// credential: 401 (unauthenticated) or 403 (permission denied).
func IsAuthStatus(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// ResponseError reads and closes resp's body and returns it as the SDK's
// *apierr.APIError, mapped to its sentinel errors (a 401 matches
// databricks.ErrUnauthenticated, a 403 databricks.ErrPermissionDenied).
// Call it for a response whose status is an error (>= 400).
func ResponseError(ctx context.Context, resp *http.Response) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := codedError(resp.StatusCode, body); err != nil {
		return err
	}
	rw := common.ResponseWrapper{Response: resp, ReadCloser: io.NopCloser(bytes.NewReader(body)), DebugBytes: body}
	if err := apierr.GetAPIError(ctx, rw); err != nil {
		// An unparsed body (a proxy's plain "Forbidden") must not hide
		// what the status says.
		var ae *apierr.APIError
		if errors.As(err, &ae) && (ae.ErrorCode == "" || ae.ErrorCode == "UNKNOWN") {
			return &apierr.APIError{StatusCode: resp.StatusCode, Message: ae.Message}
		}
		return err
	}
	return fmt.Errorf("unexpected HTTP status %d", resp.StatusCode)
}

// StatusError is ResponseError for a library that has already read the
// response (go-openai keeps only the status and body): an *apierr.APIError
// with the body's error code and message when it has them, else with the
// status alone, which still matches the SDK's sentinel errors.
func StatusError(status int, body []byte) *apierr.APIError {
	if err := codedError(status, body); err != nil {
		return err
	}
	var e struct {
		Message string `json:"message"`
	}
	msg := http.StatusText(status)
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	return &apierr.APIError{StatusCode: status, Message: msg}
}

// codedError reads a Databricks error body, {"error_code","message"}, or
// the OpenAI shape serving endpoints answer in, {"error":{"code",
// "message"}} (sometimes next to error_code; the SDK's parser reads it as
// UNKNOWN). It returns nil when the body names no code.
func codedError(status int, body []byte) *apierr.APIError {
	var e struct {
		ErrorCode string          `json:"error_code"`
		Message   string          `json:"message"`
		Error     json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return nil
	}
	var inner struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	}
	if e.ErrorCode == "" && len(e.Error) > 0 && json.Unmarshal(e.Error, &inner) == nil {
		if c, ok := inner.Code.(string); ok {
			e.ErrorCode = c
		}
		e.Message = inner.Message
	}
	if e.ErrorCode == "" || e.ErrorCode == "UNKNOWN" {
		return nil
	}
	return &apierr.APIError{ErrorCode: e.ErrorCode, StatusCode: status, Message: e.Message}
}

// HostError is a request the workspace *http.Client refused because it was
// aimed at a host other than the workspace's: the workspace credential (user
// or system) is never attached to it. It matches
// databricks.ErrPermissionDenied, as the user client's own host check does.
type HostError struct{ Host, Workspace string }

func (e *HostError) Error() string {
	return fmt.Sprintf("refusing to send the workspace credential to host %q (workspace host is %q)", e.Host, e.Workspace)
}

// Unwrap makes errors.Is(err, databricks.ErrPermissionDenied) hold.
func (e *HostError) Unwrap() error {
	return &apierr.APIError{ErrorCode: "PERMISSION_DENIED", StatusCode: http.StatusForbidden, Message: e.Error()}
}

// AuthError is a failure to authenticate a request before it was sent (no
// credential in the context, a scope the client may not use, a failed token
// refresh). It unwraps to the credentials provider's error.
type AuthError struct{ Err error }

func (e *AuthError) Error() string { return "authenticate request: " + e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// Package wsapi gives the tool integrations what they need to call a
// workspace with a bound *databricks.WorkspaceClient beyond its typed
// services: the SDK's raw API client over the same configuration, and an
// *http.Client that authenticates every request with the client's credentials.
//
// Both go through the client's own Config, so a per-request user client (whose
// credentials come from the request context and which enforces its scopes)
// keeps doing so, and refreshed tokens are used without any caching here.
// The *http.Client signs only requests to the workspace host: any other host
// (a third-party URL, a redirect elsewhere) is refused before a credential is
// attached, whatever the client's credentials provider would do.
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
	"github.com/databricks/databricks-sdk-go/config"
)

// ErrNoClient is returned when a tool is prepared without a workspace client.
var ErrNoClient = errors.New("no workspace client: the host has no workspace configured")

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

// Options tune HTTPClient.
type Options struct {
	// ErrorStatuses are response codes turned into *apierr.APIError values
	// (so errors.Is(err, databricks.ErrPermissionDenied) works) instead of
	// being handed to the calling library. Nil means 401 and 403.
	ErrorStatuses []int
}

var httpClients sync.Map // *config.Config → *http.Client (default options)

// HTTPClient returns an *http.Client that authenticates each request with
// w.Config.Authenticate on the request itself (so the request's ctx reaches
// the credentials provider), over w's own transport when it has one.
func HTTPClient(w *databricks.WorkspaceClient, opts *Options) (*http.Client, error) {
	if w == nil || w.Config == nil {
		return nil, ErrNoClient
	}
	if opts == nil {
		if c, ok := httpClients.Load(w.Config); ok {
			return c.(*http.Client), nil
		}
	}
	host, err := Host(w)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("workspace client: invalid host %q", host)
	}
	t := &signer{cfg: w.Config, host: u.Host, hostport: HostPort(u), statuses: []int{http.StatusUnauthorized, http.StatusForbidden}}
	if opts != nil && opts.ErrorStatuses != nil {
		t.statuses = opts.ErrorStatuses
	}
	c := &http.Client{Transport: t}
	if opts == nil {
		actual, _ := httpClients.LoadOrStore(w.Config, c)
		return actual.(*http.Client), nil
	}
	return c, nil
}

type signer struct {
	cfg      *config.Config
	host     string // the workspace's host[:port], for errors
	hostport string // the same, with the port made explicit
	statuses []int
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

func (s *signer) base() http.RoundTripper {
	if s.cfg.HTTPTransport != nil {
		return s.cfg.HTTPTransport
	}
	return http.DefaultTransport
}

// RoundTrip clones the request before adding credentials, as a RoundTripper
// must not modify its input.
// A request to any host but the workspace's is refused unsent.
func (s *signer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Host == "" || HostPort(req.URL) != s.hostport {
		if req.Body != nil {
			req.Body.Close()
		}
		host := ""
		if req.URL != nil {
			host = req.URL.Host
		}
		return nil, &HostError{Host: host, Workspace: s.host}
	}
	r := req.Clone(req.Context())
	r.Header.Del("Authorization") // never forward a placeholder key
	if err := s.cfg.Authenticate(r); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &AuthError{Err: err}
	}
	resp, err := s.base().RoundTrip(r)
	if err != nil {
		return nil, err
	}
	for _, code := range s.statuses {
		if resp.StatusCode == code {
			return nil, ResponseError(r.Context(), resp)
		}
	}
	return resp, nil
}

// ResponseError reads and closes resp's body and returns it as the SDK's
// *apierr.APIError, mapped to its sentinel errors.
func ResponseError(ctx context.Context, resp *http.Response) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	// Serving endpoints answer in OpenAI's shape, {"error":{"code",
	// "message"}}, sometimes next to Databricks' error_code; the SDK's parser
	// reads the former as UNKNOWN, so look for a code first.
	var e struct {
		ErrorCode string          `json:"error_code"`
		Message   string          `json:"message"`
		Error     json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
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
		if e.ErrorCode != "" && e.ErrorCode != "UNKNOWN" {
			return &apierr.APIError{ErrorCode: e.ErrorCode, StatusCode: resp.StatusCode, Message: e.Message}
		}
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

// Package wsapi gives the tool integrations what they need to call a
// workspace with a bound *databricks.WorkspaceClient beyond its typed
// services: the SDK's raw API client over the same configuration, and an
// *http.Client that authenticates every request with the client's credentials.
//
// Both go through the client's own Config, so a per-request user client (whose
// credentials come from the request context and which enforces its scopes)
// keeps doing so, and refreshed tokens are used without any caching here.
package wsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	t := &signer{cfg: w.Config, statuses: []int{http.StatusUnauthorized, http.StatusForbidden}}
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
	statuses []int
}

func (s *signer) base() http.RoundTripper {
	if s.cfg.HTTPTransport != nil {
		return s.cfg.HTTPTransport
	}
	return http.DefaultTransport
}

// RoundTrip clones the request before adding credentials, as a RoundTripper
// must not modify its input.
func (s *signer) RoundTrip(req *http.Request) (*http.Response, error) {
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

// AuthError is a failure to authenticate a request before it was sent (no
// credential in the context, a scope the client may not use, a failed token
// refresh). It unwraps to the credentials provider's error.
type AuthError struct{ Err error }

func (e *AuthError) Error() string { return "authenticate request: " + e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

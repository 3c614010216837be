package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/config/experimental/auth/oidc"
	"github.com/databricks/databricks-sdk-go/credentials/u2m"
	"github.com/databricks/databricks-sdk-go/httpclient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// System credential sources, as reported by System.Source and in the
// agentrt.token.refreshes metric.
const (
	SourceM2M       = "oauth-m2m"
	SourceTokenFile = "token-file"
	SourceOIDCFile  = "file-oidc"
	SourcePAT       = "pat"
)

// DefaultTokenFile is where Databricks Model Serving injects the token of
// the endpoint's automatic authentication passthrough.
const DefaultTokenFile = "/var/credentials-secret/model-dependencies-oauth-token"

// endpoints discovers the workspace's OAuth endpoints once, with the SDK's
// own discovery client, and remembers the answer.
type endpoints struct {
	host   string
	client *httpclient.ApiClient

	mu  sync.Mutex
	got *u2m.OAuthAuthorizationServer
}

func (e *endpoints) get(ctx context.Context) (*u2m.OAuthAuthorizationServer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.got != nil {
		return e.got, nil
	}
	s := &u2m.BasicOAuthEndpointSupplier{Client: e.client}
	got, err := s.GetWorkspaceOAuthEndpoints(ctx, e.host)
	if err != nil {
		return nil, fmt.Errorf("oauth discovery: %w", err)
	}
	e.got = got
	return got, nil
}

// m2mFetch is the OAuth client-credentials flow as the SDK's oauth-m2m
// strategy runs it: discovery, then POST token_endpoint with Basic auth and
// scope all-apis.
func m2mFetch(ep *endpoints, clientID, clientSecret string, hc *http.Client) fetchFunc {
	return func(ctx context.Context) (*oauth2.Token, error) {
		got, err := ep.get(ctx)
		if err != nil {
			return nil, err
		}
		cc := clientcredentials.Config{
			ClientID:     clientID,
			ClientSecret: clientSecret,
			TokenURL:     got.TokenEndpoint,
			Scopes:       []string{"all-apis"},
			AuthStyle:    oauth2.AuthStyleInHeader,
		}
		t, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err != nil {
			return nil, tokenEndpointError(SourceM2M, err)
		}
		return t, nil
	}
}

// oidcFileFetch is workload-identity federation with the SDK's file-oidc
// token source: the ID token file (e.g. a Kubernetes projected token) is read
// on each exchange, so rotation on disk is picked up by the next refresh.
func oidcFileFetch(ep *endpoints, host, clientID, audience, path string, hc *http.Client) fetchFunc {
	ts := oidc.NewDatabricksOIDCTokenSource(oidc.DatabricksOIDCTokenSourceConfig{
		ClientID:              clientID,
		Host:                  host,
		TokenEndpointProvider: ep.get,
		Audience:              audience,
		IDTokenSource:         oidc.NewFileTokenSource(path),
	})
	return func(ctx context.Context) (*oauth2.Token, error) {
		t, err := ts.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err != nil {
			return nil, tokenEndpointError(SourceOIDCFile, err)
		}
		return t, nil
	}
}

// TokenEndpointError is a failed request for the system token (OAuth M2M or
// workload-identity federation). A 400, 401 or 403 means the endpoint
// rejected the service principal's credentials and matches
// databricks.ErrUnauthenticated; any other failure (5xx, 429, no answer) is
// an outage, which the system client reports as an *UnavailableError. The
// endpoint's response body is dropped: it is not ours to repeat.
type TokenEndpointError struct {
	Source string // SourceM2M or SourceOIDCFile
	Status int    // HTTP status of the token endpoint, 0 if none
	Code   string // OAuth error code, e.g. invalid_client
	Err    error  // transport error, when Status is 0
}

func (e *TokenEndpointError) rejected() bool {
	return e.Status == http.StatusBadRequest || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

func (e *TokenEndpointError) Error() string {
	switch {
	case e.Status == 0:
		return fmt.Sprintf("system token request (%s) failed: %v", e.Source, e.Err)
	case e.rejected():
		s := fmt.Sprintf("system token request (%s) rejected: HTTP %d", e.Source, e.Status)
		if e.Code != "" {
			s += " " + e.Code
		}
		return s + " (check the service principal's client id and secret or federation policy)"
	}
	s := fmt.Sprintf("system token request (%s) failed: token endpoint answered HTTP %d", e.Source, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	return s
}

// Unwrap makes errors.Is(err, databricks.ErrUnauthenticated) hold for a
// rejection and exposes the transport error otherwise.
func (e *TokenEndpointError) Unwrap() error {
	if e.rejected() {
		return &apierr.APIError{ErrorCode: "UNAUTHENTICATED", StatusCode: http.StatusUnauthorized, Message: e.Error()}
	}
	return e.Err
}

func tokenEndpointError(source string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return &TokenEndpointError{Source: source, Status: status, Code: re.ErrorCode}
	}
	return &TokenEndpointError{Source: source, Err: err}
}

// fileStamp identifies one version of a token file.
type fileStamp struct {
	mod  time.Time
	size int64
}

// readTokenFile reads a platform token file: Model Serving's JSON
// {"OAUTH_TOKEN":[{"oauthTokenValue":"…"}]} or a plain token.
func readTokenFile(path string) (string, fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fileStamp{}, fmt.Errorf("token file: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fileStamp{}, fmt.Errorf("token file: %w", err)
	}
	st := fileStamp{fi.ModTime(), fi.Size()}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", st, fmt.Errorf("token file %s is empty", path)
	}
	if b[0] != '{' {
		if bytes.ContainsAny(b, " \t\r\n") {
			return "", st, fmt.Errorf("token file %s: not a token (contains whitespace) and not JSON", path)
		}
		return string(b), st, nil
	}
	var doc struct {
		OAuthToken []struct {
			Value string `json:"oauthTokenValue"`
		} `json:"OAUTH_TOKEN"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		// The JSON error may quote the content; do not repeat it.
		return "", st, fmt.Errorf("token file %s: invalid JSON", path)
	}
	if len(doc.OAuthToken) == 0 || strings.TrimSpace(doc.OAuthToken[0].Value) == "" {
		return "", st, fmt.Errorf("token file %s: no OAUTH_TOKEN[0].oauthTokenValue", path)
	}
	return strings.TrimSpace(doc.OAuthToken[0].Value), st, nil
}

// watchTokenFile re-reads path whenever its modification time or size
// changes, polling every interval; requests only ever read the cached token.
func (r *refresher) watchTokenFile(ctx context.Context, path string, last fileStamp, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err == nil && fi.ModTime().Equal(last.mod) && fi.Size() == last.size {
			continue
		}
		tok, st, err := readTokenFile(path)
		if err == nil {
			last = st
			r.set(&oauth2.Token{AccessToken: tok, TokenType: "Bearer"})
		} else if errors.Is(err, os.ErrNotExist) {
			// A rotating writer may replace the file non-atomically; keep
			// the current token and look again next tick.
		} else {
			last = st
		}
		recordRefresh(ctx, r.source, err)
		if err != nil {
			r.log.Warn("system token file re-read failed; keeping the current token", "source", r.source, "error", err)
		}
		if r.notify != nil {
			r.notify(RefreshEvent{Source: r.source, Err: err, Background: true})
		}
	}
}

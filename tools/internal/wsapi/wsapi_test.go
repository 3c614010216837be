package wsapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/config"

	"github.com/agentrt/agentrt/tools"
	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/internal/wsapi"
)

// TestHTTPClientSignsAndPassesStatusesThrough: the transport signs a clone
// of the request and hands back every response as it came, 401 and 403
// included (a RoundTripper does not interpret statuses); ResponseError then
// maps the answer to the SDK's errors.
func TestHTTPClientSignsAndPassesStatusesThrough(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		is     error
		code   string
	}{
		{"databricks 403", 403, `{"error_code":"PERMISSION_DENIED","message":"no SELECT"}`, databricks.ErrPermissionDenied, "PERMISSION_DENIED"},
		{"openai-shaped 403", 403, `{"error":{"code":"PERMISSION_DENIED","message":"no CAN_QUERY","type":"permission_error"}}`, databricks.ErrPermissionDenied, "PERMISSION_DENIED"},
		{"401 without code", 401, `{"message":"expired"}`, databricks.ErrUnauthenticated, ""},
		{"plain-text 403", 403, `Forbidden`, databricks.ErrPermissionDenied, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var auth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth = r.Header.Get("Authorization")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			hc, err := wsapi.HTTPClient(testws.PAT(t, srv.URL, "secret-token"))
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/x", strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer placeholder")
			resp, err := hc.Do(req)
			if auth != "Bearer secret-token" {
				t.Errorf("server saw %q", auth)
			}
			if req.Header.Get("Authorization") != "Bearer placeholder" {
				t.Error("the caller's request was modified")
			}
			if err != nil {
				t.Fatalf("the transport interpreted a %d: %v", tc.status, err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			err = wsapi.ResponseError(req.Context(), resp)
			var ae *apierr.APIError
			if !errors.Is(err, tc.is) || !errors.As(err, &ae) {
				t.Fatalf("err = %v", err)
			}
			if tc.code != "" && ae.ErrorCode != tc.code {
				t.Errorf("code = %q", ae.ErrorCode)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Error("token in error text")
			}
			// StatusError reads the same answer from status and body.
			se := wsapi.StatusError(tc.status, []byte(tc.body))
			if !errors.Is(se, tc.is) || (tc.code != "" && se.ErrorCode != tc.code) {
				t.Errorf("StatusError = %v (code %q)", se, se.ErrorCode)
			}
		})
	}
}

// TestErrNoClientIsTools: the two packages' "no workspace client" errors are
// one value, so tools.Classify reports ReasonNoClient for either.
func TestErrNoClientIsTools(t *testing.T) {
	if _, err := wsapi.HTTPClient(nil); !errors.Is(err, tools.ErrNoClient) || tools.Classify(err) != tools.ReasonNoClient {
		t.Errorf("err = %v", err)
	}
}

// TestTransportAuthError: a Source that refuses sends nothing and closes
// the request body.
func TestTransportAuthError(t *testing.T) {
	rec := &recorder{}
	u, _ := url.Parse("https://adb-1.example.com")
	tr := &wsapi.Transport{Source: refuse{}, Workspace: u, Base: rec}
	body := &closeSpy{Reader: strings.NewReader("{}")}
	req, _ := http.NewRequest(http.MethodPost, "https://adb-1.example.com/x", body)
	_, err := tr.RoundTrip(req)
	var ae *wsapi.AuthError
	if !errors.As(err, &ae) || !errors.Is(err, errRefused) {
		t.Errorf("err = %v, want *AuthError", err)
	}
	if len(rec.hosts) != 0 || !body.closed {
		t.Errorf("sent %d, body closed %v", len(rec.hosts), body.closed)
	}
}

var errRefused = errors.New("no credential")

type refuse struct{}

func (refuse) Authenticate(*http.Request) error { return errRefused }

type closeSpy struct {
	io.Reader
	closed bool
}

func (c *closeSpy) Close() error { c.closed = true; return nil }

func TestHostAndNoClient(t *testing.T) {
	if _, err := wsapi.Host(nil); !errors.Is(err, wsapi.ErrNoClient) {
		t.Errorf("err = %v", err)
	}
	h, err := wsapi.Host(testws.PAT(t, "http://127.0.0.1:9/", "x"))
	if err != nil || h != "http://127.0.0.1:9" {
		t.Errorf("host %q, %v", h, err)
	}
	a1, _ := wsapi.API(testws.PAT(t, "http://127.0.0.1:9", "x"))
	if a1 == nil {
		t.Fatal("no API client")
	}
}

// TestHTTPClientRefusesForeignHosts: the workspace credential goes only to
// the workspace host, neither to another URL nor through a redirect.
func TestHTTPClientRefusesForeignHosts(t *testing.T) {
	var foreignAuth []string
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignAuth = append(foreignAuth, r.Header.Get("Authorization"))
	}))
	defer foreign.Close()
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, foreign.URL+"/landing", http.StatusTemporaryRedirect)
	}))
	defer ws.Close()
	hc, err := wsapi.HTTPClient(testws.PAT(t, ws.URL, "secret-token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{foreign.URL + "/mcp", ws.URL + "/redirect"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		_, err := hc.Do(req)
		var he *wsapi.HostError
		if !errors.As(err, &he) || !errors.Is(err, databricks.ErrPermissionDenied) {
			t.Fatalf("%s: err = %v, want *HostError", u, err)
		}
		if !strings.Contains(err.Error(), strings.TrimPrefix(foreign.URL, "http://")) || strings.Contains(err.Error(), "secret-token") {
			t.Errorf("error %q must name the host and not the token", err)
		}
	}
	if len(foreignAuth) != 0 {
		t.Errorf("the foreign host got %d requests: %q", len(foreignAuth), foreignAuth)
	}
}

type recorder struct{ hosts []string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.hosts = append(r.hosts, req.URL.Host+" "+req.Header.Get("Authorization"))
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

// TestHTTPClientHostMatch: the default port, the host's case and a
// different port or scheme are told apart as a browser would.
func TestHTTPClientHostMatch(t *testing.T) {
	rec := &recorder{}
	w, err := databricks.NewWorkspaceClient(&databricks.Config{
		Host: "https://Adb-1.example.com", Token: "tok", AuthType: "pat", Credentials: config.PatCredentials{},
		Loaders: []config.Loader{noLoader{}}, HTTPTransport: rec,
		HostMetadataResolver: func(context.Context, string) (*config.HostMetadata, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	hc, err := wsapi.HTTPClient(w)
	if err != nil {
		t.Fatal(err)
	}
	for u, ok := range map[string]bool{
		"https://adb-1.example.com/x":     true,
		"https://adb-1.example.com:443/x": true,
		"http://adb-1.example.com/x":      false,
		"https://adb-1.example.com:8443/": false,
		"https://adb-1.example.com.evil/": false,
		"https://example.com/":            false,
	} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		var he *wsapi.HostError
		if ok != (err == nil) || (!ok && !errors.As(err, &he)) {
			t.Errorf("%s: err = %v, want allowed=%v", u, err, ok)
		}
	}
	for _, h := range rec.hosts {
		if !strings.HasPrefix(strings.ToLower(h), "adb-1.example.com") {
			t.Errorf("sent to %s", h)
		}
	}
	if len(rec.hosts) != 2 {
		t.Errorf("sent %d requests, want 2", len(rec.hosts))
	}
}

type noLoader struct{}

func (noLoader) Name() string                   { return "test" }
func (noLoader) Configure(*config.Config) error { return nil }

package wsapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"

	"github.com/agentrt/agentrt/tools/internal/testws"
	"github.com/agentrt/agentrt/tools/internal/wsapi"
)

func TestHTTPClientSignsAndMapsErrors(t *testing.T) {
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
			hc, err := wsapi.HTTPClient(testws.PAT(t, srv.URL, "secret-token"), nil)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/x", strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer placeholder")
			_, err = hc.Do(req)
			if auth != "Bearer secret-token" {
				t.Errorf("server saw %q", auth)
			}
			if req.Header.Get("Authorization") != "Bearer placeholder" {
				t.Error("the caller's request was modified")
			}
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
		})
	}
}

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

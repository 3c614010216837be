package httpapi_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/agentrt/agentrt/examples/echo"
	"github.com/agentrt/agentrt/internal/httpapi"
)

const (
	appOrigin  = "https://app.example.com"
	evilOrigin = "https://evil.example.com"
)

// corsServer serves the echo agent under the CORS policy of origins/dev.
func corsServer(t testing.TB, origins []string, dev bool) *httptest.Server {
	t.Helper()
	cors, err := httpapi.NewCORS(origins, dev)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Options{Agent: echo.Agent{}, AgentName: "echo", Logger: quietLogger(), CORS: cors})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// browserHeaders are what the OpenAI JS client (dangerouslyAllowBrowser)
// and the AI SDK put in Access-Control-Request-Headers, as a browser sends
// them: lower case, sorted.
const browserHeaders = "authorization,content-type,openai-beta,openai-organization,openai-project,user-agent," +
	"x-request-id,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version," +
	"x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout"

func preflight(t *testing.T, url, origin, method, headers string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		req.Header.Set("Access-Control-Request-Headers", headers)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// errorBody decodes the one error body (internal/httperr).
func errorBody(t *testing.T, resp *http.Response) (code, msg string) {
	t.Helper()
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
		Error     struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("%d: not the error body: %v", resp.StatusCode, err)
	}
	if e.Error.Type == "" {
		t.Errorf("error body without the OpenAI error object: %+v", e)
	}
	return e.ErrorCode, e.Message
}

func varies(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

func noCORSHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			t.Errorf("%s: refused origin got %s: %q", what, name, h.Get(name))
		}
	}
}

// A preflight from an allowed origin is answered for every path, known or
// not, with 204, the exact origin, credentials, and the headers the OpenAI
// and AI SDK clients request. Today's host answers it 405.
func TestCORSPreflightAllowed(t *testing.T) {
	ts := corsServer(t, []string{appOrigin}, false)
	for _, p := range []string{"/v1/responses", "/responses", "/invocations", "/health", "/agent/info", "/no/such/route"} {
		resp := preflight(t, ts.URL+p, appOrigin, "POST", browserHeaders)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("OPTIONS %s: %d, want 204", p, resp.StatusCode)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != appOrigin {
			t.Errorf("%s: Allow-Origin %q, want %q", p, got, appOrigin)
		}
		if h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%s: no Allow-Credentials", p)
		}
		if m := h.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "GET") {
			t.Errorf("%s: Allow-Methods %q", p, m)
		}
		allowed := strings.Split(strings.ReplaceAll(h.Get("Access-Control-Allow-Headers"), " ", ""), ",")
		for _, want := range strings.Split(browserHeaders, ",") {
			if !slices.Contains(allowed, want) {
				t.Errorf("%s: Allow-Headers %q lacks %s", p, allowed, want)
			}
		}
		if !varies(h, "Origin") || !varies(h, "Access-Control-Request-Headers") {
			t.Errorf("%s: Vary %q", p, h.Values("Vary"))
		}
		if h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("%s: no Max-Age", p)
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", p)
		}
	}
	// Chrome's private-network preflight, for an origin the operator listed.
	req, _ := http.NewRequest(http.MethodOptions, ts.URL+"/v1/responses", nil)
	req.Header.Set("Origin", appOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Private-Network", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Errorf("private network preflight: %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Private-Network"))
	}
}

// A refused origin's preflight is a 403 in the one error body without CORS
// headers; so is an allowed origin asking for a method or header outside
// the policy (identity headers only a trusted proxy sets, X-Dev-User
// outside dev mode), and the message names it.
func TestCORSPreflightRefused(t *testing.T) {
	ts := corsServer(t, []string{appOrigin}, false)
	for _, tc := range []struct {
		name, origin, method, headers, names string
	}{
		{"other origin", evilOrigin, "POST", "content-type", evilOrigin},
		{"other scheme", "http://app.example.com", "POST", "", "http://app.example.com"},
		{"other port", appOrigin + ":8443", "POST", "", appOrigin + ":8443"},
		{"null origin", "null", "POST", "", `"null"`},
		{"loopback without dev", "http://localhost:3000", "POST", "", "localhost"},
		{"method", appOrigin, "PUT", "", `"PUT"`},
		{"forwarded identity", appOrigin, "POST", "authorization,x-forwarded-access-token", "x-forwarded-access-token"},
		{"dev user outside dev", appOrigin, "POST", "x-dev-user", "x-dev-user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := preflight(t, ts.URL+"/v1/responses", tc.origin, tc.method, tc.headers)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%d, want 403", resp.StatusCode)
			}
			code, msg := errorBody(t, resp)
			if code != "PERMISSION_DENIED" || !strings.Contains(msg, tc.names) {
				t.Errorf("%s %q, want PERMISSION_DENIED naming %s", code, msg, tc.names)
			}
			noCORSHeaders(t, tc.name, resp.Header)
			if !varies(resp.Header, "Origin") {
				t.Errorf("Vary %q", resp.Header.Values("Vary"))
			}
		})
	}
}

func corsPost(t *testing.T, url, origin string, header http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// The request after the preflight: an allowed origin's answer, errors
// included, carries the exact origin and exposes the headers clients read;
// a refused origin's is served without CORS headers, so the browser keeps
// it from the page.
func TestCORSActualRequest(t *testing.T) {
	ts := corsServer(t, []string{appOrigin}, false)
	const body = `{"model":"echo","input":"hi"}`
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/v1/responses", body, http.StatusOK},
		{"/invocations", body, http.StatusOK},
		{"/v1/responses", `{`, http.StatusBadRequest},
		{"/no/such/route", body, http.StatusNotFound},
	} {
		resp := corsPost(t, ts.URL+tc.path, appOrigin, nil, tc.body)
		h := resp.Header
		if resp.StatusCode != tc.status {
			t.Fatalf("POST %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		if h.Get("Access-Control-Allow-Origin") != appOrigin || h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("POST %s: Allow-Origin %q Allow-Credentials %q", tc.path, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
		}
		exposed := strings.ToLower(h.Get("Access-Control-Expose-Headers"))
		for _, want := range []string{"x-request-id", "retry-after", "openai-processing-ms"} {
			if !strings.Contains(exposed, want) {
				t.Errorf("POST %s: Expose-Headers %q lacks %s", tc.path, exposed, want)
			}
		}
		if !varies(h, "Origin") {
			t.Errorf("POST %s: Vary %q", tc.path, h.Values("Vary"))
		}
	}

	resp := corsPost(t, ts.URL+"/v1/responses", evilOrigin, nil, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refused origin: %d (served, the browser withholds it)", resp.StatusCode)
	}
	noCORSHeaders(t, "refused origin", resp.Header)
	if !varies(resp.Header, "Origin") {
		t.Errorf("refused origin: Vary %q", resp.Header.Values("Vary"))
	}
	// Without Origin (not a browser): nothing changes.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/responses", strings.NewReader(body))
	plain, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	noCORSHeaders(t, "no Origin", plain.Header)
}

// Credentials are allowed only with the exact origin: the wildcard policy
// answers "*" and never Access-Control-Allow-Credentials, whatever the
// request carries.
func TestCORSNeverWildcardWithCredentials(t *testing.T) {
	ts := corsServer(t, []string{"*", appOrigin}, false)
	cred := http.Header{"Authorization": {"Bearer dapi-secret"}, "Cookie": {"session=1"}}
	for _, origin := range []string{appOrigin, evilOrigin, "http://localhost:3000"} {
		for _, resp := range []*http.Response{
			corsPost(t, ts.URL+"/v1/responses", origin, cred, `{"input":"hi"}`),
			preflight(t, ts.URL+"/v1/responses", origin, "POST", "authorization,content-type"),
		} {
			h := resp.Header
			acao, acac := h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials")
			if acao == "" {
				t.Fatalf("%s %s: no Allow-Origin under *", resp.Request.Method, origin)
			}
			if acac == "true" && acao == "*" {
				t.Errorf("%s %s: Allow-Origin * with credentials", resp.Request.Method, origin)
			}
			wantCred := origin == appOrigin
			if (acac == "true") != wantCred || wantCred && acao != origin || !wantCred && acao != "*" {
				t.Errorf("%s %s: Allow-Origin %q Allow-Credentials %q", resp.Request.Method, origin, acao, acac)
			}
		}
	}
	// The explicit policy never answers *.
	ts = corsServer(t, []string{appOrigin}, true)
	for _, origin := range []string{appOrigin, "http://localhost:3000"} {
		if acao := corsPost(t, ts.URL+"/v1/responses", origin, cred, `{"input":"hi"}`).Header.Get("Access-Control-Allow-Origin"); acao != origin {
			t.Errorf("%s: Allow-Origin %q", origin, acao)
		}
	}
}

// An SSE answer carries the CORS headers: they are set before the stream's
// first flush.
func TestCORSStreaming(t *testing.T) {
	ts := corsServer(t, []string{appOrigin}, false)
	resp := corsPost(t, ts.URL+"/v1/responses", appOrigin, http.Header{"Accept": {"text/event-stream"}}, `{"model":"echo","input":"one two","stream":true}`)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != appOrigin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("stream headers: %v", resp.Header)
	}
	var last string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var ev struct{ Type string }
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Unmarshal([]byte(data), &ev) == nil {
			last = ev.Type
		}
	}
	if last != "response.completed" {
		t.Errorf("stream ended with %q", last)
	}
}

// --dev allows loopback origins (those the dev Host/Origin check accepts)
// with any port, and the X-Dev-User header the dev UI picks a mock user
// with; other origins stay refused.
func TestCORSDevLoopback(t *testing.T) {
	ts := corsServer(t, nil, true)
	for _, origin := range []string{"http://localhost:5173", "http://127.0.0.1:3000", "https://[::1]:8443", "http://localhost", "http://app.localhost:3000"} {
		resp := preflight(t, ts.URL+"/v1/responses", origin, "POST", "content-type,x-dev-user")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%s: %d %v", origin, resp.StatusCode, resp.Header)
		}
		post := corsPost(t, ts.URL+"/v1/responses", origin, http.Header{"X-Dev-User": {"alice"}}, `{"input":"hi"}`)
		if post.StatusCode != http.StatusOK || post.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("POST %s: %d %v", origin, post.StatusCode, post.Header)
		}
	}
	for _, origin := range []string{evilOrigin, "http://localhost.evil.example.com", "http://127.0.0.1.evil.example.com:80", "http://evil.example.com@localhost", "file://", "null", "http://localhost:99999"} {
		resp := preflight(t, ts.URL+"/v1/responses", origin, "POST", "content-type")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", origin, resp.StatusCode)
		}
		noCORSHeaders(t, origin, resp.Header)
	}
}

// Off by default: no policy, no CORS headers, and a preflight is still the
// 405 it always was.
func TestCORSOff(t *testing.T) {
	cors, err := httpapi.NewCORS([]string{" ", ""}, false)
	if err != nil || cors != nil {
		t.Fatalf("NewCORS(blank) = %v, %v; want nil, nil", cors, err)
	}
	ts := corsServer(t, nil, false)
	resp := preflight(t, ts.URL+"/v1/responses", appOrigin, "POST", "content-type")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("preflight without a policy: %d, want 405", resp.StatusCode)
	}
	noCORSHeaders(t, "off", resp.Header)
	noCORSHeaders(t, "off", corsPost(t, ts.URL+"/v1/responses", appOrigin, nil, `{"input":"hi"}`).Header)
}

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example.com":      "https://app.example.com",
		"https://App.Example.COM/":     "https://app.example.com",
		"HTTPS://app.example.com:443":  "https://app.example.com",
		"http://app.example.com:80":    "http://app.example.com",
		"http://app.example.com:8080":  "http://app.example.com:8080",
		"http://[::1]:3000":            "http://[::1]:3000",
		"http://[0:0:0:0:0:0:0:1]":     "http://[::1]",
		"http://127.0.0.1:5173":        "http://127.0.0.1:5173",
		"https://xn--bcher-kva.ch:444": "https://xn--bcher-kva.ch:444",
	} {
		got, err := httpapi.NormalizeOrigin(in)
		if err != nil || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"app.example.com", "ftp://app.example.com", "https://app.example.com/chat", "https://u@app.example.com",
		"https://app.example.com?x", "https://app.example.com#x", "https://bücher.ch", "https://app.example.com:0", "https://app.example.com:99999",
		"null", "https://", "http://[fe80::1%25eth0]"} {
		if got, err := httpapi.NormalizeOrigin(bad); err == nil {
			t.Errorf("NormalizeOrigin(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := httpapi.NewCORS([]string{appOrigin, "app.example.com"}, false); err == nil || !strings.Contains(err.Error(), `"app.example.com"`) {
		t.Errorf("NewCORS with a bad origin: %v", err)
	}
	c, err := httpapi.NewCORS([]string{"https://App.example.com/", appOrigin, "*"}, false)
	if err != nil || !slices.Equal(c.Origins(), []string{appOrigin}) {
		t.Errorf("Origins() = %q, %v", c.Origins(), err)
	}
}

func BenchmarkCORS(b *testing.B) {
	cors, err := httpapi.NewCORS([]string{appOrigin}, false)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Options{Agent: echo.Agent{}, Logger: quietLogger(), CORS: cors})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	b.Run("preflight", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodOptions, "/v1/responses", nil)
		req.Header.Set("Origin", appOrigin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", browserHeaders)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				b.Fatal(w.Code)
			}
		}
	})
	b.Run("health", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "/health", nil)
		req.Header.Set("Origin", appOrigin)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			_, _ = io.Copy(io.Discard, w.Body)
		}
	})
}

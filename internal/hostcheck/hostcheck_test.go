package hostcheck

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "localhost.": true, "app.localhost": true, "a.b.localhost": true,
		"127.0.0.1": true, "127.5.6.7": true, "::1": true, "[::1]": true, "::ffff:127.0.0.1": true,
		"": false, "evil.example.com": false, "localhost.evil.example.com": false, "notlocalhost": false,
		"0.0.0.0": false, "10.0.0.1": false, "::": false, "128.0.0.1": false, "evil-localhost": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	allow, err := New([]string{"devbox.lan", " 192.168.1.20", "[fd00::5]", "Upper.Example."})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		p      *Policy
		host   string
		origin string
		ok     bool
	}{
		{"ipv4 loopback", nil, "127.0.0.1:8080", "", true},
		{"localhost", nil, "localhost:8080", "", true},
		{"ipv6 loopback", nil, "[::1]:8080", "", true},
		{"no port", nil, "localhost", "", true},
		{"dot localhost", nil, "app.localhost:3000", "", true},
		{"loopback origin", nil, "127.0.0.1:8080", "http://localhost:5173", true},
		{"ipv6 origin", nil, "[::1]:8080", "http://[::1]:5173", true},
		{"https origin", nil, "localhost:8080", "https://127.0.0.1", true},
		{"rebound host", nil, "evil.example.com", "", false},
		{"rebound host and port", nil, "evil.example.com:8080", "http://evil.example.com:8080", false},
		{"empty host", nil, "", "", false},
		{"lan address", nil, "192.168.1.20:8080", "", false},
		{"cross-site origin", nil, "127.0.0.1:8080", "http://evil.example.com", false},
		{"null origin", nil, "127.0.0.1:8080", "null", false},
		{"other scheme", nil, "127.0.0.1:8080", "chrome-extension://abc", false},
		{"user info", nil, "127.0.0.1:8080", "http://evil.example.com@127.0.0.1", false},
		{"path", nil, "127.0.0.1:8080", "http://127.0.0.1/x", false},
		{"upper-case scheme", nil, "127.0.0.1:8080", "HTTP://evil.example.com", false},
		{"allowed name", allow, "devbox.lan:8080", "", true},
		{"allowed name, case and dot", allow, "DEVBOX.lan.:8080", "http://devbox.lan:8080", true},
		{"allowed address", allow, "192.168.1.20:8080", "", true},
		{"allowed v6", allow, "[fd00::5]:8080", "http://[fd00::5]:8080", true},
		{"allowed normalised", allow, "upper.example", "", true},
		{"allow-list still refuses others", allow, "evil.example.com", "", false},
		{"allow-list, foreign origin", allow, "devbox.lan", "http://evil.example.com", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			reason := tc.p.Check(r)
			if (reason == "") != tc.ok {
				t.Fatalf("Check(Host %q, Origin %q) = %q, want ok=%v", tc.host, tc.origin, reason, tc.ok)
			}
		})
	}
}

func TestAnyHost(t *testing.T) {
	p, err := New(Split("*"))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = "evil.example.com"
	r.Header.Set("Origin", "http://evil.example.com")
	if reason := p.Check(r); reason != "" {
		t.Fatal(reason)
	}
}

func TestNewRefusesBadNames(t *testing.T) {
	for _, s := range []string{"true", "1", "devbox:8080", "http://devbox", "a b", "dev/box"} {
		if _, err := New([]string{s}); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
	if got := Split(" a, ,b ,"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Split = %q", got)
	}
}

func TestHandler(t *testing.T) {
	h := Handler(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		func(w http.ResponseWriter, r *http.Request, reason string) {
			http.Error(w, reason, http.StatusForbidden)
		})
	r := httptest.NewRequest(http.MethodGet, "/", nil) // Host: example.com
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"example.com"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	r.Host = "127.0.0.1:1"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("loopback: %d", rec.Code)
	}
}

func BenchmarkCheck(b *testing.B) {
	p, _ := New([]string{"devbox.lan"})
	r := httptest.NewRequest(http.MethodPost, "/responses", nil)
	r.Host = "127.0.0.1:8080"
	r.Header.Set("Origin", "http://localhost:5173")
	b.ReportAllocs()
	for b.Loop() {
		if p.Check(r) != "" {
			b.Fatal("refused")
		}
	}
}

// An origin the host's CORS policy lists passes the Origin check exactly as
// listed, in the copy only; the Host check still applies.
func TestWithOrigins(t *testing.T) {
	base, err := New([]string{"devbox.lan"})
	if err != nil {
		t.Fatal(err)
	}
	p := base.WithOrigins("https://app.example.com")
	for _, tc := range []struct {
		p            *Policy
		host, origin string
		ok           bool
	}{
		{p, "127.0.0.1:8080", "https://app.example.com", true},
		{p, "devbox.lan:8080", "http://devbox.lan:3000", true}, // the copy keeps the hosts
		{p, "127.0.0.1:8080", "http://localhost:3000", true},
		{p, "127.0.0.1:8080", "http://app.example.com", false},       // other scheme
		{p, "127.0.0.1:8080", "https://app.example.com:8443", false}, // other port
		{p, "127.0.0.1:8080", "https://evil.example.com", false},
		{p, "app.example.com", "https://app.example.com", false}, // Host is not widened
		{base, "127.0.0.1:8080", "https://app.example.com", false},
		{(*Policy)(nil).WithOrigins("https://app.example.com"), "localhost", "https://app.example.com", true},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Host = tc.host
		r.Header.Set("Origin", tc.origin)
		if reason := tc.p.Check(r); (reason == "") != tc.ok {
			t.Errorf("Check(Host %q, Origin %q) = %q, want ok=%v", tc.host, tc.origin, reason, tc.ok)
		}
	}
}

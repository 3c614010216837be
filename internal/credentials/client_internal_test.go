package credentials

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	_, hp, err := parseHost("https://adb-1.azuredatabricks.net")
	if err != nil {
		t.Fatal(err)
	}
	for url, ok := range map[string]bool{
		"https://adb-1.azuredatabricks.net/api/2.0/mcp/genie/x":     true,
		"https://ADB-1.azuredatabricks.net:443/api/2.0/mcp/genie/x": true,
		"/api/2.0/genie/spaces/x":                                   true, // SDK requests carry only a path
		"http://adb-1.azuredatabricks.net/x":                        false,
		"https://adb-1.azuredatabricks.net:8443/x":                  false,
		"https://evil.example/x":                                    false,
	} {
		r, _ := http.NewRequest("GET", url, nil)
		if err := checkHost(r, hp); (err == nil) != ok {
			t.Errorf("checkHost(%s) = %v", url, err)
		}
	}
}

// TestParseHostRequiresTLS: http:// is refused outside loopback with an
// *InsecureHostError, before any client exists; https and loopback pass.
func TestParseHostRequiresTLS(t *testing.T) {
	for host, want := range map[string]string{
		"https://adb-1.azuredatabricks.net":       "https://adb-1.azuredatabricks.net",
		"adb-1.azuredatabricks.net":               "https://adb-1.azuredatabricks.net",
		"HTTPS://adb-1.azuredatabricks.net:443/x": "https://adb-1.azuredatabricks.net:443",
		"http://127.0.0.1:8765":                   "http://127.0.0.1:8765",
		"http://127.8.9.10":                       "http://127.8.9.10",
		"http://localhost:8080":                   "http://localhost:8080",
		"http://LOCALHOST":                        "http://LOCALHOST",
		"http://[::1]:9000":                       "http://[::1]:9000",
		"http://[::ffff:127.0.0.1]:9000":          "http://[::ffff:127.0.0.1]:9000",
	} {
		got, _, err := parseHost(host)
		if err != nil || got != want {
			t.Errorf("parseHost(%q) = %q, %v; want %q", host, got, err, want)
		}
	}
	for _, host := range []string{
		"http://adb-1.azuredatabricks.net", "HTTP://adb-1.azuredatabricks.net", "http://10.0.0.5:8080",
		"http://0.0.0.0:8765", "http://[::]:8765", "http://localhost.evil.example", "http://127.0.0.1.nip.io",
		"http://sidecar:8080",
	} {
		_, _, err := parseHost(host)
		var ie *InsecureHostError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "https://") {
			t.Errorf("parseHost(%q) = %v, want an *InsecureHostError", host, err)
		}
	}
	for _, host := range []string{"ftp://x.example", "https://", "http://:80", "ws://localhost"} {
		if _, _, err := parseHost(host); err == nil {
			t.Errorf("parseHost(%q) accepted", host)
		}
	}
}

package credentials

import (
	"net/http"
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

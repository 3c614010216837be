package loader

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the plugin built once for the whole run.
func TestMain(m *testing.M) {
	code := m.Run()
	if examplePlugin.path != "" {
		os.RemoveAll(filepath.Dir(examplePlugin.path))
	}
	os.Exit(code)
}

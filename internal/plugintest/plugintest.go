// Package plugintest runs the go builds of Go plugins that tests make, one
// at a time across the test binaries of a `go test ./...`. A plugin build
// compiles the standard library and every dependency again in plugin mode:
// two side by side compile it all twice, where one after the other the
// second finds it in the build cache (on a fresh CI machine, minutes).
package plugintest

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Build runs go with args in dir, with env as the command's environment,
// holding a lock that other test binaries' Builds wait for, and returns
// its combined output.
func Build(dir string, args, env []string) ([]byte, error) {
	unlock := lock(filepath.Join(os.TempDir(), "agentrt-plugin-build.lock"))
	defer unlock()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd.CombinedOutput()
}

package loader

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/manifest"
	"github.com/agentrt/agentrt/internal/plugintest"
	"github.com/agentrt/agentrt/internal/wire"
)

// moduleRoot is the agentrt module directory (this package is internal/loader).
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from the test's directory: %v", err)
	}
	return root
}

// goBuildPlugin builds the package pkg (run in dir) as a plugin into out,
// with the flags this test binary was built with plus extra.
func goBuildPlugin(dir, pkg, out string, env []string, extra ...string) error {
	host, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("test binary has no build info")
	}
	args := append([]string{"build"}, PluginBuildFlags(host)...)
	args = append(args, extra...)
	args = append(args, "-o", out, pkg)
	if b, err := plugintest.Build(dir, args, append(append(os.Environ(), "CGO_ENABLED=1"), env...)); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

var examplePlugin struct {
	once sync.Once
	path string
	err  error
}

// buildExamplePlugin builds examples/plugin once per test process, matching
// this binary's flags (-race when the tests run under the race detector).
func buildExamplePlugin(t testing.TB) string {
	t.Helper()
	root := moduleRoot(t)
	examplePlugin.once.Do(func() {
		dir, err := os.MkdirTemp("", "agentrt-plugin-")
		if err != nil {
			examplePlugin.err = err
			return
		}
		examplePlugin.path = filepath.Join(dir, "plugin.so")
		examplePlugin.err = goBuildPlugin(root, "./examples/plugin", examplePlugin.path, nil)
	})
	if examplePlugin.err != nil {
		t.Fatal(examplePlugin.err)
	}
	return examplePlugin.path
}

// linkPlugin places the shared test plugin in dir under name. It links
// rather than copies: a process can open a plugin only once, and
// plugin.Open resolves symlinks, so every link reuses the one loaded copy.
func linkPlugin(t *testing.T, so, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Symlink(so, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// copyTo copies src into dir under name and returns the new path.
func copyTo(t *testing.T, src, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLoadPlugin(t *testing.T) {
	so := buildExamplePlugin(t)
	root := moduleRoot(t)

	t.Run("manifest beside the plugin", func(t *testing.T) {
		dir := t.TempDir()
		p := linkPlugin(t, so, dir, "stats.so")
		yamlPath := copyTo(t, filepath.Join(root, "examples/plugin/agent.yaml"), dir, ManifestFileName)

		l, err := Load(Options{Agent: p})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !l.Plugin || l.Name != p {
			t.Errorf("Loaded = %+v, want plugin %s", l, p)
		}
		if want := "file " + yamlPath + " (beside plugin)"; l.ManifestSource != want {
			t.Errorf("ManifestSource = %q, want %q", l.ManifestSource, want)
		}
		req, err := wire.DecodeRequest([]byte(`{"input":[{"role":"user","content":"Hello plugin world"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := l.Agent.Predict(context.Background(), req)
		if err != nil {
			t.Fatalf("Predict: %v", err)
		}
		want := "words: 3\ncharacters: 18\nlines: 1\nlongest word: plugin"
		if got := resp.OutputText(); got != want {
			t.Errorf("Predict output = %q, want %q", got, want)
		}
		sa, ok := l.Agent.(agent.StreamAgent)
		if !ok {
			t.Fatal("plugin agent does not stream")
		}
		var deltas int
		err = sa.PredictStream(context.Background(), req, func(ev *agent.StreamEvent) error {
			if ev.Type == agent.EventOutputTextDelta {
				deltas++
			}
			return nil
		})
		if err != nil || deltas != 4 {
			t.Errorf("PredictStream: %d deltas, err %v; want 4 deltas", deltas, err)
		}
	})

	t.Run("explicit manifest wins", func(t *testing.T) {
		dir := t.TempDir()
		p := linkPlugin(t, so, dir, "stats.so")
		copyTo(t, filepath.Join(root, "examples/plugin/agent.yaml"), dir, ManifestFileName)
		explicit := filepath.Join(t.TempDir(), "other.yaml")
		writeFile(t, explicit, "resources:\n  api_version: '1'\n  databricks:\n    serving_endpoint:\n    - name: databricks-claude\n")
		l, err := Load(Options{Agent: p, ManifestFile: explicit})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !strings.HasSuffix(l.ManifestSource, "(--manifest)") || len(l.Manifest.Resources) != 1 {
			t.Errorf("manifest %+v from %q, want the explicit file", l.Manifest, l.ManifestSource)
		}
	})

	t.Run("no manifest anywhere", func(t *testing.T) {
		p := linkPlugin(t, so, t.TempDir(), "stats.so")
		l, err := Load(Options{Agent: p})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if l.ManifestSource != "none (empty manifest)" {
			t.Errorf("ManifestSource = %q", l.ManifestSource)
		}
	})

	t.Run("invalid manifest beside the plugin", func(t *testing.T) {
		dir := t.TempDir()
		p := linkPlugin(t, so, dir, "stats.so")
		writeFile(t, filepath.Join(dir, ManifestFileName), "resources:\n  api_version: '1'\n  databricks:\n    warehouse:\n    - name: x\n")
		_, err := Load(Options{Agent: p})
		var me *manifest.Error
		if !errors.As(err, &me) {
			t.Fatalf("Load error = %v, want an *manifest.Error", err)
		}
	})
}

func TestLoadPluginRefusesMismatchedBuild(t *testing.T) {
	so := buildExamplePlugin(t)
	host := hostBuildInfoWithDeps(t)

	t.Run("real plugin from a module that forks a shared dependency", func(t *testing.T) {
		// A user module whose go.mod replaces github.com/google/go-querystring
		// (which the agent package links through databricks-sdk-go, and so
		// does this binary) with its own copy.
		mod := userModule(t, func(dir string) map[string]string {
			fork := filepath.Join(dir, "qsfork")
			copyTree(t, moduleDir(t, "github.com/google/go-querystring"), fork)
			return map[string]string{"github.com/google/go-querystring": "./qsfork", "github.com/agentrt/agentrt": moduleRoot(t)}
		})
		out := filepath.Join(t.TempDir(), "forked.so")
		if err := buildInModule(mod, out); err != nil {
			t.Fatal(err)
		}
		_, err := Load(Options{Agent: out, HostBuildInfo: host})
		var ie *IncompatibleError
		if !errors.As(err, &ie) {
			t.Fatalf("Load error = %v, want *IncompatibleError", err)
		}
		if len(ie.Mismatches) != 1 || ie.Mismatches[0].What != "module github.com/google/go-querystring" ||
			!strings.HasSuffix(ie.Mismatches[0].Plugin, "=> ./qsfork") {
			t.Errorf("mismatches = %v, want only github.com/google/go-querystring replaced by ./qsfork", ie.Mismatches)
		}
		t.Logf("the message an operator sees:\n%v", err)
	})

	t.Run("real plugin whose agentrt source differs (runtime check)", func(t *testing.T) {
		// Both sides build agentrt from local source, so versions cannot
		// tell them apart; Go's own package check fails and the loader
		// turns its error into the same typed, readable one.
		mod := userModule(t, func(dir string) map[string]string {
			fork := filepath.Join(dir, "agentrt")
			// agent and the internal packages it imports.
			for _, pkg := range []string{"agent", "internal/agentlink", "internal/registry", "internal/wireproto"} {
				copyTree(t, filepath.Join(moduleRoot(t), pkg), filepath.Join(fork, pkg))
			}
			for _, f := range []string{"go.mod", "go.sum"} {
				copyTo(t, filepath.Join(moduleRoot(t), f), fork, f)
			}
			writeFile(t, filepath.Join(fork, "agent", "zz_skew.go"), "package agent\n\n// PluginSkew exists only in this copy.\nconst PluginSkew = 1\n")
			return map[string]string{"github.com/agentrt/agentrt": "./agentrt"}
		})
		out := filepath.Join(t.TempDir(), "skewed.so")
		if err := buildInModule(mod, out); err != nil {
			t.Fatal(err)
		}
		if err := CheckFile(out, host); err != nil {
			t.Fatalf("CheckFile = %v; local sources should not be comparable", err)
		}
		_, err := Load(Options{Agent: out, HostBuildInfo: host})
		var ie *IncompatibleError
		if !errors.As(err, &ie) {
			t.Fatalf("Load error = %v, want *IncompatibleError", err)
		}
		// Go names the first differing package in link order: agent, or one
		// of the internal packages it imports, all built from the fork.
		if len(ie.Mismatches) != 1 || !strings.HasPrefix(ie.Mismatches[0].What, "package github.com/agentrt/agentrt/") {
			t.Errorf("mismatches = %v, want one agentrt package", ie.Mismatches)
		}
	})

	t.Run("the real plugin matches the host", func(t *testing.T) {
		if err := CheckFile(so, host); err != nil {
			t.Fatalf("CheckFile = %v", err)
		}
	})

	t.Run("real plugin, host with another dependency version", func(t *testing.T) {
		// The host is simulated: this binary's build info with one shared
		// module at another version, as if serve had been built from an
		// older go.mod than the plugin.
		fake := *host
		fake.Deps = slices.Clone(host.Deps)
		var bumped string
		for i, d := range fake.Deps {
			if d.Path == "github.com/databricks/databricks-sdk-go" && d.Replace == nil {
				c := *d
				c.Version, c.Sum = "v0.174.0", ""
				fake.Deps[i], bumped = &c, d.Version
			}
		}
		if bumped == "" {
			t.Fatal("databricks-sdk-go is not a dependency of this binary")
		}
		_, err := Load(Options{Agent: so, HostBuildInfo: &fake})
		var ie *IncompatibleError
		if !errors.As(err, &ie) {
			t.Fatalf("Load error = %v, want *IncompatibleError", err)
		}
		want := "module github.com/databricks/databricks-sdk-go: host v0.174.0, plugin " + bumped
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	})

	t.Run("host without cgo", func(t *testing.T) {
		fake := *host
		fake.Settings = slices.DeleteFunc(slices.Clone(host.Settings), func(s debug.BuildSetting) bool { return s.Key == "CGO_ENABLED" })
		fake.Settings = append(fake.Settings, debug.BuildSetting{Key: "CGO_ENABLED", Value: "0"})
		_, err := Load(Options{Agent: so, HostBuildInfo: &fake})
		var pe *PluginError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Fatalf("Load error = %v, want a PluginError about cgo", err)
		}
	})
}

func TestLoadPluginErrors(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "junk.so")
	writeFile(t, notELF, "not a shared object")
	tests := []struct {
		name, agent, op string
	}{
		{"missing file", filepath.Join(dir, "absent.so"), "stat"},
		{"directory", dir + "/", "stat"},
		{"not a Go binary", notELF, "read build info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Options{Agent: tt.agent})
			var pe *PluginError
			if !errors.As(err, &pe) || pe.Op != tt.op {
				t.Fatalf("Load(%q) = %v, want a PluginError from %q", tt.agent, err, tt.op)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// userModule lays out a module example.com/useragent holding a copy of the
// example plugin, with this module's requirements and the replacements
// setup returns (module path → directory, relative to the module or not).
func userModule(t *testing.T, setup func(dir string) map[string]string) string {
	t.Helper()
	root := moduleRoot(t)
	dir := t.TempDir()
	replace := setup(dir)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(gomod), "module github.com/agentrt/agentrt", "module example.com/useragent", 1)
	body += "\nrequire github.com/agentrt/agentrt v0.0.0\n"
	for path, target := range replace {
		body += "replace " + path + " => " + target + "\n"
	}
	writeFile(t, filepath.Join(dir, "go.mod"), body)
	copyTo(t, filepath.Join(root, "go.sum"), dir, "go.sum")
	copyTo(t, filepath.Join(root, "examples/plugin/main.go"), filepath.Join(mkdir(t, dir, "plugin")), "main.go")
	return dir
}

// buildInModule builds ./plugin of a userModule offline: every module it
// needs is already in the module cache because this binary was built.
func buildInModule(dir, out string) error {
	return goBuildPlugin(dir, "./plugin", out, []string{"GOFLAGS=" + os.Getenv("GOFLAGS") + " -mod=mod", "GOPROXY=off", "GOWORK=off"})
}

func moduleDir(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path)
	cmd.Dir = moduleRoot(t)
	b, err := cmd.Output()
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		t.Fatalf("go list -m %s: %v", path, err)
	}
	return string(bytes.TrimSpace(b))
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	d := filepath.Join(parts...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// copyTree copies the regular files under src to dst, writable.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hostBuildInfoWithDeps is this test binary's build info completed with the
// module list a go build of the same packages records (test binaries carry
// no module list), read from go list.
func hostBuildInfoWithDeps(t testing.TB) *debug.BuildInfo {
	t.Helper()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("test binary has no build info")
	}
	cmd := exec.Command("go", "list", "-deps", "-json=Module", ".")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type mod struct {
		Path, Version, Sum string
		Main               bool
		Replace            *mod
	}
	seen := map[string]bool{}
	out := *bi
	out.Deps = nil
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var p struct{ Module *mod }
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		m := p.Module
		if m == nil || m.Main || seen[m.Path] {
			continue
		}
		seen[m.Path] = true
		d := &debug.Module{Path: m.Path, Version: m.Version, Sum: m.Sum}
		if r := m.Replace; r != nil {
			d.Replace = &debug.Module{Path: r.Path, Version: r.Version, Sum: r.Sum}
		}
		out.Deps = append(out.Deps, d)
	}
	if len(out.Deps) == 0 {
		t.Fatal("go list found no dependencies")
	}
	return &out
}

// BenchmarkReadPluginBuildInfo is the baseline: reading the build info out
// of the plugin file, which CheckFile must do anyway.
func BenchmarkReadPluginBuildInfo(b *testing.B) {
	so := buildExamplePlugin(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildinfo.ReadFile(so); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckFile is the whole check serve runs before plugin.Open.
func BenchmarkCheckFile(b *testing.B) {
	so := buildExamplePlugin(b)
	host := hostBuildInfoWithDeps(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckFile(so, host); err != nil {
			b.Fatal(err)
		}
	}
}

package loader

import (
	"debug/buildinfo"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
)

// Mismatch is one difference between the host's build and a plugin's build
// that stops the plugin from loading.
type Mismatch struct {
	// What names the difference: "go version", "build setting -race",
	// "module golang.org/x/net", "package github.com/x/y".
	What   string
	Host   string // the host's value ("" when it has none)
	Plugin string // the plugin's value ("" when it has none)
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: host %s, plugin %s", m.What, orNone(m.Host), orNone(m.Plugin))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// IncompatibleError reports a plugin that was not built against exactly the
// host's Go toolchain, build settings and shared module versions. Go refuses
// such a plugin with a one-line "different version of package" error; this
// lists every difference and how to rebuild instead.
type IncompatibleError struct {
	Path       string
	Mismatches []Mismatch
	// Rebuild is a go build command line that produces a compatible plugin
	// (flags only; the module versions must still be aligned by hand).
	Rebuild string
}

func (e *IncompatibleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s is incompatible with this serve binary (%d mismatch", e.Path, len(e.Mismatches))
	if len(e.Mismatches) != 1 {
		b.WriteString("es")
	}
	b.WriteString("):")
	for _, m := range e.Mismatches {
		b.WriteString("\n  - ")
		b.WriteString(m.String())
	}
	b.WriteString("\nbuild the plugin with the host's Go version, build flags and module versions (align go.mod, then rebuild)")
	if e.Rebuild != "" {
		b.WriteString(": ")
		b.WriteString(e.Rebuild)
	}
	return b.String()
}

// comparedSettings are the build settings that change the compiled form of
// shared packages (and so the hash the runtime checks when it opens a
// plugin). CGO_ENABLED is not among them: a plugin always has cgo, and the
// host's cgo is checked separately because without it nothing loads.
var comparedSettings = []string{
	"GOOS", "GOARCH", "GOAMD64", "GOARM", "GOARM64", "GO386", "GOPPC64", "GORISCV64", "GOMIPS", "GOMIPS64", "GOWASM",
	"GOEXPERIMENT", "-race", "-msan", "-asan", "-tags", "-trimpath", "-gcflags",
}

// Compare lists the differences between a host's and a plugin's build info
// that make the plugin unloadable: the Go version, the build settings in
// comparedSettings, and the version (after replacement) of every module both
// contain, including either main module. A module built from local source on
// both sides (a "(devel)" main module or a directory replacement) cannot be
// compared here; the runtime's own package check still covers it when the
// plugin is opened. The result is sorted and empty when nothing differs.
func Compare(host, plugin *debug.BuildInfo) []Mismatch {
	var out []Mismatch
	if host.GoVersion != plugin.GoVersion {
		out = append(out, Mismatch{What: "go version", Host: host.GoVersion, Plugin: plugin.GoVersion})
	}
	hs, ps := settings(host), settings(plugin)
	for _, k := range comparedSettings {
		hv, pv := normSetting(k, hs[k]), normSetting(k, ps[k])
		if hv != pv {
			out = append(out, Mismatch{What: "build setting " + k, Host: hv, Plugin: pv})
		}
	}
	hm, pm := modules(host), modules(plugin)
	var mods []Mismatch
	for path, h := range hm {
		p, ok := pm[path]
		if !ok || (h.local && p.local) {
			continue
		}
		if h.version != p.version {
			mods = append(mods, Mismatch{What: "module " + path, Host: h.version, Plugin: p.version})
		} else if h.sum != "" && p.sum != "" && h.sum != p.sum {
			mods = append(mods, Mismatch{What: "module " + path + " checksum", Host: h.sum, Plugin: p.sum})
		}
	}
	slices.SortFunc(mods, func(a, b Mismatch) int { return strings.Compare(a.What, b.What) })
	return append(out, mods...)
}

func settings(bi *debug.BuildInfo) map[string]string {
	m := make(map[string]string, len(bi.Settings))
	for _, s := range bi.Settings {
		m[s.Key] = s.Value
	}
	return m
}

// normSetting makes an absent boolean flag equal to its false value, so a
// host built without -race matches a plugin whose info omits the key.
func normSetting(key, v string) string {
	if strings.HasPrefix(key, "-") && v == "false" {
		return ""
	}
	return v
}

type modVersion struct {
	version string // what is compared: "v1.2.3", "v1.2.3 => other@v1.0.0", "(devel)", "=> ../dir"
	sum     string
	local   bool // built from source on disk; versions say nothing
}

func modules(bi *debug.BuildInfo) map[string]modVersion {
	m := make(map[string]modVersion, len(bi.Deps)+1)
	if bi.Main.Path != "" {
		m[bi.Main.Path] = describe(&bi.Main)
	}
	for _, d := range bi.Deps {
		if d != nil {
			m[d.Path] = describe(d)
		}
	}
	return m
}

func describe(mod *debug.Module) modVersion {
	if r := mod.Replace; r != nil {
		if r.Version == "" || r.Version == "(devel)" { // directory replacement
			return modVersion{version: mod.Version + " => " + r.Path, local: true}
		}
		v := mod.Version + " => " + r.Path + "@" + r.Version
		if r.Path == mod.Path {
			v = mod.Version + " => " + r.Version
		}
		return modVersion{version: v, sum: r.Sum}
	}
	if mod.Version == "(devel)" || mod.Version == "" {
		return modVersion{version: "(devel)", local: true}
	}
	return modVersion{version: mod.Version, sum: mod.Sum}
}

// CheckFile compares the build info embedded in the plugin file at path with
// host and returns an *IncompatibleError listing every mismatch, or nil. It
// reads the file only; nothing is loaded.
func CheckFile(path string, host *debug.BuildInfo) error {
	pbi, err := buildinfo.ReadFile(path)
	if err != nil {
		return &PluginError{Path: path, Op: "read build info", Err: err}
	}
	if mm := Compare(host, pbi); len(mm) > 0 {
		return &IncompatibleError{Path: path, Mismatches: mm, Rebuild: RebuildCommand(host, pbi.Path)}
	}
	return nil
}

// PluginBuildFlags returns the go build flags (after -buildmode=plugin) that
// give a plugin the same compiled form of shared packages as the host
// described by host: -race, -msan, -asan, -trimpath, -tags and -gcflags as
// the host was built with, and -buildvcs=false for a host whose main module
// carries no version from version control ("(devel)" without vcs
// settings: built with -buildvcs=false, outside a repository, or a test
// binary), since a plugin built in a clean checkout would carry one and
// differ from it.
func PluginBuildFlags(host *debug.BuildInfo) []string {
	s := settings(host)
	flags := []string{"-buildmode=plugin"}
	for _, f := range []string{"-race", "-msan", "-asan", "-trimpath"} {
		if s[f] == "true" {
			flags = append(flags, f)
		}
	}
	if v := s["-tags"]; v != "" {
		flags = append(flags, "-tags="+v)
	}
	if v := s["-gcflags"]; v != "" {
		flags = append(flags, "-gcflags="+v)
	}
	if host.Main.Version == "(devel)" && s["vcs"] == "" {
		flags = append(flags, "-buildvcs=false")
	}
	return flags
}

// RebuildCommand renders the go build command line for a plugin package
// compatible with host, including the GOOS/GOARCH environment it needs.
func RebuildCommand(host *debug.BuildInfo, pkg string) string {
	s := settings(host)
	var env []string
	for _, k := range []string{"GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOEXPERIMENT"} {
		if v := s[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	parts := append(env, "CGO_ENABLED=1")
	if strings.HasPrefix(host.GoVersion, "go1") {
		// Pin the toolchain: a plugin built by any other Go release is refused.
		parts = append(parts, "GOTOOLCHAIN="+host.GoVersion)
	}
	parts = append(parts, "go", "build")
	for _, f := range PluginBuildFlags(host) {
		parts = append(parts, shellQuote(f))
	}
	if pkg == "" {
		pkg = "./yourplugin"
	}
	parts = append(parts, "-o", "agent.so", pkg)
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if !strings.ContainsAny(s, " \t'\"$`\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

package loader

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

func buildInfo(goVersion string, settings map[string]string, main debug.Module, deps ...*debug.Module) *debug.BuildInfo {
	bi := &debug.BuildInfo{GoVersion: goVersion, Path: main.Path + "/cmd", Main: main, Deps: deps}
	for k, v := range settings {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
	}
	return bi
}

func TestCompare(t *testing.T) {
	base := map[string]string{"GOOS": "linux", "GOARCH": "amd64", "GOAMD64": "v1", "CGO_ENABLED": "1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	devel := debug.Module{Path: "github.com/agentrt/agentrt", Version: "(devel)"}
	uuid16 := &debug.Module{Path: "github.com/google/uuid", Version: "v1.6.0", Sum: "h1:a"}
	uuid15 := &debug.Module{Path: "github.com/google/uuid", Version: "v1.5.0", Sum: "h1:b"}
	net := &debug.Module{Path: "golang.org/x/net", Version: "v0.60.0"}
	host := buildInfo("go1.26.8", base, devel, uuid16, net)

	tests := []struct {
		name   string
		plugin *debug.BuildInfo
		want   []string // the What of each mismatch, in order
	}{
		{"identical", buildInfo("go1.26.8", base, devel, uuid16, net), nil},
		{"plugin has extra modules", buildInfo("go1.26.8", base, devel, uuid16, net, &debug.Module{Path: "example.com/only", Version: "v1.0.0"}), nil},
		{"plugin lacks a host module", buildInfo("go1.26.8", base, devel), nil},
		{"explicit -race=false equals absent", buildInfo("go1.26.8", with("-race", "false"), devel, uuid16), nil},
		{"go version", buildInfo("go1.26.7", base, devel, uuid16), []string{"go version"}},
		{"race", buildInfo("go1.26.8", with("-race", "true"), devel, uuid16), []string{"build setting -race"}},
		{"trimpath and tags", buildInfo("go1.26.8", with("-trimpath", "true", "-tags", "netgo"), devel), []string{"build setting -tags", "build setting -trimpath"}},
		{"arch level", buildInfo("go1.26.8", with("GOAMD64", "v3"), devel), []string{"build setting GOAMD64"}},
		{"dependency version", buildInfo("go1.26.8", base, devel, uuid15, net), []string{"module github.com/google/uuid"}},
		{"same version, other checksum", buildInfo("go1.26.8", base, devel, &debug.Module{Path: "github.com/google/uuid", Version: "v1.6.0", Sum: "h1:z"}), []string{"module github.com/google/uuid checksum"}},
		{"replaced by a fork", buildInfo("go1.26.8", base, devel, &debug.Module{Path: "github.com/google/uuid", Version: "v1.6.0",
			Replace: &debug.Module{Path: "example.com/fork/uuid", Version: "v1.6.1"}}), []string{"module github.com/google/uuid"}},
		{"replaced by a directory (host has a release)", buildInfo("go1.26.8", base, devel, &debug.Module{Path: "github.com/google/uuid", Version: "v1.6.0",
			Replace: &debug.Module{Path: "../uuid"}}), []string{"module github.com/google/uuid"}},
		{"host main module is a release in the plugin", buildInfo("go1.26.8", base, debug.Module{Path: "example.com/myagent", Version: "(devel)"},
			&debug.Module{Path: "github.com/agentrt/agentrt", Version: "v0.3.0"}), []string{"module github.com/agentrt/agentrt"}},
		{"agentrt from a local directory on both sides", buildInfo("go1.26.8", base, debug.Module{Path: "example.com/myagent", Version: "(devel)"},
			&debug.Module{Path: "github.com/agentrt/agentrt", Version: "v0.0.0", Replace: &debug.Module{Path: "../agentrt"}}), nil},
		{"several at once, sorted", buildInfo("go1.26.7", with("-race", "true"), devel, uuid15, &debug.Module{Path: "golang.org/x/net", Version: "v0.59.0"}),
			[]string{"go version", "build setting -race", "module github.com/google/uuid", "module golang.org/x/net"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range Compare(host, tt.plugin) {
				got = append(got, m.What)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Compare mismatches = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIncompatibleErrorMessage(t *testing.T) {
	host := buildInfo("go1.26.8", map[string]string{"GOOS": "linux", "GOARCH": "amd64", "-race": "true", "-tags": "a b"},
		debug.Module{Path: "github.com/agentrt/agentrt", Version: "(devel)"}, &debug.Module{Path: "github.com/google/uuid", Version: "v1.6.0"})
	plugin := buildInfo("go1.26.7", map[string]string{"GOOS": "linux", "GOARCH": "amd64", "-tags": "a b"},
		debug.Module{Path: "example.com/p", Version: "(devel)"}, &debug.Module{Path: "github.com/google/uuid", Version: "v1.5.0"})
	var err error = &IncompatibleError{Path: "/x/agent.so", Mismatches: Compare(host, plugin), Rebuild: RebuildCommand(host, "./p")}

	var ie *IncompatibleError
	if !errors.As(err, &ie) || len(ie.Mismatches) != 3 {
		t.Fatalf("errors.As: %v, %+v", err, ie)
	}
	msg := err.Error()
	for _, want := range []string{
		"plugin /x/agent.so is incompatible with this serve binary (3 mismatches)",
		"  - go version: host go1.26.8, plugin go1.26.7",
		"  - build setting -race: host true, plugin (none)",
		"  - module github.com/google/uuid: host v1.6.0, plugin v1.5.0",
		"GOOS=linux GOARCH=amd64 CGO_ENABLED=1 GOTOOLCHAIN=go1.26.8 go build -buildmode=plugin -race '-tags=a b' -buildvcs=false -o agent.so ./p",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "different version of package") {
		t.Error("message should replace Go's terse error, not repeat it")
	}
}

func TestPluginBuildFlags(t *testing.T) {
	tests := []struct {
		settings map[string]string
		want     []string
	}{
		{map[string]string{}, []string{"-buildmode=plugin"}},
		{map[string]string{"-race": "true", "-trimpath": "true"}, []string{"-buildmode=plugin", "-race", "-trimpath"}},
		{map[string]string{"-race": "false", "-tags": "x,y", "-gcflags": "all=-N -l"}, []string{"-buildmode=plugin", "-tags=x,y", "-gcflags=all=-N -l"}},
	}
	for _, tt := range tests {
		got := PluginBuildFlags(buildInfo("go1.26.8", tt.settings, debug.Module{Path: "m"}))
		if !slices.Equal(got, tt.want) {
			t.Errorf("PluginBuildFlags(%v) = %q, want %q", tt.settings, got, tt.want)
		}
	}
	// A host without a version from version control (a test binary, or
	// built with -buildvcs=false): the plugin must not get one either.
	devel := debug.Module{Path: "m", Version: "(devel)"}
	if got := PluginBuildFlags(buildInfo("go1.26.8", nil, devel)); !slices.Contains(got, "-buildvcs=false") {
		t.Errorf("devel host without vcs: %q, want -buildvcs=false", got)
	}
	if got := PluginBuildFlags(buildInfo("go1.26.8", map[string]string{"vcs": "git"}, devel)); slices.Contains(got, "-buildvcs=false") {
		t.Errorf("host stamped from git: %q, want the default stamping", got)
	}
}

// TestHostBuildInfoSeesRace cross-checks the build info this package reads
// against the race detector's build tag.
func TestHostBuildInfoSeesRace(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("test binary has no build info")
	}
	if got := slices.Contains(PluginBuildFlags(bi), "-race"); got != raceEnabled {
		t.Errorf("PluginBuildFlags has -race = %v, but the binary was built with race = %v", got, raceEnabled)
	}
}

// BenchmarkCompare compares a host with ~100 modules to an identical plugin.
func BenchmarkCompare(b *testing.B) {
	host := hostBuildInfoWithDeps(b)
	plugin := *host
	b.ReportAllocs()
	for b.Loop() {
		if mm := Compare(host, &plugin); len(mm) != 0 {
			b.Fatal(mm)
		}
	}
}

func ExampleCompare() {
	host := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/agentrt/agentrt", Version: "(devel)"},
		Deps: []*debug.Module{{Path: "github.com/google/uuid", Version: "v1.6.0"}}}
	plugin := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/myagent", Version: "(devel)"},
		Deps:     []*debug.Module{{Path: "github.com/agentrt/agentrt", Version: "v0.3.0"}, {Path: "github.com/google/uuid", Version: "v1.5.0"}},
		Settings: []debug.BuildSetting{{Key: "-race", Value: "true"}}}
	for _, m := range Compare(host, plugin) {
		fmt.Println(m)
	}
	// Output:
	// build setting -race: host (none), plugin true
	// module github.com/agentrt/agentrt: host (devel), plugin v0.3.0
	// module github.com/google/uuid: host v1.6.0, plugin v1.5.0
}

package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"plugin"
	"regexp"

	"github.com/agentrt/agentrt/agent"
)

// Exported symbol names a plugin provides.
const (
	SymbolNew      = "New"
	SymbolManifest = "Manifest"
)

// goPkgMismatch matches the runtime's refusal of a plugin whose shared
// package differs from the host's copy.
var goPkgMismatch = regexp.MustCompile(`plugin was built with a different version of package (\S+)`)

func loadPlugin(opts Options) (*Loaded, func() (agent.Manifest, string), error) {
	path, err := filepath.Abs(opts.Agent)
	if err != nil {
		return nil, nil, &PluginError{Path: opts.Agent, Op: "resolve path", Err: err}
	}
	if fi, err := os.Stat(path); err != nil {
		return nil, nil, &PluginError{Path: path, Op: "stat", Err: err}
	} else if fi.IsDir() {
		return nil, nil, &PluginError{Path: path, Op: "stat", Err: errors.New("is a directory, want a .so file built with go build -buildmode=plugin")}
	}
	host, err := hostBuildInfo(opts)
	if err != nil {
		return nil, nil, &PluginError{Path: path, Op: "check build", Err: err}
	}
	if settings(host)["CGO_ENABLED"] != "1" {
		return nil, nil, &PluginError{Path: path, Op: "open", Err: errors.New(
			"this serve binary was built with CGO_ENABLED=0 and cannot load plugins; " +
				"use the glibc image (docker build --target plugin) or rebuild serve with CGO_ENABLED=1")}
	}
	if err := CheckFile(path, host); err != nil {
		return nil, nil, err
	}
	p, err := plugin.Open(path)
	if err != nil {
		// The build info matched, but a package built from local source
		// (which versions cannot describe) still differs.
		if m := goPkgMismatch.FindStringSubmatch(err.Error()); m != nil {
			return nil, nil, &IncompatibleError{
				Path:       path,
				Mismatches: []Mismatch{{What: "package " + m[1], Host: "as compiled into serve", Plugin: "compiled from different source or flags"}},
				Rebuild:    RebuildCommand(host, ""),
			}
		}
		return nil, nil, &PluginError{Path: path, Op: "open", Err: err}
	}
	newFn, err := lookupNew(p)
	if err != nil {
		return nil, nil, &PluginError{Path: path, Op: "lookup " + SymbolNew, Err: err}
	}
	manifestFn, err := lookupManifest(p)
	if err != nil {
		return nil, nil, &PluginError{Path: path, Op: "lookup " + SymbolManifest, Err: err}
	}
	a, err := construct(newFn)
	if err != nil {
		return nil, nil, &PluginError{Path: path, Op: SymbolNew, Err: err}
	}
	return &Loaded{Name: path, Plugin: true, Agent: a}, manifestFn, nil
}

func lookupNew(p *plugin.Plugin) (func() (agent.Agent, error), error) {
	sym, err := p.Lookup(SymbolNew)
	if err != nil {
		return nil, fmt.Errorf("the plugin must export func %s() (agent.Agent, error): %w", SymbolNew, err)
	}
	switch f := sym.(type) {
	case func() (agent.Agent, error):
		return f, nil
	case *func() (agent.Agent, error):
		if *f == nil {
			return nil, fmt.Errorf("variable %s is nil", SymbolNew)
		}
		return *f, nil
	}
	return nil, fmt.Errorf("%s has type %T, want func() (agent.Agent, error)", SymbolNew, sym)
}

// lookupManifest returns nil when the plugin declares no manifest in code.
func lookupManifest(p *plugin.Plugin) (func() (agent.Manifest, string), error) {
	sym, err := p.Lookup(SymbolManifest)
	if err != nil {
		return nil, nil // optional
	}
	const src = "code (plugin symbol " + SymbolManifest + ")"
	switch f := sym.(type) {
	case func() agent.Manifest:
		return func() (agent.Manifest, string) { return f(), src }, nil
	case *func() agent.Manifest:
		if *f == nil {
			return nil, fmt.Errorf("variable %s is nil", SymbolManifest)
		}
		return func() (agent.Manifest, string) { return (*f)(), src }, nil
	case *agent.Manifest:
		return func() (agent.Manifest, string) { return *f, src }, nil
	}
	return nil, fmt.Errorf("%s has type %T, want func() agent.Manifest or agent.Manifest", SymbolManifest, sym)
}

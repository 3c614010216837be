// Package loader turns serve's --agent argument into a constructed agent: a
// name in the compile-time registry (agent.Register), or the path of a
// -buildmode=plugin .so file whose build is checked against the host's before
// Go is asked to open it. It also finds the agent's manifest (an explicit
// file, an agent.yaml beside the plugin, or the agent's own code) and says
// which one it used.
//
// A plugin exports, from its package main:
//
//	func New() (agent.Agent, error)    // required
//	func Manifest() agent.Manifest     // optional: the manifest in code
//
// Either may also be a package-level variable of that type (and Manifest a
// variable of type agent.Manifest).
package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/discover"
	"github.com/agentrt/agentrt/internal/manifest"
	"github.com/agentrt/agentrt/internal/registry"
)

// ManifestFileName is the manifest looked for beside a plugin.
const ManifestFileName = "agent.yaml"

// Options says what to load.
type Options struct {
	// Agent is a registered name ("echo") or a plugin path: anything ending
	// in .so or containing a path separator ("./agent.so", "/plugins/x.so").
	Agent string
	// ManifestFile, when set, is an agent.yaml (MLflow MLmodel form) that
	// overrides every other manifest source.
	ManifestFile string
	// HostBuildInfo describes the running binary for the plugin check; nil
	// means runtime/debug.ReadBuildInfo. Tests set it to simulate a host.
	HostBuildInfo *debug.BuildInfo
}

// Loaded is a constructed agent and where its parts came from.
type Loaded struct {
	Name   string // the registered name, or the plugin's absolute path
	Plugin bool   // loaded from a .so file
	Agent  agent.Agent

	Manifest agent.Manifest
	// ManifestSource says which manifest was used, for the start-up log:
	// "file /abs/agent.yaml (--manifest)", "file /abs/agent.yaml (beside
	// plugin)", "code (agent.Manifester)", "code (plugin symbol Manifest)"
	// or "none (empty manifest)".
	ManifestSource string
}

// UnknownAgentError is returned for a name that no linked-in package
// registered.
type UnknownAgentError struct {
	Name       string
	Registered []string
}

func (e *UnknownAgentError) Error() string {
	reg := "none"
	if len(e.Registered) > 0 {
		reg = strings.Join(e.Registered, ", ")
	}
	return fmt.Sprintf("unknown agent %q (registered in this binary: %s); to load a plugin, give a path ending in .so", e.Name, reg)
}

// PluginError is a failure to read, open or use a plugin file.
type PluginError struct {
	Path string
	Op   string // "stat", "read build info", "open", "lookup New", …
	Err  error
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("plugin %s: %s: %v", e.Path, e.Op, e.Err)
}

func (e *PluginError) Unwrap() error { return e.Err }

// IsPluginPath reports whether s names a plugin file rather than a
// registered agent.
func IsPluginPath(s string) bool {
	return strings.HasSuffix(s, ".so") || strings.ContainsRune(s, '/') || strings.ContainsRune(s, filepath.Separator)
}

// Load constructs the agent opts.Agent names and resolves its manifest.
func Load(opts Options) (*Loaded, error) {
	if opts.Agent == "" {
		return nil, errors.New("no agent given: pass --agent NAME or --agent ./path/agent.so")
	}
	var (
		l            *Loaded
		codeManifest func() (agent.Manifest, string)
		err          error
	)
	if IsPluginPath(opts.Agent) {
		l, codeManifest, err = loadPlugin(opts)
	} else {
		l, err = loadRegistered(opts.Agent)
	}
	if err != nil {
		return nil, err
	}
	if err := resolveManifest(l, opts, codeManifest); err != nil {
		return nil, err
	}
	return l, nil
}

func loadRegistered(name string) (*Loaded, error) {
	raw, ok := registry.Lookup(name)
	if !ok {
		return nil, &UnknownAgentError{Name: name, Registered: registry.Names()}
	}
	a, err := construct(raw.(func() (agent.Agent, error))) // agent.Register is the only writer
	if err != nil {
		return nil, fmt.Errorf("agent %q: %w", name, err)
	}
	return &Loaded{Name: name, Agent: a}, nil
}

// construct calls an agent constructor, turning a nil agent into an error
// so the host never serves nothing.
func construct(newFn func() (agent.Agent, error)) (agent.Agent, error) {
	a, err := newFn()
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errors.New("constructor returned a nil agent and no error")
	}
	return a, nil
}

// resolveManifest applies the precedence: an explicit file, then an
// agent.yaml beside the plugin (deployment-time configuration outranks the
// compiled-in default), then the agent's code, then nothing.
func resolveManifest(l *Loaded, opts Options, pluginManifest func() (agent.Manifest, string)) error {
	if err := pickManifest(l, opts, pluginManifest); err != nil {
		return err
	}
	if err := manifest.Validate(l.Manifest); err != nil {
		return fmt.Errorf("manifest from %s: %w", l.ManifestSource, err)
	}
	return nil
}

func pickManifest(l *Loaded, opts Options, pluginManifest func() (agent.Manifest, string)) error {
	if opts.ManifestFile != "" {
		abs, err := filepath.Abs(opts.ManifestFile)
		if err != nil {
			return err
		}
		m, err := manifest.LoadFile(abs)
		if err != nil {
			return fmt.Errorf("--manifest: %w", err)
		}
		l.Manifest, l.ManifestSource = m, "file "+abs+" (--manifest)"
		return nil
	}
	if l.Plugin {
		beside := filepath.Join(filepath.Dir(l.Name), ManifestFileName)
		switch _, err := os.Stat(beside); {
		case err == nil:
			m, err := manifest.LoadFile(beside)
			if err != nil {
				return fmt.Errorf("manifest beside plugin: %w", err)
			}
			l.Manifest, l.ManifestSource = m, "file "+beside+" (beside plugin)"
			return nil
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("manifest beside plugin: %w", err)
		}
	}
	if m, ok := discover.As[agent.Manifester](l.Agent); ok { // through FromStream's wrapper
		l.Manifest, l.ManifestSource = m.Manifest(), "code (agent.Manifester)"
		return nil
	}
	if pluginManifest != nil {
		l.Manifest, l.ManifestSource = pluginManifest()
		return nil
	}
	l.Manifest, l.ManifestSource = agent.Manifest{}, "none (empty manifest)"
	return nil
}

func hostBuildInfo(opts Options) (*debug.BuildInfo, error) {
	if opts.HostBuildInfo != nil {
		return opts.HostBuildInfo, nil
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil, errors.New("this binary has no build info (built without module support), so plugins cannot be checked")
	}
	return bi, nil
}

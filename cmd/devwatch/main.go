// Command devwatch is `make dev`'s rebuild-on-save loop: it builds
// cmd/serve, runs it with the given flags, and when a .go file under the
// module changes it rebuilds and restarts the server. A build that fails
// prints the compiler's errors and keeps the last good server running, so
// the loop never exits on a typo.
//
//	devwatch [--root .] [--bin bin/serve-dev] -- --dev --agent assistant
//
// With --dev, devwatch runs the dev workspace itself, once, and restarts only
// serve, pointed at it with --dev-workspace-url: the workspace's state (audit
// log, Genie conversations, created apps, …) outlives every rebuild. It
// takes the dev workspace's flags from serve's (--dev-workspace-addr, default
// 127.0.0.1:18765 so that its URL stays the same from one `make dev` to the
// next; --dev-config; --dev-llm-url; --dev-allow-remote) and their
// AGENTRT_DEV_* variables. The response store is serve's default SQLite file
// (or --store), the same for every restart.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/hostcheck"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devwatch:", err)
		os.Exit(1)
	}
}

// debounce gathers the burst of events one save makes (editors write,
// rename and chmod) into one rebuild.
const debounce = 200 * time.Millisecond

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("devwatch", flag.ContinueOnError)
	fset.SetOutput(stderr)
	root := fset.String("root", ".", "module root to watch and build in")
	bin := fset.String("bin", "bin/serve-dev", "where to write the serve binary (relative to --root)")
	pkg := fset.String("pkg", "./cmd/serve", "package to build")
	if err := fset.Parse(args); err != nil {
		return err
	}
	serveArgs, serveEnv := fset.Args(), os.Environ()
	if devRequested(serveArgs) {
		dev, args, env, err := startWorkspace(ctx, *root, serveArgs, serveEnv, stderr)
		if err != nil {
			return err
		}
		if dev != nil {
			defer dev.Close()
			fmt.Fprintf(stdout, "devwatch: dev workspace at %s, kept across restarts (audit log: %s/dev/audit)\n", dev.URL(), dev.URL())
			serveArgs, serveEnv = args, env
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := watchTree(w, *root); err != nil {
		return err
	}
	binPath := *bin
	if !filepath.IsAbs(binPath) {
		binPath = filepath.Join(*root, binPath)
	}
	binPath, err = filepath.Abs(binPath)
	if err != nil {
		return err
	}
	var srv *exec.Cmd
	exited := make(chan error, 1)
	stopServer := func() {
		if srv == nil {
			return
		}
		_ = srv.Process.Signal(syscall.SIGTERM) // serve drains and exits 0
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
		srv = nil
	}
	defer stopServer()
	restart := func() {
		fmt.Fprintf(stdout, "devwatch: building %s\n", *pkg)
		b := exec.CommandContext(ctx, "go", "build", "-o", binPath, *pkg)
		b.Dir = *root
		out, err := b.CombinedOutput()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintf(stderr, "devwatch: build failed; the running server (if any) is unchanged:\n%s\n", out)
			return
		}
		stopServer()
		srv = exec.Command(binPath, serveArgs...)
		srv.Dir, srv.Stdout, srv.Stderr, srv.Env = *root, stdout, stderr, serveEnv
		if err := srv.Start(); err != nil {
			fmt.Fprintf(stderr, "devwatch: start: %v\n", err)
			srv = nil
			return
		}
		go func(c *exec.Cmd) { exited <- c.Wait() }(srv)
		fmt.Fprintf(stdout, "devwatch: serving (pid %d); watching .go files under %s\n", srv.Process.Pid, *root)
	}
	restart()
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-exited:
			// The server stopped on its own (a start-up failure): wait for
			// the next change to try again.
			fmt.Fprintf(stderr, "devwatch: server exited: %v; waiting for a change\n", err)
			srv = nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watcher closed")
			}
			if ev.Op.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !skipDir(ev.Name) {
					_ = watchTree(w, ev.Name)
				}
			}
			if strings.HasSuffix(ev.Name, ".go") || strings.HasSuffix(ev.Name, "go.mod") {
				timer = time.After(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watcher closed")
			}
			fmt.Fprintf(stderr, "devwatch: watch: %v\n", err)
		case <-timer:
			timer = nil
			restart()
		}
	}
}

// skipDir leaves out directories that hold no source of the module.
func skipDir(path string) bool {
	base := filepath.Base(path)
	return base != "." && (strings.HasPrefix(base, ".") || base == "node_modules" || base == "bin" || base == "testdata")
}

// watchTree watches dir and its subdirectories (fsnotify is not recursive).
func watchTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != dir && skipDir(p) {
			return filepath.SkipDir
		}
		return w.Add(p)
	})
}

// devRequested reports whether serve is to run with --dev (the flag, or
// AGENTRT_DEV) and without a dev workspace of its own choosing
// (--dev-workspace-url).
func devRequested(args []string) bool {
	dev, ok := flagValue(args, "dev")
	if !ok {
		dev = os.Getenv("AGENTRT_DEV")
	}
	if on, _ := strconv.ParseBool(dev); !on {
		return false
	}
	url, ok := flagValue(args, "dev-workspace-url")
	return (ok && url == "") || (!ok && os.Getenv("AGENTRT_DEV_WORKSPACE_URL") == "")
}

// startWorkspace starts the dev workspace with serve's dev-workspace flags
// (or their variables), and returns serve's arguments and environment
// pointed at it instead.
func startWorkspace(ctx context.Context, root string, args, env []string, stderr io.Writer) (*devmode.Dev, []string, []string, error) {
	opt := func(name, key, def string) string {
		if v, ok := flagValue(args, name); ok {
			return v
		}
		if v := os.Getenv(key); v != "" {
			return v
		}
		return def
	}
	o := devmode.Options{
		Addr:         opt("dev-workspace-addr", "AGENTRT_DEV_WORKSPACE_ADDR", "127.0.0.1:18765"),
		ConfigFile:   opt("dev-config", "AGENTRT_DEV_CONFIG", ""),
		LLMProxyURL:  opt("dev-llm-url", "AGENTRT_DEV_LLM_URL", ""),
		AllowedHosts: hostcheck.Split(opt("dev-allow-remote", "AGENTRT_DEV_ALLOW_REMOTE", "")),
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	// serve runs in root and reads --dev-config from there; so does this.
	if o.ConfigFile != "" && !filepath.IsAbs(o.ConfigFile) {
		o.ConfigFile = filepath.Join(root, o.ConfigFile)
	}
	dev, err := devmode.Start(ctx, o)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dev workspace: %w", err)
	}
	// The listen address and the model proxy belong to the workspace now:
	// serve would refuse --dev-llm-url next to --dev-workspace-url.
	args = dropFlag(dropFlag(args, "dev-workspace-addr"), "dev-llm-url")
	args = append(args, "--dev-workspace-url", dev.URL())
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "AGENTRT_DEV_WORKSPACE_ADDR=") || strings.HasPrefix(kv, "AGENTRT_DEV_LLM_URL=")
	})
	return dev, args, env, nil
}

// flagValue finds a flag in serve's arguments as the flag package reads
// them: -name or --name, then =value or (for a non-boolean) the next
// argument. A bare boolean flag reads "true".
func flagValue(args []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		n, v, hasV := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || n != name {
			continue
		}
		switch {
		case hasV:
			val = v
		case name == "dev":
			val = "true"
		case i+1 < len(args):
			i++
			val = args[i]
		}
		found = true // the last one wins, as in the flag package
	}
	return val, found
}

// dropFlag removes every occurrence of a non-boolean flag and its value.
func dropFlag(args []string, name string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		n, _, hasV := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-"), "=")
		if strings.HasPrefix(args[i], "-") && n == name {
			if !hasV {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

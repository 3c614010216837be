// Command devwatch is `make dev`'s rebuild-on-save loop: it builds
// cmd/serve, runs it with the given flags, and when a .go file under the
// module changes it rebuilds and restarts the server. A build that fails
// prints the compiler's errors and keeps the last good server running, so
// the loop never exits on a typo.
//
//	devwatch [--root .] [--bin bin/serve-dev] -- --dev --agent assistant
//
// The dev workspace listens on a fixed port across restarts
// (--dev-workspace-addr, default 127.0.0.1:18765), so its URL stays the same;
// its in-memory state starts afresh with each restart.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
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
	bin := fset.String("bin", "bin/serve-dev", "where to write the serve binary")
	pkg := fset.String("pkg", "./cmd/serve", "package to build")
	if err := fset.Parse(args); err != nil {
		return err
	}
	serveArgs := fset.Args()
	if !slices.ContainsFunc(serveArgs, func(a string) bool { return strings.HasPrefix(a, "--dev-workspace-addr") }) {
		serveArgs = append(serveArgs, "--dev-workspace-addr", "127.0.0.1:18765")
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := watchTree(w, *root); err != nil {
		return err
	}
	binPath, err := filepath.Abs(filepath.Join(*root, *bin))
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
		srv.Dir, srv.Stdout, srv.Stderr = *root, stdout, stderr
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

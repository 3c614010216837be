package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const prog = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	fmt.Println("VERSION")
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	<-c
}
`

// TestRebuildOnSave: a change restarts the program with the new code; a
// change that does not compile prints the compiler's error and keeps the
// loop going; the next good change runs again.
func TestRebuildOnSave(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module wmod\n\ngo 1.26\n")
	write("main.go", strings.Replace(prog, "VERSION", "version one", 1))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--root", dir, "--pkg", "."}, pw, pw); pw.Close() }()
	defer func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	sc := bufio.NewScanner(pr)
	await := func(want string) {
		t.Helper()
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				return
			}
		}
		t.Fatalf("output ended before %q", want)
	}
	await("version one")
	write("main.go", strings.Replace(prog, "VERSION", "version two", 1))
	await("version two")
	write("main.go", prog+"func broken( {\n")
	await("build failed")
	await("syntax error")
	write("main.go", strings.Replace(prog, "VERSION", "version three", 1))
	await("version three")
}

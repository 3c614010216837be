package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/wireproto"
)

const (
	// nonroot is the uid and gid the image runs as (USER in Containerfile).
	nonroot = 65532
	// prodTag is the build tag that leaves the dev workspace out of serve
	// (runtime/cli/nodev.go); the Dockerfile builds with it.
	prodTag = "agentrt_nodev"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildProd builds the main package pkg the way the Dockerfile's
// build-static stage does.
func buildProd(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-tags", prodTag, "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// assertStatic fails unless the ELF file needs no dynamic loader or
// shared library, which is what lets it run on an empty base.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s is dynamically linked (program header %v)", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("%s needs shared libraries %v", path, libs)
	}
}

// TestProductionBuildLeavesOutDevWorkspace checks the package graph of
// cmd/serve with and without -tags agentrt_nodev: the default build (make
// dev) has the dev workspace and SQLite, the production build has neither.
func TestProductionBuildLeavesOutDevWorkspace(t *testing.T) {
	deps := func(args ...string) map[string]bool {
		t.Helper()
		cmd := exec.Command("go", append(append([]string{"list", "-deps"}, args...), "./cmd/serve")...)
		cmd.Dir = repoRoot(t)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
		}
		m := map[string]bool{}
		for _, p := range strings.Fields(string(out)) {
			m[p] = true
		}
		return m
	}
	dev, prod := deps(), deps("-tags", prodTag)
	for _, p := range []string{
		"github.com/agentrt/agentrt/internal/devworkspace",
		"github.com/agentrt/agentrt/internal/devmode",
	} {
		if !dev[p] {
			t.Errorf("the default build of cmd/serve does not link %s, which serve --dev needs", p)
		}
		if prod[p] {
			t.Errorf("go build -tags %s ./cmd/serve links %s", prodTag, p)
		}
	}
}

// instructions returns the instructions of a Containerfile or Dockerfile,
// comments and blank lines dropped, continuations joined, runs of blanks
// collapsed.
func instructions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	return out
}

// TestDockerfileEndsInTheContainerfile keeps the image users build from the
// Dockerfile the image this package builds and runs: the Dockerfile's last
// stage is Containerfile, copying from its build stage, and that stage lays
// out the same root file system (rootfs.sh) from the same production build.
func TestDockerfileEndsInTheContainerfile(t *testing.T) {
	cf := instructions(t, "Containerfile")
	df := instructions(t, filepath.Join(repoRoot(t), "Dockerfile"))
	last := -1
	for i, in := range df {
		if strings.HasPrefix(in, "FROM ") {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	stage := slices.Clone(df[last:])
	if stage[0] != "FROM scratch AS static" || cf[0] != "FROM scratch" {
		t.Fatalf("Dockerfile's last stage starts %q, Containerfile %q; want FROM scratch AS static and FROM scratch", stage[0], cf[0])
	}
	stage[0] = cf[0]
	for i, in := range stage {
		if in == "COPY --from=build-static /rootfs/ /" {
			stage[i] = "COPY rootfs/ /"
		}
	}
	if !slices.Equal(stage, cf) {
		t.Errorf("the Dockerfile's static stage and Containerfile differ:\nDockerfile:    %q\nContainerfile: %q", stage, cf)
	}
	for _, want := range []string{"ARG TAGS=" + prodTag, "sh deploy/container/rootfs.sh /rootfs /out/serve"} {
		if !slices.ContainsFunc(df, func(in string) bool { return strings.Contains(in, want) }) {
			t.Errorf("the Dockerfile's build-static stage lacks %q", want)
		}
	}
}

// podman runs podman on a private store under t.TempDir, so a run neither
// sees nor leaves images or containers elsewhere. The flags are what work
// in the sandboxed CI machines: vfs storage, runc (crun is refused).
type podman struct {
	t    *testing.T
	args []string
	tmp  string // TMPDIR, where podman build stages its context
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		// Never a skip: the image is what users deploy. .ci/run installs it.
		t.Fatal("podman is not installed: the image test builds and runs the real image " +
			"(apt-get install -y --no-install-recommends podman runc, or run .ci/run)")
	}
	dir := t.TempDir()
	p := &podman{t: t, tmp: filepath.Join(dir, "tmp"), args: []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs",
		"--runtime", "runc",
		"--events-backend", "file",
		"--cgroup-manager", "cgroupfs",
	}}
	if err := os.Mkdir(p.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		for _, args := range [][]string{{"rm", "--force", "--all"}, {"rmi", "--force", "--all"}} {
			if b, err := p.cmd(context.Background(), args...).CombinedOutput(); err != nil {
				t.Logf("podman %v: %v\n%s", args, err, b)
			}
		}
	})
	return p
}

func (p *podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "podman", append(slices.Clone(p.args), args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+p.tmp)
	return cmd
}

// run runs podman and returns its stdout, failing the test on an error.
func (p *podman) run(ctx context.Context, args ...string) string {
	p.t.Helper()
	cmd := p.cmd(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("podman %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// runFlags are what `podman run` needs in the sandbox: host networking and
// explicit limits (the defaults are refused by setrlimit).
var runFlags = []string{"--network", "host", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024"}

// logLine is the part of serve's JSON log this test reads.
type logLine struct {
	Msg  string `json:"msg"`
	Addr string `json:"addr"`
}

// syncBuffer is a log the reader goroutine writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) add(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(line)
	s.b.WriteByte('\n')
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestImageServesAndDrains builds the static image with podman from
// Containerfile and a production build (holdserve: serve plus an agent whose
// stream waits for SIGTERM), runs it, and checks that it runs as uid 65532
// with no capabilities, holds only what rootfs.sh puts in it, refuses --dev,
// answers /health, /ready and /responses, and, sent SIGTERM with a stream in
// flight, finishes that stream and exits 0.
func TestImageServesAndDrains(t *testing.T) {
	p := newPodman(t)
	build := t.TempDir()
	bin := filepath.Join(t.TempDir(), "serve")
	// Not bounded here: from a cold build cache this compiles every
	// dependency, which takes minutes on a busy 2-core machine.
	buildProd(t, "./deploy/container/testdata/holdserve", bin)
	assertStatic(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b, err := exec.Command("sh", "rootfs.sh", filepath.Join(build, "rootfs"), bin).CombinedOutput(); err != nil {
		t.Fatalf("rootfs.sh: %v\n%s", err, b)
	}
	cf, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(build, "Containerfile"), cf, 0o644); err != nil {
		t.Fatal(err)
	}
	id := rand.Text()[:10]
	image := "localhost/agentrt-image-test:" + strings.ToLower(id)
	p.run(ctx, "build", "--quiet", "--tag", image, "--file", filepath.Join(build, "Containerfile"), build)

	t.Run("dev is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a build that has --dev would serve until killed
		defer cancel()
		cmd := p.cmd(ctx, append(append([]string{"run", "--rm"}, runFlags...), "-e", "AGENTRT_ADDR=127.0.0.1:0", image, "--dev")...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || !bytes.Contains(out, []byte("this build has no dev workspace")) {
			t.Errorf("serve --dev in the image: %v\n%s", err, out)
		}
	})

	name := "agentrt-image-test-" + strings.ToLower(id)
	cmd := p.cmd(ctx, append(append([]string{"run", "--name", name}, runFlags...),
		// Configuration by environment only, as Kubernetes passes it.
		"-e", "AGENTRT_ADDR=127.0.0.1:0", "-e", "AGENTRT_AGENT=hold",
		"-e", "AGENTRT_LOG_FORMAT=json", "-e", "AGENTRT_DRAIN_TIMEOUT=20s",
		image)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	var logs syncBuffer
	addrc := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.add(sc.Bytes())
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" && l.Addr != "" {
				select {
				case addrc <- l.Addr:
				default:
				}
			}
		}
	}()
	defer func() {
		if t.Failed() {
			t.Logf("container log:\n%s", logs.String())
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-logDone:
		_ = cmd.Wait()
		t.Fatalf("the container exited before listening (%v)", cmd.ProcessState)
	case <-ctx.Done():
		t.Fatal("the container did not start listening in time")
	}
	base := "http://" + addr

	// The kernel's view of the container's process: uid and gid 65532, no
	// supplementary group but its own, no effective capabilities.
	pid := strings.TrimSpace(p.run(ctx, "inspect", "--format", "{{.State.Pid}}", name))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Uid":    fmt.Sprintf("%d\t%[1]d\t%[1]d\t%[1]d", nonroot),
		"Gid":    fmt.Sprintf("%d\t%[1]d\t%[1]d\t%[1]d", nonroot),
		"Groups": fmt.Sprint(nonroot), // podman adds the primary group; docker leaves the list empty
		"CapEff": "0000000000000000",
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if w, ok := want[k]; ok {
			if v = strings.TrimSpace(v); v != w && !(k == "Groups" && v == "") {
				t.Errorf("container process %s: %q, want %q", k, v, w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("/proc/%s/status lacks %v", pid, want)
	}

	client := &http.Client{Timeout: 20 * time.Second}
	for _, path := range []string{"/health", "/ready"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
	}
	resp, err := client.Post(base+"/responses", "application/json",
		strings.NewReader(`{"input":[{"role":"user","content":"hello from the image"}]}`))
	if err != nil {
		t.Fatalf("POST /responses: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("echo: hello from the image")) {
		t.Errorf("POST /responses = %d %s", resp.StatusCode, body)
	}

	// A stream is in flight (its first delta arrived, and the agent waits
	// for SIGTERM) when the container is told to stop.
	started := make(chan struct{})
	streamErr := make(chan error, 1)
	go func() { streamErr <- readHeldStream(client, base, started) }()
	select {
	case <-started:
	case err := <-streamErr:
		t.Fatalf("stream before SIGTERM: %v", err)
	case <-ctx.Done():
		t.Fatal("no first delta")
	}
	p.run(ctx, "kill", "--signal", "TERM", name)
	select {
	case err := <-streamErr:
		if err != nil {
			t.Errorf("the stream in flight at SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the stream did not finish after SIGTERM")
	}
	<-logDone
	if err := cmd.Wait(); err != nil {
		t.Errorf("container exit after SIGTERM: %v, want status 0", err)
	}
	if !strings.Contains(logs.String(), `"msg":"drained"`) {
		t.Error(`no "drained" in the container log`)
	}

	checkFiles(t, p.cmd(ctx, "export", name))
}

// readHeldStream streams from the hold agent, closes started at the first
// delta, and checks the stream then runs to its end: both deltas,
// response.completed, [DONE].
func readHeldStream(client *http.Client, base string, started chan<- struct{}) error {
	resp, err := client.Post(base+"/responses", "application/json", strings.NewReader(`{"input":"hold","stream":true}`))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var text, last string
	for sc.Scan() {
		payload, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if payload == "[DONE]" {
			if text != "before after" || last != wireproto.EventCompleted {
				return fmt.Errorf("stream ended with text %q, last event %q", text, last)
			}
			return nil
		}
		var ev agent.StreamEvent
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return err
		}
		if ev.Type == agent.EventOutputTextDelta {
			if text += ev.Delta; text == "before " {
				close(started)
			}
		}
		last = ev.Type
	}
	return fmt.Errorf("stream cut after %q (last event %q): %v", text, last, sc.Err())
}

// checkFiles reads the container's file system (podman export) and checks
// it holds what rootfs.sh lays out, with its modes, owned by root, and no
// other file but the ones the engine itself provides.
func checkFiles(t *testing.T, export *exec.Cmd) {
	t.Helper()
	out, err := export.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	export.Stderr = &stderr
	if err := export.Start(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{ // path → mode, with the type and sticky bits tar uses
		"serve":                             0o755,
		"etc/passwd":                        0o644,
		"etc/group":                         0o644,
		"etc/ssl/certs/ca-certificates.crt": 0o644,
		"tmp/":                              0o1777,
		"var/lib/agentrt/":                  0o1777,
	}
	engine := map[string]bool{ // mount points and files podman creates in every container
		"etc/hosts": true, "etc/resolv.conf": true, "etc/hostname": true, "etc/mtab": true, "run/.containerenv": true,
	}
	// The response store the container opened at start (AGENTRT_STORE):
	// its SQLite file and journal.
	runtimeState := func(name string) bool {
		return strings.HasPrefix(name, "var/lib/agentrt/state.db")
	}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("podman export: %v", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if mode, ok := want[name]; ok {
			if h.Mode&0o7777 != mode || h.Uid != 0 || h.Gid != 0 {
				t.Errorf("/%s: mode %o owner %d:%d, want %o root", name, h.Mode&0o7777, h.Uid, h.Gid, mode)
			}
			delete(want, name)
			continue
		}
		if h.Typeflag != tar.TypeDir && !engine[name] && !runtimeState(name) {
			t.Errorf("the image holds /%s, which rootfs.sh does not put there", name)
		}
	}
	if err := export.Wait(); err != nil {
		t.Fatalf("podman export: %v\n%s", err, stderr.String())
	}
	for name := range want {
		t.Errorf("the image lacks /%s", name)
	}
}

package server_test

// Two `serve` processes on one PostgreSQL: the test binary re-executes
// itself as the real command (runtime/cli: flag parsing, --store
// postgres://…, --dev identities, signals), and the test talks to each
// process with openai-go, then signals and kills them.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/pgtest"
	"github.com/agentrt/agentrt/runtime/cli"
)

// serveChildEnv holds a child's command line, arguments separated by
// newlines.
const serveChildEnv = "AGENTRT_TEST_SERVE_CHILD"

// serveChild is the child's main: `serve` with replicaAgent registered.
func serveChild(args string) int {
	agent.Register("replica", func() (agent.Agent, error) { return agent.FromStream(replicaAgent{}), nil })
	return cli.Main(strings.Split(args, "\n"))
}

// proc is one `serve` process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
	logs *strings.Builder
}

var listeningRE = regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)

// startServe starts `serve --dev` (mock identities from its embedded dev
// workspace: the same principal ids in every process) on a free loopback
// port with the store at pgURL, and returns once it listens.
func startServe(t *testing.T, name, pgURL string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"--agent", "replica", "--dev", "--addr", "127.0.0.1:0", "--log-format", "json",
		"--store", pgURL}, extra...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+strings.Join(args, "\n"),
		"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), logs: &strings.Builder{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if p.logs.Len() < 1<<20 {
				p.logs.WriteString(line + "\n")
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, p.logs.String())
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("%s exited before listening (%v):\n%s", name, p.err, p.logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not listen within 2 minutes:\n%s", name, p.logs.String())
	}
	return p
}

// client calls the process as a mock user of --dev.
func (p *proc) client(who string) openai.Client {
	return openai.NewClient(option.WithBaseURL(p.url+"/v1/"), option.WithHeader("X-Dev-User", who),
		option.WithAPIKey("unused"), option.WithMaxRetries(0), option.WithRequestTimeout(time.Minute))
}

// exit waits (bounded) for the process to end and returns its status.
func (p *proc) exit() error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(time.Minute):
		p.t.Fatalf("%s did not exit", p.name)
		return nil
	}
}

// TestServeProcessesSharePostgres: two `serve` processes on one PostgreSQL.
// A response created on A is continued with previous_response_id on B; a
// background run started on A is streamed from starting_after on B (no
// sequence number lost or repeated) and cancelled from B, which stops it on
// A; SIGTERM to A mid-run records the run incomplete (server_shutdown)
// within the drain; and a run whose process is SIGKILLed is ended by B once
// its lease lapses (server_lost), ending the stream a client tails on B.
func TestServeProcessesSharePostgres(t *testing.T) {
	pgURL := pgtest.DB(t)
	const lease = 600 * time.Millisecond
	a := startServe(t, "A", pgURL, "--drain-timeout", "300ms", "--store-lease", lease.String())
	b := startServe(t, "B", pgURL, "--store-lease", lease.String())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	aliceA, aliceB := a.client("alice"), b.client("alice")

	// (a) A response created on A, continued on B: B's agent sees the
	// whole history (one, its answer, two).
	r1, err := aliceA.Responses.New(ctx, responses.ResponseNewParams{Input: input("one")})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := aliceB.Responses.New(ctx, responses.ResponseNewParams{Input: input("two"), PreviousResponseID: openai.String(r1.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.OutputText(); got != "n=3" {
		t.Fatalf("B's continuation saw %q, want n=3", got)
	}
	bobB := b.client("bob")
	if _, err := bobB.Responses.Get(ctx, r1.ID, responses.ResponseGetParams{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("bob reading alice's response on B: %v", err)
	}

	// (b) A background run on A, streamed on B from starting_after=1:
	// item added, part added, the first delta — 2, 3, 4 — then cancelled
	// from B.
	bg, err := aliceA.Responses.New(ctx, responses.ResponseNewParams{Input: input("wait"), Background: openai.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	stream := aliceB.Responses.GetStreaming(ctx, bg.ID, responses.ResponseGetParams{StartingAfter: openai.Int(1)})
	var seqs []int64
	for stream.Next() {
		ev := stream.Current()
		seqs = append(seqs, ev.SequenceNumber)
		if ev.Type == "response.output_text.delta" {
			break
		}
	}
	stream.Close()
	if err := stream.Err(); err != nil || fmt.Sprint(seqs) != "[2 3 4]" {
		t.Fatalf("B's stream of A's run: %v %v", err, seqs)
	}
	c, err := aliceB.Responses.Cancel(ctx, bg.ID)
	if err != nil || c.Status != "cancelled" || c.OutputText() != "n=" {
		t.Fatalf("cancel on B: %v %s", err, c.RawJSON())
	}
	got, err := aliceA.Responses.Get(ctx, bg.ID, responses.ResponseGetParams{})
	if err != nil || got.Status != "cancelled" {
		t.Fatalf("on A after B's cancel: %v %s", err, got.RawJSON())
	}
	// B replays the whole log: every number once, in order, to the end.
	replay := aliceB.Responses.GetStreaming(ctx, bg.ID, responses.ResponseGetParams{})
	seqs = seqs[:0]
	for replay.Next() {
		seqs = append(seqs, replay.Current().SequenceNumber)
	}
	if err := replay.Err(); err != nil || len(seqs) < 5 {
		t.Fatalf("replay on B: %v %v", err, seqs)
	}
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("replay on B: sequence numbers %v", seqs)
		}
	}

	// (c) SIGTERM to A mid-run: the run does not finish within the drain
	// (300ms), so A records it incomplete, exits cleanly, and B serves it.
	bg2, err := aliceA.Responses.New(ctx, responses.ResponseNewParams{Input: input("wait"), Background: openai.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.exit(); err != nil {
		t.Fatalf("A after SIGTERM: %v", err)
	}
	got, err = aliceB.Responses.Get(ctx, bg2.ID, responses.ResponseGetParams{})
	if err != nil || got.Status != "incomplete" || got.IncompleteDetails.Reason != "server_shutdown" {
		t.Fatalf("on B after A's SIGTERM: %v %s", err, got.RawJSON())
	}

	// (d) A process killed mid-run (SIGKILL: no drain, nothing recorded).
	// A client tailing the run on B receives the terminal event once the
	// lease lapses, and B's GET says incomplete, reason server_lost.
	k := startServe(t, "K", pgURL, "--store-lease", lease.String())
	aliceK := k.client("alice")
	bg3, err := aliceK.Responses.New(ctx, responses.ResponseNewParams{Input: input("wait"), Background: openai.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	tail := aliceB.Responses.GetStreaming(ctx, bg3.ID, responses.ResponseGetParams{})
	if !tail.Next() || tail.Current().Type != "response.created" {
		t.Fatalf("tail on B did not start: %v", tail.Err())
	}
	if err := k.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := k.exit(); err == nil {
		t.Fatal("K exited cleanly after SIGKILL")
	}
	killed := time.Now()
	var last responses.ResponseStreamEventUnion
	seqs = []int64{tail.Current().SequenceNumber}
	for tail.Next() {
		last = tail.Current()
		seqs = append(seqs, last.SequenceNumber)
	}
	if err := tail.Err(); err != nil {
		t.Fatal(err)
	}
	if last.Type != "response.incomplete" || last.Response.IncompleteDetails.Reason != "server_lost" {
		t.Fatalf("tail on B ended with %s: %s", last.Type, last.RawJSON())
	}
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("tail on B: sequence numbers %v", seqs)
		}
	}
	if d := time.Since(killed); d > lease+10*time.Second {
		t.Errorf("the lapse was noticed %v after the kill (lease %v)", d, lease)
	}
	// Polling the status, bounded: already incomplete.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err = aliceB.Responses.Get(ctx, bg3.ID, responses.ResponseGetParams{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "in_progress" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Status != "incomplete" || got.IncompleteDetails.Reason != "server_lost" {
		t.Fatalf("on B after K was killed: %s", got.RawJSON())
	}
}

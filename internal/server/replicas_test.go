package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/pgtest"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/store"
)

// TestMain gives the replica tests a throwaway PostgreSQL (never skipped:
// pgtest says how to install it). Run with serveChildEnv set, the test
// binary is instead a `serve` process (procs_test.go).
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(serveChildEnv); ok {
		os.Exit(serveChild(args))
	}
	pgtest.Main(m)
}

// tokenIdentity verifies "Bearer <name>" for alice and bob; anything else
// is refused.
var tokenIdentity = server.PreparerFunc(func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
	ids := map[string]string{"alice": "1001", "bob": "1002"}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	id, ok := ids[tok]
	if !ok {
		return ctx, httperr.Unauthenticated("credential rejected")
	}
	env.Caller = agent.Caller{Identity: agent.Identity{PrincipalID: id}, Authenticated: true}
	return ctx, nil
})

// replicaAgent answers with the number of input items it saw, streaming
// "n=<count>" in two deltas; for the input "wait" it blocks between them
// until ctx ends.
type replicaAgent struct{}

func (replicaAgent) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	id := agent.NewID("msg")
	if err := emit(agent.TextDelta("n=", id)); err != nil {
		return err
	}
	if req.LastUserText() == "wait" {
		<-ctx.Done()
		return ctx.Err()
	}
	return emit(agent.TextDelta(fmt.Sprint(len(req.Input)), id))
}

type replica struct {
	url  string
	stop context.CancelFunc
	done chan error
}

// startReplica serves a host with its own handle on the PostgreSQL store.
func startReplica(t *testing.T, pgURL string, drain time.Duration) *replica {
	t.Helper()
	st, err := store.Open(context.Background(), pgURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Options{Agent: agent.FromStream(replicaAgent{}), AgentName: "replica",
		Preparers: []server.Preparer{tokenIdentity}, Store: st, Logger: quietLog(), DrainTimeout: drain})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{url: "http://" + ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- h.Serve(ctx, ln) }()
	t.Cleanup(func() {
		r.shutdown()
		st.Close()
	})
	return r
}

func (r *replica) shutdown() error {
	r.stop()
	if r.done == nil {
		return nil
	}
	err := <-r.done
	r.done = nil
	return err
}

func (r *replica) client(who string) *openai.Client {
	c := openai.NewClient(option.WithBaseURL(r.url+"/v1/"), option.WithAPIKey(who), option.WithMaxRetries(0))
	return &c
}

func input(s string) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfString: openai.String(s)}
}

// TestReplicasSharePostgres: two hosts with their own handles on one
// PostgreSQL database. A response created on A is continued on B; a
// background run started on A is streamed from starting_after on B and
// cancelled from B, which stops it on A.
func TestReplicasSharePostgres(t *testing.T) {
	pgURL := pgtest.DB(t)
	a, b := startReplica(t, pgURL, 5*time.Second), startReplica(t, pgURL, 5*time.Second)
	ctx := context.Background()

	r1, err := a.client("alice").Responses.New(ctx, responses.ResponseNewParams{Input: input("one")})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.client("alice").Responses.New(ctx, responses.ResponseNewParams{Input: input("two"), PreviousResponseID: openai.String(r1.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.OutputText(); got != "n=3" { // one, its answer, two
		t.Fatalf("B's continuation saw %q, want n=3", got)
	}
	if _, err := b.client("bob").Responses.Get(ctx, r1.ID, responses.ResponseGetParams{}); err == nil {
		t.Fatal("bob read alice's response on B")
	}

	bg, err := a.client("alice").Responses.New(ctx, responses.ResponseNewParams{Input: input("wait"), Background: openai.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	// On B, from after response.in_progress (1): the item and part added
	// and the first delta, written on A.
	stream := b.client("alice").Responses.GetStreaming(ctx, bg.ID, responses.ResponseGetParams{StartingAfter: openai.Int(1)})
	var seqs []int64
	for stream.Next() {
		ev := stream.Current()
		seqs = append(seqs, ev.SequenceNumber)
		if ev.Type == "response.output_text.delta" {
			break
		}
	}
	stream.Close()
	if err := stream.Err(); err != nil || len(seqs) != 3 || seqs[0] != 2 {
		t.Fatalf("B's stream: %v %v", err, seqs)
	}
	c, err := b.client("alice").Responses.Cancel(ctx, bg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "cancelled" || c.OutputText() != "n=" {
		t.Fatalf("cancel on B answered %s", c.RawJSON())
	}
	got, err := a.client("alice").Responses.Get(ctx, bg.ID, responses.ResponseGetParams{})
	if err != nil || got.Status != "cancelled" {
		t.Fatalf("on A after the cancel: %v %s", err, got.Status)
	}
}

// TestShutdownMarksRunsIncomplete: SIGTERM (the serve context ending) with
// a background run that does not finish within the drain timeout records
// it incomplete, which the other replica then serves.
func TestShutdownMarksRunsIncomplete(t *testing.T) {
	pgURL := pgtest.DB(t)
	a, b := startReplica(t, pgURL, 200*time.Millisecond), startReplica(t, pgURL, 5*time.Second)
	ctx := context.Background()
	bg, err := a.client("alice").Responses.New(ctx, responses.ResponseNewParams{Input: input("wait"), Background: openai.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.shutdown(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	got, err := b.client("alice").Responses.Get(ctx, bg.ID, responses.ResponseGetParams{})
	if err != nil || got.Status != "incomplete" || got.IncompleteDetails.Reason != "server_shutdown" {
		t.Fatalf("after A's shutdown: %v %s", err, got.RawJSON())
	}
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/store"
)

const testLease = 300 * time.Millisecond

func leaseStores(t *testing.T) map[string]func(t *testing.T) store.Store {
	o := store.Options{Lease: testLease}
	return map[string]func(t *testing.T) store.Store{
		"memory": func(t *testing.T) store.Store { return openStore(t, "memory", o) },
		"sqlite": func(t *testing.T) store.Store {
			return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"), o)
		},
	}
}

// orphan stores a background run as a process that died right after
// starting it would have left it: in_progress, two events, a lease nobody
// renews.
func orphan(t *testing.T, st store.Store, id string) {
	t.Helper()
	ctx := context.Background()
	obj := `{"id":"` + id + `","object":"response","created_at":1,"status":"in_progress","model":"conv","output":[],"store":true,"background":true}`
	if err := st.Create(ctx, &store.Response{ID: id, Owner: principals["alice"], Status: store.StatusInProgress,
		Object: json.RawMessage(obj), Input: []store.Item{{ID: "msg_in", Data: json.RawMessage(`{"type":"message","role":"user","content":"go"}`)}}}); err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{"response.created", "response.in_progress"} {
		ev := fmt.Sprintf(`{"type":%q,"sequence_number":%d,"response":%s}`, typ, i, obj)
		if err := st.AppendEvent(ctx, principals["alice"], id, int64(i), json.RawMessage(ev)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLapsedRunEnded: a run whose process died (nothing renews its lease)
// is ended as incomplete, reason "server_lost", by whoever reads it: a
// client tailing its stream receives response.incomplete after the events
// it had and then [DONE]; GET and cancel answer incomplete; bob still gets
// 404.
func TestLapsedRunEnded(t *testing.T) {
	for name, open := range leaseStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			ts, _ := stateServer(t, &convAgent{}, st)
			alice := clientAs(ts.URL, "alice")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			orphan(t, st, "resp_dead1")
			// The tail attaches while the lease is still running and waits.
			stream := alice.Responses.GetStreaming(ctx, "resp_dead1", responses.ResponseGetParams{StartingAfter: openai.Int(1)})
			var types []string
			var seqs []int64
			var reason string
			for stream.Next() {
				ev := stream.Current()
				types, seqs = append(types, ev.Type), append(seqs, ev.SequenceNumber)
				reason = ev.Response.IncompleteDetails.Reason
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(types) != 1 || types[0] != "response.incomplete" || seqs[0] != 2 || reason != "server_lost" {
				t.Fatalf("tail of a lapsed run: %v %v reason %q", types, seqs, reason)
			}
			got, err := alice.Responses.Get(ctx, "resp_dead1", responses.ResponseGetParams{})
			if err != nil || got.Status != "incomplete" || got.IncompleteDetails.Reason != "server_lost" {
				t.Fatalf("GET after the lapse: %v %s", err, got.RawJSON())
			}

			// GET alone ends a lapsed run (no tail).
			orphan(t, st, "resp_dead2")
			got = poll(t, alice, "resp_dead2", func(r *responses.Response) bool { return r.Status != "in_progress" })
			if got.Status != "incomplete" || got.IncompleteDetails.Reason != "server_lost" {
				t.Fatalf("GET of a lapsed run: %s", got.RawJSON())
			}
			// Its log ends with the terminal event, once.
			seqsAll, _, ended := readFrames(t, do(t, "GET", ts.URL+"/v1/responses/resp_dead2?stream=true", "alice", ""), -1)
			if !ended || fmt.Sprint(seqsAll) != "[0 1 2]" {
				t.Fatalf("replay of a lapsed run: %v ended %v", seqsAll, ended)
			}

			// Cancel of a lapsed run answers at once, incomplete.
			orphan(t, st, "resp_dead3")
			if resp := do(t, "GET", ts.URL+"/v1/responses/resp_dead3", "bob", ""); resp.StatusCode != 404 {
				t.Errorf("bob reading alice's run: %d", resp.StatusCode)
			}
			deadline := time.Now().Add(testLease)
			for r, err := st.Get(ctx, principals["alice"], "resp_dead3"); err != nil || !r.Lapsed(time.Now()); r, err = st.Get(ctx, principals["alice"], "resp_dead3") {
				if err != nil || time.Now().After(deadline.Add(5*time.Second)) {
					t.Fatalf("never lapsed: %v", err)
				}
				time.Sleep(10 * time.Millisecond) // polling a status, bounded
			}
			start := time.Now()
			c, err := alice.Responses.Cancel(ctx, "resp_dead3")
			if err != nil || c.Status != "incomplete" || c.IncompleteDetails.Reason != "server_lost" {
				t.Fatalf("cancel of a lapsed run: %v %s", err, c.RawJSON())
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("cancel of a lapsed run took %v (waited for a run that is gone)", d)
			}
		})
	}
}

// TestHeartbeatKeepsRunAlive: a run that lasts several leases stays
// in_progress for every reader — its process renews the lease — and then
// completes.
func TestHeartbeatKeepsRunAlive(t *testing.T) {
	for name, open := range leaseStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			g := &gated{n: 3, at: 1, gate: make(chan struct{})}
			ts, srv := stateServer(t, agent.FromStream(g), st)
			alice := clientAs(ts.URL, "alice")
			ctx := context.Background()
			r, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("go"), Background: openai.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			first, err := st.Get(ctx, principals["alice"], r.ID)
			if err != nil {
				t.Fatal(err)
			}
			// Wait (bounded) until the lease was renewed past the instant
			// the first one expired: the run has outlived its first lease.
			for i := 0; ; i++ {
				got, err := st.Get(ctx, principals["alice"], r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.LeaseExpiresAt.After(first.LeaseExpiresAt.Add(testLease)) {
					break
				}
				if i > 500 {
					t.Fatalf("lease never renewed: %v → %v", first.LeaseExpiresAt, got.LeaseExpiresAt)
				}
				time.Sleep(10 * time.Millisecond) // polling a status, bounded
			}
			if time.Now().Before(first.LeaseExpiresAt) {
				t.Fatal("the first lease has not expired yet")
			}
			got, err := alice.Responses.Get(ctx, r.ID, responses.ResponseGetParams{})
			if err != nil || got.Status != "in_progress" {
				t.Fatalf("a renewed run read after its first lease: %v %s", err, got.RawJSON())
			}
			close(g.gate)
			done := poll(t, alice, r.ID, func(r *responses.Response) bool { return r.Status != "in_progress" })
			if done.Status != "completed" || !strings.HasPrefix(done.OutputText(), "d0 d1 d2") {
				t.Fatalf("run ended %s", done.RawJSON())
			}
			if err := srv.DrainBackground(ctx, time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/store"
)

// Principals of the test identity preparer: a bearer token is a caller's
// name; "garbage" is refused with 401, no token is anonymous.
var principals = map[string]string{"alice": "1001", "bob": "1002", "carol": "1003"}

var testIdentity = httpapi.PreparerFunc(func(ctx context.Context, r *http.Request, env *agent.Env) (context.Context, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return ctx, nil
	}
	id, known := principals[tok]
	if !known {
		return ctx, httperr.Unauthenticated("the caller's credential was rejected by the workspace")
	}
	env.Caller = agent.Caller{Identity: agent.Identity{PrincipalID: id, UserName: tok}, Authenticated: true}
	return ctx, nil
})

// convAgent answers with what it saw: the texts of its input items, so a
// test can tell that it received the conversation's history.
type convAgent struct {
	mu   sync.Mutex
	seen [][]agent.Item
}

func (a *convAgent) Predict(ctx context.Context, req *agent.Request) (*agent.Response, error) {
	a.mu.Lock()
	a.seen = append(a.seen, append([]agent.Item(nil), req.Input...))
	a.mu.Unlock()
	var texts []string
	for i := range req.Input {
		texts = append(texts, req.Input[i].Role+":"+req.Input[i].Text())
	}
	return &agent.Response{Output: []agent.Item{agent.TextItem("", strings.Join(texts, "|"))}}, nil
}

func (a *convAgent) last() []agent.Item {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[len(a.seen)-1]
}

// stores opens each backend the host tests run against.
func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"memory": func(t *testing.T) store.Store { return openStore(t, "memory", store.Options{}) },
		"sqlite": func(t *testing.T) store.Store {
			return openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"), store.Options{})
		},
	}
}

func openStore(t testing.TB, spec string, o store.Options) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func stateServer(t testing.TB, a agent.Agent, st store.Store, mod ...func(*httpapi.Options)) (*httptest.Server, *httpapi.Server) {
	t.Helper()
	opts := httpapi.Options{Agent: a, AgentName: "conv", Logger: quietLogger(), Store: st,
		Preparers: []httpapi.Preparer{testIdentity}}
	for _, m := range mod {
		m(&opts)
	}
	srv, err := httpapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, srv
}

func clientAs(base, who string) openai.Client {
	return openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(who), option.WithMaxRetries(0))
}

func text(s string) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfString: openai.String(s)}
}

func TestPreviousResponseIDContinues(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			a := &convAgent{}
			ts, _ := stateServer(t, a, open(t))
			alice := clientAs(ts.URL, "alice")
			ctx := context.Background()
			r1, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("my name is Ann")})
			if err != nil {
				t.Fatal(err)
			}
			r2, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("what is my name?"), PreviousResponseID: openai.String(r1.ID)})
			if err != nil {
				t.Fatal(err)
			}
			want := "user:my name is Ann|assistant:user:my name is Ann|user:what is my name?"
			if got := r2.OutputText(); got != want {
				t.Fatalf("turn 2 saw %q, want %q", got, want)
			}
			if r2.PreviousResponseID != r1.ID {
				t.Errorf("previous_response_id = %q", r2.PreviousResponseID)
			}
			// Streamed third turn continues the chain too.
			stream := alice.Responses.NewStreaming(ctx, responses.ResponseNewParams{Input: text("again?"), PreviousResponseID: openai.String(r2.ID)})
			var r3 string
			for stream.Next() {
				if ev := stream.Current(); ev.Type == "response.completed" {
					r3 = ev.Response.ID
				}
			}
			if err := stream.Err(); err != nil || r3 == "" {
				t.Fatalf("stream: %v, id %q", err, r3)
			}
			if n := len(a.last()); n != 5 {
				t.Fatalf("turn 3 saw %d items, want 5", n)
			}
			got, err := alice.Responses.Get(ctx, r3, responses.ResponseGetParams{})
			if err != nil || got.Status != "completed" || !strings.HasSuffix(got.OutputText(), "|user:again?") {
				t.Fatalf("GET turn 3: %v %+v", err, got)
			}
		})
	}
}

func TestItemReferenceResolved(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			a := &convAgent{}
			ts, _ := stateServer(t, a, open(t))
			alice := clientAs(ts.URL, "alice")
			ctx := context.Background()
			r1, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("first")})
			if err != nil {
				t.Fatal(err)
			}
			r2, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: responses.ResponseNewParamsInputUnion{
				OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfItemReference(r1.Output[0].ID),
					responses.ResponseInputItemParamOfMessage("second", responses.EasyInputMessageRoleUser),
				}}})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r2.OutputText(), "assistant:user:first|user:second"; got != want {
				t.Fatalf("saw %q, want %q", got, want)
			}
			if seen := a.last(); seen[0].ID != r1.Output[0].ID || seen[0].Type != agent.TypeMessage {
				t.Errorf("resolved item = %+v", seen[0])
			}
			// A reference to an item nobody has is a 404 naming it.
			_, err = alice.Responses.New(ctx, responses.ResponseNewParams{Input: responses.ResponseNewParamsInputUnion{
				OfInputItemList: responses.ResponseInputParam{responses.ResponseInputItemParamOfItemReference("msg_nope")}}})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !strings.Contains(apiErr.Message, "msg_nope") {
				t.Fatalf("unknown reference: %v", err)
			}
		})
	}
}

func TestRetrieveDeleteInputItems(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ts, _ := stateServer(t, &convAgent{}, open(t))
			alice := clientAs(ts.URL, "alice")
			ctx := context.Background()
			var in responses.ResponseInputParam
			for i := range 7 {
				in = append(in, responses.ResponseInputItemParamOfMessage(fmt.Sprintf("m%d", i), responses.EasyInputMessageRoleUser))
			}
			r, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: responses.ResponseNewParamsInputUnion{OfInputItemList: in}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := alice.Responses.Get(ctx, r.ID, responses.ResponseGetParams{})
			if err != nil || got.ID != r.ID || got.OutputText() != r.OutputText() || got.Status != "completed" {
				t.Fatalf("GET: %v, %s", err, got.RawJSON())
			}
			// Pages of 3, oldest first, through the client's auto-pager.
			var texts []string
			pager := alice.Responses.InputItems.ListAutoPaging(ctx, r.ID, responses.InputItemListParams{Limit: openai.Int(3), Order: responses.InputItemListParamsOrderAsc})
			for pager.Next() {
				it := pager.Current()
				texts = append(texts, it.Content.OfInputItemContentList[0].Text)
			}
			if err := pager.Err(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(texts, ","); got != "m0,m1,m2,m3,m4,m5,m6" {
				t.Fatalf("asc pages = %s", got)
			}
			page, err := alice.Responses.InputItems.List(ctx, r.ID, responses.InputItemListParams{Limit: openai.Int(2)})
			if err != nil || len(page.Data) != 2 || page.Data[0].Content.OfInputItemContentList[0].Text != "m6" || !page.HasMore {
				t.Fatalf("desc page: %v %s", err, page.RawJSON())
			}
			resp := do(t, "GET", ts.URL+"/v1/responses/"+r.ID+"/input_items?limit=0", "alice", "")
			if resp.StatusCode != 400 {
				t.Errorf("limit=0: %d", resp.StatusCode)
			}
			if err := alice.Responses.Delete(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			body := readAll(t, do(t, "DELETE", ts.URL+"/responses/"+r.ID, "alice", ""))
			if !strings.Contains(body, "no response with id") {
				t.Errorf("second delete: %s", body)
			}
			_, err = alice.Responses.Get(ctx, r.ID, responses.ResponseGetParams{})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
				t.Fatalf("GET after delete: %v", err)
			}
		})
	}
}

func do(t testing.TB, method, url, who, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+who)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gated streams n deltas, stopping after the first `at` until its gate
// opens (or ctx ends), unless the input is "free".
type gated struct {
	n, at int
	gate  chan struct{}
}

func (g *gated) PredictStream(ctx context.Context, req *agent.Request, emit agent.Emit) error {
	id := agent.NewID("msg")
	for i := range g.n {
		if i == g.at && g.gate != nil && req.LastUserText() != "free" {
			select {
			case <-g.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := emit(agent.TextDelta(fmt.Sprintf("d%d ", i), id)); err != nil {
			return err
		}
	}
	return nil
}

// poll GETs the response until cond holds (bounded).
func poll(t *testing.T, c openai.Client, id string, cond func(*responses.Response) bool) *responses.Response {
	t.Helper()
	for range 500 {
		r, err := c.Responses.Get(context.Background(), id, responses.ResponseGetParams{})
		if err != nil {
			t.Fatal(err)
		}
		if cond(r) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("response %s never got there", id)
	return nil
}

func TestBackgroundPollStreamCancel(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			g := &gated{n: 6, at: 3, gate: make(chan struct{})}
			ts, srv := stateServer(t, agent.FromStream(g), open(t))
			alice := clientAs(ts.URL, "alice")
			ctx := context.Background()

			r, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("go"), Background: openai.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != "in_progress" || !r.Background {
				t.Fatalf("POST answered %s", r.RawJSON())
			}
			// Three deltas in, the run waits at its gate: stream from
			// sequence 4 (created, in_progress, item added, part added, d0…).
			stream := alice.Responses.GetStreaming(ctx, r.ID, responses.ResponseGetParams{StartingAfter: openai.Int(4)})
			var seqs []int64
			var deltas string
			for stream.Next() {
				ev := stream.Current()
				seqs = append(seqs, ev.SequenceNumber)
				deltas += ev.Delta
				if ev.Type == "response.output_text.delta" && ev.Delta == "d2 " {
					break
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			stream.Close()
			if seqs[0] != 5 || deltas != "d1 d2 " {
				t.Fatalf("from starting_after=4: seqs %v deltas %q", seqs, deltas)
			}
			got := poll(t, alice, r.ID, func(r *responses.Response) bool { return true })
			if got.Status != "in_progress" {
				t.Fatalf("poll: %s", got.Status)
			}
			c, err := alice.Responses.Cancel(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c.Status != "cancelled" {
				t.Fatalf("cancel answered %s", c.RawJSON())
			}
			if txt := c.OutputText(); txt != "d0 d1 d2 " {
				t.Errorf("cancelled output %q", txt)
			}
			// A second run completes, and its whole stream replays.
			g2 := make(chan struct{})
			g.gate = g2
			close(g2)
			r2, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("go"), Background: openai.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			done := poll(t, alice, r2.ID, func(r *responses.Response) bool { return r.Status == "completed" })
			if done.OutputText() != "d0 d1 d2 d3 d4 d5 " {
				t.Errorf("completed output %q", done.OutputText())
			}
			stream = alice.Responses.GetStreaming(ctx, r2.ID, responses.ResponseGetParams{})
			var types []string
			for stream.Next() {
				types = append(types, stream.Current().Type)
			}
			if err := stream.Err(); err != nil || types[0] != "response.created" || types[len(types)-1] != "response.completed" {
				t.Fatalf("replay: %v %v", err, types)
			}
			if err := srv.DrainBackground(ctx, time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBackgroundStreamPOST: background + stream answers the run's stored
// events; the client leaving does not stop the run.
func TestBackgroundStreamPOST(t *testing.T) {
	g := &gated{n: 4, at: 2, gate: make(chan struct{})}
	ts, _ := stateServer(t, agent.FromStream(g), openStore(t, "memory", store.Options{}))
	alice := clientAs(ts.URL, "alice")
	ctx := context.Background()
	stream := alice.Responses.NewStreaming(ctx, responses.ResponseNewParams{Input: text("go"), Background: openai.Bool(true)})
	var id string
	for stream.Next() {
		ev := stream.Current()
		if ev.Type == "response.created" {
			id = ev.Response.ID
		}
		if ev.Delta == "d1 " {
			break
		}
	}
	stream.Close()
	close(g.gate)
	done := poll(t, alice, id, func(r *responses.Response) bool { return r.Status == "completed" })
	if done.OutputText() != "d0 d1 d2 d3 " {
		t.Fatalf("output %q", done.OutputText())
	}
}

// TestReattachLosesNoEvent cuts the stream of a background run at a random
// point (sometimes while the run is still going) and re-attaches from the
// last sequence number seen, 100 times: every event arrives exactly once.
func TestReattachLosesNoEvent(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			for i := range 100 {
				g := &gated{n: 8, at: 1 + i%7, gate: make(chan struct{})}
				ts, _ := stateServer(t, agent.FromStream(g), st)
				resp := do(t, "POST", ts.URL+"/v1/responses", "alice", `{"input":"go","background":true,"stream":true}`)
				// Before the gate the log holds created, in_progress, the
				// item and part added, and `at` deltas: cut within them,
				// while the run is going.
				seqs, id, _ := readFrames(t, resp, 1+i%(4+g.at))
				close(g.gate)
				for cut := 0; ; cut++ {
					last := seqs[len(seqs)-1]
					resp := do(t, "GET", fmt.Sprintf("%s/v1/responses/%s?stream=true&starting_after=%d", ts.URL, id, last), "alice", "")
					more, _, ended := readFrames(t, resp, 1+(i+cut)%5)
					seqs = append(seqs, more...)
					if ended {
						break
					}
					if cut > 50 {
						t.Fatal("never ended")
					}
				}
				for j, s := range seqs {
					if s != int64(j) {
						t.Fatalf("run %d: sequence numbers %v", i, seqs)
					}
				}
				ts.Close()
			}
		})
	}
}

// readFrames reads up to max SSE events (all if max < 0) and closes the
// connection: their sequence numbers, the response id if seen, and whether
// the stream ended with [DONE].
func readFrames(t *testing.T, resp *http.Response, max int) (seqs []int64, id string, ended bool) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return seqs, id, true
		}
		var ev struct {
			Type     string `json:"type"`
			Seq      *int64 `json:"sequence_number"`
			Response struct {
				ID string `json:"id"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Seq == nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		if ev.Response.ID != "" {
			id = ev.Response.ID
		}
		seqs = append(seqs, *ev.Seq)
		if len(seqs) == max {
			return seqs, id, false
		}
	}
	return seqs, id, false
}

// TestIsolation: alice's responses tried by bob, carol, a garbage token and
// no token on every route all answer 404, with the body of an id that does
// not exist; alice's responses are untouched.
func TestIsolation(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			g := &gated{n: 2, at: 1, gate: make(chan struct{})}
			defer close(g.gate)
			ts, _ := stateServer(t, agent.FromStream(g), open(t))
			alice := clientAs(ts.URL, "alice")
			ctx := context.Background()
			fg, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("free")})
			if err != nil {
				t.Fatal(err)
			}
			bg, err := alice.Responses.New(ctx, responses.ResponseNewParams{Input: text("secret"), Background: openai.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			routes := func(id, item string) [][3]string {
				return [][3]string{
					{"GET", "/v1/responses/" + id, ""},
					{"GET", "/responses/" + id, ""},
					{"GET", "/v1/responses/" + id + "?stream=true&starting_after=0", ""},
					{"GET", "/v1/responses/" + id + "/input_items", ""},
					{"DELETE", "/v1/responses/" + id, ""},
					{"POST", "/v1/responses/" + id + "/cancel", ""},
					{"POST", "/v1/responses", `{"input":"x","previous_response_id":"` + id + `"}`},
					{"POST", "/invocations", `{"input":[{"type":"item_reference","id":"` + item + `"}]}`},
				}
			}
			for _, target := range []struct{ id, item string }{{fg.ID, fg.Output[0].ID}, {bg.ID, "msg_x"}} {
				want := routes("resp_doesnotexist", "msg_doesnotexist")
				for i, rt := range routes(target.id, target.item) {
					var bodies []string
					for _, who := range []string{"bob", "carol", "garbage", ""} {
						resp := do(t, rt[0], ts.URL+rt[1], who, rt[2])
						b := readAll(t, resp)
						if resp.StatusCode != 404 {
							t.Errorf("%s %s as %q: %d %s", rt[0], rt[1], who, resp.StatusCode, b)
						}
						bodies = append(bodies, b)
					}
					// The same answer as for an id that exists nowhere, with
					// the id swapped.
					resp := do(t, want[i][0], ts.URL+want[i][1], "bob", want[i][2])
					ref := strings.NewReplacer("resp_doesnotexist", target.id, "msg_doesnotexist", target.item).Replace(readAll(t, resp))
					for j, b := range bodies {
						if b != ref {
							t.Errorf("%s %s caller %d: body %s, want %s", rt[0], rt[1], j, b, ref)
						}
					}
				}
			}
			for _, id := range []string{fg.ID, bg.ID} {
				if _, err := alice.Responses.Get(ctx, id, responses.ResponseGetParams{}); err != nil {
					t.Errorf("alice lost %s: %v", id, err)
				}
			}
		})
	}
}

// TestAnonymousNotStored: store: true from an anonymous caller is served,
// unstored, and says so.
func TestAnonymousNotStored(t *testing.T) {
	ts, _ := stateServer(t, &convAgent{}, openStore(t, "memory", store.Options{}))
	body := readAll(t, do(t, "POST", ts.URL+"/v1/responses", "", `{"input":"hi","store":true}`))
	if !strings.Contains(body, `"store":false`) {
		t.Fatalf("anonymous answer: %s", body)
	}
	resp := do(t, "POST", ts.URL+"/v1/responses", "", `{"input":"hi","background":true}`)
	if b := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(b, "authenticated") {
		t.Errorf("anonymous background: %d %s", resp.StatusCode, b)
	}
	body = readAll(t, do(t, "POST", ts.URL+"/v1/responses", "alice", `{"input":"hi"}`))
	if !strings.Contains(body, `"store":true`) {
		t.Fatalf("alice's answer: %s", body)
	}
}

func TestStoreOff(t *testing.T) {
	for _, st := range []store.Store{nil, store.Off()} {
		ts, _ := stateServer(t, &convAgent{}, st)
		for _, rt := range [][3]string{
			{"POST", "/v1/responses", `{"input":"x","previous_response_id":"resp_1"}`},
			{"POST", "/v1/responses", `{"input":[{"type":"item_reference","id":"msg_1"}]}`},
			{"POST", "/v1/responses", `{"input":[{"id":"msg_1"}]}`},
			{"POST", "/responses", `{"input":"x","background":true}`},
			{"GET", "/v1/responses/resp_1", ""},
			{"GET", "/v1/responses/resp_1/input_items", ""},
			{"DELETE", "/v1/responses/resp_1", ""},
			{"POST", "/v1/responses/resp_1/cancel", ""},
		} {
			resp := do(t, rt[0], ts.URL+rt[1], "alice", rt[2])
			if b := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(b, "store is off") {
				t.Errorf("%s %s %s: %d %s", rt[0], rt[1], rt[2], resp.StatusCode, b)
			}
		}
		body := readAll(t, do(t, "POST", ts.URL+"/v1/responses", "alice", `{"input":"x","store":true}`))
		if !strings.Contains(body, `"store":false`) {
			t.Errorf("store: true with the store off: %s", body)
		}
	}
}

// broken fails every call, as a store whose database is down.
type broken struct{ store.Store }

var errDown = errors.New("connection refused")

func (broken) Create(context.Context, *store.Response) error                { return errDown }
func (broken) Get(context.Context, string, string) (*store.Response, error) { return nil, errDown }
func (broken) History(context.Context, string, string) ([]store.Item, error) {
	return nil, errDown
}
func (broken) Items(context.Context, string, []string) ([]store.Item, error) { return nil, errDown }
func (broken) Delete(context.Context, string, string) error                  { return errDown }
func (broken) InputItems(context.Context, string, string, store.ListOptions) (*store.ItemPage, error) {
	return nil, errDown
}
func (broken) RequestCancel(context.Context, string, string) (store.Status, error) {
	return "", errDown
}

func TestStoreOutage(t *testing.T) {
	ts, _ := stateServer(t, &convAgent{}, broken{openStore(t, "memory", store.Options{})})
	for _, rt := range [][3]string{
		{"POST", "/v1/responses", `{"input":"x"}`},
		{"POST", "/v1/responses", `{"input":"x","stream":true}`},
		{"POST", "/v1/responses", `{"input":"x","store":false,"previous_response_id":"resp_1"}`},
		{"POST", "/v1/responses", `{"input":"x","background":true}`},
		{"GET", "/v1/responses/resp_1", ""},
		{"GET", "/v1/responses/resp_1/input_items", ""},
		{"DELETE", "/v1/responses/resp_1", ""},
		{"POST", "/v1/responses/resp_1/cancel", ""},
	} {
		resp := do(t, rt[0], ts.URL+rt[1], "alice", rt[2])
		b := readAll(t, resp)
		if strings.Contains(rt[2], `"stream":true`) {
			if resp.StatusCode != 200 || !strings.Contains(b, `"type":"error"`) || strings.Contains(b, "response.completed") || strings.Contains(b, errDown.Error()) {
				t.Errorf("stream with the store down: %s", b)
			}
			continue
		}
		if resp.StatusCode != 503 || strings.Contains(b, errDown.Error()) {
			t.Errorf("%s %s %s: %d %s", rt[0], rt[1], rt[2], resp.StatusCode, b)
		}
	}
	for _, body := range []string{`{"input":"x","store":false}`, `{"input":"x","store":false,"stream":true}`} {
		resp := do(t, "POST", ts.URL+"/v1/responses", "alice", body)
		if b := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "user:x") {
			t.Errorf("stateless %s: %d %s", body, resp.StatusCode, b)
		}
	}
}

func TestStoreSizeLimit(t *testing.T) {
	ts, _ := stateServer(t, &convAgent{}, openStore(t, "memory", store.Options{MaxResponseBytes: 2048}))
	big := strings.Repeat("x", 4096)
	resp := do(t, "POST", ts.URL+"/v1/responses", "alice", `{"input":"`+big+`"}`)
	if b := readAll(t, resp); resp.StatusCode != 413 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp = do(t, "POST", ts.URL+"/v1/responses", "alice", `{"input":"`+big+`","store":false}`)
	if resp.StatusCode != 200 {
		t.Fatalf("store: false: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// TestConversationID: MLflow's context.conversation_id continues the
// caller's newest response in that conversation, which an OpenAI client
// then continues with previous_response_id.
func TestConversationID(t *testing.T) {
	a := &convAgent{}
	ts, _ := stateServer(t, a, openStore(t, "memory", store.Options{}))
	readAll(t, do(t, "POST", ts.URL+"/invocations", "alice", `{"input":[{"role":"user","content":"one"}],"context":{"conversation_id":"c1"}}`))
	b := readAll(t, do(t, "POST", ts.URL+"/invocations", "alice", `{"input":[{"role":"user","content":"two"}],"context":{"conversation_id":"c1"}}`))
	var r struct {
		ID   string `json:"id"`
		Prev string `json:"previous_response_id"`
	}
	json.Unmarshal([]byte(b), &r)
	if len(a.last()) != 3 {
		t.Fatalf("turn 2 saw %d items: %s", len(a.last()), b)
	}
	// bob's conversation of the same id is his own.
	readAll(t, do(t, "POST", ts.URL+"/invocations", "bob", `{"input":[{"role":"user","content":"x"}],"context":{"conversation_id":"c1"}}`))
	if len(a.last()) != 1 {
		t.Fatalf("bob saw alice's conversation: %d items", len(a.last()))
	}
	// A client that sends the earlier turns itself gets none prepended.
	readAll(t, do(t, "POST", ts.URL+"/invocations", "alice", `{"input":[{"role":"user","content":"one"},{"role":"assistant","content":"a"},{"role":"user","content":"three"}],"context":{"conversation_id":"c1"}}`))
	if len(a.last()) != 3 {
		t.Fatalf("full-history client: %d items", len(a.last()))
	}
	alice := clientAs(ts.URL, "alice")
	r3, err := alice.Responses.New(context.Background(), responses.ResponseNewParams{Input: text("four"), PreviousResponseID: openai.String(r.ID)})
	if err != nil || len(a.last()) != 5 {
		t.Fatalf("OpenAI continue: %v %d", err, len(a.last()))
	}
	_ = r3
}

// TestDrainMarksIncomplete: a background run still going when the drain
// times out is recorded incomplete, with the reason.
func TestDrainMarksIncomplete(t *testing.T) {
	g := &gated{n: 3, at: 1, gate: make(chan struct{})}
	defer close(g.gate)
	ts, srv := stateServer(t, agent.FromStream(g), openStore(t, "memory", store.Options{}))
	alice := clientAs(ts.URL, "alice")
	r, err := alice.Responses.New(context.Background(), responses.ResponseNewParams{Input: text("go"), Background: openai.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.DrainBackground(ctx, 5*time.Second); err == nil || !strings.Contains(err.Error(), "1 background run") {
		t.Fatalf("drain: %v", err)
	}
	got, err := alice.Responses.Get(context.Background(), r.ID, responses.ResponseGetParams{})
	if err != nil || got.Status != "incomplete" || got.IncompleteDetails.Reason != "server_shutdown" {
		t.Fatalf("after drain: %v %s", err, got.RawJSON())
	}
	resp := do(t, "POST", ts.URL+"/v1/responses", "alice", `{"input":"x","background":true}`)
	if resp.StatusCode != 503 {
		t.Errorf("background while draining: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

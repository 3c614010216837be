// Package storetest is the conformance suite every store.Store backend
// passes: the same behaviour, including isolation between owners, on
// memory, SQLite and PostgreSQL.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/store"
)

// Opener opens a handle on one database; each call is another replica.
// The suite closes the handles it opens. It may be called from several
// goroutines at once.
type Opener func(opts store.Options) (store.Store, error)

// Factory makes a fresh, empty database for one test.
type Factory func(t *testing.T) Opener

// Clock is a settable clock for Options.Now.
type Clock struct{ us atomic.Int64 }

// NewClock starts at a fixed instant.
func NewClock() *Clock {
	c := &Clock{}
	c.us.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMicro())
	return c
}

func (c *Clock) Now() time.Time          { return time.UnixMicro(c.us.Load()) }
func (c *Clock) Advance(d time.Duration) { c.us.Add(d.Microseconds()) }

const (
	alice = "alice-principal"
	bob   = "bob-principal"
)

type env struct {
	t     *testing.T
	ctx   context.Context
	open  Opener
	clock *Clock
	opts  store.Options
}

// handle opens another handle, closed when the test ends.
func (e *env) handle() store.Store {
	e.t.Helper()
	s, err := e.open(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

func newEnv(t *testing.T, f Factory, tweak func(*store.Options)) (*env, store.Store) {
	clock := NewClock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, open: f(t), clock: clock, opts: store.Options{
		Now: clock.Now,
		// Long enough that a wait that wakes within the test's deadline
		// was woken by a notification, not by polling.
		PollInterval: 10 * time.Minute,
	}}
	if tweak != nil {
		tweak(&e.opts)
	}
	return e, e.handle()
}

func item(id, text string) store.Item {
	b, _ := json.Marshal(map[string]any{"type": "message", "id": id, "content": text})
	return store.Item{ID: id, Data: b}
}

func ids(items []store.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

func status(s store.Status) *store.Status { return &s }

// Run runs the suite against the backend f makes.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"CreateGetDelete", testCreateGetDelete},
		{"Update", testUpdate},
		{"Isolation", testIsolation},
		{"InputItemsPagination", testPagination},
		{"HistoryChain", testHistory},
		{"ItemsByID", testItems},
		{"Conversation", testConversation},
		{"EventLog", testEventLog},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"WaitEventsAcrossHandles", testWaitAcrossHandles},
		{"CancelAcrossHandles", testCancel},
		{"LeaseLapseAcrossHandles", testLease},
		{"LeaseJanitorSweep", testLeaseSweep},
		{"TTLAndPurge", testTTL},
		{"SizeLimit", testSizeLimit},
		{"MigrationsIdempotentAndConcurrent", testMigrations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func testCreateGetDelete(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	r := &store.Response{
		ID: "resp_1", Owner: alice, Model: "assistant", ConversationID: "conv-1",
		Object: json.RawMessage(`{"id":"resp_1","object":"response"}`),
		Input:  []store.Item{item("msg_in1", "hello"), item("msg_in2", "again")},
		Output: []store.Item{item("msg_out1", "hi")},
	}
	must(t, s.Create(e.ctx, r))
	if r.Status != store.StatusCompleted || !r.CreatedAt.Equal(e.clock.Now()) || !r.ExpiresAt.Equal(e.clock.Now().Add(store.DefaultTTL)) || r.LastSeq != -1 {
		t.Errorf("Create filled in %+v", r)
	}
	got, err := s.Get(e.ctx, alice, "resp_1")
	must(t, err)
	if got.ID != r.ID || got.Owner != alice || got.Model != "assistant" || got.ConversationID != "conv-1" ||
		got.Status != store.StatusCompleted || string(got.Object) != string(r.Object) || got.Input != nil ||
		!got.CreatedAt.Equal(r.CreatedAt) || !got.ExpiresAt.Equal(r.ExpiresAt) || got.LastSeq != -1 ||
		got.CancelRequested || got.Size != r.Size || got.Size == 0 {
		t.Errorf("Get = %+v, want %+v", got, r)
	}
	if !slices.Equal(ids(got.Output), []string{"msg_out1"}) || string(got.Output[0].Data) != string(r.Output[0].Data) {
		t.Errorf("Get output = %v", got.Output)
	}

	wantErr(t, "Create again", s.Create(e.ctx, &store.Response{ID: "resp_1", Owner: alice}), store.ErrExists)
	wantErr(t, "Create by bob with alice's id", s.Create(e.ctx, &store.Response{ID: "resp_1", Owner: bob}), store.ErrExists)
	wantErr(t, "Create anonymous", s.Create(e.ctx, &store.Response{ID: "resp_2"}), store.ErrAnonymous)
	if err := s.Create(e.ctx, &store.Response{ID: "resp_3", Owner: alice, Input: []store.Item{{Data: []byte(`{}`)}}}); err == nil {
		t.Error("Create with an id-less item: no error")
	}
	if err := s.Create(e.ctx, &store.Response{ID: "resp_3", Owner: alice, Status: "bogus"}); err == nil {
		t.Error("Create with an unknown status: no error")
	}
	// A minimal response: no object, no items.
	must(t, s.Create(e.ctx, &store.Response{ID: "resp_min", Owner: alice, Status: store.StatusQueued}))
	got, err = s.Get(e.ctx, alice, "resp_min")
	must(t, err)
	if got.Object != nil || len(got.Output) != 0 || got.Status != store.StatusQueued {
		t.Errorf("minimal Get = %+v", got)
	}

	must(t, s.Delete(e.ctx, alice, "resp_1"))
	_, err = s.Get(e.ctx, alice, "resp_1")
	wantErr(t, "Get after Delete", err, store.ErrNotFound)
	wantErr(t, "Delete again", s.Delete(e.ctx, alice, "resp_1"), store.ErrNotFound)
	_, err = s.InputItems(e.ctx, alice, "resp_1", store.ListOptions{})
	wantErr(t, "InputItems after Delete", err, store.ErrNotFound)
	// The id is free again.
	must(t, s.Create(e.ctx, &store.Response{ID: "resp_1", Owner: alice}))
}

func testUpdate(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	must(t, s.Create(e.ctx, &store.Response{ID: "r", Owner: alice, Status: store.StatusQueued,
		Object: json.RawMessage(`{"v":1}`), Input: []store.Item{item("in", "q")}}))
	must(t, s.Update(e.ctx, alice, "r", store.Update{Status: status(store.StatusInProgress)}))
	must(t, s.Update(e.ctx, alice, "r", store.Update{Output: []store.Item{item("o1", "a"), item("o2", "b")}}))
	got, err := s.Get(e.ctx, alice, "r")
	must(t, err)
	if got.Status != store.StatusInProgress || string(got.Object) != `{"v":1}` || !slices.Equal(ids(got.Output), []string{"o1", "o2"}) {
		t.Errorf("after updates: %+v", got)
	}
	must(t, s.Update(e.ctx, alice, "r", store.Update{Status: status(store.StatusCompleted),
		Output: []store.Item{item("o3", "c")}, Object: json.RawMessage(`{"v":2}`)}))
	got, err = s.Get(e.ctx, alice, "r")
	must(t, err)
	if got.Status != store.StatusCompleted || string(got.Object) != `{"v":2}` || !slices.Equal(ids(got.Output), []string{"o3"}) {
		t.Errorf("after completion: %+v", got)
	}
	sizeWant := int64(len("in")+len(item("in", "q").Data)) + int64(len("o3")+len(item("o3", "c").Data)) + int64(len(`{"v":2}`))
	if got.Size != sizeWant {
		t.Errorf("Size = %d, want %d", got.Size, sizeWant)
	}
	wantErr(t, "Update a finished response", s.Update(e.ctx, alice, "r", store.Update{Status: status(store.StatusFailed)}), store.ErrFinished)
	if err := s.Update(e.ctx, alice, "r", store.Update{Status: status("bogus")}); err == nil || errors.Is(err, store.ErrFinished) {
		t.Errorf("Update to an unknown status: %v", err)
	}
}

// testIsolation: bob gets exactly what he would for an id that does not
// exist, on every operation, and changes nothing of alice's.
func testIsolation(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	must(t, s.Create(e.ctx, &store.Response{ID: "resp_a", Owner: alice, Status: store.StatusInProgress, ConversationID: "conv-a",
		Input: []store.Item{item("a_in", "secret")}, Output: []store.Item{item("a_out", "secret answer")}}))
	must(t, s.AppendEvent(e.ctx, alice, "resp_a", 0, json.RawMessage(`{"type":"response.created"}`)))

	quick := func() context.Context {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	ops := map[string]func(owner, id string) error{
		"Get": func(o, id string) error { _, err := s.Get(e.ctx, o, id); return err },
		"Update": func(o, id string) error {
			return s.Update(e.ctx, o, id, store.Update{Status: status(store.StatusFailed)})
		},
		"Delete": func(o, id string) error { return s.Delete(e.ctx, o, id) },
		"InputItems": func(o, id string) error {
			_, err := s.InputItems(e.ctx, o, id, store.ListOptions{})
			return err
		},
		"InputItemsCursor": func(o, id string) error {
			_, err := s.InputItems(e.ctx, o, id, store.ListOptions{After: "a_in"})
			return err
		},
		"History":     func(o, id string) error { _, err := s.History(e.ctx, o, id); return err },
		"AppendEvent": func(o, id string) error { return s.AppendEvent(e.ctx, o, id, 1, json.RawMessage(`{}`)) },
		"Events":      func(o, id string) error { _, err := s.Events(e.ctx, o, id, -1, 0); return err },
		"WaitEvents":  func(o, id string) error { _, err := s.WaitEvents(quick(), o, id, -1); return err },
		"RequestCancel": func(o, id string) error {
			_, err := s.RequestCancel(e.ctx, o, id)
			return err
		},
		"WaitCancel": func(o, id string) error { return s.WaitCancel(quick(), o, id) },
		"ContinueFrom": func(o, id string) error {
			return s.Create(e.ctx, &store.Response{ID: "resp_" + o, Owner: o, PreviousResponseID: id})
		},
	}
	for name, op := range ops {
		errBob := op(bob, "resp_a")
		errNone := op(bob, "resp_absent")
		if !errors.Is(errBob, store.ErrNotFound) || errBob.Error() != strings.ReplaceAll(errNone.Error(), "resp_absent", "resp_a") {
			t.Errorf("%s by bob: %v; on an absent id: %v", name, errBob, errNone)
		}
		wantErr(t, name+" anonymous", op("", "resp_a"), store.ErrAnonymous)
	}
	_, err := s.Items(e.ctx, bob, []string{"a_in"})
	wantErr(t, "Items by bob", err, store.ErrNotFound)
	_, err = s.Items(e.ctx, "", []string{"a_in"})
	wantErr(t, "Items anonymous", err, store.ErrAnonymous)
	_, err = s.LastInConversation(e.ctx, bob, "conv-a")
	wantErr(t, "LastInConversation by bob", err, store.ErrNotFound)
	_, err = s.LastInConversation(e.ctx, "", "conv-a")
	wantErr(t, "LastInConversation anonymous", err, store.ErrAnonymous)

	// Nothing of alice's changed.
	got, err := s.Get(e.ctx, alice, "resp_a")
	must(t, err)
	if got.Status != store.StatusInProgress || got.CancelRequested || got.LastSeq != 0 {
		t.Errorf("alice's response after bob's attempts: %+v", got)
	}
	evs, err := s.Events(e.ctx, alice, "resp_a", -1, 0)
	must(t, err)
	if len(evs) != 1 {
		t.Errorf("alice's events: %d, want 1", len(evs))
	}
}

func testPagination(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	var in []store.Item
	var all []string
	for i := range 45 {
		id := fmt.Sprintf("item_%02d", i)
		in = append(in, item(id, "x"))
		all = append(all, id)
	}
	must(t, s.Create(e.ctx, &store.Response{ID: "r", Owner: alice, Input: in}))
	must(t, s.Create(e.ctx, &store.Response{ID: "empty", Owner: alice}))

	collect := func(o store.ListOptions) (got []string, pages int) {
		for pages = 1; pages < 100; pages++ {
			p, err := s.InputItems(e.ctx, alice, "r", o)
			must(t, err)
			got = append(got, ids(p.Items)...)
			if len(p.Items) > 0 && (p.FirstID != p.Items[0].ID || p.LastID != p.Items[len(p.Items)-1].ID) {
				t.Errorf("page cursors %q..%q for %v", p.FirstID, p.LastID, ids(p.Items))
			}
			if !p.HasMore {
				return got, pages
			}
			o.After = p.LastID
		}
		t.Fatal("pagination does not end")
		return nil, 0
	}
	// OpenAI's defaults: newest first, 20 a page.
	p, err := s.InputItems(e.ctx, alice, "r", store.ListOptions{})
	must(t, err)
	if len(p.Items) != 20 || !p.HasMore || p.FirstID != "item_44" || p.LastID != "item_25" {
		t.Errorf("first default page: %v has_more=%v", ids(p.Items), p.HasMore)
	}
	desc := slices.Clone(all)
	slices.Reverse(desc)
	if got, pages := collect(store.ListOptions{}); !slices.Equal(got, desc) || pages != 3 {
		t.Errorf("desc: %d pages %v", pages, got)
	}
	if got, pages := collect(store.ListOptions{Order: store.Asc, Limit: 7}); !slices.Equal(got, all) || pages != 7 {
		t.Errorf("asc by 7: %d pages %v", pages, got)
	}
	// A page that ends exactly at the end says so.
	if got, pages := collect(store.ListOptions{Order: store.Asc, Limit: 15}); !slices.Equal(got, all) || pages != 3 {
		t.Errorf("asc by 15: %d pages %v", pages, got)
	}
	p, err = s.InputItems(e.ctx, alice, "r", store.ListOptions{Limit: 1000, Order: store.Asc})
	must(t, err)
	if len(p.Items) != 45 || p.HasMore {
		t.Errorf("limit clamps to 100: %d items, has_more=%v", len(p.Items), p.HasMore)
	}
	_, err = s.InputItems(e.ctx, alice, "r", store.ListOptions{After: "nope"})
	wantErr(t, "unknown cursor", err, store.ErrBadCursor)
	if _, err := s.InputItems(e.ctx, alice, "r", store.ListOptions{Order: "sideways"}); err == nil {
		t.Error("unknown order: no error")
	}
	p, err = s.InputItems(e.ctx, alice, "empty", store.ListOptions{})
	must(t, err)
	if len(p.Items) != 0 || p.HasMore || p.FirstID != "" || p.LastID != "" {
		t.Errorf("empty list: %+v", p)
	}
}

func testHistory(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	must(t, s.Create(e.ctx, &store.Response{ID: "r1", Owner: alice,
		Input: []store.Item{item("a", "1")}, Output: []store.Item{item("b", "2"), item("b2", "2b")}}))
	must(t, s.Create(e.ctx, &store.Response{ID: "r2", Owner: alice, PreviousResponseID: "r1",
		Input: []store.Item{item("c", "3")}, Output: []store.Item{item("d", "4")}}))
	must(t, s.Create(e.ctx, &store.Response{ID: "r3", Owner: alice, PreviousResponseID: "r2", Status: store.StatusInProgress,
		Input: []store.Item{item("e", "5")}}))
	// A branch: another continuation of r1.
	must(t, s.Create(e.ctx, &store.Response{ID: "r2b", Owner: alice, PreviousResponseID: "r1",
		Input: []store.Item{item("x", "branch")}}))

	for id, want := range map[string][]string{
		"r3": {"a", "b", "b2", "c", "d", "e"}, "r1": {"a", "b", "b2"}, "r2b": {"a", "b", "b2", "x"},
	} {
		h, err := s.History(e.ctx, alice, id)
		must(t, err)
		if !slices.Equal(ids(h), want) {
			t.Errorf("History(%s) = %v, want %v", id, ids(h), want)
		}
		if id == "r3" && string(h[4].Data) != string(item("d", "4").Data) {
			t.Errorf("History item data = %s", h[4].Data)
		}
	}
	// A response with no items still has a (empty) history.
	must(t, s.Create(e.ctx, &store.Response{ID: "bare", Owner: alice}))
	if h, err := s.History(e.ctx, alice, "bare"); err != nil || len(h) != 0 {
		t.Errorf("History(bare) = %v, %v", h, err)
	}
	err := s.Create(e.ctx, &store.Response{ID: "r9", Owner: alice, PreviousResponseID: "nope"})
	wantErr(t, "continue an absent response", err, store.ErrNotFound)
	_, err = s.History(e.ctx, alice, "nope")
	wantErr(t, "History of an absent response", err, store.ErrNotFound)
	// The chain ends where an ancestor was deleted.
	must(t, s.Delete(e.ctx, alice, "r1"))
	h, err := s.History(e.ctx, alice, "r3")
	must(t, err)
	if want := []string{"c", "d", "e"}; !slices.Equal(ids(h), want) {
		t.Errorf("History(r3) after deleting r1 = %v, want %v", ids(h), want)
	}
}

func testItems(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	must(t, s.Create(e.ctx, &store.Response{ID: "r1", Owner: alice,
		Input: []store.Item{item("in1", "q1")}, Output: []store.Item{item("out1", "old")}}))
	e.clock.Advance(time.Second)
	// out1 again, newer: the newest wins.
	must(t, s.Create(e.ctx, &store.Response{ID: "r2", Owner: alice,
		Input: []store.Item{item("out1", "new")}, Output: []store.Item{item("out2", "a2")}}))
	got, err := s.Items(e.ctx, alice, []string{"out2", "in1", "out1", "in1"})
	must(t, err)
	if !slices.Equal(ids(got), []string{"out2", "in1", "out1", "in1"}) || string(got[2].Data) != string(item("out1", "new").Data) {
		t.Errorf("Items = %v (%s)", ids(got), got[2].Data)
	}
	_, err = s.Items(e.ctx, alice, []string{"in1", "ghost"})
	wantErr(t, "Items with a missing id", err, store.ErrNotFound)
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("missing item error does not name it: %v", err)
	}
	got, err = s.Items(e.ctx, alice, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Items(nil) = %v, %v", got, err)
	}
}

func testConversation(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	must(t, s.Create(e.ctx, &store.Response{ID: "c1", Owner: alice, ConversationID: "conv"}))
	e.clock.Advance(time.Second)
	must(t, s.Create(e.ctx, &store.Response{ID: "c2", Owner: alice, ConversationID: "conv", PreviousResponseID: "c1"}))
	e.clock.Advance(time.Second)
	must(t, s.Create(e.ctx, &store.Response{ID: "o1", Owner: alice, ConversationID: "other"}))
	must(t, s.Create(e.ctx, &store.Response{ID: "n1", Owner: alice}))
	r, err := s.LastInConversation(e.ctx, alice, "conv")
	must(t, err)
	if r.ID != "c2" {
		t.Errorf("LastInConversation = %s, want c2", r.ID)
	}
	_, err = s.LastInConversation(e.ctx, alice, "nope")
	wantErr(t, "unknown conversation", err, store.ErrNotFound)
	_, err = s.LastInConversation(e.ctx, alice, "")
	wantErr(t, "empty conversation id", err, store.ErrNotFound)
}

func testEventLog(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	must(t, s.Create(e.ctx, &store.Response{ID: "run", Owner: alice, Status: store.StatusQueued}))
	for i := range 3 {
		must(t, s.AppendEvent(e.ctx, alice, "run", int64(i), json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))))
	}
	for _, seq := range []int64{2, 0, 5, -1} {
		var se *store.SequenceError
		if err := s.AppendEvent(e.ctx, alice, "run", seq, json.RawMessage(`{}`)); !errors.As(err, &se) || se.Got != seq || se.Want != 3 {
			t.Errorf("AppendEvent(%d) = %v, want a SequenceError wanting 3", seq, err)
		}
	}
	evs, err := s.Events(e.ctx, alice, "run", -1, 0)
	must(t, err)
	if len(evs) != 3 {
		t.Fatalf("Events = %v", evs)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i) || string(ev.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Errorf("event %d = %d %s", i, ev.Seq, ev.Data)
		}
	}
	evs, err = s.Events(e.ctx, alice, "run", 0, 1)
	must(t, err)
	if len(evs) != 1 || evs[0].Seq != 1 {
		t.Errorf("Events(after 0, limit 1) = %v", evs)
	}
	evs, err = s.Events(e.ctx, alice, "run", 2, 0)
	if err != nil || len(evs) != 0 {
		t.Errorf("Events(after last) = %v, %v", evs, err)
	}
	r, err := s.Get(e.ctx, alice, "run")
	must(t, err)
	if r.LastSeq != 2 {
		t.Errorf("LastSeq = %d", r.LastSeq)
	}
	must(t, s.Update(e.ctx, alice, "run", store.Update{Status: status(store.StatusCompleted)}))
	wantErr(t, "AppendEvent after the end", s.AppendEvent(e.ctx, alice, "run", 3, json.RawMessage(`{}`)), store.ErrFinished)
	// The finished log still reads, and a wait on it returns at once.
	p, err := s.WaitEvents(e.ctx, alice, "run", 2)
	if err != nil || p.Status != store.StatusCompleted || p.LastSeq != 2 {
		t.Errorf("WaitEvents on a finished run = %+v, %v", p, err)
	}
	// Nothing new and not finished: a wait blocks until its context ends.
	must(t, s.Create(e.ctx, &store.Response{ID: "idle", Owner: alice, Status: store.StatusInProgress}))
	ctx, cancel := context.WithTimeout(e.ctx, 50*time.Millisecond)
	defer cancel()
	_, err = s.WaitEvents(ctx, alice, "idle", -1)
	wantErr(t, "WaitEvents with nothing to see", err, context.DeadlineExceeded)
}

func testConcurrentAppenders(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	s2 := e.handle()
	const runs, n = 6, 40
	for r := range runs {
		must(t, s.Create(e.ctx, &store.Response{ID: fmt.Sprintf("run%d", r), Owner: alice, Status: store.StatusInProgress}))
	}
	must(t, s.Create(e.ctx, &store.Response{ID: "contended", Owner: alice, Status: store.StatusInProgress}))
	var wg sync.WaitGroup
	// One appender per run, on alternating handles (replicas).
	for r := range runs {
		h := []store.Store{s, s2}[r%2]
		wg.Go(func() {
			for i := range n {
				if err := h.AppendEvent(e.ctx, alice, fmt.Sprintf("run%d", r), int64(i), json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
					t.Errorf("run%d event %d: %v", r, i, err)
					return
				}
			}
		})
	}
	// Four appenders racing for the same sequence numbers of one run: each
	// number is taken exactly once, the others are refused as duplicates.
	var taken [n]atomic.Int32
	for w := range 4 {
		h := []store.Store{s, s2}[w%2]
		wg.Go(func() {
			for i := range n {
				err := h.AppendEvent(e.ctx, alice, "contended", int64(i), json.RawMessage(fmt.Sprintf(`{"w":%d}`, w)))
				var se *store.SequenceError
				switch {
				case err == nil:
					taken[i].Add(1)
				case errors.As(err, &se):
				default:
					t.Errorf("contended append %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for r := range runs {
		evs, err := s2.Events(e.ctx, alice, fmt.Sprintf("run%d", r), -1, 0)
		must(t, err)
		for i, ev := range evs {
			if ev.Seq != int64(i) || string(ev.Data) != fmt.Sprintf(`{"i":%d}`, i) {
				t.Fatalf("run%d event %d = %d %s", r, i, ev.Seq, ev.Data)
			}
		}
		if len(evs) != n {
			t.Errorf("run%d has %d events, want %d", r, len(evs), n)
		}
	}
	evs, err := s.Events(e.ctx, alice, "contended", -1, 0)
	must(t, err)
	for i := range n {
		// A racer can fall behind and stop taking numbers, but every
		// number taken was taken once, in order, with no gap.
		if c := taken[i].Load(); c > 1 || (c == 1) != (i < len(evs)) {
			t.Errorf("contended seq %d taken %d times (log has %d events)", i, c, len(evs))
		}
	}
	if len(evs) != n {
		t.Errorf("contended log has %d events, want %d", len(evs), n)
	}
}

// testWaitAcrossHandles: a reader on one handle follows a run written
// through another, waking on each append (the poll interval is far longer
// than the test's deadline).
func testWaitAcrossHandles(t *testing.T, f Factory) {
	e, writer := newEnv(t, f, nil)
	reader := e.handle()
	must(t, writer.Create(e.ctx, &store.Response{ID: "run", Owner: alice, Status: store.StatusInProgress}))
	const n = 20
	seen := make(chan int64)
	done := make(chan error, 1)
	go func() {
		after := int64(-1)
		for {
			ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
			p, err := reader.WaitEvents(ctx, alice, "run", after)
			cancel()
			if err != nil {
				done <- err
				return
			}
			evs, err := reader.Events(e.ctx, alice, "run", after, 0)
			if err != nil {
				done <- err
				return
			}
			for _, ev := range evs {
				if ev.Seq != after+1 {
					done <- fmt.Errorf("event %d after %d", ev.Seq, after)
					return
				}
				after = ev.Seq
				seen <- after
			}
			if p.Status.Terminal() && len(evs) == 0 {
				done <- nil
				return
			}
		}
	}()
	for i := range int64(n) {
		must(t, writer.AppendEvent(e.ctx, alice, "run", i, json.RawMessage(`{}`)))
		select {
		case got := <-seen:
			if got != i {
				t.Fatalf("reader saw %d, want %d", got, i)
			}
		case err := <-done:
			t.Fatalf("reader ended early: %v", err)
		}
	}
	must(t, writer.Update(e.ctx, alice, "run", store.Update{Status: status(store.StatusCompleted)}))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func testCancel(t *testing.T, f Factory) {
	e, a := newEnv(t, f, nil)
	b := e.handle()
	must(t, a.Create(e.ctx, &store.Response{ID: "run", Owner: alice, Status: store.StatusInProgress}))
	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
		defer cancel()
		waited <- a.WaitCancel(ctx, alice, "run") // the replica running it
	}()
	st, err := b.RequestCancel(e.ctx, alice, "run") // another replica
	must(t, err)
	if st != store.StatusInProgress {
		t.Errorf("RequestCancel = %s", st)
	}
	must(t, <-waited)
	r, err := a.Get(e.ctx, alice, "run")
	must(t, err)
	if !r.CancelRequested || r.Status != store.StatusInProgress {
		t.Errorf("after cancel: %+v", r)
	}
	must(t, a.Update(e.ctx, alice, "run", store.Update{Status: status(store.StatusCancelled)}))
	st, err = b.RequestCancel(e.ctx, alice, "run")
	if err != nil || st != store.StatusCancelled {
		t.Errorf("RequestCancel on a cancelled run = %s, %v", st, err)
	}
	wantErr(t, "WaitCancel on a finished run", a.WaitCancel(e.ctx, alice, "run"), store.ErrFinished)

	// A completed response is not marked.
	must(t, a.Create(e.ctx, &store.Response{ID: "done", Owner: alice}))
	st, err = b.RequestCancel(e.ctx, alice, "done")
	must(t, err)
	r, err = a.Get(e.ctx, alice, "done")
	must(t, err)
	if st != store.StatusCompleted || r.CancelRequested {
		t.Errorf("cancel of a completed response: %s, %+v", st, r)
	}
	// A wait for cancel ends when the response is deleted.
	must(t, a.Create(e.ctx, &store.Response{ID: "gone", Owner: alice, Status: store.StatusQueued}))
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
		defer cancel()
		waited <- a.WaitCancel(ctx, alice, "gone")
	}()
	must(t, b.Delete(e.ctx, alice, "gone"))
	wantErr(t, "WaitCancel on a deleted run", <-waited, store.ErrNotFound)
}

func testTTL(t *testing.T, f Factory) {
	e, s := newEnv(t, f, func(o *store.Options) { o.TTL = time.Hour })
	must(t, s.Create(e.ctx, &store.Response{ID: "old", Owner: alice, Status: store.StatusInProgress,
		Input: []store.Item{item("old_in", "x")}}))
	must(t, s.AppendEvent(e.ctx, alice, "old", 0, json.RawMessage(`{}`)))
	e.clock.Advance(30 * time.Minute)
	must(t, s.Create(e.ctx, &store.Response{ID: "young", Owner: alice}))
	r, err := s.Get(e.ctx, alice, "old")
	must(t, err)
	if want := e.clock.Now().Add(30 * time.Minute); !r.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", r.ExpiresAt, want)
	}
	e.clock.Advance(31 * time.Minute)
	// Expired but not purged yet: already gone for every read.
	_, err = s.Get(e.ctx, alice, "old")
	wantErr(t, "Get expired", err, store.ErrNotFound)
	_, err = s.Items(e.ctx, alice, []string{"old_in"})
	wantErr(t, "Items of expired", err, store.ErrNotFound)
	wantErr(t, "AppendEvent to expired", s.AppendEvent(e.ctx, alice, "old", 1, json.RawMessage(`{}`)), store.ErrNotFound)
	n, err := s.PurgeExpired(e.ctx, e.clock.Now())
	must(t, err)
	if n != 1 {
		t.Errorf("PurgeExpired = %d, want 1", n)
	}
	if _, err := s.Get(e.ctx, alice, "young"); err != nil {
		t.Errorf("young response purged: %v", err)
	}
	// A purged id is free: a new response with it has no leftovers.
	e.clock.Advance(-2 * time.Hour)
	must(t, s.Create(e.ctx, &store.Response{ID: "old", Owner: alice, Status: store.StatusInProgress}))
	evs, err := s.Events(e.ctx, alice, "old", -1, 0)
	if err != nil || len(evs) != 0 {
		t.Errorf("events survived the purge: %v %v", evs, err)
	}
	if n, err := s.PurgeExpired(e.ctx, e.clock.Now()); n != 0 || err != nil {
		t.Errorf("second purge = %d, %v", n, err)
	}
}

func testSizeLimit(t *testing.T, f Factory) {
	e, s := newEnv(t, f, func(o *store.Options) { o.MaxResponseBytes = 1000 })
	big := store.Item{ID: "big", Data: json.RawMessage(`"` + strings.Repeat("x", 1200) + `"`)}
	var tl *store.TooLargeError
	if err := s.Create(e.ctx, &store.Response{ID: "r", Owner: alice, Input: []store.Item{big}}); !errors.As(err, &tl) || tl.Limit != 1000 || tl.Size <= 1000 {
		t.Fatalf("Create over the limit: %v", err)
	}
	if _, err := s.Get(e.ctx, alice, "r"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused Create left a response: %v", err)
	}
	half := store.Item{ID: "half", Data: json.RawMessage(`"` + strings.Repeat("x", 500) + `"`)}
	must(t, s.Create(e.ctx, &store.Response{ID: "r", Owner: alice, Status: store.StatusInProgress, Input: []store.Item{half}}))
	must(t, s.AppendEvent(e.ctx, alice, "r", 0, json.RawMessage(`"`+strings.Repeat("e", 300)+`"`)))
	if err := s.AppendEvent(e.ctx, alice, "r", 1, json.RawMessage(`"`+strings.Repeat("e", 300)+`"`)); !errors.As(err, &tl) {
		t.Errorf("AppendEvent over the limit: %v", err)
	}
	if err := s.Update(e.ctx, alice, "r", store.Update{Output: []store.Item{half}}); !errors.As(err, &tl) {
		t.Errorf("Update over the limit: %v", err)
	}
	// Replacing output frees what the old output counted.
	must(t, s.Update(e.ctx, alice, "r", store.Update{Output: []store.Item{item("o", "small")}}))
	must(t, s.Update(e.ctx, alice, "r", store.Update{Output: []store.Item{item("o", "small")}, Object: json.RawMessage(`{}`)}))
	r, err := s.Get(e.ctx, alice, "r")
	must(t, err)
	if r.Size > 1000 || r.LastSeq != 0 {
		t.Errorf("after refusals: %+v", r)
	}
}

func testMigrations(t *testing.T, f Factory) {
	e, s := newEnv(t, f, nil)
	must(t, s.Create(e.ctx, &store.Response{ID: "r", Owner: alice}))
	// Another Open on a migrated database changes nothing.
	again := e.handle()
	if _, err := again.Get(e.ctx, alice, "r"); err != nil {
		t.Errorf("Get through a second handle: %v", err)
	}
	// Replicas starting at once on a fresh database.
	e2 := &env{t: t, ctx: e.ctx, open: f(t), clock: e.clock, opts: e.opts}
	var wg sync.WaitGroup
	handles := make([]store.Store, 4)
	errs := make([]error, 4)
	for i := range handles {
		wg.Go(func() { handles[i], errs[i] = e2.open(e2.opts) })
	}
	wg.Wait()
	for i, h := range handles {
		if errs[i] != nil {
			t.Fatalf("handle %d: %v", i, errs[i])
		}
		t.Cleanup(func() { h.Close() })
		must(t, h.Create(e.ctx, &store.Response{ID: fmt.Sprintf("c%d", i), Owner: alice}))
	}
	for i := range handles {
		if _, err := handles[0].Get(e.ctx, alice, fmt.Sprintf("c%d", i)); err != nil {
			t.Errorf("c%d: %v", i, err)
		}
	}
}

// lapse is a LapseFunc like the host's: an object and an event that name
// the sequence number they were given, and count their calls.
func lapse(calls *atomic.Int64) store.LapseFunc {
	return func(r *store.Response) (json.RawMessage, json.RawMessage, error) {
		calls.Add(1)
		obj := fmt.Sprintf(`{"id":%q,"status":"incomplete","was":%q}`, r.ID, r.Status)
		ev := fmt.Sprintf(`{"type":"response.incomplete","sequence_number":%d}`, r.LastSeq+1)
		return json.RawMessage(obj), json.RawMessage(ev), nil
	}
}

// testLease: a run whose process stops renewing its lease is ended, once,
// by whichever handle finds it lapsed — with the terminal event appended
// after the last one and a wait on another handle woken — while a renewed
// run is left alone and a lost run tells its process to stop.
func testLease(t *testing.T, f Factory) {
	e, a := newEnv(t, f, func(o *store.Options) { o.Lease = 30 * time.Second })
	b := e.handle() // another replica
	var calls atomic.Int64
	fin := lapse(&calls)

	r := &store.Response{ID: "run", Owner: alice, Status: store.StatusInProgress, Object: json.RawMessage(`{"id":"run"}`)}
	must(t, a.Create(e.ctx, r))
	if want := e.clock.Now().Add(30 * time.Second); !r.LeaseExpiresAt.Equal(want) {
		t.Fatalf("Create: LeaseExpiresAt = %v, want %v", r.LeaseExpiresAt, want)
	}
	must(t, a.AppendEvent(e.ctx, alice, "run", 0, json.RawMessage(`{"n":0}`)))
	must(t, a.AppendEvent(e.ctx, alice, "run", 1, json.RawMessage(`{"n":1}`)))

	// Renewed in time: alive however long it runs.
	for range 3 {
		e.clock.Advance(20 * time.Second)
		until, err := a.RenewLease(e.ctx, alice, "run")
		must(t, err)
		if want := e.clock.Now().Add(30 * time.Second); !until.Equal(want) {
			t.Fatalf("RenewLease = %v, want %v", until, want)
		}
		if ended, err := b.EndLapsed(e.ctx, alice, "run", fin); ended || err != nil {
			t.Fatalf("EndLapsed of a renewed run = %v, %v", ended, err)
		}
	}
	got, err := b.Get(e.ctx, alice, "run")
	must(t, err)
	if got.Lapsed(e.clock.Now()) || !got.LeaseExpiresAt.Equal(e.clock.Now().Add(30*time.Second)) {
		t.Fatalf("Get of a renewed run: lease %v at %v", got.LeaseExpiresAt, e.clock.Now())
	}
	// Isolation: another owner neither renews nor ends it.
	_, err = b.RenewLease(e.ctx, bob, "run")
	wantErr(t, "RenewLease by bob", err, store.ErrNotFound)
	_, err = b.EndLapsed(e.ctx, bob, "run", fin)
	wantErr(t, "EndLapsed by bob", err, store.ErrNotFound)

	// A tail on b, waiting after the last event, must wake when the run is
	// ended as lapsed.
	woke := make(chan store.Progress, 1)
	go func() {
		p, err := b.WaitEvents(e.ctx, alice, "run", 1)
		if err != nil {
			t.Error(err)
		}
		woke <- p
	}()

	// The process dies: no more renewals. Just before expiry it is alive.
	e.clock.Advance(30*time.Second - time.Microsecond)
	if ended, err := b.EndLapsed(e.ctx, alice, "run", fin); ended || err != nil {
		t.Fatalf("EndLapsed before expiry = %v, %v", ended, err)
	}
	e.clock.Advance(time.Microsecond)
	got, err = b.Get(e.ctx, alice, "run")
	must(t, err)
	if !got.Lapsed(e.clock.Now()) {
		t.Fatalf("Get at expiry: not lapsed (lease %v, now %v)", got.LeaseExpiresAt, e.clock.Now())
	}
	// Both replicas find it at once; it is ended once.
	var wg sync.WaitGroup
	var endedN atomic.Int64
	for _, h := range []store.Store{a, b, b} {
		wg.Go(func() {
			ended, err := h.EndLapsed(e.ctx, alice, "run", fin)
			if err != nil {
				t.Error(err)
			}
			if ended {
				endedN.Add(1)
			}
		})
	}
	wg.Wait()
	if endedN.Load() != 1 || calls.Load() != 1 {
		t.Fatalf("concurrent EndLapsed ended it %d times (fin called %d times), want 1", endedN.Load(), calls.Load())
	}
	select {
	case p := <-woke:
		if p.Status != store.StatusIncomplete || p.LastSeq != 2 {
			t.Errorf("the wait woke with %+v, want incomplete at seq 2", p)
		}
	case <-e.ctx.Done():
		t.Fatal("a wait on another handle was not woken by the lapse")
	}
	got, err = a.Get(e.ctx, alice, "run")
	must(t, err)
	if got.Status != store.StatusIncomplete || got.LastSeq != 2 || string(got.Object) != `{"id":"run","status":"incomplete","was":"in_progress"}` {
		t.Errorf("after the lapse: status %s, last seq %d, object %s", got.Status, got.LastSeq, got.Object)
	}
	evs, err := b.Events(e.ctx, alice, "run", -1, 0)
	must(t, err)
	if len(evs) != 3 || evs[2].Seq != 2 || string(evs[2].Data) != `{"type":"response.incomplete","sequence_number":2}` {
		t.Errorf("events after the lapse: %+v", evs)
	}
	// The process that lost it learns so on its next heartbeat, and its
	// late writes are refused.
	_, err = a.RenewLease(e.ctx, alice, "run")
	wantErr(t, "RenewLease of a lapsed run", err, store.ErrFinished)
	wantErr(t, "AppendEvent after the lapse", a.AppendEvent(e.ctx, alice, "run", 3, json.RawMessage(`{}`)), store.ErrFinished)
	if ended, err := b.EndLapsed(e.ctx, alice, "run", fin); ended || err != nil {
		t.Errorf("EndLapsed of an ended run = %v, %v", ended, err)
	}

	// A response created terminal has no lease, and is never lapsed.
	done := &store.Response{ID: "done", Owner: alice}
	must(t, a.Create(e.ctx, done))
	e.clock.Advance(time.Hour)
	if !done.LeaseExpiresAt.IsZero() {
		t.Errorf("completed response has a lease: %v", done.LeaseExpiresAt)
	}
	if ended, err := b.EndLapsed(e.ctx, alice, "done", fin); ended || err != nil {
		t.Errorf("EndLapsed of a completed response = %v, %v", ended, err)
	}
	_, err = a.RenewLease(e.ctx, alice, "done")
	wantErr(t, "RenewLease of a completed response", err, store.ErrFinished)
	_, err = a.RenewLease(e.ctx, alice, "absent")
	wantErr(t, "RenewLease of an absent response", err, store.ErrNotFound)
	_, err = a.RenewLease(e.ctx, "", "run")
	wantErr(t, "RenewLease anonymous", err, store.ErrAnonymous)
}

// testLeaseSweep: the janitor's sweep ends every owner's lapsed runs and
// only them.
func testLeaseSweep(t *testing.T, f Factory) {
	e, s := newEnv(t, f, func(o *store.Options) { o.Lease = 10 * time.Second })
	var calls atomic.Int64
	fin := lapse(&calls)
	must(t, s.Create(e.ctx, &store.Response{ID: "a1", Owner: alice, Status: store.StatusInProgress}))
	must(t, s.Create(e.ctx, &store.Response{ID: "b1", Owner: bob, Status: store.StatusQueued}))
	must(t, s.Create(e.ctx, &store.Response{ID: "live", Owner: alice, Status: store.StatusInProgress}))
	must(t, s.Create(e.ctx, &store.Response{ID: "done", Owner: alice}))
	if n, err := s.ExpireLeases(e.ctx, fin); n != 0 || err != nil {
		t.Fatalf("ExpireLeases before any lapse = %d, %v", n, err)
	}
	e.clock.Advance(8 * time.Second)
	_, err := s.RenewLease(e.ctx, alice, "live")
	must(t, err)
	e.clock.Advance(3 * time.Second)
	n, err := s.ExpireLeases(e.ctx, fin)
	must(t, err)
	if n != 2 {
		t.Errorf("ExpireLeases = %d, want 2", n)
	}
	for _, c := range []struct {
		owner, id string
		want      store.Status
	}{{alice, "a1", store.StatusIncomplete}, {bob, "b1", store.StatusIncomplete},
		{alice, "live", store.StatusInProgress}, {alice, "done", store.StatusCompleted}} {
		r, err := s.Get(e.ctx, c.owner, c.id)
		must(t, err)
		if r.Status != c.want {
			t.Errorf("%s after the sweep: %s, want %s", c.id, r.Status, c.want)
		}
	}
	if n, err := s.ExpireLeases(e.ctx, fin); n != 0 || err != nil {
		t.Errorf("second sweep = %d, %v", n, err)
	}
}

package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/pgtest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func openT(t *testing.T, spec string, opts Options) Store {
	t.Helper()
	s, err := Open(context.Background(), spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// specs of one fresh database per backend that has more than one handle.
func sharedSpecs(t *testing.T) map[string]string {
	return map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "s.db"),
		"postgres": pgtest.DB(t),
	}
}

// TestWakeIsANotification: a wait that has checked and blocked (the hook
// says so) is woken by an append through another handle, with polling far
// too slow to be what woke it.
func TestWakeIsANotification(t *testing.T) {
	for backend, spec := range sharedSpecs(t) {
		t.Run(backend, func(t *testing.T) {
			opts := Options{PollInterval: time.Hour}
			a, b := openT(t, spec, opts), openT(t, spec, opts)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, id := range []string{"events", "cancel"} {
				if err := a.Create(ctx, &Response{ID: id, Owner: "alice", Status: StatusInProgress}); err != nil {
					t.Fatal(err)
				}
			}
			blocked := make(chan string, 4)
			testHookWaiting = func(id string) { blocked <- id }
			t.Cleanup(func() { testHookWaiting = nil })

			got := make(chan error, 1)
			go func() { _, err := b.WaitEvents(ctx, "alice", "events", -1); got <- err }()
			if id := <-blocked; id != "events" {
				t.Fatalf("blocked on %s", id)
			}
			if err := a.AppendEvent(ctx, "alice", "events", 0, json.RawMessage(`{}`)); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatalf("WaitEvents: %v", err)
			}

			go func() { got <- b.WaitCancel(ctx, "alice", "cancel") }()
			<-blocked
			if _, err := a.RequestCancel(ctx, "alice", "cancel"); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatalf("WaitCancel: %v", err)
			}
		})
	}
}

// TestCloseEndsWaits: closing a handle ends its waits with ErrClosed and
// leaves no goroutine behind (the PostgreSQL listener included).
func TestCloseEndsWaits(t *testing.T) {
	specs := sharedSpecs(t)
	specs["memory"] = "memory"
	for backend, spec := range specs {
		t.Run(backend, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			s, err := Open(context.Background(), spec, Options{PollInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.Create(ctx, &Response{ID: "r-" + backend, Owner: "alice", Status: StatusQueued}); err != nil {
				t.Fatal(err)
			}
			blocked := make(chan string, 1)
			testHookWaiting = func(id string) { blocked <- id }
			defer func() { testHookWaiting = nil }()
			got := make(chan error, 1)
			go func() { _, err := s.WaitEvents(ctx, "alice", "r-"+backend, -1); got <- err }()
			<-blocked
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-got; !errors.Is(err, ErrClosed) {
				t.Errorf("wait after Close: %v", err)
			}
			if _, err := s.Get(ctx, "alice", "r-"+backend); !errors.Is(err, ErrClosed) {
				t.Errorf("Get after Close: %v", err)
			}
		})
	}
}

// TestListenerReconnects: when the LISTEN connection dies, the listener
// reconnects and waits wake again.
func TestListenerReconnects(t *testing.T) {
	url := pgtest.DB(t)
	opts := Options{PollInterval: 50 * time.Millisecond}
	s := openT(t, url, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Create(ctx, &Response{ID: "r", Owner: "alice", Status: StatusInProgress}); err != nil {
		t.Fatal(err)
	}
	// Kill every other backend on this database: the listener's among them.
	sq := s.(*instrumented).next.(*sqlStore)
	if _, err := sq.w.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	other := openT(t, url, Options{})
	for i := range int64(3) {
		if err := other.AppendEvent(ctx, "alice", "r", i, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		if p, err := s.WaitEvents(ctx, "alice", "r", i-1); err != nil || p.LastSeq < i {
			t.Fatalf("WaitEvents after reconnect: %+v %v", p, err)
		}
	}
}

func TestOpenSpecs(t *testing.T) {
	for _, tc := range []struct {
		spec, backend, errHas string
	}{
		{"off", "off", ""},
		{"memory", "memory", ""},
		{"sqlite:/tmp/x.db", "sqlite", ""},
		{"sqlite:", "", "needs a file path"},
		{"postgres://u:hunter2@db.example/agentrt", "postgres", ""},
		{"postgresql://db.example/agentrt", "postgres", ""},
		{"mysql://u:hunter2@db.example/agentrt", "", "unknown store"},
		{"", "", "unknown store"},
		{"sqlite", "", "unknown store"},
	} {
		b, err := Backend(tc.spec)
		if b != tc.backend || (err == nil) != (tc.errHas == "") || (err != nil && !strings.Contains(err.Error(), tc.errHas)) {
			t.Errorf("Backend(%q) = %q, %v", tc.spec, b, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Backend(%q) error shows the password: %v", tc.spec, err)
		}
	}
	// A server that refuses: the error names the store, never the password.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://agentrt:hunter2@127.0.0.1:1/agentrt?connect_timeout=5", Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "store: postgres") {
		t.Errorf("Open on a refusing server: %v", err)
	}
	if _, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "a?b.db"), Options{}); err == nil {
		t.Error("sqlite path with ?: no error")
	}
}

func TestOff(t *testing.T) {
	s := openT(t, "off", Options{})
	if !IsOff(s) {
		t.Fatal("IsOff(off) = false")
	}
	if IsOff(openT(t, "memory", Options{})) {
		t.Fatal("IsOff(memory) = true")
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"Create":      s.Create(ctx, &Response{ID: "r", Owner: "alice"}),
		"AppendEvent": s.AppendEvent(ctx, "alice", "r", 0, nil),
		"WaitCancel":  s.WaitCancel(ctx, "alice", "r"),
	} {
		if !errors.Is(err, ErrOff) {
			t.Errorf("%s on off: %v", name, err)
		}
	}
	if _, err := s.Get(ctx, "alice", "r"); !errors.Is(err, ErrOff) {
		t.Errorf("Get on off: %v", err)
	}
	if _, err := s.PurgeExpired(ctx, time.Now()); !errors.Is(err, ErrOff) {
		t.Errorf("PurgeExpired on off: %v", err)
	}
}

func TestDefaultSQLitePath(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/state", "HOME": "/home/a"}, "/state/agentrt/state.db"},
		{map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/a"}, "/home/a/.local/state/agentrt/state.db"},
		{map[string]string{"HOME": "/"}, "agentrt-state.db"},
		{map[string]string{}, "agentrt-state.db"},
	} {
		if got := DefaultSQLitePath(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("DefaultSQLitePath(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestNoMigrate(t *testing.T) {
	spec := "sqlite:" + filepath.Join(t.TempDir(), "m.db")
	if _, err := Open(context.Background(), spec, Options{NoMigrate: true}); err == nil || !strings.Contains(err.Error(), "serve migrate") {
		t.Fatalf("NoMigrate on an empty database: %v", err)
	}
	if err := Migrate(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	openT(t, spec, Options{NoMigrate: true})
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")
	s, err := Open(context.Background(), "memory", Options{Meter: meter})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Create(ctx, &Response{ID: "r", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.Get(ctx, "bob", "r") // not found: an answer, not an error
	s.Close()
	s.Get(ctx, "alice", "r") // closed: an error

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	errs := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					counts[attr(dp.Attributes, "op")+"/"+attr(dp.Attributes, "backend")] += dp.Count
				}
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					errs[attr(dp.Attributes, "op")] += dp.Value
				}
			}
		}
	}
	if counts["create/memory"] != 1 || counts["get/memory"] != 2 {
		t.Errorf("agentrt.store.duration counts = %v", counts)
	}
	if errs["get"] != 1 || errs["create"] != 0 {
		t.Errorf("agentrt.store.errors = %v", errs)
	}
}

func attr(s attribute.Set, k string) string {
	v, _ := s.Value(attribute.Key(k))
	return v.AsString()
}

type signalPurge struct {
	Store
	purged chan int64
}

func (s signalPurge) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.Store.PurgeExpired(ctx, now)
	s.purged <- n
	return n, err
}

func TestJanitor(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	mem, err := Open(context.Background(), "memory", Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if err := mem.Create(ctx, &Response{ID: "old", Owner: "alice", CreatedAt: time.Now().Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := mem.Create(ctx, &Response{ID: "new", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	s := signalPurge{mem, make(chan int64)}
	done := make(chan struct{})
	go func() { Janitor(ctx, s, time.Hour, func(err error) { t.Error(err) }); close(done) }()
	if n := <-s.purged; n != 1 {
		t.Errorf("first purge deleted %d, want 1", n)
	}
	cancel()
	<-done
	if _, err := mem.Get(context.Background(), "alice", "new"); err != nil {
		t.Errorf("new response purged: %v", err)
	}
}

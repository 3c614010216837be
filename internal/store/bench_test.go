package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentrt/agentrt/internal/pgtest"
	"github.com/agentrt/agentrt/internal/store"
)

func benchStores(b *testing.B) map[string]store.Store {
	out := map[string]store.Store{}
	for name, spec := range map[string]string{
		"memory":   "memory",
		"sqlite":   "sqlite:" + filepath.Join(b.TempDir(), "bench.db"),
		"postgres": pgtest.DB(b),
	} {
		s, err := store.Open(context.Background(), spec, store.Options{MaxResponseBytes: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		out[name] = s
	}
	return out
}

// A turn of a small conversation: two input items, one output message, and
// the response object, about 1.5 KB.
func benchResponse(id string) *store.Response {
	msg := func(id, text string) store.Item {
		d, _ := json.Marshal(map[string]any{"type": "message", "id": id, "role": "user",
			"content": []map[string]string{{"type": "input_text", "text": text}}})
		return store.Item{ID: id, Data: d}
	}
	return &store.Response{
		ID: id, Owner: "alice", Model: "assistant",
		Object: json.RawMessage(`{"id":"` + id + `","object":"response","status":"completed","model":"assistant","tools":[],"usage":{"input_tokens":12,"output_tokens":40,"total_tokens":52}}`),
		Input:  []store.Item{msg(id+"_sys", strings.Repeat("be brief. ", 20)), msg(id+"_u", "What is the capital of France?")},
		Output: []store.Item{msg(id+"_a", strings.Repeat("Paris is the capital of France. ", 20))},
	}
}

// BenchmarkCreateGet stores a response and reads it back, as a store:true
// request and a later GET do.
func BenchmarkCreateGet(b *testing.B) {
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				id := fmt.Sprintf("resp_%s_%d", name, i)
				i++
				if err := s.Create(ctx, benchResponse(id)); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Get(ctx, "alice", id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendEvent appends stream events (a text delta each) to one
// background run; BenchmarkAppendEventParallel to one run per goroutine.
func BenchmarkAppendEvent(b *testing.B) {
	ev := json.RawMessage(`{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hello, wor","logprobs":[]}`)
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			id := "run_" + name
			if err := s.Create(ctx, &store.Response{ID: id, Owner: "alice", Status: store.StatusInProgress}); err != nil {
				b.Fatal(err)
			}
			seq := int64(0)
			for b.Loop() {
				if err := s.AppendEvent(ctx, "alice", id, seq, ev); err != nil {
					b.Fatal(err)
				}
				seq++
			}
		})
	}
}

func BenchmarkAppendEventParallel(b *testing.B) {
	ev := json.RawMessage(`{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hello, wor","logprobs":[]}`)
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("prun_%s_%d_%d", name, b.N, n.Add(1))
				if err := s.Create(ctx, &store.Response{ID: id, Owner: "alice", Status: store.StatusInProgress}); err != nil {
					b.Error(err)
					return
				}
				for seq := int64(0); pb.Next(); seq++ {
					if err := s.AppendEvent(ctx, "alice", id, seq, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAppendEvent200Runs is the event log under 200 background runs at
// once, each appending to its own response (the figure): the
// throughput of appends across all of them, in events/s.
func BenchmarkAppendEvent200Runs(b *testing.B) {
	const runs = 200
	ev := json.RawMessage(`{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hello, wor","logprobs":[]}`)
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism((runs + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("r200_%s_%d_%d", name, b.N, n.Add(1))
				if err := s.Create(ctx, &store.Response{ID: id, Owner: "alice", Status: store.StatusInProgress}); err != nil {
					b.Error(err)
					return
				}
				for seq := int64(0); pb.Next(); seq++ {
					if err := s.AppendEvent(ctx, "alice", id, seq, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(n.Load()), "runs")
		})
	}
}

// BenchmarkOpenSQLite is what `serve` does at start with the default
// store: open an existing SQLite file whose schema is current (the first
// start created it) and check its migrations.
func BenchmarkOpenSQLite(b *testing.B) {
	b.ReportAllocs()
	spec := "sqlite:" + filepath.Join(b.TempDir(), "open.db")
	ctx := context.Background()
	s, err := store.Open(ctx, spec, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	for b.Loop() {
		s, err := store.Open(ctx, spec, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer() // closing is the previous process's exit, not start-up
		s.Close()
		b.StartTimer()
	}
}

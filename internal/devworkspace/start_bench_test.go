package devworkspace

import (
	"context"
	"testing"
	"time"
)

// BenchmarkNew is the dev workspace's start-up work (`serve --dev` does it
// before it listens): configuration, identities, the SQLite database with
// the sample data, the vector indexes and the API state.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ws, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		ws.Close()
	}
}

// BenchmarkLoadCatalog is the part of New that loads the tables (the
// generated sample data: customers, products and 12,000 orders) and the
// functions into SQLite; Start does it in the background.
func BenchmarkLoadCatalog(b *testing.B) {
	b.ReportAllocs()
	cfg, err := DefaultConfig()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		db, err := openSQLDB(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ws := &Workspace{cfg: cfg, db: db, catalog: newUCCatalog(), built: time.Now()}
		if err := ws.loadDefinitions(); err != nil {
			b.Fatal(err)
		}
		if err := ws.loadTables(ctx); err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// BenchmarkStart is what `serve --dev` waits for before it goes on: Start
// returns listening, with the sample data still loading in the background
// (Close stops that load).
func BenchmarkStart(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ws, err := Start(context.Background(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ws.Close()
		b.StartTimer()
	}
}

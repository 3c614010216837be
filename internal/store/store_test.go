package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/agentrt/agentrt/internal/pgtest"
	"github.com/agentrt/agentrt/internal/store"
	"github.com/agentrt/agentrt/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// memoryFactory: memory has one handle per database, so "another replica"
// is the same store behind a Close that does nothing.
func memoryFactory(t *testing.T) storetest.Opener {
	var mu sync.Mutex
	var first store.Store
	t.Cleanup(func() {
		if first != nil {
			first.Close()
		}
	})
	return func(opts store.Options) (store.Store, error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			s, err := store.Open(context.Background(), "memory", opts)
			if err != nil {
				return nil, err
			}
			first = s
		}
		return noClose{first}, nil
	}
}

type noClose struct{ store.Store }

func (noClose) Close() error { return nil }

func sqliteFactory(t *testing.T) storetest.Opener {
	spec := "sqlite:" + filepath.Join(t.TempDir(), "state.db")
	return func(opts store.Options) (store.Store, error) {
		return store.Open(context.Background(), spec, opts)
	}
}

func postgresFactory(t *testing.T) storetest.Opener {
	url := pgtest.DB(t)
	return func(opts store.Options) (store.Store, error) {
		return store.Open(context.Background(), url, opts)
	}
}

func TestConformanceMemory(t *testing.T)   { storetest.Run(t, memoryFactory) }
func TestConformanceSQLite(t *testing.T)   { storetest.Run(t, sqliteFactory) }
func TestConformancePostgres(t *testing.T) { storetest.Run(t, postgresFactory) }

// TestPostgresCluster reports how long the throwaway cluster took to start.
func TestPostgresCluster(t *testing.T) {
	c := pgtest.Shared(t)
	t.Logf("PostgreSQL cluster started in %v", c.Started)
}

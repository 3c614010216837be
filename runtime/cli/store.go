package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/agentrt/agentrt/internal/store"
)

// storeResult is openStore's answer, from the goroutine Run opens it in.
type storeResult struct {
	st  store.Store
	err error
}

// openStore opens the response store --store names (docs/state.md), with
// --store-ttl, --store-lease and --store-migrate. Its metrics go to the meter provider
// telemetry.Setup installed, so it is opened after it.
func openStore(ctx context.Context, c config, log *slog.Logger) (store.Store, error) {
	backend, _ := store.Backend(c.storeSpec) // checked by parseFlags
	start := time.Now()
	st, err := store.Open(ctx, c.storeSpec, store.Options{TTL: c.storeTTL, Lease: c.storeLease, NoMigrate: !c.storeMigrate})
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	log.Info("response store", "backend", backend, "ttl", c.storeTTL.String(), "lease", c.storeLease.String(), "opened_in", time.Since(start).Round(time.Millisecond).String())
	return st, nil
}

// migrateStore is `serve migrate`: it brings the store's schema up to date
// and exits, for deployments that migrate before starting replicas with
// --store-migrate=false.
func migrateStore(ctx context.Context, spec string, log *slog.Logger) error {
	backend, _ := store.Backend(spec)
	if err := store.Migrate(ctx, spec); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("response store migrated", "backend", backend)
	return nil
}

// envBoolDefault is a boolean environment variable with a default.
func envBoolDefault(key string, def bool) bool {
	if v, err := strconv.ParseBool(env(key, "")); err == nil {
		return v
	}
	return def
}

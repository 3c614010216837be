//go:build !agentrt_nodev

package cli

import (
	"context"
	"log/slog"

	"github.com/agentrt/agentrt/internal/devmode"
)

// startDev starts the embedded dev workspace for --dev. Builds tagged
// agentrt_nodev replace it (nodev.go) and so link neither the dev workspace
// nor SQLite.
func startDev(ctx context.Context, w workspaceFlags, addr string, log *slog.Logger) (devWorkspace, error) {
	return devmode.Start(ctx, devmode.Options{Addr: w.devWorkspaceAddr, ConfigFile: w.devConfig, LLMProxyURL: w.devLLMURL,
		ServeAddr: addr, AllowedHosts: w.allowedHosts(), Logger: log})
}

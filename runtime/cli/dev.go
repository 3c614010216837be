//go:build !agentrt_nodev

package cli

import (
	"context"
	"errors"
	"log/slog"

	"github.com/agentrt/agentrt/internal/devmode"
)

// startDev starts the embedded dev workspace for --dev, or connects to the
// one at --dev-workspace-url. Builds tagged agentrt_nodev replace it
// (nodev.go) and so link neither the dev workspace nor SQLite.
func startDev(ctx context.Context, w workspaceFlags, addr string, log *slog.Logger) (devWorkspace, error) {
	if w.devWorkspaceURL != "" {
		if w.devLLMURL != "" {
			return nil, errors.New("--dev-llm-url configures the embedded dev workspace, and --dev-workspace-url uses one already running: give the URL to that dev workspace (devworkspace --llm-proxy) instead")
		}
		return devmode.Connect(ctx, devmode.ConnectOptions{URL: w.devWorkspaceURL, ConfigFile: w.devConfig,
			ServeAddr: addr, AllowedHosts: w.allowedHosts(), Logger: log})
	}
	return devmode.Start(ctx, devmode.Options{Addr: w.devWorkspaceAddr, ConfigFile: w.devConfig, LLMProxyURL: w.devLLMURL,
		ServeAddr: addr, AllowedHosts: w.allowedHosts(), Logger: log})
}

//go:build agentrt_nodev

package cli

import (
	"context"
	"log/slog"
	"net"

	"github.com/agentrt/agentrt/internal/workspace"
)

// startAppsDoor: --dev-apps needs --dev, which this build leaves out.
func startAppsDoor(context.Context, config, *workspace.Workspace, *slog.Logger) (net.Listener, error) {
	return nil, errNoDev
}

//go:build agentrt_nodev

package cli

import (
	"context"
	"errors"
	"log/slog"
)

// errNoDev is --dev in a production build (go build -tags agentrt_nodev),
// which links no dev workspace.
var errNoDev = errors.New("--dev: this build has no dev workspace (it was built with -tags agentrt_nodev); rebuild without -tags agentrt_nodev, or run `make dev`")

func startDev(context.Context, workspaceFlags, string, *slog.Logger) (devWorkspace, error) {
	return nil, errNoDev
}

//go:build agentrt_nodev

package cli

import (
	"log/slog"
	"net"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/workspace"
)

// devUI: the dev UI needs --dev, which this build leaves out.
type devUI struct{}

func newDevUI(bool) *devUI                                                         { return nil }
func (*devUI) spanProcessors() []sdktrace.SpanProcessor                            { return nil }
func (*devUI) useWorkspace(devWorkspace)                                           {}
func (*devUI) mount(*server.Host, *workspace.Workspace, string, agent.Agent) error { return nil }
func (*devUI) announce(*slog.Logger, net.Addr)                                     {}

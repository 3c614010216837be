//go:build !agentrt_nodev

package cli

import (
	"errors"
	"log/slog"
	"maps"
	"net"
	"slices"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/devui"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/workspace"
)

// devUI is the dev UI of `serve --dev` (internal/devui), served at / next to
// the agent's routes. Builds tagged agentrt_nodev replace it
// (devui_nodev.go) and link none of it. A nil *devUI (no --dev) does
// nothing.
type devUI struct {
	rec *devui.Recorder
	dev *devmode.Dev
}

func newDevUI(dev bool) *devUI {
	if !dev {
		return nil
	}
	return &devUI{rec: devui.NewRecorder()}
}

// spanProcessors records every request's spans for the UI's timeline.
func (u *devUI) spanProcessors() []sdktrace.SpanProcessor {
	if u == nil {
		return nil
	}
	return []sdktrace.SpanProcessor{u.rec}
}

// useWorkspace is workspaceFlags.onDev: the dev workspace the UI reads
// identities and the audit log from.
func (u *devUI) useWorkspace(d devWorkspace) {
	if u != nil {
		u.dev, _ = d.(*devmode.Dev)
	}
}

// mount adds the UI's routes to the host.
func (u *devUI) mount(host *server.Host, ws *workspace.Workspace, name string, a agent.Agent) error {
	if u == nil {
		return nil
	}
	if u.dev == nil || ws == nil {
		return errors.New("dev UI: the dev workspace is not open")
	}
	ui, err := devui.New(devui.Options{
		AgentName: name,
		Agent:     a,
		Manifest:  host.Manifest(),
		Identity:  ws,
		Users:     slices.Collect(maps.Keys(u.dev.Users())),
		Workspace: u.dev, // its audit log, embedded or over HTTP (--dev-workspace-url)
		Recorder:  u.rec,
	})
	if err != nil {
		return err
	}
	ui.Register(host.API().Engine())
	return nil
}

// announce logs where the UI is.
func (u *devUI) announce(log *slog.Logger, addr net.Addr) {
	if u != nil {
		log.Info("dev UI: open http://" + addr.String() + "/")
	}
}

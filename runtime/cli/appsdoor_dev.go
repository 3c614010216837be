//go:build !agentrt_nodev

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agentrt/agentrt/internal/apps"
	"github.com/agentrt/agentrt/internal/appsdoor"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/hostcheck"
	"github.com/agentrt/agentrt/internal/httperr"
	"github.com/agentrt/agentrt/internal/workspace"
)

// startAppsDoor is --dev-apps: the emulated Apps front door on --addr, with
// the user_api_scopes of the app in the bundle file, before the agent, which
// gets a private loopback listener (returned).
func startAppsDoor(ctx context.Context, c config, ws *workspace.Workspace, log *slog.Logger) (net.Listener, error) {
	if ws == nil {
		return nil, errors.New("--dev-apps: no workspace is open")
	}
	raw, err := os.ReadFile(c.devApps)
	if err != nil {
		return nil, fmt.Errorf("--dev-apps: %w", err)
	}
	defs, err := apps.ParseBundle(raw)
	if err != nil {
		return nil, fmt.Errorf("--dev-apps %s: %w", c.devApps, err)
	}
	if len(defs) != 1 {
		return nil, fmt.Errorf("--dev-apps %s: want one app under resources.apps, found %d", c.devApps, len(defs))
	}
	var name string
	var scopes []string
	for _, a := range defs {
		name, scopes = a.Name, a.UserApiScopes
	}
	cfg, err := devworkspace.DefaultConfig()
	if c.ws.devConfig != "" {
		cfg, err = devworkspace.LoadConfig(c.ws.devConfig)
	}
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, u := range cfg.Users {
		if len(u.Tokens) > 0 {
			name, _, _ := strings.Cut(u.UserName, "@")
			users[strings.ToLower(name)] = u.Tokens[0]
		}
	}
	policy, err := hostcheck.New(c.ws.allowedHosts())
	if err != nil {
		return nil, err
	}
	agentLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	doorLn, err := net.Listen("tcp", c.addr)
	if err != nil {
		agentLn.Close()
		return nil, err
	}
	door, err := appsdoor.New(appsdoor.Options{
		Workspace: ws.System.Client().Config.Host,
		Agent:     "http://" + agentLn.Addr().String(),
		Scopes:    slices.Clone(scopes),
		Users:     users,
		Logger:    log,
	})
	if err != nil {
		agentLn.Close()
		doorLn.Close()
		return nil, err
	}
	srv := &http.Server{
		Handler: hostcheck.Handler(policy, door, func(w http.ResponseWriter, _ *http.Request, reason string) {
			httperr.PermissionDenied(reason).Write(w)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(doorLn) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), c.drainTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("apps front door listening", "addr", doorLn.Addr().String(), "app", name,
		"user_api_scopes", strings.Join(scopes, " "), "agent", agentLn.Addr().String())
	return agentLn, nil
}

// Package devmode is the library behind `serve --dev`: it starts the embedded
// dev workspace on a loopback port (Start), or connects to one already
// running (Connect, for `serve --dev --dev-workspace-url`, so that the
// workspace and its state outlive restarts of the agent), and supplies what
// the host needs to use it as if it were a real workspace (its URL, the
// agent's service principal for the real OAuth M2M flow, the mock identities
// alice, bob, … and its audit log).
//
// It also guards the one dangerous mistake of dev mode, serving mock
// identities to the network: a non-loopback listen address is refused, and
// the dev workspace answers only requests naming a loopback Host and Origin
// (internal/hostcheck, the DNS-rebinding defence), unless the host names
// remote clients use are explicitly allowed (--dev-allow-remote).
package devmode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/hostcheck"
	"github.com/agentrt/agentrt/internal/workspace"
)

// Options configure Start.
type Options struct {
	// Addr is where the dev workspace listens (default 127.0.0.1:0, a free
	// loopback port).
	Addr string
	// Config or ConfigFile replaces the dev workspace's default
	// configuration.
	Config     *devworkspace.Config
	ConfigFile string
	// ServeAddr is the agent server's listen address, checked with
	// CheckAddr.
	ServeAddr string
	// AllowedHosts (--dev-allow-remote) are the host names or addresses
	// (no port; "*" for any) the dev servers answer besides loopback ones.
	// Naming any also permits non-loopback listen addresses.
	AllowedHosts []string
	// LLMProxyURL makes the dev model proxy to an OpenAI-compatible server.
	LLMProxyURL string
	// AuditEntries bounds the dev workspace's audit log (default 10,000).
	AuditEntries int
	Logger       *slog.Logger
}

// Dev is a running dev workspace: embedded (Start) or remote (Connect).
type Dev struct {
	ws  *devworkspace.Workspace // nil when remote
	url string
	cfg *devworkspace.Config
	// remote is the audit log of a dev workspace in another process.
	remote *remoteAudit
}

// AddrError is a non-loopback address refused in dev mode.
type AddrError struct {
	Flag, Addr string
}

func (e *AddrError) Error() string {
	return fmt.Sprintf("%s %q is not a loopback address: dev mode accepts mock identities (X-Dev-User) and must not be reachable from the network; use 127.0.0.1, or name the hosts remote clients use with --dev-allow-remote", e.Flag, e.Addr)
}

// CheckAddr returns an *AddrError unless addr ("host:port") listens on
// loopback only. An empty host means every interface and is refused too.
func CheckAddr(flag, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	// Not hostcheck.IsLoopbackHost: Go resolves *.localhost through DNS,
	// so only localhost itself and literal addresses are sure to be local.
	if strings.EqualFold(host, "localhost") || hostcheck.IsLoopbackIP(host) {
		return nil
	}
	return &AddrError{Flag: flag, Addr: addr}
}

// Start checks the addresses and starts the dev workspace until ctx ends or
// Close is called.
func Start(ctx context.Context, o Options) (*Dev, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if _, err := hostcheck.New(o.AllowedHosts); err != nil {
		return nil, fmt.Errorf("--dev-allow-remote: %w", err)
	}
	if len(o.AllowedHosts) == 0 {
		if err := CheckAddr("--dev-workspace-addr", o.Addr); err != nil {
			return nil, err
		}
		if o.ServeAddr != "" {
			if err := CheckAddr("--addr", o.ServeAddr); err != nil {
				return nil, err
			}
		}
	}
	ws, err := devworkspace.Start(ctx, devworkspace.Options{
		Addr: o.Addr, Config: o.Config, ConfigFile: o.ConfigFile, LLMProxyURL: o.LLMProxyURL, Logger: o.Logger,
		AllowedHosts: o.AllowedHosts, AuditEntries: o.AuditEntries,
	})
	if err != nil {
		return nil, err
	}
	d := &Dev{ws: ws, url: ws.URL(), cfg: ws.Config()}
	if _, _, err := d.servicePrincipal(); err != nil {
		ws.Close()
		return nil, err
	}
	return d, nil
}

// URL is the dev workspace's base URL.
func (d *Dev) URL() string { return d.url }

// Workspace is the embedded dev workspace (its audit log, configuration),
// or nil for one reached with Connect.
func (d *Dev) Workspace() *devworkspace.Workspace { return d.ws }

// Audit returns the dev workspace's audit log, oldest first. For a remote
// dev workspace it is read over HTTP (GET /dev/audit, only the entries not
// seen yet); when that fails, it returns the entries already read.
func (d *Dev) Audit() []devworkspace.AuditEntry {
	if d.remote != nil {
		return d.remote.entries()
	}
	return d.ws.Audit()
}

// Close stops the embedded dev workspace; a remote one keeps running (it
// belongs to whoever started it).
func (d *Dev) Close() error {
	if d.remote != nil {
		d.remote.client.CloseIdleConnections()
		return nil
	}
	return d.ws.Close()
}

// servicePrincipal is the agent's identity: agent-sp when configured, else
// the first service principal with a secret.
func (d *Dev) servicePrincipal() (id, secret string, err error) {
	for _, sp := range d.cfg.ServicePrincipals {
		if sp.Secret == "" {
			continue
		}
		if sp.ApplicationID == devworkspace.SPClientID {
			return sp.ApplicationID, sp.Secret, nil
		}
		if id == "" {
			id, secret = sp.ApplicationID, sp.Secret
		}
	}
	if id == "" {
		return "", "", errors.New("devmode: the dev workspace has no service principal with a secret for the agent")
	}
	return id, secret, nil
}

// System is the system client's configuration a production deployment
// would have: the workspace host and the agent's service principal, so the
// system client runs the real OAuth M2M flow.
func (d *Dev) System() credentials.SystemOptions {
	id, secret, _ := d.servicePrincipal()
	return credentials.SystemOptions{Host: d.URL(), ClientID: id, ClientSecret: secret}
}

// Users returns the mock identities: the local part of each user name
// (alice for alice@example.com) mapped to that user's first token.
func (d *Dev) Users() map[string]string {
	out := map[string]string{}
	for _, u := range d.cfg.Users {
		if len(u.Tokens) == 0 {
			continue
		}
		name, _, _ := strings.Cut(u.UserName, "@")
		out[strings.ToLower(name)] = u.Tokens[0]
	}
	return out
}

// Configure points o at the dev workspace: its URL, the agent's service
// principal (the system client runs the same OAuth M2M flow as in
// production, and no credential configured for a real workspace is used) and
// the mock identities. The system client's tuning in o.System is kept.
func (d *Dev) Configure(o *workspace.Options) {
	sys := d.System()
	o.Host = sys.Host
	o.System.ClientID, o.System.ClientSecret = sys.ClientID, sys.ClientSecret
	o.System.TokenFile, o.System.OIDCTokenFile, o.System.TokenAudience, o.System.Token = "", "", "", ""
	o.System.WorkspaceID = ""
	o.Dev = true
	o.DevUsers = d.Users()
}

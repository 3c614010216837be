package cli

// Workspace wiring for `serve` and `serve check`: flags and environment →
// internal/devmode and internal/workspace. The logic lives in those
// packages, which read neither; this file only translates.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/credentials"
	"github.com/agentrt/agentrt/internal/hostcheck"
	"github.com/agentrt/agentrt/internal/workspace"
)

// workspaceFlags are the workspace and dev-mode flags.
type workspaceFlags struct {
	host             string
	dev              bool
	devWorkspaceAddr string
	devWorkspaceURL  string // a dev workspace already running, instead of an embedded one
	devConfig        string
	devLLMURL        string
	devAllowRemote   string // comma-separated host names
	allowMissing     bool
	tokenExchange    bool
	trustForwarded   bool
	// onDev, when set, is given the dev workspace once it runs (the dev
	// UI reads its identities and audit log).
	onDev func(devWorkspace)
	// system is the system client's credential, from the environment
	// (systemFromEnv); --dev replaces it with the dev service principal.
	system credentials.SystemOptions
}

// systemFromEnv reads the system client's credential from the variables of
// the Databricks SDK's unified authentication that agentrt supports, plus
// AGENTRT_TOKEN_FILE (see internal/credentials for their precedence).
func systemFromEnv(getenv func(string) string) credentials.SystemOptions {
	v := func(k string) string { return strings.TrimSpace(getenv(k)) }
	return credentials.SystemOptions{
		ClientID:      v("DATABRICKS_CLIENT_ID"),
		ClientSecret:  v("DATABRICKS_CLIENT_SECRET"),
		TokenFile:     v("AGENTRT_TOKEN_FILE"),
		OIDCTokenFile: v("DATABRICKS_OIDC_TOKEN_FILEPATH"),
		TokenAudience: v("DATABRICKS_TOKEN_AUDIENCE"),
		Token:         v("DATABRICKS_TOKEN"),
		ClientOptions: credentials.ClientOptions{WorkspaceID: v("DATABRICKS_WORKSPACE_ID")},
	}
}

func envBool(key string) bool {
	v, _ := strconv.ParseBool(env(key, "false"))
	return v
}

func (w *workspaceFlags) register(fs *flag.FlagSet) {
	w.system = systemFromEnv(os.Getenv)
	fs.StringVar(&w.host, "host", env("DATABRICKS_HOST", ""), "Databricks workspace URL (DATABRICKS_HOST); credentials come from DATABRICKS_CLIENT_ID/_SECRET, a token file, DATABRICKS_OIDC_TOKEN_FILEPATH or DATABRICKS_TOKEN")
	fs.BoolVar(&w.dev, "dev", envBool("AGENTRT_DEV"), "run against the embedded dev workspace, with mock identities (X-Dev-User: alice|bob|carol) (AGENTRT_DEV)")
	fs.StringVar(&w.devWorkspaceAddr, "dev-workspace-addr", env("AGENTRT_DEV_WORKSPACE_ADDR", "127.0.0.1:0"), "listen address of the dev workspace (AGENTRT_DEV_WORKSPACE_ADDR); port 0 picks a free port")
	fs.StringVar(&w.devWorkspaceURL, "dev-workspace-url", env("AGENTRT_DEV_WORKSPACE_URL", ""), "with --dev, use the dev workspace already running at this URL (cmd/devworkspace; make dev keeps one across restarts) instead of starting one, so its state outlives the server (AGENTRT_DEV_WORKSPACE_URL); --dev-config must be the configuration it runs with; loopback only unless --dev-allow-remote names its host; --dev-workspace-addr is then unused")
	fs.StringVar(&w.devConfig, "dev-config", env("AGENTRT_DEV_CONFIG", ""), "dev workspace configuration file (AGENTRT_DEV_CONFIG); default: the embedded example workspace")
	fs.StringVar(&w.devLLMURL, "dev-llm-url", env("AGENTRT_DEV_LLM_URL", ""), "OpenAI-compatible base URL the dev model proxies to (AGENTRT_DEV_LLM_URL); default: the deterministic dev model")
	fs.StringVar(&w.devAllowRemote, "dev-allow-remote", env("AGENTRT_DEV_ALLOW_REMOTE", ""), "comma-separated host names or addresses that --dev answers besides loopback ones, and permission to listen on a non-loopback address (AGENTRT_DEV_ALLOW_REMOTE); * allows any Host and turns the DNS-rebinding check off; anyone who can reach it can act as any mock user")
	fs.BoolVar(&w.allowMissing, "allow-missing-resources", envBool("AGENTRT_ALLOW_MISSING_RESOURCES"), "start even when the start-up check of declared resources fails (AGENTRT_ALLOW_MISSING_RESOURCES)")
	fs.BoolVar(&w.trustForwarded, "trust-forwarded-identity", envBool("AGENTRT_TRUST_FORWARDED_IDENTITY"), "a trusted proxy (the Databricks Apps front door) sets and strips the X-Forwarded-* identity headers: fill names the workspace did not report from X-Forwarded-Email/-Preferred-Username, for callers whose token came in X-Forwarded-Access-Token (AGENTRT_TRUST_FORWARDED_IDENTITY); the principal id always comes from verifying the token")
	fs.BoolVar(&w.tokenExchange, "token-exchange", envBool("AGENTRT_TOKEN_EXCHANGE"), "exchange each caller's token for one limited to the declared user API scopes, RFC 8693 (AGENTRT_TOKEN_EXCHANGE)")
}

// allowedHosts is --dev-allow-remote as a list, for the dev workspace and
// the host alike.
func (w workspaceFlags) allowedHosts() []string { return hostcheck.Split(w.devAllowRemote) }

// devWorkspace is a running dev workspace (internal/devmode.Dev, embedded
// or reached with --dev-workspace-url), seen
// through startDev so that production builds can leave it out: dev.go
// links it, nodev.go (go build -tags agentrt_nodev) does not.
type devWorkspace interface {
	URL() string
	Configure(*workspace.Options)
	Close() error
}

// openWorkspace starts the dev workspace when asked, then connects to the
// workspace: with check set it runs only the start-up check (serve check).
// It returns a nil workspace when the agent needs no workspace and none is
// configured. close releases everything it started.
func openWorkspace(ctx context.Context, w workspaceFlags, addr string, m agent.Manifest, check bool, transport http.RoundTripper, log *slog.Logger, out io.Writer) (ws *workspace.Workspace, close func(), err error) {
	var closers []func() error
	close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			close()
		}
	}()
	o := workspace.Options{
		Host:                   w.host,
		Manifest:               m,
		TokenExchange:          w.tokenExchange,
		TrustForwardedIdentity: w.trustForwarded,
		AllowMissingResources:  w.allowMissing,
		PreflightOut:           out,
		Environ:                os.Environ(),
		System:                 w.system,
		Transport:              transport,
		Logger:                 log,
	}
	switch {
	case w.dev:
		d, err := startDev(ctx, w, addr, log)
		if err != nil {
			return nil, close, err
		}
		closers = append(closers, d.Close)
		if w.onDev != nil {
			w.onDev(d)
		}
		fmt.Fprintf(out, "dev workspace: %s (mock identities: X-Dev-User: alice, bob or carol)\n", d.URL())
		d.Configure(&o)
	case w.host == "":
		if workspace.Needed(m) {
			return nil, close, errors.New("the agent declares workspace resources or user API scopes: set DATABRICKS_HOST (or --host) and credentials, or run with --dev")
		}
		if check {
			fmt.Fprintln(out, "no workspace configured and no resources declared: nothing to check")
			return nil, close, nil
		}
		log.Info("no workspace configured; env.User and env.System are nil")
		return nil, close, nil
	}
	if check {
		return nil, close, workspace.RunCheck(ctx, o, out)
	}
	ws, err = workspace.Open(ctx, o)
	if err != nil {
		return nil, close, err
	}
	closers = append(closers, ws.Close)
	// Variables that held {{secrets/…}} references now hold the secrets,
	// so the agent reads them from its environment.
	for k, v := range ws.Environ {
		if err := os.Setenv(k, v); err != nil {
			return nil, close, fmt.Errorf("set %s: %w", k, err)
		}
	}
	return ws, close, nil
}

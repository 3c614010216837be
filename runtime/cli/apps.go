package cli

// Databricks Apps (issue 19): `serve apps-config`, which writes an app's
// app.yaml and bundle from the agent's effective manifest, and the
// platform's environment read as defaults when serve runs as an App.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go"

	"github.com/agentrt/agentrt/agent"
	"github.com/agentrt/agentrt/internal/apps"
	"github.com/agentrt/agentrt/internal/loader"
	"github.com/agentrt/agentrt/internal/registry"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/workspace"
)

// The Databricks Apps runtime contract: the platform sets these in every
// app's environment.
const (
	envAppPort = "DATABRICKS_APP_PORT"
	envAppName = "DATABRICKS_APP_NAME"
)

// applyAppsPlatform turns the Databricks Apps environment into defaults,
// after flags and AGENTRT_* variables are read; anything set explicitly
// wins. With DATABRICKS_APP_PORT set (the platform sets it in every app):
//   - serve listens on 0.0.0.0:$DATABRICKS_APP_PORT unless --addr or
//     AGENTRT_ADDR is given: the front door reaches the app on that port;
//   - --trust-forwarded-identity defaults to true: the front door is the
//     only ingress to an app and sets and strips the X-Forwarded-* identity
//     headers. Even then they only fill names, only for a token that came in
//     X-Forwarded-Access-Token; the principal is always the workspace's
//     answer for that token.
//
// The service principal (DATABRICKS_HOST, DATABRICKS_CLIENT_ID/_SECRET) is
// read like anywhere else, and the caller's token arrives in
// X-Forwarded-Access-Token, the first header serve reads.
//
// --dev-apps puts the emulated front door before the agent, so it turns the
// same default on.
func applyAppsPlatform(c *config, fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	explicit := func(flagName, env string) bool {
		_, set := lookup(env)
		return given[flagName] || set
	}
	if c.devApps != "" {
		if !c.ws.dev {
			return errors.New("--dev-apps emulates the Apps front door with the dev workspace: add --dev")
		}
		if !explicit("trust-forwarded-identity", "AGENTRT_TRUST_FORWARDED_IDENTITY") {
			c.ws.trustForwarded = true
		}
	}
	port, ok := lookup(envAppPort)
	if !ok || port == "" {
		return nil
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s=%q is not a port number", envAppPort, port)
	} else if !explicit("addr", "AGENTRT_ADDR") {
		c.addr = net.JoinHostPort("0.0.0.0", strconv.FormatUint(n, 10))
	}
	if !explicit("trust-forwarded-identity", "AGENTRT_TRUST_FORWARDED_IDENTITY") {
		c.ws.trustForwarded = true
	}
	c.appName, _ = lookup(envAppName)
	if c.appName == "" {
		c.appName = "(unnamed)"
	}
	return nil
}

// registerAppsFlags registers the Databricks Apps flags of serve.
func registerAppsFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.devApps, "dev-apps", env("AGENTRT_DEV_APPS", ""), "with --dev, put an emulated Databricks Apps front door on --addr, minting user tokens limited to the user_api_scopes of the app in this bundle file (databricks.yml from `serve apps-config`), and run the agent behind it (AGENTRT_DEV_APPS)")
}

// listen opens the agent's listener: --addr, or with --dev-apps a private
// loopback port behind the emulated front door, which takes --addr.
func listen(ctx context.Context, c config, ws *workspace.Workspace, log *slog.Logger) (net.Listener, error) {
	if c.devApps == "" {
		return net.Listen("tcp", c.addr)
	}
	return startAppsDoor(ctx, c, ws, log)
}

// reportAppScopes tells the operator of `serve check` which user API scopes
// the agent's callers' tokens need: on Databricks Apps, the app's
// user_api_scopes.
func reportAppScopes(w io.Writer, m agent.Manifest) {
	if sc := apps.UserScopes(m); len(sc) > 0 {
		fmt.Fprintf(w, "user API scopes the app must be granted (Databricks Apps user_api_scopes; for other callers, their tokens' scopes): %s\n", strings.Join(sc, ", "))
	}
}

// secretFlags collects repeated --secret ENV=scope/key.
type secretFlags []apps.Secret

func (s *secretFlags) String() string { return "" }

func (s *secretFlags) Set(v string) error {
	sec, err := apps.ParseSecret(v)
	if err != nil {
		return err
	}
	*s = append(*s, sec)
	return nil
}

// runAppsConfig is `serve apps-config`: it loads the agent as serve does,
// takes its effective manifest, and writes app.yaml and databricks.yml into
// --out. Resources reached as the caller and those Apps cannot attach are
// reported on w.
func runAppsConfig(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("serve apps-config", flag.ContinueOnError)
	fs.SetOutput(w)
	var (
		o       apps.Options
		out     string
		secrets secretFlags
	)
	fs.StringVar(&o.Agent, "agent", env("AGENTRT_AGENT", ""), "agent the app serves (AGENTRT_AGENT): a registered name ("+strings.Join(registry.Names(), ", ")+") or a plugin .so shipped beside the binary")
	fs.StringVar(&o.Manifest, "manifest", env("AGENTRT_MANIFEST", ""), "agent.yaml with the agent's resources and auth policy (AGENTRT_MANIFEST); the app's command passes its base name, so ship it beside the binary")
	fs.StringVar(&o.Name, "name", env(envAppName, ""), "app name: lowercase letters, digits and hyphens (DATABRICKS_APP_NAME); default: the agent's name")
	fs.StringVar(&o.Description, "description", "", "app description")
	fs.StringVar(&o.Binary, "binary", "./serve", "the serve executable, relative to the app's files")
	fs.StringVar(&o.SourceCodePath, "source-code-path", ".", "the app's files, relative to the bundle file (the bundle's source_code_path)")
	fs.Var(&secrets, "secret", "ENV=scope/key: attach a workspace secret and inject it as $ENV (repeatable)")
	fs.StringVar(&out, "out", ".", "directory app.yaml and databricks.yml are written to")
	deployTo := fs.String("deploy", "", "after writing, create or update the app and deploy the files uploaded to this workspace folder (Apps.Create/Update, Apps.Deploy), with DATABRICKS_HOST and the credentials the SDK finds")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("apps-config: unexpected arguments: %q", fs.Args())
	}
	if o.Agent == "" {
		return fmt.Errorf("apps-config: --agent is required: a registered agent (%s) or a plugin path ending in .so", strings.Join(registry.Names(), ", "))
	}
	loaded, err := loader.Load(loader.Options{Agent: o.Agent, ManifestFile: o.Manifest})
	if err != nil {
		return err
	}
	m := server.EffectiveManifest(loaded.Agent, loaded.Manifest)
	if o.Name == "" {
		o.Name = strings.ToLower(strings.TrimSuffix(filepath.Base(loaded.Name), ".so"))
	}
	if o.Manifest != "" {
		o.Manifest = filepath.Base(o.Manifest)
	}
	o.Secrets = secrets
	cfg, err := apps.Generate(m, o)
	if err != nil {
		return err
	}
	appYAML, err := cfg.MarshalAppYAML()
	if err != nil {
		return err
	}
	bundle, err := cfg.MarshalBundle()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{apps.AppYAMLFile: appYAML, apps.BundleFile: bundle} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "wrote %s and %s for app %q (agent %q): %d resources attached, user_api_scopes: %s\n",
		filepath.Join(out, apps.AppYAMLFile), filepath.Join(out, apps.BundleFile), o.Name, loaded.Name,
		len(cfg.App.Resources), strings.Join(cfg.App.UserApiScopes, ", "))
	for _, r := range cfg.Caller {
		fmt.Fprintf(w, "reached as the caller, not granted to the app: %s %s\n", r.Type, r.Name)
	}
	for _, u := range cfg.Unattached {
		fmt.Fprintf(w, "warning: not attached: %s %s: %s\n", u.Resource.Type, u.Resource.Name, u.Reason)
	}
	if *deployTo == "" {
		return nil
	}
	client, err := databricks.NewWorkspaceClient()
	if err != nil {
		return fmt.Errorf("apps-config --deploy: %w", err)
	}
	d, err := apps.Deploy(ctx, client, cfg.App, *deployTo, 20*time.Minute)
	if err != nil {
		return err
	}
	state := "submitted"
	if d.Status != nil {
		state = string(d.Status.State)
	}
	fmt.Fprintf(w, "deployed app %q from %s: deployment %s %s\n", o.Name, *deployTo, d.DeploymentId, state)
	return nil
}

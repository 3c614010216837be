// Package cli is the serve command as a library: flags and AGENTRT_*
// environment → agent loading (internal/loader), workspace, telemetry and the
// host. cmd/serve is a three-line main around Main, and so is any serve a
// user builds with their own agent compiled in (examples/customserve).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentrt/agentrt/internal/hostcheck"
	"github.com/agentrt/agentrt/internal/httpapi"
	"github.com/agentrt/agentrt/internal/loader"
	"github.com/agentrt/agentrt/internal/registry"
	"github.com/agentrt/agentrt/internal/server"
	"github.com/agentrt/agentrt/internal/store"
	"github.com/agentrt/agentrt/internal/telemetry"
)

// Main runs serve with args (the command line without the program name),
// reporting errors on stderr, and returns the process exit code. Agents are
// those registered by the packages linked into the binary, or a plugin path.
func Main(args []string) int {
	if err := Run(context.Background(), args, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

type config struct {
	addr           string
	agentName      string
	manifest       string
	maxBodyBytes   int64
	maxConcurrency int
	requestTimeout time.Duration
	drainTimeout   time.Duration
	logLevel       string
	logFormat      string
	tracePayloads  bool
	corsOrigins    string // comma-separated
	storeSpec      string // --store: sqlite:PATH, postgres://…, memory, off
	storeTTL       time.Duration
	storeLease     time.Duration
	storeMigrate   bool

	ws      workspaceFlags // workspace and --dev flags (workspace.go)
	check   bool           // `serve check`: run only the start-up resource check
	migrate bool           // `serve migrate`: only migrate the response store's schema

	appName string // DATABRICKS_APP_NAME when running as a Databricks App (apps.go)
	devApps string // --dev-apps: the bundle whose app the emulated front door uses (apps.go)
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	if len(args) > 0 && args[0] == "check" {
		c.check, args = true, args[1:]
	} else if len(args) > 0 && args[0] == "migrate" {
		c.migrate, args = true, args[1:]
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envInt := func(key string, def int64) int64 {
		if v, err := strconv.ParseInt(env(key, ""), 10, 64); err == nil {
			return v
		}
		return def
	}
	envDur := func(key string, def time.Duration) time.Duration {
		if v, err := time.ParseDuration(env(key, "")); err == nil {
			return v
		}
		return def
	}
	fs.StringVar(&c.addr, "addr", env("AGENTRT_ADDR", "127.0.0.1:8080"), "listen address (AGENTRT_ADDR); port 0 picks a free port")
	fs.StringVar(&c.agentName, "agent", env("AGENTRT_AGENT", ""), "agent to serve (AGENTRT_AGENT): a registered name ("+strings.Join(registry.Names(), ", ")+") or the path of a -buildmode=plugin .so")
	fs.StringVar(&c.manifest, "manifest", env("AGENTRT_MANIFEST", ""), "agent.yaml with the agent's resources and auth policy in MLflow's form (AGENTRT_MANIFEST)")
	fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", envInt("AGENTRT_MAX_BODY_BYTES", 10<<20), "request body limit in bytes (AGENTRT_MAX_BODY_BYTES)")
	maxConc := fs.Int("max-concurrency", int(envInt("AGENTRT_MAX_CONCURRENCY", 0)), "agent requests in flight before 503 (AGENTRT_MAX_CONCURRENCY); 0 means no limit")
	fs.DurationVar(&c.requestTimeout, "request-timeout", envDur("AGENTRT_REQUEST_TIMEOUT", 5*time.Minute), "bound on one agent call (AGENTRT_REQUEST_TIMEOUT); 0 means none")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", envDur("AGENTRT_DRAIN_TIMEOUT", server.DefaultDrainTimeout), "how long shutdown waits for in-flight requests (AGENTRT_DRAIN_TIMEOUT)")
	fs.StringVar(&c.logLevel, "log-level", env("AGENTRT_LOG_LEVEL", "info"), "debug, info, warn or error (AGENTRT_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", env("AGENTRT_LOG_FORMAT", ""), "json or text (AGENTRT_LOG_FORMAT); default json, text with --dev")
	fs.StringVar(&c.corsOrigins, "cors-origins", env("AGENTRT_CORS_ORIGINS", ""), "comma-separated browser origins allowed to call the server from a page (AGENTRT_CORS_ORIGINS), as scheme://host[:port], e.g. https://chat.example.com; they get their exact origin back and may send credentials; * allows any origin, without credentials; default none; --dev also allows loopback origins")
	fs.StringVar(&c.storeSpec, "store", env("AGENTRT_STORE", ""), "response store (AGENTRT_STORE): sqlite:PATH, postgres://… (replicas sharing state), memory or off (stateless); default sqlite:$XDG_STATE_HOME/agentrt/state.db, else ~/.local/state/agentrt/state.db, else ./agentrt-state.db; see docs/state.md")
	fs.DurationVar(&c.storeTTL, "store-ttl", envDur("AGENTRT_STORE_TTL", store.DefaultTTL), "how long a stored response is kept after its creation (AGENTRT_STORE_TTL)")
	fs.DurationVar(&c.storeLease, "store-lease", envDur("AGENTRT_STORE_LEASE", store.DefaultLease), "how long a background run stays in_progress after its process stops renewing it (killed, out of memory, node lost) before any replica marks it incomplete; renewed every third of it (AGENTRT_STORE_LEASE)")
	fs.BoolVar(&c.storeMigrate, "store-migrate", envBoolDefault("AGENTRT_STORE_MIGRATE", true), "apply the response store's schema migrations at start (AGENTRT_STORE_MIGRATE); false: refuse to start on an old schema (run serve migrate first)")
	c.ws.register(fs)
	registerAppsFlags(fs, &c)
	fs.BoolVar(&c.tracePayloads, "trace-payloads", false, "record request input and tool arguments and results in spans (or AGENTRT_TRACE_PAYLOADS=true); tracing itself is configured by the OTEL_* variables")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.storeSpec == "" {
		c.storeSpec = "sqlite:" + store.DefaultSQLitePath(os.Getenv)
	}
	if _, err := store.Backend(c.storeSpec); err != nil {
		return c, fmt.Errorf("--store: %w", err)
	}
	if c.storeTTL <= 0 {
		return c, fmt.Errorf("--store-ttl: want a positive duration, got %s", c.storeTTL)
	}
	if c.storeLease < 100*time.Millisecond {
		return c, fmt.Errorf("--store-lease: want a duration of at least 100ms, got %s", c.storeLease)
	}
	c.maxConcurrency = *maxConc
	if err := applyAppsPlatform(&c, fs, os.LookupEnv); err != nil {
		return c, err
	}
	if _, err := httpapi.NewCORS(hostcheck.Split(c.corsOrigins), false); err != nil {
		return c, fmt.Errorf("--cors-origins: %w", err)
	}
	if c.logFormat == "" { // JSON for machines in production, text for a person in --dev
		c.logFormat = "json"
		if c.ws.dev {
			c.logFormat = "text"
		}
	}
	return c, nil
}

// newLogger checks --log-level and --log-format and builds the logger with
// telemetry.NewLogger, which stamps each line logged with a request's ctx
// with its request_id and trace_id; with --dev, text lines show only the
// time of day.
func newLogger(w io.Writer, level, format string, dev bool) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if format != "text" && format != "json" {
		return nil, fmt.Errorf("--log-format: want text or json, got %q", format)
	}
	return telemetry.NewLogger(telemetry.LogOptions{Text: format == "text", Dev: dev, Writer: w, Level: lv}), nil
}

// Run is serve: it parses args, loads the agent, connects the workspace
// and serves until ctx ends or SIGINT/SIGTERM arrives, then drains. Logs go
// to stderr.
func Run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "apps-config" {
		return runAppsConfig(ctx, args[1:], stderr)
	}
	c, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(stderr, c.logLevel, c.logFormat, c.ws.dev)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	if c.migrate {
		return migrateStore(ctx, c.storeSpec, log)
	}

	if c.agentName == "" {
		return fmt.Errorf("--agent is required: a registered agent (%s) or a plugin path ending in .so", strings.Join(registry.Names(), ", "))
	}
	// A registered name or a .so plugin (checked against this binary's
	// build first), and the manifest from --manifest, an agent.yaml beside
	// the plugin, or the agent's code.
	loaded, err := loader.Load(loader.Options{Agent: c.agentName, ManifestFile: c.manifest})
	if err != nil {
		return err
	}
	a, manifest := loaded.Agent, loaded.Manifest
	log.Info("agent loaded", "agent", loaded.Name, "plugin", loaded.Plugin, "manifest_source", loaded.ManifestSource)

	// Telemetry before anything that makes spans or outgoing clients:
	// OTEL_* choose the exporters; /metrics is always served. Workspace
	// clients get telemetry.Transport(nil) (workspace.Options.Transport).
	// With --dev, the dev UI (devui.go) records each request's spans.
	ui := newDevUI(c.ws.dev)
	c.ws.onDev = ui.useWorkspace
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceName: c.agentName, RecordPayloads: c.tracePayloads,
		Dev: c.ws.dev, ConsoleWriter: stderr, Logger: log, Getenv: os.Getenv, SpanProcessors: ui.spanProcessors()})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("telemetry shutdown", "error", err)
		}
	}()
	log.Info("telemetry", "traces", tel.TracesExporter, "metrics", "/metrics,"+tel.MetricsExporter, "payloads", tel.RecordPayloads())

	// Workspace: both clients, caller identity, secrets and the start-up
	// check (or only the check, for `serve check`); see workspace.go.
	manifest = server.EffectiveManifest(a, manifest)
	if c.check {
		reportAppScopes(stderr, manifest)
	}
	if c.appName != "" {
		log.Info("running as a Databricks App", "app", c.appName, "trust_forwarded_identity", c.ws.trustForwarded)
	}
	// The response store opens (SQLite: file, pragmas, schema check) while
	// the workspace starts: neither needs the other, and both are on the
	// path to listening.
	var opened chan storeResult
	if !c.check {
		opened = make(chan storeResult, 1)
		go func() {
			st, err := openStore(ctx, c, log)
			opened <- storeResult{st, err}
		}()
	}
	ws, closeWS, err := openWorkspace(ctx, c.ws, c.addr, manifest, c.check, telemetry.Transport(nil), log, stderr)
	defer closeWS()
	if c.check {
		return err
	}
	sr := <-opened
	if err != nil {
		if sr.st != nil {
			sr.st.Close()
		}
		return err
	}
	if sr.err != nil {
		return sr.err
	}
	st := sr.st
	defer st.Close() // after Serve: the drain records background runs in it
	opts := server.Options{
		Store:     st,
		Agent:     a,
		AgentName: c.agentName,
		Manifest:  manifest,
		Dev:       c.ws.dev,
		// The same names the dev workspace answers (--dev-allow-remote).
		DevAllowedHosts: c.ws.allowedHosts(),
		CORSOrigins:     hostcheck.Split(c.corsOrigins),
		Limits: server.Limits{
			MaxBodyBytes:   c.maxBodyBytes,
			MaxConcurrency: c.maxConcurrency,
			RequestTimeout: c.requestTimeout,
		},
		Logger:       log,
		DrainTimeout: c.drainTimeout,
		Telemetry:    tel,
		WaitReady:    true,
	}
	if ws != nil {
		// Caller identity for every request; the same clients for Provision.
		opts.Preparers = []server.Preparer{ws}
		opts.System, opts.User = ws.System.Client(), ws.User.Client()
	}
	host, err := server.New(opts)
	if err != nil {
		return err
	}
	if err := ui.mount(host, ws, c.agentName, a); err != nil {
		return err
	}
	// Serve closes the agent after the drain; this covers the returns
	// before it (Close runs once). It runs before closeWS, so the agent
	// and its tools are closed while the workspace clients still work.
	defer host.Close()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The agent and its tool providers set themselves up with the open
	// workspace (agent.Provisioner) before the host reports ready.
	if err := host.Provision(ctx); err != nil {
		return err
	}
	// The workspace (secrets, system token, start-up resource check) is
	// open and the agent provisioned: GET /ready may say so. SIGTERM turns
	// it off again.
	host.SetReady(true)

	ln, err := listen(ctx, c, ws, log) // apps.go: --addr, or behind --dev-apps
	if err != nil {
		return err
	}
	if c.devApps == "" {
		ui.announce(log, ln.Addr())
	}
	return host.Serve(ctx, ln) // logs "listening" with the actual address
}

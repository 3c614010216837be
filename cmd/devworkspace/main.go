// Command devworkspace runs the embedded dev workspace as a standalone
// server: a local, offline Databricks workspace for agent development.
//
//	devworkspace [--addr 127.0.0.1:8765] [--config workspace.yaml] [--llm-proxy http://localhost:11434/v1] [--allow-remote devbox.lan]
//
// It prints its URL and the dev credentials, and exits cleanly on SIGINT or
// SIGTERM. The credentials are public, so it listens on loopback and answers
// only loopback Host and Origin values (a web page cannot reach it by DNS
// rebinding); --allow-remote names the hosts remote clients use, which also
// permits a non-loopback --addr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentrt/agentrt/internal/devmode"
	"github.com/agentrt/agentrt/internal/devworkspace"
	"github.com/agentrt/agentrt/internal/hostcheck"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devworkspace:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devworkspace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	config := fs.String("config", "", "workspace YAML file (default: the embedded default workspace)")
	llmProxy := fs.String("llm-proxy", "", "proxy dev-llm to this OpenAI-compatible base URL")
	allowRemote := fs.String("allow-remote", "", "comma-separated host names or addresses answered besides loopback ones, and permission to listen on a non-loopback --addr; * allows any Host (no DNS-rebinding check)")
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	hosts := hostcheck.Split(*allowRemote)
	if _, err := hostcheck.New(hosts); err != nil {
		return fmt.Errorf("--allow-remote: %w", err)
	}
	if err := devmode.CheckAddr("--addr", *addr); err != nil && len(hosts) == 0 {
		var ae *devmode.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("--addr %q is not a loopback address: the dev credentials are public; use 127.0.0.1, or name the hosts remote clients use with --allow-remote", *addr)
		}
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ws, err := devworkspace.Start(ctx, devworkspace.Options{
		Addr:         *addr,
		ConfigFile:   *config,
		LLMProxyURL:  *llmProxy,
		AllowedHosts: hosts,
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	printBanner(stdout, ws)
	<-ctx.Done()
	return ws.Close()
}

// printBanner shows the URL and the dev credentials (all public dev values).
func printBanner(w io.Writer, ws *devworkspace.Workspace) {
	cfg := ws.Config()
	fmt.Fprintf(w, "dev workspace listening on %s\n\n", ws.URL())
	fmt.Fprintf(w, "  export DATABRICKS_HOST=%s\n\n", ws.URL())
	fmt.Fprintln(w, "users (personal access tokens, scope all-apis):")
	for _, u := range cfg.Users {
		for _, t := range u.Tokens {
			fmt.Fprintf(w, "  %-22s DATABRICKS_TOKEN=%s\n", u.UserName, t)
		}
	}
	fmt.Fprintln(w, "service principals (OAuth M2M):")
	for _, sp := range cfg.ServicePrincipals {
		fmt.Fprintf(w, "  DATABRICKS_CLIENT_ID=%s DATABRICKS_CLIENT_SECRET=%s\n", sp.ApplicationID, sp.Secret)
	}
	fmt.Fprintf(w, "audit log: %s/dev/audit\n", ws.URL())
}

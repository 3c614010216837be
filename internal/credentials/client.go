package credentials

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/config"
)

// DefaultRateLimit is the per-client request rate used for the shared
// clients; the SDK's default of 15 req/s is per client and would throttle
// every caller of a busy replica together.
const DefaultRateLimit = 1000

// ClientOptions are the transport settings shared by the user and system
// clients.
type ClientOptions struct {
	// Transport replaces the SDK's default HTTP transport (e.g. an otelhttp
	// transport). It must not implement SkipRetryOnIO: the SDK then drops
	// all authentication.
	Transport http.RoundTripper
	// RateLimitPerSecond defaults to DefaultRateLimit.
	RateLimitPerSecond int
	// HTTPTimeout is the inactivity timeout of one call (SDK default 60s).
	HTTPTimeout time.Duration
	// RetryTimeout bounds the SDK's retries of one call (SDK default 5m).
	RetryTimeout time.Duration
	// WorkspaceID, when set, is sent as X-Databricks-Workspace-Id (needed
	// behind unified hosts; host metadata is not fetched to learn it).
	WorkspaceID string
}

// noLoader keeps the SDK from reading the environment or ~/.databrickscfg:
// everything the clients need is passed explicitly.
type noLoader struct{}

func (noLoader) Name() string                   { return "agentrt-explicit" }
func (noLoader) Configure(*config.Config) error { return nil }

// noHostMetadata skips GET /.well-known/databricks-config at construction,
// which retries refused connections for minutes.
func noHostMetadata(context.Context, string) (*config.HostMetadata, error) { return nil, nil }

// parseHost validates a workspace URL and returns its canonical form and
// host:port. Every credential the clients hold (the caller's token, the
// service principal's) travels to this host, so it must be https, except on
// a loopback address (the dev workspace, tests), where nothing crosses the
// network: the rule grpc's RequireTransportSecurity applies.
func parseHost(host string) (canonical, hostport string, err error) {
	if host == "" {
		return "", "", fmt.Errorf("credentials: no workspace host (set DATABRICKS_HOST)")
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return "", "", fmt.Errorf("credentials: invalid workspace host %q", host)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return "", "", &InsecureHostError{Host: u.Scheme + "://" + u.Host}
	default:
		return "", "", fmt.Errorf("credentials: invalid workspace host %q: want an https:// URL", host)
	}
	return u.Scheme + "://" + u.Host, hostPort(u.Scheme, u.Host), nil
}

// isLoopback reports whether host (a name or an IP literal, without port or
// brackets) is this machine: "localhost", 127.0.0.0/8 or ::1. Other names
// are not resolved: what a name points at can change after start-up.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// InsecureHostError is returned at construction for an http:// workspace
// host that is not a loopback address: the clients would send bearer
// tokens over the network in plaintext.
type InsecureHostError struct {
	Host string // scheme://host[:port]
}

func (e *InsecureHostError) Error() string {
	return fmt.Sprintf("credentials: workspace host %s does not use TLS, so tokens would cross the network in plaintext; "+
		"use https:// (http:// is accepted only for loopback hosts: localhost, 127.0.0.0/8, ::1)", e.Host)
}

// hostPort makes the port explicit so that "h" and "h:443" compare equal.
func hostPort(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return strings.ToLower(host)
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return strings.ToLower(net.JoinHostPort(strings.Trim(host, "[]"), port))
}

// newClient builds a workspace client that does no I/O at construction and
// authenticates only through strategy.
func newClient(host string, strategy config.CredentialsStrategy, o ClientOptions) (*databricks.WorkspaceClient, error) {
	if _, ok := o.Transport.(interface{ SkipRetryOnIO() bool }); ok {
		return nil, fmt.Errorf("credentials: transport %T implements SkipRetryOnIO, which disables SDK authentication", o.Transport)
	}
	rate := o.RateLimitPerSecond
	if rate <= 0 {
		rate = DefaultRateLimit
	}
	cfg := &databricks.Config{
		Host:                 host,
		Credentials:          strategy,
		Loaders:              []config.Loader{noLoader{}},
		HostMetadataResolver: noHostMetadata,
		RateLimitPerSecond:   rate,
		HTTPTransport:        o.Transport,
		HTTPTimeoutSeconds:   int(o.HTTPTimeout / time.Second),
		RetryTimeoutSeconds:  int(o.RetryTimeout / time.Second),
		WorkspaceID:          o.WorkspaceID,
	}
	w, err := databricks.NewWorkspaceClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("credentials: build workspace client: %w", err)
	}
	// Run the strategy's Configure now rather than on the first request. The
	// request carries no credential, so the error is expected and ignored.
	probe, _ := http.NewRequest(http.MethodGet, "/", nil)
	_ = w.Config.Authenticate(probe)
	return w, nil
}

// checkHost refuses requests aimed at another host. SDK requests carry only
// a path when the auth visitor runs; requests signed through Authenticate
// carry their full URL.
func checkHost(r *http.Request, hostport string) error {
	if r.URL != nil && r.URL.Host != "" && hostPort(r.URL.Scheme, r.URL.Host) != hostport {
		return &HostError{Host: r.URL.Host, Workspace: hostport}
	}
	return nil
}
